"""IDM and MOBIL for many vehicles at once: the traffic model's driver models on its row arrays.

These compute what decision/idm.py does (the same IDM and MOBIL), arranged for the traffic
model's hot path, where each numpy call costs more than its arithmetic on a few dozen rows: IDM
for every row in a dozen in-place operations, taking 1 / v0 and returning its interaction term as
well (MOBIL's prefilter reads it); MOBIL, for the few vehicles deciding on a tick, in plain floats
over the rows of the two neighbouring lanes. Rows are those of `sim.traffic.traffic.Traffic` (R = actors,
ego, road-end wall).
"""

from __future__ import annotations

import math

import numpy as np

from decision.idm import IDMParams
from sim.config import TrafficConfig


def idm_rows(
    v: np.ndarray, v_lead: np.ndarray, gap_m: np.ndarray, inv_v0: np.ndarray, p: IDMParams
) -> tuple[np.ndarray, np.ndarray]:
    """IDM acceleration [m/s^2] and its interaction term (s*/gap)^2, elementwise (any shape).

    a = a_max (1 - (v/v0)^delta - (s*/gap)^2), s* = s0 + max(0, v (T + dv / (2 sqrt(a_max b)))),
    dv = v - v_lead; gap = inf is a free road; the gap is clamped at 0.1 m (a touching leader
    brakes hard rather than divide by zero). v >= 0; inv_v0 = 1 / max(v0, 0.1).
    """
    x = v - v_lead
    x *= 0.5 / math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2)
    x += p.time_headway_s
    x *= v
    np.maximum(x, 0.0, out=x)
    x += p.min_gap_m  # s*
    x /= np.maximum(gap_m, 0.1)
    x *= x  # (s*/gap)^2, zero for a free road
    acc = (v * inv_v0) ** p.delta + x
    acc *= -p.accel_max_mps2
    acc += p.accel_max_mps2
    return acc, x


def _idm_float(v: float, v_lead: float, gap_m: float, inv_v0: float, p: IDMParams) -> float:
    """`idm_rows` on plain floats (the same operations in the same order)."""
    x = (v - v_lead) * (0.5 / math.sqrt(p.accel_max_mps2 * p.decel_comfort_mps2))
    x = (x + p.time_headway_s) * v
    x = (x if x > 0.0 else 0.0) + p.min_gap_m
    x /= gap_m if gap_m > 0.1 else 0.1
    acc = (v * inv_v0) ** p.delta + x * x
    return acc * -p.accel_max_mps2 + p.accel_max_mps2


def choose_lane_changes(
    rows: np.ndarray,
    occ: np.ndarray,
    lead: np.ndarray,
    lgap: np.ndarray,
    acc_now: np.ndarray,
    interaction: np.ndarray,
    *,
    s: np.ndarray,
    v: np.ndarray,
    inv_v0: np.ndarray,
    half_len: np.ndarray,
    lane: np.ndarray,
    is_driver: np.ndarray,
    lane_count: int,
    cfg: TrafficConfig,
    idm: IDMParams,
) -> tuple[np.ndarray, np.ndarray]:
    """MOBIL left and right for the vehicles `rows` (indices, in their lanes); returns the rows
    that change and their new lanes, both (m,).

    Each vehicle looks at its new leader and new follower in the lane left and right of its own:
    MOBIL's incentive (own gain plus politeness times the followers' gains, above
    min_accel_gain_mps2) and safety (no follower, nor itself, made to brake harder than
    max_braking_imposed_mps2), and room fore and aft (more than min_gap_m to anything); the lane
    with the larger incentive wins (left on a tie). Vehicles merging into one lane at once are then
    checked against each other.

    A few vehicles decide at a time, each looking at the few rows of two lanes: plain floats,
    several times cheaper than numpy's per-call cost on (2 vehicles, rows) matrices.

    occ: (R, lanes) 0/1 lanes each row takes up as a leader; lead, lgap, acc_now, interaction: (R,)
    current leader row, bumper gap [m], IDM acceleration [m/s^2] and its interaction term;
    s, v, inv_v0, half_len, lane: (R,) row state; is_driver: (R,) rows whose IDM acceleration
    counts (vehicles and the ego).
    """
    no_change = rows[:0], lane[:0]
    polite = cfg.politeness != 0.0
    if not polite:
        # Only the own gain counts, and no lane gives more than the free road's IDM acceleration,
        # which exceeds acc_now by a_max (s*/gap)^2: skip those that could not gain enough.
        rows = rows[interaction[rows] > cfg.min_accel_gain_mps2 / idm.accel_max_mps2]
    if rows.size == 0:
        return no_change
    lane_of, row_of = np.nonzero(occ.T > 0.0)  # lane by lane, rows in order
    members: list[list[int]] = [[] for _ in range(lane_count)]
    for lane_j, j in zip(lane_of.tolist(), row_of.tolist(), strict=True):
        members[lane_j].append(j)
    s_, v_, hl, inv_v0_ = s.tolist(), v.tolist(), half_len.tolist(), inv_v0.tolist()
    acc_, driver = acc_now.tolist(), is_driver.tolist()
    old_gains = (
        _old_follower_gains(rows, lead, lgap, acc_now, s_, v_, hl, inv_v0_, driver, idm) if polite else {}
    )
    inf, s0, bmax = math.inf, cfg.min_gap_m, -cfg.max_braking_imposed_mps2
    chosen, new_lanes = [], []
    for i, lane_i in zip(rows.tolist(), lane[rows].tolist(), strict=True):
        best, best_lane = -inf, -1
        for cand in (lane_i + 1, lane_i - 1):  # left, then right
            if not 0 <= cand < lane_count:
                continue
            # New leader (least gap ahead), new follower (least gap behind, a driver), and the least
            # gap to anything behind or alongside; the first row wins a tie, row 0 stands for none.
            g_lead = g_back = g_fol = inf
            new_lead = new_fol = 0
            for j in members[cand]:
                if j == i:
                    continue
                ds, hs = s_[j] - s_[i], hl[j] + hl[i]
                if ds > 0.0:
                    if ds - hs < g_lead:
                        g_lead, new_lead = ds - hs, j
                else:
                    g = -(ds + hs)
                    g_back = min(g_back, g)
                    if driver[j] and g < g_fol:
                        g_fol, new_fol = g, j
            self_after = _idm_float(v_[i], v_[new_lead], g_lead, inv_v0_[i], idm)
            fol_after = _idm_float(v_[new_fol], v_[i], g_fol, inv_v0_[new_fol], idm)
            has_fol = g_fol < inf
            incentive = self_after - acc_[i]
            if polite:
                new_fol_gain = fol_after - acc_[new_fol] if has_fol else 0.0
                incentive += cfg.politeness * (new_fol_gain + old_gains.get(i, 0.0))
            incentive -= cfg.min_accel_gain_mps2
            ok = (fol_after >= bmax or not has_fol) and self_after >= bmax and g_lead > s0 and g_back > s0
            if ok and incentive > 0.0 and incentive > best:
                best, best_lane = incentive, cand
        if best_lane >= 0:
            chosen.append(i)
            new_lanes.append(best_lane)
    if not chosen:
        return no_change
    rows, new_lane = np.array(chosen, np.int64), np.array(new_lanes, np.int64)
    if rows.size > 1:  # vehicles merging into one lane at once: the rear ones must not need to brake
        sr, hr, vr = s[rows], half_len[rows], v[rows]
        gap_pair = sr - sr[:, None] - hr - hr[:, None]  # (m, m): row i behind column j
        ahead = (new_lane == new_lane[:, None]) & (
            (sr > sr[:, None]) | ((sr == sr[:, None]) & (rows < rows[:, None]))
        )
        a_pair, _ = idm_rows(vr[:, None], vr, gap_pair, inv_v0[rows][:, None], idm)
        unsafe = (a_pair < -cfg.max_braking_imposed_mps2) | (gap_pair <= cfg.min_gap_m)
        keep = ~(ahead & unsafe).any(axis=1)
        rows, new_lane = rows[keep], new_lane[keep]
    return rows, new_lane


def _old_follower_gains(
    rows: np.ndarray,
    lead: np.ndarray,
    lgap: np.ndarray,
    acc_now: np.ndarray,
    s: list[float],
    v: list[float],
    hl: list[float],
    inv_v0: list[float],
    driver: list[bool],
    idm: IDMParams,
) -> dict[int, float]:
    """Acceleration gain of each deciding vehicle's old follower (the nearest driver whose leader it
    is) were it to leave: that follower then follows the vehicle's own leader."""
    follower: dict[int, tuple[float, int]] = {}  # leader row -> (gap, nearest following driver)
    for j, (lead_j, gap_j) in enumerate(zip(lead.tolist(), lgap.tolist(), strict=True)):
        if driver[j] and gap_j < math.inf and gap_j < follower.get(lead_j, (math.inf, 0))[0]:
            follower[lead_j] = (gap_j, j)
    gains = {}
    for i in rows.tolist():
        if i not in follower:
            continue
        old = follower[i][1]
        my_lead, my_gap = lead.item(i), lgap.item(i)
        gap = s[my_lead] - s[old] - hl[my_lead] - hl[old] if my_gap < math.inf else math.inf
        gains[i] = _idm_float(v[old], v[my_lead], gap, inv_v0[old], idm) - acc_now.item(old)
    return gains
