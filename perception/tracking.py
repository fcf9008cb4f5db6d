"""Multi-object tracking on the ground plane: constant-velocity Kalman filters + Hungarian matching.

Each track is a Kalman filter with state (x, y, vx, vy) [m, m/s] in the world frame, driven by
white-noise acceleration (std `process_accel_std_mps2`). All tracks live in arrays (state (T, 4),
covariance (T, 4, 4)) and are predicted at once. A camera frame's detections (ground positions and
their 1-sigma errors from `perception.localise`) are matched to the predicted tracks by the
Hungarian method (scipy's linear_sum_assignment) on the squared Mahalanobis distance, gated by
class (a detection only matches a track of its class), by Mahalanobis distance (`gate_sigmas`) and
by Euclidean distance (`gate_m`, a hard cap that also holds for very uncertain tracks).

Track life: a detection that matches nothing starts a tentative track, unless it lies nearer than
its class's width to a track of its class matched in the same frame (a second box on that object:
two objects that near would overlap); a track is confirmed after `min_hits` matched frames and
stays confirmed. A tentative track that misses a frame is deleted (so a false positive seen once
never shows); a confirmed track survives up to `max_misses` consecutive camera frames without a
match and is deleted at the next miss, or as soon as its position std exceeds `max_position_std_m`.
Where `update` is told what the cameras can see (`in_sight`), a confirmed track that is missed where
no camera sees it whole (too near, its foot below every image: the detector misses a box cut off
there; or out of every view) survives up to `max_unseen_misses` frames: it left the cameras' sight,
not the road (a car beside the ego, a parked one being passed).
Misses count camera frames (`update` calls), not `predict` ticks: the closed loop may predict at
20 Hz between 10 Hz frames. Ids increase from 0 and are never reused until `reset()`. Only
confirmed tracks are reported.

Stationary objects stay stationary (hysteresis): a vehicle or obstacle track whose speed estimate
stays below `stop_speed_mps` for `stop_frames` matched frames in a row is held still: from then on
each update sets its velocity to zero (a zero-velocity update: its position averages the
detections), anchored where it stopped; it is matched within `restart_distance_m` more than its
covariance says. It moves again only after RESTART_FRAMES detections in a row lie
`restart_distance_m` (and three of their sigmas) from that anchor: from the last one, at the speed
it left with. So the noise of a parked car's detections never turns into a velocity (a parked car
tracked at 1 m/s is a car the planner waits behind instead of passing). Pedestrians keep the
constant-velocity model: they stop and start often, slowly.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from perception.localise import class_size_m
from perception.types import PEDESTRIAN

GATED_COST = 1e9  # cost of a pair the gates forbid; far above any admissible squared Mahalanobis distance
YAW_MIN_SPEED_MPS = 1.0  # below this speed a track keeps its last heading [m/s]
# ... and below this many stds of its speed estimate: a standing object's velocity estimate is 2-D
# noise, beyond k stds with probability exp(-k^2 / 2) a frame; at 2 stds a parked car took a random
# heading in its first frames 2 times in 5 (its box then turned across the lane), at 4 stds 1 in 100
YAW_MIN_SPEED_SIGMAS = 4.0
TIME_EPS_S = 1e-9  # clock jitter tolerated when a call goes back in time [s]
RESTART_FRAMES = 3  # a held track drives off after this many detections in a row away from its anchor


def mahalanobis_cost(
    track_xy: np.ndarray, track_cov: np.ndarray, det_xy: np.ndarray, det_var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Squared Mahalanobis (T, N) and Euclidean (T, N) [m] distances of detections to tracks.

    track_xy: (T, 2) predicted positions; track_cov: (T, 2, 2) their covariance [m^2];
    det_xy: (N, 2); det_var: (N,) isotropic detection variance [m^2]. The innovation covariance of
    each pair is S = track_cov + det_var * I.
    """
    r = det_xy[None, :, :] - track_xy[:, None, :]  # (T, N, 2)
    s00 = track_cov[:, None, 0, 0] + det_var[None, :]  # (T, N)
    s11 = track_cov[:, None, 1, 1] + det_var[None, :]
    s01 = track_cov[:, None, 0, 1]
    det = s00 * s11 - s01 * s01
    d2 = (s11 * r[..., 0] ** 2 - 2 * s01 * r[..., 0] * r[..., 1] + s00 * r[..., 1] ** 2) / det
    return d2, np.hypot(r[..., 0], r[..., 1])


def associate(cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows (tracks) to columns (detections).

    cost: (T, N); allowed: (T, N) bool, the pairs that pass the gates. Returns matched row and
    column indices (M,), each pair allowed, rows ascending.
    """
    if cost.size == 0 or not allowed.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, GATED_COST))
    keep = allowed[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


class Tracker:
    """Constant-velocity Kalman multi-object tracker on the ground plane (module docstring).

    process_accel_std_mps2: std of the white-noise acceleration of every object [m/s^2].
    meas_std_m: detection position std used when `update` gets no per-detection sigma [m].
    gate_m: largest distance between a predicted track and a detection that may match [m].
    gate_sigmas: largest Mahalanobis distance of a match (3 ~ 99 % of true matches in 2D).
    min_hits: matched frames that confirm a track (1 confirms at birth).
    max_misses: consecutive frames a confirmed track may go unmatched; deleted at the next miss.
    max_unseen_misses: the same where the track is out of the cameras' sight (None: max_misses).
    max_position_std_m: a track whose position std grows past this is deleted [m].
    init_speed_std_mps: std of the unknown velocity of a new track [m/s].
    stop_speed_mps, stop_frames, restart_distance_m: the stationary hysteresis (module docstring);
    stop_frames 0 turns it off.
    """

    def __init__(
        self,
        *,
        process_accel_std_mps2: float,
        meas_std_m: float,
        gate_m: float,
        gate_sigmas: float,
        min_hits: int,
        max_misses: int,
        max_position_std_m: float,
        init_speed_std_mps: float,
        stop_speed_mps: float = 1.5,
        stop_frames: int = 5,
        restart_distance_m: float = 1.5,
        max_unseen_misses: int | None = None,
    ):
        for name, value in (
            ("process_accel_std_mps2", process_accel_std_mps2),
            ("meas_std_m", meas_std_m),
            ("gate_m", gate_m),
            ("gate_sigmas", gate_sigmas),
            ("max_position_std_m", max_position_std_m),
            ("init_speed_std_mps", init_speed_std_mps),
            ("stop_speed_mps", stop_speed_mps),
            ("restart_distance_m", restart_distance_m),
        ):
            if not value > 0:
                raise ValueError(f"tracker.{name}={value} is out of range: > 0")
        if not (isinstance(min_hits, int) and min_hits >= 1):
            raise ValueError(f"tracker.min_hits={min_hits} is out of range: an int >= 1")
        if not (isinstance(max_misses, int) and max_misses >= 0):
            raise ValueError(f"tracker.max_misses={max_misses} is out of range: an int >= 0")
        max_unseen_misses = max_misses if max_unseen_misses is None else max_unseen_misses
        if not (isinstance(max_unseen_misses, int) and max_unseen_misses >= max_misses):
            raise ValueError(
                f"tracker.max_unseen_misses={max_unseen_misses} is out of range: an int >= max_misses"
            )
        if not (isinstance(stop_frames, int) and stop_frames >= 0):
            raise ValueError(f"tracker.stop_frames={stop_frames} is out of range: an int >= 0")
        self.process_accel_std_mps2 = process_accel_std_mps2
        self.meas_std_m = meas_std_m
        self.gate_m = gate_m
        self.gate_sigmas = gate_sigmas
        self.min_hits = min_hits
        self.max_misses = max_misses
        self.max_unseen_misses = max_unseen_misses
        self.max_position_std_m = max_position_std_m
        self.init_speed_std_mps = init_speed_std_mps
        self.stop_speed_mps = stop_speed_mps
        self.stop_frames = stop_frames
        self.restart_distance_m = restart_distance_m
        self.reset()

    def reset(self) -> None:
        """Forget every track and the clock; ids start again from 0."""
        self._t_s: float | None = None
        self._next_id = 0
        self._x = np.zeros((0, 4))  # (T, 4) x, y, vx, vy
        self._P = np.zeros((0, 4, 4))  # (T, 4, 4)
        self._ids = np.zeros(0, dtype=np.int64)
        self._class_ids = np.zeros(0, dtype=np.int64)
        self._hits = np.zeros(0, dtype=np.int64)
        self._misses = np.zeros(0, dtype=np.int64)
        self._confirmed = np.zeros(0, dtype=bool)
        self._scores = np.zeros(0)
        self._yaw = np.zeros(0)
        self._yaw_seen = np.zeros(0, dtype=bool)  # the heading came from a velocity seen to move
        self._slow = np.zeros(0, dtype=np.int64)  # matched frames in a row below stop_speed_mps
        self._anchor = np.full((0, 2), np.nan)  # where a stationary track stopped; NaN: it moves
        self._away_count = np.zeros(0, dtype=np.int64)  # frames in a row detected away from it ...
        self._away_since = np.full(0, np.nan)  # ... since when [s] ...
        self._away_from = np.full((0, 2), np.nan)  # ... and where the first was

    def __len__(self) -> int:
        """Number of live tracks, tentative ones included."""
        return len(self._ids)

    @property
    def t_s(self) -> float | None:
        """Time the tracks are predicted to (None before the first call)."""
        return self._t_s

    def predict(self, t_s: float) -> None:
        """Advance all tracks to time `t_s` [s] (no-op at the current time; the first call sets it)."""
        if self._t_s is None:
            self._t_s = float(t_s)
            return
        dt = float(t_s) - self._t_s
        if dt < -TIME_EPS_S:
            raise ValueError(f"tracker time goes back: {t_s} < {self._t_s}")
        if dt <= 0:
            return
        self._t_s = float(t_s)
        if len(self._ids) == 0:
            return
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        # Discrete white-noise acceleration: position and velocity noise driven by one acceleration.
        q = self.process_accel_std_mps2**2
        Q = np.zeros((4, 4))
        Q[0, 0] = Q[1, 1] = q * dt**4 / 4
        Q[0, 2] = Q[2, 0] = Q[1, 3] = Q[3, 1] = q * dt**3 / 2
        Q[2, 2] = Q[3, 3] = q * dt**2
        self._x = self._x @ F.T
        self._P = F @ self._P @ F.T + Q
        lost = np.maximum(self._P[:, 0, 0], self._P[:, 1, 1]) > self.max_position_std_m**2
        if lost.any():
            self._keep(~lost)

    def update(
        self,
        t_s: float,
        xy_m: np.ndarray,
        sigma_m: np.ndarray | None,
        class_ids: np.ndarray,
        scores: np.ndarray,
        heading_rad: float = 0.0,
        in_sight=None,
    ) -> None:
        """Predict to `t_s` [s], then correct with one camera frame's detections.

        xy_m: (N, 2) world positions [m]; sigma_m: (N,) their 1-sigma error [m] (None: meas_std_m);
        class_ids: (N,) int; scores: (N,) in [0, 1]. Detections with a non-finite position or
        sigma are ignored. heading_rad: the heading a new track keeps until it is seen to move (the
        camera perceiver passes the ego's: what stands by the ego's road is taken to lie along it,
        as parked and queued cars do). in_sight: a function of ground positions (M, 2) -> (M,) bool,
        whether a camera of this frame sees an object there whole (None: everywhere).
        """
        self.predict(t_s)
        xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
        n = len(xy)
        sigma = np.full(n, self.meas_std_m) if sigma_m is None else np.asarray(sigma_m, float).reshape(n)
        cls = np.asarray(class_ids, dtype=np.int64).reshape(n)
        score = np.asarray(scores, dtype=float).reshape(n)
        ok = np.isfinite(xy).all(axis=1) & np.isfinite(sigma) & (sigma > 0)
        xy, var, cls, score = xy[ok], sigma[ok] ** 2, cls[ok], score[ok]

        # A held track may have driven off since: it is matched within restart_distance_m more.
        cov = self._P[:, :2, :2].copy()
        cov[~np.isnan(self._anchor[:, 0])] += self.restart_distance_m**2 * np.eye(2)
        d2, dist = mahalanobis_cost(self._x[:, :2], cov, xy, var)
        allowed = (
            (self._class_ids[:, None] == cls[None, :]) & (d2 <= self.gate_sigmas**2) & (dist <= self.gate_m)
        )
        rows, cols = associate(d2, allowed)
        self._correct(rows, xy[cols], var[cols])
        self._hold_still(rows, xy[cols], var[cols])
        self._hits[rows] += 1
        self._misses[rows] = 0
        self._scores[rows] = score[cols]
        self._confirmed |= self._hits >= self.min_hits

        new = np.ones(len(xy), dtype=bool)
        new[cols] = False
        new[new] = ~self._beside_matched(xy[new], cls[new], rows)

        missed = np.ones(len(self._ids), dtype=bool)
        missed[rows] = False
        self._misses[missed] += 1
        limit = np.full(len(self._ids), self.max_misses)
        if in_sight is not None and np.count_nonzero(missed):
            limit[missed] = np.where(in_sight(self._x[missed, :2]), self.max_misses, self.max_unseen_misses)
        dead = missed & (~self._confirmed | (self._misses > limit))
        self._keep(~dead)
        self._birth(xy[new], var[new], cls[new], score[new], heading_rad)

    def tracks(self) -> dict[str, np.ndarray]:
        """Confirmed tracks as WorldModel fields: `WorldModel(ego=..., t_s=..., **tracker.tracks())`.

        ids (M,) int64; class_ids (M,) int64; xy_m (M, 2) [m]; v_mps (M, 2) [m/s] world frame;
        yaw_rad (M,) heading of the velocity (for slow tracks the last one, or the heading at birth);
        size_m (M, 2) typical length, width of the class [m]; scores (M,) last matched score;
        v_std_mps (M,) the velocity's standard deviation, the larger axis's [m/s]; heading_seen (M,)
        whether the heading is a velocity's (else the heading at birth).
        """
        c = self._confirmed
        length, width = class_size_m(self._class_ids[c])
        v_var = np.maximum(self._P[c, 2, 2], self._P[c, 3, 3])
        return {
            "ids": self._ids[c].copy(),
            "class_ids": self._class_ids[c].copy(),
            "xy_m": self._x[c, :2].copy(),
            "v_mps": self._x[c, 2:].copy(),
            "yaw_rad": self._yaw[c].copy(),
            "size_m": np.stack([length, width], axis=1),
            "scores": self._scores[c].copy(),
            "v_std_mps": np.sqrt(np.maximum(v_var, 0.0)),
            "heading_seen": self._yaw_seen[c].copy(),
        }

    def _correct(self, rows: np.ndarray, z: np.ndarray, var: np.ndarray) -> None:
        """Kalman update of tracks `rows` (M,) with position measurements z (M, 2), variance (M,)."""
        if len(rows) == 0:
            return
        P = self._P[rows]  # (M, 4, 4)
        S = P[:, :2, :2] + var[:, None, None] * np.eye(2)  # (M, 2, 2)
        gain = P[:, :, :2] @ np.linalg.inv(S)  # (M, 4, 2)
        x = self._x[rows] + np.einsum("mij,mj->mi", gain, z - self._x[rows, :2])
        P = P - gain @ P[:, :2, :]  # (I - K H) P
        self._x[rows] = x
        self._P[rows] = 0.5 * (P + P.transpose(0, 2, 1))
        # Heading from the velocity once the object clearly moves; else keep the last one.
        speed = np.hypot(x[:, 2], x[:, 3])
        speed_std = np.sqrt(np.maximum(P[:, 2, 2], P[:, 3, 3]))
        moving = (speed > YAW_MIN_SPEED_MPS) & (speed > YAW_MIN_SPEED_SIGMAS * speed_std)
        self._yaw[rows] = np.where(moving, np.arctan2(x[:, 3], x[:, 2]), self._yaw[rows])
        self._yaw_seen[rows] |= moving

    def _hold_still(self, rows: np.ndarray, z: np.ndarray, var: np.ndarray) -> None:
        """The stationary hysteresis for the tracks `rows` (M,) just corrected with the detections
        z (M, 2) of variance var (M,) (module docstring)."""
        if self.stop_frames == 0 or len(rows) == 0:
            return
        kept = self._class_ids[rows] != PEDESTRIAN
        rows, z, var = rows[kept], z[kept], var[kept]
        still = ~np.isnan(self._anchor[rows, 0])
        # Away from the anchor (by restart_distance_m and 3 sigmas): since when and from where.
        gap = np.hypot(*(z - self._anchor[rows]).T)
        away = still & (gap > np.maximum(self.restart_distance_m, 3.0 * np.sqrt(var)))
        first = away & np.isnan(self._away_since[rows])
        self._away_since[rows[first]], self._away_from[rows[first]] = self._t_s, z[first]
        self._away_since[rows[still & ~away]] = np.nan
        self._away_count[rows] = np.where(away, self._away_count[rows] + 1, 0)
        go = away & (self._away_count[rows] >= RESTART_FRAMES)
        if go.any():  # it drives off: from the last detection, at the speed it left the anchor with
            g = rows[go]
            dt = self._t_s - self._away_since[g]
            self._x[g, :2], self._x[g, 2:] = z[go], (z[go] - self._away_from[g]) / dt[:, None]
            self._P[g] = 0.0
            self._P[g, 0, 0] = self._P[g, 1, 1] = var[go]
            self._P[g, 2, 2] = self._P[g, 3, 3] = 2.0 * var[go] / dt**2
            self._anchor[g], self._away_since[g] = np.nan, np.nan
            self._slow[g], self._away_count[g] = 0, 0
        x = self._x[rows]
        slow = (np.hypot(x[:, 2], x[:, 3]) < self.stop_speed_mps) & ~go
        self._slow[rows] = np.where(slow, self._slow[rows] + 1, 0)
        stops = ~still & (self._slow[rows] >= self.stop_frames)
        self._anchor[rows[stops]] = x[stops, :2]
        hold = rows[(still & ~go) | stops]  # zero-velocity update
        self._x[hold, 2:] = 0.0
        self._P[hold, 2:, :] = 0.0
        self._P[hold, :, 2:] = 0.0

    def _beside_matched(self, xy: np.ndarray, cls: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(B,) whether each unmatched detection xy (B, 2) of class cls (B,) lies nearer than its
        class's width to a track of its class that this frame matched: a second detection of that
        object (two boxes on one car close by, or two cameras' views of it that did not merge), not
        a new one. Two objects of a class cannot stand nearer each other than that without overlapping."""
        if len(xy) == 0 or len(rows) == 0:
            return np.zeros(len(xy), dtype=bool)
        gap = np.linalg.norm(xy[:, None, :] - self._x[None, rows, :2], axis=2)  # (B, R)
        same = cls[:, None] == self._class_ids[None, rows]
        return (same & (gap < class_size_m(cls)[1][:, None])).any(axis=1)

    def _birth(
        self, xy: np.ndarray, var: np.ndarray, cls: np.ndarray, score: np.ndarray, heading_rad: float
    ) -> None:
        """Start tentative tracks at detections xy (B, 2), at rest with an uncertain velocity, heading
        `heading_rad`."""
        b = len(xy)
        if b == 0:
            return
        x = np.concatenate([xy, np.zeros((b, 2))], axis=1)
        P = np.zeros((b, 4, 4))
        P[:, 0, 0] = P[:, 1, 1] = var
        P[:, 2, 2] = P[:, 3, 3] = self.init_speed_std_mps**2
        ids = self._next_id + np.arange(b, dtype=np.int64)
        self._next_id += b
        hits = np.ones(b, dtype=np.int64)
        self._x = np.concatenate([self._x, x])
        self._P = np.concatenate([self._P, P])
        self._ids = np.concatenate([self._ids, ids])
        self._class_ids = np.concatenate([self._class_ids, cls])
        self._hits = np.concatenate([self._hits, hits])
        self._misses = np.concatenate([self._misses, np.zeros(b, dtype=np.int64)])
        self._confirmed = np.concatenate([self._confirmed, hits >= self.min_hits])
        self._scores = np.concatenate([self._scores, score])
        self._yaw = np.concatenate([self._yaw, np.full(b, float(heading_rad))])
        self._yaw_seen = np.concatenate([self._yaw_seen, np.zeros(b, dtype=bool)])
        self._slow = np.concatenate([self._slow, np.zeros(b, dtype=np.int64)])
        self._anchor = np.concatenate([self._anchor, np.full((b, 2), np.nan)])
        self._away_count = np.concatenate([self._away_count, np.zeros(b, dtype=np.int64)])
        self._away_since = np.concatenate([self._away_since, np.full(b, np.nan)])
        self._away_from = np.concatenate([self._away_from, np.full((b, 2), np.nan)])

    def _keep(self, keep: np.ndarray) -> None:
        """Drop the tracks where `keep` (T,) is False."""
        self._x, self._P, self._ids = self._x[keep], self._P[keep], self._ids[keep]
        self._class_ids, self._hits, self._misses = (
            self._class_ids[keep],
            self._hits[keep],
            self._misses[keep],
        )
        self._confirmed, self._scores, self._yaw = self._confirmed[keep], self._scores[keep], self._yaw[keep]
        self._yaw_seen = self._yaw_seen[keep]
        self._slow, self._anchor = self._slow[keep], self._anchor[keep]
        self._away_count, self._away_since = self._away_count[keep], self._away_since[keep]
        self._away_from = self._away_from[keep]
