"""What is around the ego, reduced to the few facts the behaviour state machine decides on.

Two steps, both vectorised over the tracks (no per-track Python loop):
1. `project`: the ego and the world model's tracks in road (Frenet) coordinates, in one search of
   the road near the ego's last s; per track the speed along the road, the bumper gaps to the ego,
   the span of its predicted sideways drift and the half extents of its box across the road.
2. `extract_situation`: for the lane being driven (and the lateral path of a lane change in
   progress), the nearest object ahead in the ego's corridor, the nearest pedestrian who is in or
   about to enter it, the object a lane change has not yet cleared sideways, the leaders and
   followers of the neighbouring lanes, the speed cap and the braking needed for the curves ahead.

The ego's corridor follows its planned lateral offset d_path(s): an object ahead is in the corridor
when its box (and, for a moving object, its constant-velocity drift over a short horizon) overlaps
the ego's box placed at d_path at the object's distance. That one rule covers leads, cut-ins and
the lane change around an obstacle (the path leaves the obstacle's lane before reaching it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decision.route import Road, Route
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE, WorldModel

LATERAL_SPEED_DEADBAND_MPS = 0.2  # slower sideways drift is treated as tracking noise
LANE_OVERLAP_M = 0.3  # a box belongs to a lane when it reaches this far into it
MIN_CURVATURE = 1e-6  # [1/m] below this a stretch of road counts as straight
CURVE_HERE_M = 5.0  # the curve speed within this distance ahead of the ego caps its speed now
# The neighbouring lanes are watched this much farther than the look-ahead, so that a lane change
# around an object at the edge of the look-ahead sees whether the other lane is blocked there too.
NEIGHBOUR_EXTRA_M = 30.0
OFF_ROAD_REPROJECT_M = 5.0  # an ego this far outside the road was projected from a stale hint
# extract_situation finds seven nearest objects at once, one per row: the lead, the pedestrian, the
# left and right leaders, the object not yet cleared sideways (all by the gap ahead), the left and
# right followers (by the gap behind).
ROWS = np.arange(7)
ROW_GAP = np.array([0, 0, 0, 0, 0, 1, 1])  # 0: gap ahead, 1: gap behind
assert (VEHICLE, PEDESTRIAN, OBSTACLE) == (0, 1, 2), "project() indexes per-class tables by class id"


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


@dataclass(frozen=True, slots=True)
class LaneChange:
    """A lateral move in progress: from offset `start_d_m` at `start_s_m` to the target lane's
    centre, blended over `length_m` of road."""

    start_s_m: float
    start_d_m: float
    length_m: float


@dataclass(frozen=True, slots=True)
class ObjectAhead:
    """One object ahead: bumper-to-bumper gap [m] along the road (>= 0), speed along the road."""

    track_id: int
    class_id: int
    gap_m: float
    speed_mps: float


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Situation:
    """The facts of one tick. lane: the lane being driven (the target while changing lanes).
    left / right: the lanes lane + 1 / lane - 1 (lanes count from the right); None if absent."""

    ego_s_m: float
    ego_d_m: float
    ego_speed_mps: float
    lane: int
    route_lane: int
    speed_cap_mps: float
    curve_accel_mps2: float = float("inf")  # braking (< 0) the curves ahead need; inf: none
    lead: ObjectAhead | None = None
    pedestrian: ObjectAhead | None = None
    # During a lane change: the nearest object ahead that the ego's box, where it is now, has not
    # yet cleared sideways (the planned path passes it, the ego still has to get there).
    uncleared: ObjectAhead | None = None
    left: LaneGaps | None = None
    right: LaneGaps | None = None
    road_end_gap_m: float = float("inf")


@dataclass(frozen=True, slots=True)
class TracksFrenet:
    """Tracks within reach of the ego in road coordinates, relative to the ego, all (K,) arrays.

    s_m, d_m: centre; speed_s_mps: velocity along the road; ahead: centre ahead of the ego's;
    gap_ahead_m / gap_behind_m: bumper gap from the ego's front to its rear / from its front to the
    ego's rear; d_lo_m, d_hi_m: the span of d over its predicted sideways drift; half_lat_m: half
    extent across the road; clearance_m: the lateral centre distance below which it touches the
    ego's corridor (half widths + margin).
    """

    ids: np.ndarray
    class_ids: np.ndarray
    s_m: np.ndarray
    d_m: np.ndarray
    speed_s_mps: np.ndarray
    ahead: np.ndarray
    gap_ahead_m: np.ndarray
    gap_behind_m: np.ndarray
    d_lo_m: np.ndarray
    d_hi_m: np.ndarray
    half_lat_m: np.ndarray
    clearance_m: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def empty() -> TracksFrenet:
        i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return TracksFrenet(i, i, f, f, f, np.zeros(0, dtype=bool), f, f, f, f, f, f)


def lane_change_offset_m(s_m, change: LaneChange, end_d_m: float):
    """Lateral offset [m] of a lane change at s (array or float): a quintic smoothstep
    10x^3 - 15x^4 + 6x^5 (zero slope and curvature at both ends) from start_d to end_d."""
    x = np.clip((np.asarray(s_m) - change.start_s_m) / change.length_m, 0.0, 1.0)
    blend = x * x * x * (10.0 + x * (6.0 * x - 15.0))
    return change.start_d_m + (end_d_m - change.start_d_m) * blend


def path_offset_m(s_m, road: Road, lane: int, change: LaneChange | None):
    """Planned lateral offset d_path(s) [m]: the lane centre (a float, whatever s is), or the lane
    change towards it (shaped like s)."""
    d_lane = float(road.lane_offset_m(lane))
    return d_lane if change is None else lane_change_offset_m(s_m, change, d_lane)


def project(world: WorldModel, road: Road, s_hint_m: float | None, p: SituationParams):
    """The ego and the tracks within reach of it (look-ahead + NEIGHBOUR_EXTRA_M, straight line) in
    road coordinates, in one search near `s_hint_m` (the ego's last s; None: the whole road).

    Returns (ego s [m], ego d [m], TracksFrenet).
    """
    ahead_m = p.look_ahead_m + NEIGHBOUR_EXTRA_M
    reach_m = max(ahead_m, p.rear_range_m)
    ex, ey = world.ego.x_m, world.ego.y_m
    dx = world.xy_m[:, 0] - ex
    dy = world.xy_m[:, 1] - ey
    # The straight-line distance never exceeds the distance along the road: a safe pre-filter
    # (extract_situation drops what is beyond the look-ahead or the rear range along the road).
    near = dx * dx + dy * dy < reach_m * reach_m
    every = near.all()
    idx = slice(None) if every else np.flatnonzero(near)
    pts = np.empty((len(world) + 1 if every else len(idx) + 1, 2))
    pts[0] = ex, ey
    pts[1:] = world.xy_m[idx]
    if s_hint_m is None:
        s, d = road.to_frenet(pts)
    else:  # search only the stretch [hint - rear range, hint + ahead] (and a little more)
        centre = s_hint_m + 0.5 * (ahead_m - p.rear_range_m)
        s, d = road.to_frenet(pts, s_hint_m=centre, window_m=0.5 * (ahead_m + p.rear_range_m) + 10.0)
        if abs(d[0]) > road.half_width_m + OFF_ROAD_REPROJECT_M:
            s, d = road.to_frenet(pts)  # the hint was stale (e.g. a new episode without a reset)
    ego_s, ego_d = float(s[0]), float(d[0])
    s, d = s[1:], d[1:]
    if not len(s):
        return ego_s, ego_d, TracksFrenet.empty()
    heading = np.interp(s, road.s_m, road.heading_rad)
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    v = world.v_mps[idx]
    rel_yaw = world.yaw_rad[idx] - heading
    cos_r, sin_r = np.abs(np.cos(rel_yaw)), np.abs(np.sin(rel_yaw))
    size = world.size_m[idx]
    half_lon = 0.5 * (size[:, 0] * cos_r + size[:, 1] * sin_r)
    half_lat = 0.5 * (size[:, 0] * sin_r + size[:, 1] * cos_r)
    class_ids = world.class_ids[idx]
    # Per-class prediction horizon and lateral margin, indexed by class id (VEHICLE, PEDESTRIAN, OBSTACLE).
    horizon = np.array((p.cut_in_horizon_s, p.pedestrian_horizon_s, 0.0)).take(class_ids, mode="clip")
    margin = np.array((p.lateral_margin_m, p.pedestrian_margin_m, p.lateral_margin_m)).take(
        class_ids, mode="clip"
    )
    # Sideways drift over the class's prediction horizon (slow drift is noise).
    speed_d = v[:, 1] * cos_h - v[:, 0] * sin_h
    speed_d[np.abs(speed_d) < LATERAL_SPEED_DEADBAND_MPS] = 0.0
    drifted = d + speed_d * horizon
    tracks = TracksFrenet(
        ids=world.ids[idx],
        class_ids=class_ids,
        s_m=s,
        d_m=d,
        speed_s_mps=v[:, 0] * cos_h + v[:, 1] * sin_h,
        ahead=s > ego_s,
        gap_ahead_m=s - half_lon - (ego_s + 0.5 * p.ego_length_m),
        gap_behind_m=(ego_s - 0.5 * p.ego_length_m) - (s + half_lon),
        d_lo_m=np.minimum(d, drifted),
        d_hi_m=np.maximum(d, drifted),
        half_lat_m=half_lat,
        clearance_m=half_lat + (margin + 0.5 * p.ego_width_m),
    )
    return ego_s, ego_d, tracks


def speed_limits(
    road: Road, route: Route, ego_s_m: float, ego_speed_mps: float, d_lane_m: float, p: SituationParams
) -> tuple[float, float]:
    """(speed cap [m/s], curve acceleration [m/s^2]: < 0, or inf when no curve ahead needs braking).

    cap = min(cruise speed, speed limit, curve speed sqrt(a_lat / kappa) of the lane within
    CURVE_HERE_M of the ego): IDM's desired speed. The curve acceleration is the constant braking
    that brings the ego down to the speed of every arc ahead before it gets there, looking far
    enough ahead to do it at `curve_decel_mps2` (a desired speed that dropped only when the curve
    came into view would make IDM brake late and hard). A loop over the road's few segments.
    """
    cap = min(route.cruise_speed_mps, road.speed_limit_mps)
    horizon_end = ego_s_m + p.look_ahead_m + ego_speed_mps**2 / (2.0 * p.curve_decel_mps2)
    need = np.inf
    start = 0.0
    for seg in road.segments:
        end = start + seg.length_m
        if seg.kind != "straight" and end > ego_s_m and start < horizon_end:
            # The lane's own curvature: a lane on the inside of a bend (kappa d > 0) turns tighter.
            kappa = abs(seg.curvature) / max(1.0 - seg.curvature * d_lane_m, 0.1)
            v_curve_sq = p.max_lateral_accel_mps2 / max(kappa, MIN_CURVATURE)
            ahead = start - ego_s_m
            if ahead < CURVE_HERE_M:
                cap = min(cap, math.sqrt(v_curve_sq))
            need = min(need, (v_curve_sq - ego_speed_mps**2) / (2.0 * max(ahead, CURVE_HERE_M)))
        start = end
    return cap, need if need < 0.0 else np.inf


def extract_situation(
    t: TracksFrenet,
    route: Route,
    ego_s_m: float,
    ego_d_m: float,
    ego_speed_mps: float,
    lane: int,
    change: LaneChange | None,
    p: SituationParams,
) -> Situation:
    """The facts of this tick for the ego driving `lane` (with `change` in progress, if any)."""
    road = route.road
    d_lane = float(road.lane_offset_m(lane))
    has_left, has_right = lane + 1 < road.lane_count, lane >= 1
    left = LaneGaps(lane + 1) if has_left else None
    right = LaneGaps(lane - 1) if has_right else None
    lead = pedestrian = uncleared = None
    if len(t):
        # Where the ego will be sideways when its front reaches the object's rear.
        d_path = (
            d_lane
            if change is None
            else path_offset_m(ego_s_m + np.maximum(t.gap_ahead_m, 0.0), road, lane, change)
        )
        lateral_miss = np.maximum(t.d_lo_m - d_path, d_path - t.d_hi_m)
        rows = np.empty((7, len(t)), dtype=bool)
        in_corridor = t.ahead & (lateral_miss < t.clearance_m) & (t.s_m < ego_s_m + p.look_ahead_m)
        is_ped = t.class_ids == PEDESTRIAN
        np.logical_and(in_corridor, ~is_ped, out=rows[0])  # the lead
        np.logical_and(in_corridor, is_ped, out=rows[1])  # the pedestrian
        # Boxes reaching LANE_OVERLAP_M into the left (row 2: leaders, 4: followers) or right lane.
        in_lane = 0.5 * road.lane_width_m - LANE_OVERLAP_M + t.half_lat_m
        rows[2] = np.abs(t.d_m - (d_lane + road.lane_width_m)) < in_lane if has_left else False
        rows[3] = np.abs(t.d_m - (d_lane - road.lane_width_m)) < in_lane if has_right else False
        rows[5:] = rows[2:4] & ~t.ahead & (t.gap_behind_m < p.rear_range_m)
        rows[2:4] &= t.ahead & (t.s_m < ego_s_m + p.look_ahead_m + NEIGHBOUR_EXTRA_M)
        if change is None:
            rows[4] = False
        else:
            rows[4] = t.ahead & (np.abs(t.d_m - ego_d_m) < t.clearance_m) & ~in_corridor
        gaps = np.where(rows, np.stack((t.gap_ahead_m, t.gap_behind_m))[ROW_GAP], np.inf)
        nearest = gaps.argmin(axis=1)
        best = gaps[ROWS, nearest].tolist()
        speed = t.speed_s_mps[nearest].tolist()
        speed = [v if g < np.inf else 0.0 for g, v in zip(best, speed, strict=True)]  # 7 rows, not tracks
        if best[0] < np.inf:
            lead = ObjectAhead(
                int(t.ids[nearest[0]]), int(t.class_ids[nearest[0]]), max(best[0], 0.0), speed[0]
            )
        if best[1] < np.inf:
            pedestrian = ObjectAhead(int(t.ids[nearest[1]]), PEDESTRIAN, max(best[1], 0.0), speed[1])
        if best[4] < np.inf:
            i = nearest[4]
            uncleared = ObjectAhead(int(t.ids[i]), int(t.class_ids[i]), max(best[4], 0.0), speed[4])
        if has_left:
            left = LaneGaps(lane + 1, best[2], speed[2], best[5], speed[5])
        if has_right:
            right = LaneGaps(lane - 1, best[3], speed[3], best[6], speed[6])
    cap, curve_accel = speed_limits(road, route, ego_s_m, ego_speed_mps, d_lane, p)
    return Situation(
        ego_s_m=ego_s_m,
        ego_d_m=ego_d_m,
        ego_speed_mps=ego_speed_mps,
        lane=lane,
        route_lane=route.lane,
        speed_cap_mps=cap,
        curve_accel_mps2=curve_accel,
        lead=lead,
        pedestrian=pedestrian,
        uncleared=uncleared,
        left=left,
        right=right,
        road_end_gap_m=road.length_m - (ego_s_m + 0.5 * p.ego_length_m),
    )
