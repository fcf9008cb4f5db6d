"""The next junction on the route: the facts the behaviour state machine decides on, and the rule
that says whether the ego must wait at its stop line. Pure functions, vectorised over the tracks.

Geometry, in the junction's box frame: x along the ego's approach heading, y to its left, origin at
the box centre; the box is |x|, |y| <= h (h: its half size). The ego's own arm is x < -h, |y| < h:
the vehicles there queue with the ego (the lead logic deals with them). A vehicle's time to reach
the box is its distance to the box (grown by VEHICLE_HALF_WIDTH_M) along its velocity / its speed,
from the slab test of a ray against a box, at constant velocity; (time in, time out) of the box.

Who the ego gives way to (`JunctionAhead.give_way_to`), among the moving vehicles not in its arm
that reach the box before the ego could have crossed it (gap acceptance: within `critical_gap_s`, or
within the time the ego needs to clear the box, accelerating at `clear_accel_mps2` from its speed,
plus `conflict_margin_s`):
- turning left: the oncoming ones (heading mostly against the ego's approach);
- at a stop sign or a yield sign: also the crossing ones (heading mostly across it); turning right,
  only those from the left, whose lanes it joins;
- but not one that comes in under a stop sign of its own and is still SIGN_AHEAD_M or more before
  that line: it stops there first (who then goes first is settled when it starts again);
- at a light or on a priority road the crossing traffic has to stop (a two-phase light gives the
  cross street red while the ego has green or yellow): a crossing vehicle that can still stop
  comfortably before its stop line will; one that cannot (it runs its red light, or takes the
  priority) and is in the box while the ego is, give or take `conflict_margin_s`, is a conflict:
  the ego brakes for it as for a stationary lead at the box entry (`crossing_conflict`).
A stop sign also needs the box clear of moving vehicles, and a turn a clear exit crosswalk.
Given the ego's way through the box (`ego_path`), a vehicle coming in a lane whose centre line
misses that way is not given way to (the inner lane, while the ego turns right into the kerb lane;
`_misses`). Only a vehicle put in a lane counts (`_in_lane`): before the box, or in it going
straight on from the left or right arm. A tracked heading a few degrees off would miss a way that
its lane crosses, and a car in the box may be turning across it. (Timing the gap to where the ways
cross, rather than to the box, let the CNN stack go in front of cars it tracked late.)

With a perceiver that sees only its cameras' views (`WorldModel.views`), the ego gives way only to
what it can see: the lanes coming in from the arms whose traffic it gives way to must be observed
out to where a vehicle at their speed limit reaches the box within `critical_gap_s` (`unobserved`,
perception/visibility.py: in some camera's view, not hidden by a standing vehicle outside that lane).
Until they are, the ego creeps on, into the box up to CREEP_INTO_BOX_M (1 m short of the crossing
street), giving way there as at its stop line (decision/behaviour.py, Behaviour.CREEP); what it
still cannot see from there it cannot see at all, and it goes by the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decision.route import JunctionCrossing, Road
from decision.town import CORNER_RADIUS_M
from perception.types import PEDESTRIAN, VEHICLE, WorldModel
from perception.visibility import OCCLUDER_MIN_LENGTH_M, in_view

PULL_IN_M = 3.0  # a left turn giving way on green waits with its front this far into the box (its tail past the line) ...
PULL_IN_SLACK_M = 1.0  # ... or a little farther (it braked late)
VEHICLE_HALF_WIDTH_M = 1.0  # a vehicle reaches the box when its centre is this near it
MIN_EGO_SPEED_MPS = 1.0  # the ego's times to the box are taken at no less than this speed
MIN_STOP_DISTANCE_M = 0.1  # distances are clamped here when dividing by them
OBSERVE_FROM_M = 30.0  # the approaches are looked at from this far before the stop line ...
OBSERVE_STEP_M = 4.0  # ... at points this far apart along each incoming lane ...
OBSERVE_RADIUS_M = 1.0  # ... each in view when a camera sees within this of it (as decision/situation.py)
SPEED_SIGMAS = 2.0  # a camera track's speed may be this many stds worse than tracked (situation.py too)
IN_LANE_M = 1.5  # a tracked vehicle this near an incoming lane's centre line is its traffic, not an occluder
SIGN_AHEAD_M = 3.0  # a vehicle this far or more before its own stop sign's line stops there first ...
ALIGNED_COS = 0.7  # ... when it heads this near its lane's way
CREEP_INTO_BOX_M = CORNER_RADIUS_M - 1.0  # the ego creeps to see with its front this far into the box ...
CREEP_REACHED_M = 0.5  # ... and has got there this near it
PATH_STEP_M = 0.5  # the ego's way through a junction is sampled this finely ...
PATH_BEYOND_EXIT_M = 5.0  # ... from its stop line to this far past the box
CONFLICT_CLEARANCE_M = 0.5  # two ways cross where they come within both half widths + this
IN_BOX_LANE_M = 1.0  # in the box, a vehicle this near a crossing lane's centre line ...
IN_BOX_ALIGNED_COS = 0.985  # ... heading within 10 degrees of its way drives straight on in it


@dataclass(frozen=True, slots=True)
class JunctionParams:
    """How the ego deals with junctions (conf/decision/default.yaml, section `junction`)."""

    critical_gap_s: float  # give way to vehicles that reach the box sooner than this
    stop_line_margin_m: float  # the ego's front stops this far before the stop line
    full_stop_speed_mps: float  # at a stop sign the ego stops: slower than this ...
    stop_zone_m: float  # ... with its front within this distance of the stop line
    crosswalk_width_m: float  # pedestrians this far beyond the box on the exit arm hold a turn
    conflict_margin_s: (
        float  # a vehicle that will not stop conflicts within this of the ego's time in the box
    )
    red_stop_decel_mps2: float  # at red the ego stops at the line unless that needs more (too late)
    moving_speed_mps: float  # slower vehicles do not come (their time to the box is inf)
    clear_accel_mps2: float = 1.2  # the ego clears the box accelerating at this (gap acceptance)
    creep_speed_mps: float = 1.5  # creeping towards the box to see the incoming lanes, at most this

    def __post_init__(self):
        if not (
            self.critical_gap_s > 0
            and self.full_stop_speed_mps > 0
            and self.red_stop_decel_mps2 > 0
            and self.clear_accel_mps2 > 0
            and self.creep_speed_mps > 0
        ):
            raise ValueError(
                "critical_gap_s, full_stop_speed_mps, red_stop_decel_mps2, clear_accel_mps2 and "
                "creep_speed_mps must be > 0"
            )


# Built every tick: a plain dataclass (as Situation), treat as read-only.
@dataclass(slots=True)
class JunctionAhead:
    """The next junction the ego has not left yet. Gaps from the ego's front [m], < 0: past it."""

    junction_id: int
    control: str  # "signal", "stop", "yield" or "priority"
    turn: str  # "left", "straight" or "right"
    signal: str | None  # the ego's light as perceived (None: no light, or not seen)
    stop_gap_m: float  # to the stop line
    entry_gap_m: float  # to where the route enters the box
    exit_gap_m: float  # to where it leaves it
    box_occupied_by: int = -1  # a moving vehicle in the box (track id); -1: none
    give_way_to: int = -1  # the vehicle to give way to (track id, see the module doc); -1: none
    give_way_in_s: float = math.inf  # its time to reach the box
    pedestrian_on_exit: int = -1  # a pedestrian on the crosswalk of the exit arm (track id); -1: none
    unobserved: str = ""  # an incoming lane given way to that the cameras do not see far enough ("": none)


def next_crossing(route, ego_rear_s_m: float) -> JunctionCrossing | None:
    """The first junction crossing of the route that the ego has not wholly left."""
    for crossing in route.junctions:
        if crossing.exit_s_m > ego_rear_s_m:
            return crossing
    return None


def time_in_box(p: np.ndarray, u: np.ndarray, half_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(time in, time out) [s] of points p moving at velocities u (both (N,) complex, box frame)
    through the square |x|, |y| <= half_m; inf (and -inf) for the ones that never get there, time
    in 0 for the ones inside. The slab test: per axis the times between the two planes, crossed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_in = np.full(len(p), -np.inf)
        t_out = np.full(len(p), np.inf)
        for pos, vel in ((p.real, u.real), (p.imag, u.imag)):
            t1, t2 = (-half_m - pos) / vel, (half_m - pos) / vel
            # A zero velocity component: 0 / 0 (on a plane) counts as inside the slab.
            t1 = np.where(np.isnan(t1), -np.inf, t1)
            t2 = np.where(np.isnan(t2), np.inf, t2)
            t_in = np.maximum(t_in, np.minimum(t1, t2))
            t_out = np.minimum(t_out, np.maximum(t1, t2))
    hit = (t_in <= t_out) & (t_out >= 0.0)
    return np.where(hit, np.maximum(t_in, 0.0), np.inf), np.where(hit, t_out, -np.inf)


def junction_facts(
    crossing: JunctionCrossing,
    world: WorldModel,
    ego_front_s_m: float,
    ego_speed_mps: float,
    ego_length_m: float,
    decel_comfort_mps2: float,
    p: JunctionParams,
    path: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[JunctionAhead, tuple[int, float] | None]:
    """The facts of the junction ahead, and the crossing conflict: (track id, its time to the box)
    of a crossing vehicle that will not stop and is predicted in the box with the ego, or None.
    path: the ego's way through the box, (route s [m], box-frame x + iy) of points along its lane
    (`ego_path`); with it, vehicles coming in a lane that misses that way are not given way to."""
    j = JunctionAhead(
        crossing.junction_id,
        crossing.control,
        crossing.turn,
        world.signal(crossing.signal_id) if crossing.control == "signal" else None,
        crossing.stop_s_m - ego_front_s_m,
        crossing.entry_s_m - ego_front_s_m,
        crossing.exit_s_m - ego_front_s_m,
    )
    if world.views is not None and j.stop_gap_m < OBSERVE_FROM_M and creep_gap_m(j) > CREEP_REACHED_M:
        j.unobserved = unobserved_approach(crossing, world, p)
    if len(world) == 0:
        return j, None
    h = crossing.half_size_m
    to_box = np.exp(-1j * crossing.heading_rad)
    pos = (world.xy_m[:, 0] + 1j * world.xy_m[:, 1] - complex(*crossing.centre_xy_m)) * to_box
    vel = (world.v_mps[:, 0] + 1j * world.v_mps[:, 1]) * to_box
    lanes = _IncomingLanes(crossing, pos, to_box)
    if world.v_std_mps is not None:
        vel = _at_worst(crossing, world, lanes, vel)
    speed = np.abs(vel)
    vehicle = (world.class_ids == VEHICLE) & (speed >= p.moving_speed_mps)
    own_arm = (pos.real < -h) & (np.abs(pos.imag) < h)
    t_in, t_out = time_in_box(pos, vel, h + VEHICLE_HALF_WIDTH_M)
    coming = vehicle & ~own_arm & (t_in < math.inf) & ~_stopping_at_sign(crossing, world, lanes, to_box)
    if path is not None:  # a vehicle in a lane that misses the ego's way is not waited for
        rows = np.flatnonzero(coming)
        misses = _misses(world, pos[rows], vel[rows], rows, lanes, path, ego_front_s_m, ego_length_m)
        coming[rows[misses]] = False
    across = np.abs(vel.imag) > np.abs(vel.real)
    crossing_traffic = coming & across
    oncoming = coming & ~across & (vel.real < 0.0)

    inside = coming & (t_in == 0.0)
    if inside.any():
        j.box_occupied_by = int(world.ids[np.flatnonzero(inside)[0]])
    give_way = oncoming if crossing.turn == "left" else np.zeros_like(oncoming)
    if crossing.control in ("stop", "yield"):
        # A right turn only joins the lanes of the traffic from the left (heading right, y falling).
        give_way = give_way | (
            crossing_traffic & (vel.imag < 0.0) if crossing.turn == "right" else crossing_traffic
        )
    give_way &= t_in < max(
        p.critical_gap_s, clear_time_s(j, ego_speed_mps, ego_length_m, p) + p.conflict_margin_s
    )
    if give_way.any():
        i = int(np.argmin(np.where(give_way, t_in, np.inf)))
        j.give_way_to, j.give_way_in_s = int(world.ids[i]), float(t_in[i])
    if crossing.turn != "straight":
        j.pedestrian_on_exit = _pedestrian_on_exit(world, pos, crossing, p)

    conflict = None
    if crossing.control in ("signal", "priority") and j.entry_gap_m > 0.0:
        # Its distance to its stop line: to the box less the ego's own setback of the line.
        setback_m = crossing.entry_s_m - crossing.stop_s_m
        reach = np.where(np.isfinite(t_in), t_in, 0.0) * speed  # distance to the box (0: never reaches it)
        to_line = np.maximum(reach - VEHICLE_HALF_WIDTH_M - setback_m, MIN_STOP_DISTANCE_M)
        will_stop = (t_in > 0.0) & (speed * speed / (2.0 * to_line) <= decel_comfort_mps2)
        v_ego = max(ego_speed_mps, MIN_EGO_SPEED_MPS)
        ego_in = j.entry_gap_m / v_ego - p.conflict_margin_s
        ego_out = (j.exit_gap_m + ego_length_m) / v_ego + p.conflict_margin_s
        runner = crossing_traffic & ~will_stop & (t_in < ego_out) & (t_out > ego_in)
        if runner.any():
            i = int(np.argmin(np.where(runner, t_in, np.inf)))
            conflict = (int(world.ids[i]), float(t_in[i]))
    return j, conflict


def ego_path(crossing: JunctionCrossing, road: Road, d_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(route s [m], box-frame x + iy) of points PATH_STEP_M apart along the ego's lane at offset
    `d_m`, from the stop line to PATH_BEYOND_EXIT_M past the box."""
    s = np.arange(crossing.stop_s_m, crossing.exit_s_m + PATH_BEYOND_EXIT_M, PATH_STEP_M)
    x, y, _ = road.to_world(s, d_m)
    xy = np.asarray(x) + 1j * np.asarray(y)
    return s, (xy - complex(*crossing.centre_xy_m)) * np.exp(-1j * crossing.heading_rad)


class _IncomingLanes:
    """The tracks (box-frame positions `pos` (N,)) in the frames of the crossing's incoming lanes
    (A): `rel` (N, A) along (< 0: before the box) and across each lane's centre line from where it
    meets the box; the lanes' points `xy` and unit ways `way` (A,), box frame, and which come from
    the left or right arm (`across`)."""

    def __init__(self, crossing: JunctionCrossing, pos: np.ndarray, to_box: complex):
        approaches = crossing.approaches
        centre = complex(*crossing.centre_xy_m)
        self.xy = (np.array([complex(*a.xy_m) for a in approaches], complex) - centre) * to_box
        self.way = np.exp(1j * np.array([a.heading_rad for a in approaches], float)) * to_box
        self.across = np.array([a.side != "ahead" for a in approaches], bool)
        self.rel = (pos[:, None] - self.xy[None, :]) * np.conj(self.way)[None, :]

    def aligned(self, heading: np.ndarray) -> np.ndarray:
        """(N, A) cosine of each track's heading (unit, box frame) to each lane's way."""
        return (heading[:, None] * np.conj(self.way)[None, :]).real


def _at_worst(
    crossing: JunctionCrossing, world: WorldModel, lanes: _IncomingLanes, vel: np.ndarray
) -> np.ndarray:
    """The camera tracks' velocities `vel` (N,) (box frame), each vehicle in an incoming lane before
    the box taken as coming along it at its worst: its speed along the lane plus SPEED_SIGMAS stds,
    up to the lane's limit. A new track starts at rest, its speed unknown (std `init_speed_std_mps`):
    a car coming at 12 m/s first seen 45 m out was taken as standing until its speed settled, and
    the ego turned in front of it (T_Junction with the CNN)."""
    if not lanes.xy.size or not len(world):
        return vel
    fit = (lanes.rel.real < 0.0) & (np.abs(lanes.rel.imag) < IN_LANE_M)
    rows = np.flatnonzero(fit.any(axis=1) & (world.class_ids == VEHICLE))
    if not rows.size:
        return vel
    lane = np.argmin(np.where(fit[rows], np.abs(lanes.rel[rows].imag), np.inf), axis=1)
    way = lanes.way[lane]
    limit = np.array([a.speed_limit_mps for a in crossing.approaches])[lane]
    along = (vel[rows] * np.conj(way)).real
    worst = np.minimum(along + SPEED_SIGMAS * world.v_std_mps[rows], limit)
    vel = vel.copy()
    vel[rows] = np.where(worst > along, way * worst, vel[rows])
    return vel


def _misses(world, pos, vel, rows, lanes, path, ego_front_s_m, ego_length_m) -> np.ndarray:
    """(R,) whether each vehicle (its `rows` of `world`, box-frame position and velocity) comes in
    one of the crossing's incoming lanes (`_in_lane`) whose centre line, as wide as both cars and
    CONFLICT_CLEARANCE_M, misses the ego's path (`ego_path`: box frame) from its rear on: its traffic
    does not cross the ego's way (the inner lane, while the ego turns right into the kerb lane)."""
    s, pts = path
    pos, u, snapped = _in_lane(lanes, rows, pos, vel / np.abs(vel))
    rel = (pts[None, :] - pos[:, None]) * np.conj(u)[:, None]  # (R, K): along / across each lane
    width = VEHICLE_HALF_WIDTH_M + 0.5 * world.size_m[rows, 1] + CONFLICT_CLEARANCE_M
    ahead = s > ego_front_s_m - ego_length_m  # the path the ego's rear has not left
    behind = -0.5 * world.size_m[rows, 0]  # (its rear)
    near = (np.abs(rel.imag) < width[:, None]) & (rel.real > behind[:, None]) & ahead[None, :]
    return snapped & ~near.any(axis=1)


def _in_lane(lanes: _IncomingLanes, rows: np.ndarray, pos: np.ndarray, u: np.ndarray):
    """The tracks `rows` (positions `pos` and unit velocities `u`, box frame) that drive in one of
    the incoming lanes, put on its centre line, heading its way (a tracked heading a few degrees off
    would put a car 30 m out in the next lane): (positions, ways, which were). In a lane: before
    the box, within IN_LANE_M of the centre line and heading within ALIGNED_COS of its way; in the
    box (which only traffic crossing the ego's approach may be, from the left or right arm, going
    straight on), within IN_BOX_LANE_M and IN_BOX_ALIGNED_COS. Others keep their tracked position
    and heading."""
    if not lanes.xy.size or not len(rows):
        return pos, u, np.zeros(len(rows), bool)
    rel = lanes.rel[rows]
    aligned = lanes.aligned(u)
    before = (rel.real < 0.0) & (np.abs(rel.imag) < IN_LANE_M) & (aligned > ALIGNED_COS)
    in_box = (rel.real >= 0.0) & (np.abs(rel.imag) < IN_BOX_LANE_M) & (aligned > IN_BOX_ALIGNED_COS)
    fit = before | (in_box & lanes.across[None, :])
    lane = np.argmin(np.where(fit, np.abs(rel.imag), np.inf), axis=1)
    snap = fit.any(axis=1)
    k = np.arange(len(rows))
    on_line = lanes.xy[lane] + rel[k, lane].real * lanes.way[lane]
    return np.where(snap, on_line, pos), np.where(snap, lanes.way[lane], u), snap


def _stopping_at_sign(
    crossing: JunctionCrossing, world: WorldModel, lanes: _IncomingLanes, to_box: complex
) -> np.ndarray:
    """(N,) whether each track is in a lane coming in under a stop sign with its front SIGN_AHEAD_M
    or more before that approach's stop line: it will stop there before it comes into the box."""
    if not lanes.xy.size:
        return np.zeros(len(world), bool)
    stop = np.array([a.control == "stop" for a in crossing.approaches])
    setback = np.array([a.stop_setback_m for a in crossing.approaches])
    to_line = -lanes.rel.real - setback[None, :] - 0.5 * world.size_m[:, :1]
    aligned = lanes.aligned(np.exp(1j * world.yaw_rad) * to_box) > ALIGNED_COS
    in_lane = np.abs(lanes.rel.imag) < IN_LANE_M
    return (stop[None, :] & in_lane & aligned & (to_line >= SIGN_AHEAD_M)).any(axis=1)


def creep_gap_m(j: JunctionAhead) -> float:
    """From the ego's front to as far as it creeps into the box to see [m]."""
    return j.entry_gap_m + CREEP_INTO_BOX_M


def unobserved_approach(crossing: JunctionCrossing, world: WorldModel, p: JunctionParams) -> str:
    """The first incoming lane whose traffic the ego gives way to (as `junction_facts`: the oncoming
    lanes for a left turn; the crossing ones too at a stop or yield sign) that the cameras of
    `world.views` do not observe from the box out to `critical_gap_s` at its speed limit (or its
    length), hidden by a standing vehicle outside that lane or out of view: "the left approach not
    seen beyond 12 m", say; "" when all are observed."""
    sides = {"ahead"} if crossing.turn == "left" else set()
    if crossing.control in ("stop", "yield"):
        sides |= {"left", "right"}
    lanes = [a for a in crossing.approaches if a.side in sides]
    if not lanes:
        return ""
    e = world.ego
    # What stands hides the lanes (a parked van at the corner, a queue); a vehicle driving by hides
    # them for a moment, and is given way to by the rules anyway.
    big = np.zeros(0, bool)
    if len(world):
        standing = np.hypot(world.v_mps[:, 0], world.v_mps[:, 1]) < p.moving_speed_mps
        big = (world.size_m[:, 0] >= OCCLUDER_MIN_LENGTH_M) & standing
    for a in lanes:
        reach = min(p.critical_gap_s * a.speed_limit_mps, a.length_m)
        back = np.arange(0.0, reach + 1e-9, OBSERVE_STEP_M)
        heading = complex(math.cos(a.heading_rad), math.sin(a.heading_rad))
        pts = complex(*a.xy_m) - back * heading
        occluders = None
        if big.any():
            rel = (world.xy_m[big, 0] + 1j * world.xy_m[big, 1] - complex(*a.xy_m)) / heading
            in_lane = (np.abs(rel.imag) < IN_LANE_M) & (rel.real < 0.0)  # its traffic, in the lane
            hide = np.flatnonzero(big)[~in_lane]
            occluders = (world.xy_m[hide], world.yaw_rad[hide], world.size_m[hide])
        seen = in_view(
            world.views,
            (e.x_m, e.y_m),
            e.yaw_rad,
            np.stack([pts.real, pts.imag], -1),
            OBSERVE_RADIUS_M,
            occluders,
        )
        if not seen.all():
            return f"the {a.side} approach not seen beyond {back[np.argmin(seen)]:.0f} m"
    return ""


def clear_time_s(j: JunctionAhead, speed_mps: float, length_m: float, p: JunctionParams) -> float:
    """Time [s] for the ego to leave the box (its rear past the exit), accelerating at
    `clear_accel_mps2` from `speed_mps`."""
    distance = max(j.exit_gap_m, 0.0) + length_m
    v = max(speed_mps, 0.0)
    return (math.sqrt(v * v + 2.0 * p.clear_accel_mps2 * distance) - v) / p.clear_accel_mps2


STEP_IN_M = 2.0  # a pedestrian this near the street's edge walking onto it holds a turn too ...
STEP_IN_S = 3.0  # ... or one that reaches it this soon
STEP_IN_SPEED_MPS = 0.3


def _pedestrian_on_exit(
    world: WorldModel, pos: np.ndarray, crossing: JunctionCrossing, p: JunctionParams
) -> int:
    """Track id of a pedestrian on the crosswalk across the arm the route leaves the box by (the
    band from the box's edge to `crosswalk_width_m` beyond it), -1: none. On it: on the road, or
    walking onto it from within STEP_IN_M of its edge or STEP_IN_S of walk; or walking along the
    kerb (within STEP_IN_M of the edge) into the band within STEP_IN_S, where it may turn onto the
    crosswalk. One waiting on the kerb does not hold the turn.
    The exit arm's frame: straight ahead is +x; left is +y, right is -y (rotated onto +x)."""
    rotate = {"straight": 1.0, "left": -1j, "right": 1j}[crossing.turn]
    q = pos * rotate
    h = crossing.half_size_m
    road_half = h - CORNER_RADIUS_M  # the street's half width (decision/town.py)
    v = (world.v_mps[:, 0] + 1j * world.v_mps[:, 1]) * rotate * np.exp(-1j * crossing.heading_rad)
    inward = np.sign(q.imag) * v.imag < -STEP_IN_SPEED_MPS
    step_in = np.maximum(STEP_IN_M, STEP_IN_S * np.abs(v.imag))
    lateral = np.abs(q.imag)
    low, high = h - 0.5, h + p.crosswalk_width_m + 0.5
    in_band = (q.real > low) & (q.real < high)
    # Walking along the kerb, it comes to the crosswalk within STEP_IN_S (and may turn onto it).
    later = q.real + STEP_IN_S * v.real
    to_band = (np.minimum(q.real, later) < high) & (np.maximum(q.real, later) > low)
    walking = np.abs(v) > STEP_IN_SPEED_MPS
    on = (world.class_ids == PEDESTRIAN) & (
        (in_band & ((lateral < road_half + 0.3) | ((lateral < road_half + step_in) & inward)))
        | (to_band & walking & (lateral < road_half + STEP_IN_M))
    )
    return int(world.ids[np.flatnonzero(on)[0]]) if on.any() else -1


def wait_reason(
    j: JunctionAhead, speed_mps: float, stopped_here: bool, decel_comfort_mps2: float, p: JunctionParams
) -> tuple[str, bool]:
    """(Why the ego must wait at the stop line of junction `j`, "" when it may go; whether it is
    giving way, rather than obeying a light or a stop sign).

    Once in the box the ego is committed: it goes (leads, pedestrians and conflicts are still
    braked for). Over the line but short of the box (held there by a vehicle ahead, say), it stays
    at a red light it can still stop for before the box (its tail has not crossed the line, which
    is what CARLA's red-light test looks at), and gives way as before the line when it can stop
    comfortably before the box.
    stopped_here: it has already made its full stop at this junction's stop sign.
    """
    if j.entry_gap_m <= 0.0:
        # An unprotected left turn waits pulled into the box until its light turns red (by then the
        # oncoming traffic has stopped) or its gap comes; anywhere else in the box the ego goes, but
        # for a pedestrian on the crosswalk it turns into: it waits before it, in the box.
        if waits_to_turn_left(j):
            return f"giving way to vehicle {j.give_way_to}: waiting in the box to turn left", True
        if j.pedestrian_on_exit >= 0 and j.exit_gap_m > 0.0:
            need = (
                speed_mps * speed_mps / (2.0 * max(j.exit_gap_m - p.stop_line_margin_m, MIN_STOP_DISTANCE_M))
            )
            if need <= decel_comfort_mps2:
                return f"giving way to pedestrian {j.pedestrian_on_exit} on the crosswalk, in the box", True
        return "", False
    if j.stop_gap_m < 0.0:
        need = speed_mps * speed_mps / (2.0 * max(j.entry_gap_m, MIN_STOP_DISTANCE_M))
        if j.control == "signal" and (j.signal or "red") == "red" and need <= p.red_stop_decel_mps2:
            return f"red light: holding over the line, short of junction {j.junction_id}", False
        if j.give_way_to >= 0 and need <= decel_comfort_mps2:
            return f"giving way to vehicle {j.give_way_to}: holding over the line, short of the box", True
        return "", False
    room = max(j.stop_gap_m - p.stop_line_margin_m, MIN_STOP_DISTANCE_M)
    need = speed_mps * speed_mps / (2.0 * room)  # deceleration to stop at the line
    if j.control == "signal":
        light = j.signal or "red"
        unseen = "" if j.signal else f" (light {j.junction_id} not seen: taken as red)"
        if light == "red" and need <= p.red_stop_decel_mps2:
            return f"red light at {j.stop_gap_m:.1f} m{unseen}", False
        if light == "yellow" and need <= decel_comfort_mps2:
            return f"yellow light at {j.stop_gap_m:.1f} m: stopping", False
        if light != "green":
            return "", False  # too late to stop
    if j.control == "stop":
        if not stopped_here:
            return f"stop sign at {j.stop_gap_m:.1f} m", False
        if j.box_occupied_by >= 0:
            return f"stop sign: vehicle {j.box_occupied_by} in the junction", False
    if j.give_way_to >= 0:
        return f"giving way to vehicle {j.give_way_to} (at the junction in {j.give_way_in_s:.1f} s)", True
    if j.pedestrian_on_exit >= 0:
        return f"giving way to pedestrian {j.pedestrian_on_exit} on the crosswalk", True
    return "", False


def waits_to_turn_left(j: JunctionAhead | None) -> bool:
    """An unprotected left turn on green or yellow, giving way to the oncoming traffic, not yet past
    where it waits pulled into the box (see `wait_reason`)."""
    return (
        j is not None
        and j.turn == "left"
        and j.control == "signal"
        and j.signal in ("green", "yellow")
        and j.give_way_to >= 0
        and j.entry_gap_m > -(PULL_IN_M + PULL_IN_SLACK_M)
    )


def made_full_stop(j: JunctionAhead, speed_mps: float, p: JunctionParams) -> bool:
    """The ego stands still at the stop line (a stop sign's full stop)."""
    return speed_mps < p.full_stop_speed_mps and -p.stop_line_margin_m <= j.stop_gap_m <= p.stop_zone_m
