"""What is around the ego, reduced to the few facts the behaviour state machine decides on.

Two steps, both vectorised over the tracks (no per-track Python loop):
1. `project`: the ego and the world model's tracks in road (Frenet) coordinates, in one search of
   the road near the ego's last s; per track a few features (distance ahead along the road, offset
   across it, predicted sideways drift, box extents, class) as the rows of one (F, N) matrix.
2. `extract_situation`: for the lane being driven (and the lateral path of a lane change in
   progress), the nearest object ahead in the ego's corridor, the nearest pedestrian who is in or
   about to enter it, the object a lane change has not yet cleared sideways, the leaders and
   followers of the neighbouring lanes, the speed cap and the braking needed for the curves ahead.

The ego's corridor follows its planned lateral offset d_path(s): an object ahead is in the corridor
when its box (and, for a moving object, its constant-velocity drift over a short horizon) overlaps
the ego's box placed at d_path at the object's distance. That one rule covers leads, cut-ins and
the lane change around an object (the path leaves the object's lane before reaching it).

Seven nearest objects are looked for, one per row (LEAD ... RIGHT_FOLLOWER): the lead, the
pedestrian, the left and right leaders, the object not yet cleared (by the gap ahead), the left and
right followers (by the gap behind). Each row's candidates pass two interval tests, |centre| < half
width: one across the road (the corridor, or the box reaching LANE_OVERLAP_M into a neighbouring
lane) and one along it (ahead within the look-ahead, ...). Every centre, half width and gap is
linear in the features, so one matrix product (`row_tests`) gives them all
(tests/decision/test_situation.py checks the result against a plain per-track loop). 2D vectors
are complex numbers x + iy (one operation moves or rotates both coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from decision.geometry import quintic_blend
from decision.junction import SPEED_SIGMAS, JunctionAhead
from decision.route import Road, Route
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, WorldModel
from perception.visibility import OCCLUDER_MIN_LENGTH_M, in_view

LATERAL_SPEED_DEADBAND_MPS = 0.2  # slower sideways drift is treated as tracking noise
LANE_OVERLAP_M = 0.3  # a box belongs to a lane when it reaches this far into it
MIN_CURVATURE = 1e-6  # [1/m] below this a stretch of road counts as straight
CURVE_HERE_M = 5.0  # the curve speed within this distance ahead of the ego caps its speed now
# The neighbouring lanes are watched this much farther than the look-ahead, so that a lane change
# around an object at the edge of the look-ahead sees whether the other lane is blocked there too.
NEIGHBOUR_EXTRA_M = 30.0
BRAKE_ONSET = 0.3  # braking for a curve or a lower limit ahead starts when it needs this x curve_decel
STATIONARY_RUN_GAP_M = 20.0  # objects closer than this one after the other behind a stationary lead block as one (no room to get back in between)
OFF_ROAD_REPROJECT_M = 5.0  # an ego this far outside the road was projected from a stale hint
SEARCH_MARGIN_M = 10.0  # the road is searched this much beyond the reach of the ego
ALONGSIDE_M = 1e-6  # the followers' window ends this far ahead of the ego, not at 0 (exactly level)
# mark_unobserved: the stretch of a neighbouring lane that must lie in view for a lane change into it,
# sampled every OBSERVED_STEP_M: for a lane of the ego's direction from the rear range behind to
# OBSERVED_AHEAD_M ahead, for an oncoming one from the ego to OBSERVED_ONCOMING_M ahead.
OBSERVED_AHEAD_M = 20.0
OBSERVED_ONCOMING_M = 60.0
OBSERVED_STEP_M = 4.0
OBSERVED_RADIUS_M = 1.0  # a point is in view when a camera sees within this of it (a car is bigger)
assert (VEHICLE, PEDESTRIAN, OBSTACLE) == (0, 1, 2), "project() indexes per-class tables by class id"

# The rows of `TracksFrenet.features` (F, N), per track:
F_AHEAD = 0  # s - ego s [m]: its centre's distance ahead of the ego's along the road
F_D = 1  # d [m]: its centre's offset across the road
F_DRIFT = 2  # its predicted sideways drift over its class's horizon [m] (0 for slow drift: noise)
F_ABS_DRIFT = 3  # |drift| [m]
# Its box's extent along the road, L |cos| + W |sin| of its yaw to the road (L, W its length and
# width), as two terms (summed by row_tests), and across it, L |sin| + W |cos| [m].
F_LON2 = slice(4, 6)
F_LAT2 = 6
F_MARGIN = 7  # the lateral clearance kept to it beyond the half widths, plus half the ego's width [m]
F_PED = 8  # 1 for a pedestrian, else 0
F_ONE = 9  # 1
N_FEATURES = 10
# extract_situation's rows: the nearest by the gap ahead (rows 0-4) or behind (rows 5, 6).
LEAD, PED, LEFT_LEAD, RIGHT_LEAD, UNCLEARED, LEFT_FOLLOWER, RIGHT_FOLLOWER = range(7)
N_ROWS = 7
# The rows of `row_tests`: per row of extract_situation, the centres of its test across then along
# the road, their half widths, its gap.
CENTRES, HALF_WIDTHS, GAPS = (
    slice(0, 2 * N_ROWS),
    slice(2 * N_ROWS, 4 * N_ROWS),
    slice(4 * N_ROWS, 5 * N_ROWS),
)


@dataclass(frozen=True, slots=True)
class SituationParams:
    """What `extract_situation` needs (built by the Planner from its config)."""

    ego_length_m: float
    ego_width_m: float
    look_ahead_m: float  # objects farther ahead along the road are ignored
    rear_range_m: float  # objects farther behind are ignored (followers for lane changes)
    lateral_margin_m: float  # extra clearance beside vehicles and obstacles
    pedestrian_margin_m: float  # extra clearance beside pedestrians
    cut_in_horizon_s: float  # a vehicle's sideways drift is predicted this far ahead
    pedestrian_horizon_s: float  # a pedestrian's walk is predicted this far ahead
    max_lateral_accel_mps2: float  # curvature speed cap: v <= sqrt(a_lat / kappa)
    curve_decel_mps2: float  # curves are looked for far enough ahead to slow down at this rate
    oncoming_look_ahead_m: float  # leaders in an oncoming lane beside the ego are looked for this far
    emergency_rear_m: float = 100.0  # emergency vehicles are looked for this far behind (beacons, sirens)
    # Derived (4, 3): per class id (VEHICLE, PEDESTRIAN, OBSTACLE), the features F_MARGIN, F_PED,
    # F_ONE and the prediction horizon [s].
    by_class: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not (self.look_ahead_m > 0 and self.rear_range_m >= 0 and self.max_lateral_accel_mps2 > 0):
            raise ValueError("look_ahead_m and max_lateral_accel_mps2 must be > 0, rear_range_m >= 0")
        half_ego = 0.5 * self.ego_width_m
        by_class = np.array(
            (
                (
                    self.lateral_margin_m + half_ego,
                    self.pedestrian_margin_m + half_ego,
                    self.lateral_margin_m + half_ego,
                ),
                (0.0, 1.0, 0.0),
                (1.0, 1.0, 1.0),
                (self.cut_in_horizon_s, self.pedestrian_horizon_s, 0.0),
            )
        )
        object.__setattr__(self, "by_class", by_class)


@dataclass(frozen=True, slots=True)
class LaneChange:
    """A lateral move in progress: from offset `start_d_m` at `start_s_m` to the target lane's
    centre, blended over `length_m` of road."""

    start_s_m: float
    start_d_m: float
    length_m: float


# ObjectAhead, LaneGaps and Situation are built every tick: plain (not frozen) dataclasses, which
# build faster (see benchmarks/sim_speed.py); treat them as read-only.
@dataclass(slots=True)
class ObjectAhead:
    """One object ahead: bumper-to-bumper gap [m] along the road (>= 0), speed along the road."""

    track_id: int
    class_id: int
    gap_m: float
    speed_mps: float


@dataclass(slots=True)
class LaneGaps:
    """Nearest leader and follower of one lane, relative to the ego (for the MOBIL safety check).

    Gaps are bumper to bumper along the road; a negative gap means a box alongside the ego.
    inf: nobody there (within the look-ahead / rear range).
    """

    lane: int
    lead_gap_m: float = float("inf")
    lead_speed_mps: float = 0.0
    follower_gap_m: float = float("inf")
    follower_speed_mps: float = 0.0
    oncoming: bool = False  # the lane carries traffic against s (a two-way road)
    emergency_behind: bool = False  # an emergency vehicle comes along it from behind (keep out of its way)
    observed: bool = True  # the cameras cover the stretch of it a lane change needs (mark_unobserved)
    seen_ahead_m: float = float("inf")  # an oncoming lane: observed unbroken this far ahead (inf: all)


@dataclass(slots=True)
class Situation:
    """The facts of one tick. lane: the lane being driven (the target while changing lanes).
    left / right: the lanes lane + 1 / lane - 1 (lanes count from the right); None if absent."""

    ego_s_m: float
    ego_d_m: float
    ego_speed_mps: float
    lane: int
    route_lane: int
    speed_cap_mps: float
    oncoming: bool = False  # the lane driven carries traffic against s (overtaking through it)
    curve_accel_mps2: float = float("inf")  # braking (< 0) the curves and lower limits ahead need; inf: none
    lead: ObjectAhead | None = None
    pedestrian: ObjectAhead | None = None
    # During a lane change: the nearest object ahead that the ego's box, where it is now, has not
    # yet cleared sideways (the planned path passes it, the ego still has to get there).
    uncleared: ObjectAhead | None = None
    left: LaneGaps | None = None
    right: LaneGaps | None = None
    road_end_gap_m: float = float("inf")
    junction: JunctionAhead | None = None  # the next junction on the route (decision/junction.py)
    # A crossing vehicle that will not stop for its red light or sign and is predicted in the
    # junction box with the ego: braked for as a stationary object at the box entry (gap_m).
    crossing: ObjectAhead | None = None
    # How much farther [m] than the lead's far end the lane stays blocked: the objects after a
    # stationary lead, each within STATIONARY_RUN_GAP_M of the one before (an accident, a work zone,
    # a queue). 0: none.
    lead_run_extra_m: float = 0.0
    # The nearest emergency vehicle coming from behind in the lane driven (gap_m: the gap behind the
    # ego), within `emergency_rear_m`: the ego makes way for it.
    emergency_behind: ObjectAhead | None = None
    # The ego's path is being shifted right, clear of an oncoming vehicle that cuts into its lane
    # (decision/nudge.py; set by the Planner).
    keeping_right: bool = False


class TracksFrenet(NamedTuple):
    """The tracks within reach of the ego, relative to it in road coordinates.

    ids, class_ids, speed_s_mps (velocity along the road): (N,); features: (N_FEATURES, N), rows F_*;
    emergency: (N,) bool, the emergency vehicles, or None (none known); speed_std_mps: (N,) the
    velocities' standard deviations, or None (exact).
    """

    ids: np.ndarray
    class_ids: np.ndarray
    speed_s_mps: np.ndarray
    features: np.ndarray
    emergency: np.ndarray | None = None
    speed_std_mps: np.ndarray | None = None


def row_tests(road: Road, lane: int, p: SituationParams) -> np.ndarray:
    """(5 N_ROWS, N_FEATURES): the linear maps from the features to, per row of extract_situation,
    the centres of its tests across then along the road (CENTRES), their half widths (HALF_WIDTHS)
    and its gap (GAPS), for the ego driving `lane`.

    A test passes when |centre| < half width. The corridor: a box with its drift over [d, d + drift]
    overlaps the corridor at d_lane when |d + drift / 2 - d_lane| < |drift| / 2 + LAT2 / 2 + margin.
    Ahead within the look-ahead: 0 < s - ego s < look-ahead, |AHEAD - look / 2| < look / 2, the half
    width times (1 - PED) for the lead and PED for the pedestrian. Behind within the rear range: the
    gap behind, ego s - L / 2 - (s + LON2 / 2), below the range and s <= ego s. A missing
    neighbouring lane has half width -1 (never passes); the object not yet cleared is tested apart.
    """
    a = np.zeros((5 * N_ROWS, N_FEATURES))
    centre, half, gap = a[CENTRES], a[HALF_WIDTHS], a[GAPS]
    lateral, along = centre[:N_ROWS], centre[N_ROWS:]
    lateral_half, along_half = half[:N_ROWS], half[N_ROWS:]
    d_lane, width = lane_offset_m(road, lane), road.lane_width_m
    # Across: the corridor (lead, pedestrian), the lanes to the left / right (leaders, followers).
    for row in (LEAD, PED):
        lateral[row] = _linear((F_D, 1.0), (F_DRIFT, 0.5), (F_ONE, -d_lane))
        lateral_half[row] = _linear((F_ABS_DRIFT, 0.5), (F_LAT2, 0.5), (F_MARGIN, 1.0))
    for rows, side, exists in (
        ((LEFT_LEAD, LEFT_FOLLOWER), 1.0, lane + 1 < road.lane_count),
        ((RIGHT_LEAD, RIGHT_FOLLOWER), -1.0, lane >= 1),
    ):
        for row in rows:
            lateral[row] = _linear((F_D, 1.0), (F_ONE, -(d_lane + side * width)))
            lateral_half[row] = (
                _linear((F_LAT2, 0.5), (F_ONE, 0.5 * width - LANE_OVERLAP_M))
                if exists
                else _linear((F_ONE, -1.0))
            )
    lateral_half[UNCLEARED] = _linear((F_ONE, -1.0))  # tested apart, during a lane change
    # Along: ahead within the look-ahead (lead, pedestrian) or it + NEIGHBOUR_EXTRA_M (leaders) ...
    look = 0.5 * p.look_ahead_m
    along[LEAD] = along[PED] = _linear((F_AHEAD, 1.0), (F_ONE, -look))
    along_half[LEAD] = _linear((F_ONE, look), (F_PED, -look))
    along_half[PED] = _linear((F_PED, look))
    for row, other in ((LEFT_LEAD, lane + 1), (RIGHT_LEAD, lane - 1)):
        # An oncoming lane is looked along farther: passing through it needs it clear far ahead.
        far = p.oncoming_look_ahead_m if 0 <= other < road.lane_count and road.is_oncoming(other) else 0.0
        reach = 0.5 * max(p.look_ahead_m + NEIGHBOUR_EXTRA_M, far)
        along[row] = _linear((F_AHEAD, 1.0), (F_ONE, -reach))
        along_half[row] = _linear((F_ONE, reach))
    along_half[UNCLEARED] = _linear((F_ONE, 1.0))
    # ... and behind within the rear range (followers): -(range + L / 2 + LON2 / 2) < AHEAD <= 0
    # (the window reaches ALONGSIDE_M past 0: a box level with the ego, AHEAD = 0, is a follower).
    rear = 0.5 * (p.rear_range_m + 0.5 * p.ego_length_m)
    along[LEFT_FOLLOWER] = along[RIGHT_FOLLOWER] = _linear(
        (F_AHEAD, 1.0), (F_LON2, 0.25), (F_ONE, rear - 0.5 * ALONGSIDE_M)
    )
    along_half[LEFT_FOLLOWER] = along_half[RIGHT_FOLLOWER] = _linear(
        (F_LON2, 0.25), (F_ONE, rear + 0.5 * ALONGSIDE_M)
    )
    # Bumper gaps: ahead, s - LON2 / 2 - (ego s + L / 2); behind, ego s - L / 2 - (s + LON2 / 2).
    gap[:LEFT_FOLLOWER] = _linear((F_AHEAD, 1.0), (F_LON2, -0.5), (F_ONE, -0.5 * p.ego_length_m))
    gap[LEFT_FOLLOWER:] = _linear((F_AHEAD, -1.0), (F_LON2, -0.5), (F_ONE, -0.5 * p.ego_length_m))
    return a


def lane_offset_m(road: Road, lane: int) -> float:
    """Offset [m] of lane `lane`'s centre, also for lane -1: the shoulder right of lane 0, where a
    parked ego starts (decision/planner.py)."""
    return (lane + 0.5) * road.lane_width_m - road.half_width_m


def _linear(*terms: tuple[int | slice, float]) -> np.ndarray:
    """(N_FEATURES,) coefficients of the sum of coefficient x feature(s) over `terms`."""
    coefficients = np.zeros(N_FEATURES)
    for features, coefficient in terms:
        coefficients[features] += coefficient
    return coefficients


def lane_change_offset_m(s_m, change: LaneChange, end_d_m: float):
    """Lateral offset [m] of a lane change at s (array or float): the quintic blend
    (decision/geometry.py) from start_d to end_d over the change's length."""
    x = np.minimum(np.maximum((np.asarray(s_m) - change.start_s_m) / change.length_m, 0.0), 1.0)
    return change.start_d_m + (end_d_m - change.start_d_m) * quintic_blend(x)


def path_offset_m(s_m, road: Road, lane: int, change: LaneChange | None):
    """Planned lateral offset d_path(s) [m]: the lane centre (a float, whatever s is), or the lane
    change towards it (shaped like s)."""
    d_lane = lane_offset_m(road, lane)
    return d_lane if change is None else lane_change_offset_m(s_m, change, d_lane)


def project(
    world: WorldModel, road: Road, s_hint_m: float | None, p: SituationParams
) -> tuple[float, float, TracksFrenet | None]:
    """The ego and the tracks within reach of it (look-ahead + NEIGHBOUR_EXTRA_M, or the rear
    range, in a straight line) in road coordinates, in one search of the road near `s_hint_m` (the
    ego's last s; None: the whole road).

    Returns (ego s [m], ego d [m], TracksFrenet, or None when no track is within reach).
    """
    ahead_m = p.look_ahead_m + NEIGHBOUR_EXTRA_M
    if road.oncoming_lanes:
        ahead_m = max(ahead_m, p.oncoming_look_ahead_m)
    reach_m = max(ahead_m, p.rear_range_m, p.emergency_rear_m)
    pts = np.empty((len(world) + 1, 2))
    pts[0] = world.ego.x_m, world.ego.y_m
    pts[1:] = world.xy_m
    z = pts.view(complex)[:, 0]
    # The straight-line distance never exceeds the distance along the road: a safe pre-filter
    # (extract_situation drops what is beyond the look-ahead or the rear range along the road).
    distance_m = np.abs(z[1:] - z.item(0))
    idx = slice(None)
    if np.count_nonzero(distance_m >= reach_m):
        idx = np.flatnonzero(distance_m < reach_m)
        pts = pts[np.concatenate(([0], idx + 1))]
    if s_hint_m is None:
        s, d, to_road = road.to_frenet_rotation(pts)
    else:  # search only the stretch [hint - rear range, hint + ahead] (and a little more)
        centre = s_hint_m + 0.5 * (ahead_m - p.rear_range_m)
        window = 0.5 * (ahead_m + p.rear_range_m) + SEARCH_MARGIN_M
        s, d, to_road = road.to_frenet_rotation(pts, s_hint_m=centre, window_m=window)
        if abs(d[0]) > road.half_width_m + OFF_ROAD_REPROJECT_M:
            # The hint was stale (e.g. a new episode without a reset).
            s, d, to_road = road.to_frenet_rotation(pts)
    ego_s, ego_d = s.item(0), d.item(0)
    if len(pts) == 1:
        return ego_s, ego_d, None
    if isinstance(to_road, np.ndarray):
        to_road = to_road[1:]
    class_ids = world.class_ids[idx]
    f = np.empty((N_FEATURES + 1, len(class_ids)))  # the features, then the prediction horizon [s]
    p.by_class.take(class_ids, axis=1, mode="clip", out=f[F_MARGIN:])
    np.subtract(s[1:], ego_s, out=f[F_AHEAD])
    f[F_D] = d[1:]
    # Velocity and heading in road coordinates: (along, across) the road.
    v_road = np.ascontiguousarray(world.v_mps[idx], dtype=float).view(complex)[:, 0] * to_road
    speed_d = v_road.imag
    # A pedestrian off the paved road walking more along it than across keeps to the sidewalk (as a
    # map-based prediction has it): its sideways speed is not a drift into the road. (A camera
    # track's sideways error beside the ego would stop it for someone walking past.)
    sidewalk = (class_ids == PEDESTRIAN) & (np.abs(f[F_D]) > road.half_width_m + road.shoulder_m)
    if np.count_nonzero(sidewalk):
        speed_d = np.where(sidewalk & (np.abs(speed_d) < np.abs(v_road.real)), 0.0, speed_d)
    np.multiply(speed_d * (np.abs(speed_d) >= LATERAL_SPEED_DEADBAND_MPS), f[N_FEATURES], out=f[F_DRIFT])
    np.abs(f[F_DRIFT], out=f[F_ABS_DRIFT])
    # The box's extents along / across the road: |cos| and |sin| of its yaw to the road times its
    # length and width; across, the imaginary part of (|cos| + i |sin|) (L + i W).
    heading = np.exp(1j * world.yaw_rad[idx]) * to_road
    if world.heading_seen is not None:
        # A vehicle whose heading was never measured (a camera track not yet seen to move) lies along
        # the road, as parked and queued cars do. The heading it was born with is the ego's: a few
        # degrees off mid-pass, across the street where the ego turns, its box turned into the ego's way.
        along = ~world.heading_seen[idx] & (class_ids == VEHICLE)
        if np.count_nonzero(along):
            heading = np.where(along, 1.0 + 0j, heading)
    cos_sin = np.abs(heading.view(float))
    size = np.ascontiguousarray(world.size_m[idx], dtype=float)
    f[F_LON2] = (cos_sin.reshape(-1, 2) * size).T
    f[F_LAT2] = (cos_sin.view(complex) * size.view(complex)[:, 0]).imag
    emergency = None if world.emergency is None else world.emergency[idx]
    v_std = None if world.v_std_mps is None else world.v_std_mps[idx]
    tracks = TracksFrenet(world.ids[idx], class_ids, v_road.real, f[:N_FEATURES], emergency, v_std)
    return ego_s, ego_d, tracks


def speed_limits(
    road: Road, route: Route, ego_s_m: float, ego_speed_mps: float, d_lane_m: float, p: SituationParams
) -> tuple[float, float]:
    """(speed cap [m/s], curve acceleration [m/s^2]: < 0, or inf when no curve ahead needs braking).

    cap = min(cruise speed, speed limit at the ego, curve speed sqrt(a_lat / kappa) of the lane
    within CURVE_HERE_M of the ego): IDM's desired speed. The curve acceleration is the constant
    braking that brings the ego down to the speed of every arc and every lower speed limit ahead
    (road.speed_limits) before it gets there, looking far
    enough ahead to do it at `curve_decel_mps2` (a desired speed that dropped only when the curve
    came into view would make IDM brake late and hard), once that braking exceeds BRAKE_ONSET of
    `curve_decel_mps2`. A loop over the road's few arcs.
    """
    cap = float(min(route.cruise_speed_mps, road.speed_limit_at(ego_s_m)))
    horizon_end = ego_s_m + p.look_ahead_m + ego_speed_mps**2 / (2.0 * p.curve_decel_mps2)
    need = math.inf
    for start, limit in road.speed_limits:  # a lower limit ahead: slow down to it before it starts
        ahead = start - ego_s_m
        if 0.0 < ahead and start < horizon_end and limit < cap:
            need = min(need, (limit * limit - ego_speed_mps**2) / (2.0 * max(ahead, CURVE_HERE_M)))
    for start, end, curvature in road.arcs:
        if end > ego_s_m and start < horizon_end:
            # The lane's own curvature: a lane on the inside of a bend (kappa d > 0) turns tighter.
            kappa = abs(curvature) / max(1.0 - curvature * d_lane_m, 0.1)
            v_curve_sq = p.max_lateral_accel_mps2 / max(kappa, MIN_CURVATURE)
            ahead = start - ego_s_m
            if ahead < CURVE_HERE_M:
                cap = min(cap, math.sqrt(v_curve_sq))
            need = min(need, (v_curve_sq - ego_speed_mps**2) / (2.0 * max(ahead, CURVE_HERE_M)))
    # Braking starts when it is needed at BRAKE_ONSET of curve_decel: below that the ego may still
    # speed up (a small need would otherwise hold it at a slow turn's speed from far away).
    return cap, need if need < -BRAKE_ONSET * p.curve_decel_mps2 else math.inf


def extract_situation(
    t: TracksFrenet | None,
    route: Route,
    ego_s_m: float,
    ego_d_m: float,
    ego_speed_mps: float,
    lane: int,
    change: LaneChange | None,
    p: SituationParams,
    tests: np.ndarray | None = None,
    junction: JunctionAhead | None = None,
    crossing: ObjectAhead | None = None,
    stationary_mps: float = 0.0,
) -> Situation:
    """The facts of this tick for the ego driving `lane` (with `change` in progress, if any; lane
    -1: the shoulder). tests: `row_tests(route.road, lane, p)`, if the caller keeps it. junction,
    crossing: the junction facts (decision/junction.py), passed through. stationary_mps: objects
    slower than this block (for `lead_run_extra_m`; 0: not worked out)."""
    road = route.road
    cap, curve_accel = speed_limits(road, route, ego_s_m, ego_speed_mps, lane_offset_m(road, lane), p)
    lead = pedestrian = uncleared = emergency = None
    run_extra = 0.0
    left_oncoming, right_oncoming = lane + 1 >= road.own_lanes, lane - 1 >= road.own_lanes
    left = LaneGaps(lane + 1, oncoming=left_oncoming) if lane + 1 < road.lane_count else None
    right = LaneGaps(lane - 1, oncoming=right_oncoming) if lane >= 1 else None
    if t is not None:
        if tests is None:
            tests = row_tests(road, lane, p)
        gaps, nearest, lead_gaps = _nearest_per_row(t, tests, road, lane, change, ego_s_m, ego_d_m)
        speed, objects = _nearest_objects(
            t, gaps, nearest, (left_oncoming, right_oncoming), cap, stationary_mps
        )
        lead, pedestrian, uncleared = objects
        if lead is not None and abs(lead.speed_mps) < stationary_mps:
            run_extra = _stationary_run_extra_m(t, lead_gaps, stationary_mps)
        if left is not None:
            left = LaneGaps(
                lane + 1,
                gaps[LEFT_LEAD],
                speed[LEFT_LEAD],
                gaps[LEFT_FOLLOWER],
                speed[LEFT_FOLLOWER],
                left_oncoming,
            )
        if right is not None:
            right = LaneGaps(
                lane - 1,
                gaps[RIGHT_LEAD],
                speed[RIGHT_LEAD],
                gaps[RIGHT_FOLLOWER],
                speed[RIGHT_FOLLOWER],
                right_oncoming,
            )
        if t.emergency is not None and t.emergency.any():
            emergency = _emergency_behind(t, road, lane, left, right, p)
    return Situation(
        ego_s_m=ego_s_m,
        ego_d_m=ego_d_m,
        ego_speed_mps=ego_speed_mps,
        lane=lane,
        route_lane=route.lane,
        speed_cap_mps=cap,
        oncoming=lane >= road.own_lanes,
        curve_accel_mps2=curve_accel,
        lead=lead,
        pedestrian=pedestrian,
        uncleared=uncleared,
        left=left,
        right=right,
        road_end_gap_m=road.length_m - (ego_s_m + 0.5 * p.ego_length_m),
        junction=junction,
        crossing=crossing,
        lead_run_extra_m=run_extra,
        emergency_behind=emergency,
    )


def _emergency_behind(
    t: TracksFrenet, road: Road, lane: int, left: LaneGaps | None, right: LaneGaps | None, p: SituationParams
) -> ObjectAhead | None:
    """The nearest emergency vehicle behind the ego (its centre behind the ego's, within
    `emergency_rear_m`) in `lane` (None: none); marks `left` and `right` (in place) when one comes
    along them."""
    f = t.features
    behind = t.emergency & (f[F_AHEAD] < 0.0)
    gap = -f[F_AHEAD] - 0.5 * f[F_LON2].sum(axis=0) - 0.5 * p.ego_length_m  # bumper gap behind
    behind &= gap < p.emergency_rear_m
    if not behind.any():
        return None
    lane_of = road.lane_at(f[F_D])
    for gaps in (left, right):
        if gaps is not None:
            gaps.emergency_behind = bool((behind & (lane_of == gaps.lane)).any())
    mine = np.where(behind & (lane_of == lane), gap, np.inf)
    i = int(mine.argmin())
    if mine[i] == np.inf:
        return None
    return ObjectAhead(t.ids.item(i), t.class_ids.item(i), max(float(mine[i]), 0.0), t.speed_s_mps.item(i))


def mark_unobserved(
    sit: Situation, road: Road, world: WorldModel, rear_m: float, look_ahead_m: float
) -> None:
    """With a perceiver that sees only its cameras' views (`world.views`), mark the neighbouring
    lanes whose stretch a lane change needs is not all observed (in place): a lane of the ego's
    direction from `rear_m` behind to OBSERVED_AHEAD_M ahead (followers close in from behind),
    an oncoming one from the ego to OBSERVED_ONCOMING_M ahead (its traffic comes from there), each
    point within OBSERVED_RADIUS_M of a camera's view and not hidden from that camera by a tracked
    object at least OCCLUDER_MIN_LENGTH_M long outside that lane (a car ahead in the ego's lane
    hides the oncoming lane beyond it; one in the lane itself is that lane's leader or follower,
    and what it hides lies beyond it); and how far ahead an oncoming lane is observed without a
    break (`seen_ahead_m`; inf: out to `look_ahead_m`, and a pass assumes traffic just beyond its
    view, behaviour.overtake_view_m)."""
    if world.views is None:
        return
    e = world.ego
    big = world.size_m[:, 0] >= OCCLUDER_MIN_LENGTH_M if len(world) else np.zeros(0, bool)
    lane_of = None
    if big.any():
        window = max(look_ahead_m, OBSERVED_ONCOMING_M, rear_m) + SEARCH_MARGIN_M
        # Clipped to the road's lanes: a car parked on the shoulder counts as lane 0's and hides
        # none of it (a van parked behind an ego leaving a parking spot does hide lane 0 from the
        # rear camera; the ego cannot nose out to look, so it merges on what it sees).
        lane_of = road.lane_at(road.to_frenet(world.xy_m[big], sit.ego_s_m, window)[1])
    for gaps in (sit.left, sit.right):
        if gaps is None:
            continue
        ds = (
            np.arange(0.0, max(look_ahead_m, OBSERVED_ONCOMING_M) + 1e-9, OBSERVED_STEP_M)
            if gaps.oncoming
            else np.arange(-rear_m, OBSERVED_AHEAD_M + 1e-9, OBSERVED_STEP_M)
        )
        x, y, _ = road.to_world(sit.ego_s_m + ds, np.full(ds.shape, lane_offset_m(road, gaps.lane)))
        pts = np.stack([x, y], axis=-1)
        occluders = None
        if lane_of is not None:
            hide = np.flatnonzero(big)[lane_of != gaps.lane]
            occluders = (world.xy_m[hide], world.yaw_rad[hide], world.size_m[hide])
        seen = in_view(world.views, (e.x_m, e.y_m), e.yaw_rad, pts, OBSERVED_RADIUS_M, occluders)
        if gaps.oncoming:
            gaps.seen_ahead_m = float(ds[np.argmin(seen)]) if not seen.all() else math.inf
            gaps.observed = gaps.seen_ahead_m >= OBSERVED_ONCOMING_M
        else:
            gaps.observed = bool(seen.all())


SIREN_BEHIND_RAD = math.radians(45.0)  # a siren heard within this of straight back comes from behind


def siren_behind(sit: Situation, sirens: tuple[float, ...], rear_m: float) -> None:
    """A siren heard behind the ego (a bearing in `sirens` within SIREN_BEHIND_RAD of straight
    back) with no emergency vehicle seen behind in the ego's lane or beside it in a lane of its
    direction (none tracked, or its track lost, or the siren matched to a car in another lane): an
    emergency vehicle not (or no longer) seen, taken to come along the route's lane, where traffic
    makes way for it. In that lane the ego makes way for it (`emergency_behind`, at the edge of the
    rear view `rear_m`, its speed unknown); from another lane it does not move back into it (in
    place)."""
    seen = sit.emergency_behind is not None or any(
        g is not None and not g.oncoming and g.emergency_behind for g in (sit.left, sit.right)
    )
    if seen or not any(math.pi - abs(b) < SIREN_BEHIND_RAD for b in sirens):
        return
    if sit.lane == sit.route_lane:
        sit.emergency_behind = ObjectAhead(-1, VEHICLE, rear_m, math.nan)
    for gaps in (sit.left, sit.right):
        if gaps is not None and gaps.lane == sit.route_lane:
            gaps.emergency_behind = True


def _stationary_run_extra_m(t: TracksFrenet, lead_gaps: np.ndarray, stationary_mps: float) -> float:
    """How far [m] the run of objects that starts at a stationary lead (the nearest of `lead_gaps`
    (N,): the corridor's bumper gaps, inf off it) reaches beyond the lead's far end: each after it
    within STATIONARY_RUN_GAP_M of the one before, moving or not (the head of a queue that has
    started to move leaves no room to get back in either)."""
    extent = t.features[4] + t.features[5]  # length along the road (F_LON2)
    speeds = t.speed_s_mps
    first_end = end = None
    for i in np.argsort(lead_gaps).tolist():
        gap = lead_gaps.item(i)
        if gap == math.inf or (end is None and abs(speeds.item(i)) >= stationary_mps):
            break
        if end is not None and gap > end + STATIONARY_RUN_GAP_M:
            break
        far = gap + extent.item(i)
        end = far if end is None else max(end, far)
        first_end = far if first_end is None else first_end
    return 0.0 if end is None else end - first_end


def _nearest_per_row(
    t: TracksFrenet,
    tests: np.ndarray,
    road: Road,
    lane: int,
    change: LaneChange | None,
    ego_s_m: float,
    ego_d_m: float,
) -> tuple[list[float], list[int]]:
    """Per row of extract_situation (LEAD ... RIGHT_FOLLOWER): the gap [m] to its nearest track
    (inf: none passes the row's tests) and that track's index; and the lead row's gaps of every
    track (N,) (inf where it does not pass)."""
    z = tests @ t.features  # (5 N_ROWS, N): test centres, half widths, gaps
    gaps = z[GAPS]
    if change is not None:
        # The corridor follows the lane change: where the ego will be sideways when its front
        # reaches the object's rear.
        d_path = path_offset_m(ego_s_m + np.maximum(gaps[LEAD], 0.0), road, lane, change)
        z[LEAD : PED + 1] -= d_path - lane_offset_m(road, lane)
    passes = np.abs(z[CENTRES]) < z[HALF_WIDTHS]
    rows = passes[:N_ROWS] & passes[N_ROWS:]
    if change is not None:  # ahead, alongside the ego's box where it is now, not in the corridor
        f = t.features
        clearance = 0.5 * f[F_LAT2] + f[F_MARGIN]
        alongside = np.abs(f[F_D] - ego_d_m) < clearance
        rows[UNCLEARED] = (f[F_AHEAD] > 0.0) & alongside & ~(rows[LEAD] | rows[PED])
    masked = np.where(rows, gaps, np.inf)
    nearest = masked.argmin(axis=1).tolist()
    return [masked.item(row, i) for row, i in enumerate(nearest)], nearest, masked[LEAD]


def _nearest_objects(
    t: TracksFrenet,
    gaps: list[float],
    nearest: list[int],
    oncoming: tuple[bool, bool],
    cap_mps: float,
    stationary_mps: float,
) -> tuple[list[float], tuple[ObjectAhead | None, ObjectAhead | None, ObjectAhead | None]]:
    """The speed along the road of each row's nearest track (0 for none), and the lead, the
    pedestrian and the object not yet cleared as ObjectAhead (None: none). oncoming: whether the
    left and the right lane carry traffic the other way.

    Camera tracks (their speed std known): a neighbouring lane's speeds are the worst that the
    tracks' velocity uncertainty allows (SPEED_SIGMAS standard deviations): its leader slower, or
    coming faster the other way, its follower faster. A vehicle just tracked, whose speed is not
    known yet, does not look parked. And the leader of an oncoming lane that is not standing still
    comes at the speed cap `cap_mps` at least: at 40 m and more a few metres of distance error make
    a car that comes at 10 m/s look slow, or even driving away, and that speed decides whether the
    ego enters the lane (traffic beyond the view is taken at the cap the same way)."""
    speeds = t.speed_s_mps.tolist()
    speed = [speeds[i] if gap < math.inf else 0.0 for gap, i in zip(gaps, nearest, strict=True)]
    if t.speed_std_mps is not None:
        for row, sign in ((LEFT_LEAD, -1.0), (RIGHT_LEAD, -1.0), (LEFT_FOLLOWER, 1.0), (RIGHT_FOLLOWER, 1.0)):
            if gaps[row] < math.inf:
                speed[row] += sign * SPEED_SIGMAS * t.speed_std_mps.item(nearest[row])
        for row, is_oncoming in ((LEFT_LEAD, oncoming[0]), (RIGHT_LEAD, oncoming[1])):
            if is_oncoming and gaps[row] < math.inf and abs(speeds[nearest[row]]) >= stationary_mps:
                speed[row] = min(speed[row], -cap_mps)

    def nearest_object(row: int) -> ObjectAhead | None:
        if gaps[row] == math.inf:
            return None
        i = nearest[row]
        return ObjectAhead(t.ids.item(i), t.class_ids.item(i), max(gaps[row], 0.0), speed[row])

    return speed, (nearest_object(LEAD), nearest_object(PED), nearest_object(UNCLEARED))
