"""Pedestrians of a town: they walk their paths and cross the road only when they may.

Every walking pedestrian moves along its own path (a one-lane `Road`: a sidewalk loop from
sim/traffic/town_spawn.py, or the path of a scripted actor). The stretches of a path that lie on the
road (`Town.drivable`) are its crossings; a pedestrian stops on the sidewalk just before each one
while it may not cross:
- at a signalised junction, while the vehicles of the arm it crosses have red (its walk signal);
- elsewhere, while a moving vehicle is within CLEAR_M + CLEAR_TIME_S x its speed of the crossing
  (stopped vehicles see the pedestrian on their path and wait);
then it crosses, stopping only while a vehicle stands across its way (`_blocked`): nobody walks into
the side of a car.
Jaywalkers (behaviour "cross") have no crossings: they walk straight on once triggered. A closed
path (a loop) is walked round and round: the distance walked keeps growing and the position is
taken modulo the path's length.

All rows at once: the crossings are padded (P, K) arrays and each row keeps a counter of the
crossings it has passed.
"""

from __future__ import annotations

import numpy as np

from decision.route import Road
from decision.town import Town

HOLD_BACK_M = 1.5  # a pedestrian waits this far (along its path) before the road's edge, on the sidewalk
CLEAR_M = 8.0  # a moving vehicle this near a crossing keeps a pedestrian waiting ...
MOVING_MPS = 0.5
CLEAR_TIME_S = 4.0  # ... and one that would reach it within this time
BLOCK_AHEAD_M = 1.0  # a vehicle's footprint this far ahead (grown sideways by ...) stops a walker ...
BLOCK_CLEARANCE_M = 0.4
BLOCK_ACROSS_M = 1.0  # ... when the vehicle reaches this far past the walker's line on both sides
LOOP_TOLERANCE_M = 0.05  # a path whose end is this near its start is a loop
RED = 2  # signal state codes: 0 green, 1 yellow, 2 red


class Walkers:
    """P walking pedestrians. `s_m` (P,) distance walked along each path, `speed_mps` (P,) their
    speed this tick (0 while waiting or held), `path_s_m()` the position along the path."""

    def __init__(
        self,
        town: Town,
        paths: list[Road],
        s_m: np.ndarray,
        speed_mps: np.ndarray,
        obeys: np.ndarray,
        signal_index: dict[int, int],
    ):
        """paths: P paths; s_m, speed_mps (P,) start and walking speed; obeys (P,) bool: waits at
        crossings (False: a jaywalker); signal_index: signal id -> index into the state array that
        `step` gets."""
        p = len(paths)
        self.s_m = np.asarray(s_m, float).copy()
        self.walk_speed_mps = np.asarray(speed_mps, float).copy()
        self.speed_mps = np.zeros(p)
        self.held = np.zeros(p, bool)  # waiting for a trigger
        self.length_m = np.array([pt.length_m for pt in paths])
        self.loop = np.array([np.hypot(*(pt.xy_m[-1] - pt.xy_m[0])) < LOOP_TOLERANCE_M for pt in paths], bool)
        pieces = [
            _crossings(town, pt, signal_index) if ok else [] for pt, ok in zip(paths, obeys, strict=True)
        ]
        k = max([len(pc) for pc in pieces] + [1])
        self._count = np.array([max(len(pc), 1) for pc in pieces])
        self._has = np.array([len(pc) > 0 for pc in pieces])
        self._start = np.full((p, k), np.inf)
        self._end = np.full((p, k), np.inf)
        self._signal = np.full((p, k), -1, np.int64)
        self._centre = np.zeros((p, k), complex)
        for i, pc in enumerate(pieces):
            for j, (a, b, sig, centre) in enumerate(pc):
                self._start[i, j], self._end[i, j], self._signal[i, j], self._centre[i, j] = a, b, sig, centre
        self._rows = np.arange(p)
        # Passed crossings: start from the first crossing that ends after s (per lap on a loop).
        lap_s = np.where(self.loop, np.mod(self.s_m, self.length_m), self.s_m)
        lap = np.where(self.loop, np.floor_divide(self.s_m, self.length_m), 0)
        self._passed = (self._end <= lap_s[:, None]).sum(axis=1) + lap.astype(np.int64) * self._count
        self.on_road = np.zeros(p, bool)
        self._vehicle_across = np.zeros(p, bool)  # a vehicle stands across the way (`_blocked`)

    def path_s_m(self) -> np.ndarray:
        """(P,) position along each path [m] (modulo the length on a loop)."""
        return np.where(self.loop, np.mod(self.s_m, self.length_m), np.minimum(self.s_m, self.length_m))

    def _next_crossing(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start, end, signal, centre) of each row's next crossing, in distance walked."""
        j = self._passed % self._count
        lap = np.where(self.loop, (self._passed // self._count) * self.length_m, 0.0)
        start = self._start[self._rows, j] + lap
        end = self._end[self._rows, j] + lap
        beyond = ~self.loop & (self._passed >= self._count)
        start[beyond] = end[beyond] = np.inf
        return start, end, self._signal[self._rows, j], self._centre[self._rows, j]

    def step(
        self,
        dt_s: float,
        signal_states: np.ndarray,
        vehicles: tuple[np.ndarray, ...],
        walker_xy: np.ndarray,
        walker_yaw: np.ndarray,
        decide: bool = True,
    ) -> None:
        """Advance every walker by dt_s [s]. signal_states: (S,) codes of every signal group now;
        vehicles: (xy as x + iy, speed, yaw, half length, half width), (M,) each, of the vehicles
        pedestrians give way to; walker_xy (P,) complex and walker_yaw (P,): where each walker
        stands and faces now; decide: look again for vehicles across their way (else as last time)."""
        vehicle_xy, vehicle_speed, vehicle_yaw, half_length, half_width = vehicles
        start, end, signal, centre = self._next_crossing()
        passed = self.s_m >= end
        if passed.any():
            self._passed += passed
            start, end, signal, centre = self._next_crossing()
        step = self.walk_speed_mps * dt_s
        arriving = (self.s_m <= start - HOLD_BACK_M + 1e-9) & (self.s_m + step > start - HOLD_BACK_M)
        wait = self.held.copy()
        if arriving.any():
            wait |= arriving & ~self._may_cross(signal, centre, signal_states, vehicle_xy, vehicle_speed)
        if decide and vehicle_xy.size:
            self._vehicle_across = _blocked(
                walker_xy, walker_yaw, vehicle_xy, vehicle_yaw, half_length, half_width
            )
        wait |= self._vehicle_across
        new_s = np.where(
            wait, np.where(arriving, np.maximum(self.s_m, start - HOLD_BACK_M), self.s_m), self.s_m + step
        )
        new_s = np.where(self.loop, new_s, np.minimum(new_s, self.length_m))
        self.speed_mps = (new_s - self.s_m) / dt_s
        self.s_m = new_s
        self.on_road = (new_s >= start - HOLD_BACK_M) & (new_s < end)

    def _may_cross(self, signal, centre, signal_states, vehicle_xy, vehicle_speed) -> np.ndarray:
        """(P,) whether each row may step onto its next crossing now."""
        lit = signal >= 0
        walk_signal = signal_states[np.where(lit, signal, 0)] == RED
        if vehicle_xy.size == 0:
            return np.where(lit, walk_signal, True)
        dist = np.abs(centre[:, None] - vehicle_xy[None, :])  # (P, M)
        reach = CLEAR_TIME_S * vehicle_speed + np.where(vehicle_speed > MOVING_MPS, CLEAR_M, 0.0)
        clear = ~(dist < reach[None, :]).any(axis=1)
        return np.where(lit, walk_signal, clear)


def _blocked(
    walker_xy: np.ndarray,
    walker_yaw: np.ndarray,
    xy: np.ndarray,
    yaw: np.ndarray,
    half_length: np.ndarray,
    half_width: np.ndarray,
) -> np.ndarray:
    """(P,) whether a vehicle stands across each walker's way: the point BLOCK_AHEAD_M ahead of it
    lies in the footprint of one of the M vehicles (centre xy as x + iy, yaw, half extents), grown
    sideways by BLOCK_CLEARANCE_M, and the vehicle's nose and tail lie on either side of the
    walker's line, each BLOCK_ACROSS_M or more from it. A corner that only pokes into the way is
    walked round (that vehicle waits for the walker)."""
    to_frame = np.exp(-1j * yaw)[None, :]
    ahead = walker_xy + BLOCK_AHEAD_M * np.exp(1j * walker_yaw)
    rel = (ahead[:, None] - xy[None, :]) * to_frame  # (P, M) in each vehicle's frame
    inside = (np.abs(rel.real) < half_length) & (np.abs(rel.imag) < half_width + BLOCK_CLEARANCE_M)
    # Signed distances of the nose and the tail from the walker's line, in the vehicle's frame.
    now = (walker_xy[:, None] - xy[None, :]) * to_frame
    way = np.exp(1j * walker_yaw)[:, None] * to_frame
    nose = (np.conj(way) * (half_length - now)).imag
    tail = (np.conj(way) * (-half_length - now)).imag
    across = (nose * tail < 0.0) & (np.minimum(np.abs(nose), np.abs(tail)) >= BLOCK_ACROSS_M)
    return (inside & across).any(axis=1)


def _crossings(
    town: Town, path: Road, signal_index: dict[int, int]
) -> list[tuple[float, float, int, complex]]:
    """The stretches of `path` on the road: (start s, end s, signal index or -1, centre as x + iy).
    A stretch at a signalised junction's arm gets the signal of that arm's approach."""
    on_road = town.drivable(path.xy_m)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on_road.astype(int), [0]))))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        s0, s1 = float(path.s_m[a]), float(path.s_m[b - 1])
        mid = path.xy_m[(a + b - 1) // 2]
        out.append((s0, s1, _walk_signal(town, mid, signal_index), complex(mid[0], mid[1])))
    return out


def _walk_signal(town: Town, xy: np.ndarray, signal_index: dict[int, int]) -> int:
    """Index of the signal whose red lets a pedestrian cross at `xy`, -1 when none: the approach
    signal of the arm of the nearest signalised junction whose crosswalk it is on."""
    best = -1, np.inf
    for n in town.signals:
        c = np.array(town.nodes[n].xy_m)
        dist = float(np.hypot(*(xy - c)))
        reach = town.half_size_m[n] + 2 * HOLD_BACK_M + 3.0
        if dist > reach or dist >= best[1]:
            continue
        rel = np.arctan2(xy[1] - c[1], xy[0] - c[0])
        arm = min(town.arms[n], key=lambda a: abs(np.angle(np.exp(1j * (a.heading_rad - rel)))))
        _, sid = town.approach_control(n, arm.street)
        if sid >= 0:
            best = signal_index[sid], dist
    return best[0]
