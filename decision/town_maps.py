"""Where towns come from: a YAML map (conf/town/*.yaml, `parse_town`) or the seeded generator
(`generate_town`), a grid of blocks of varied sizes like MetaDrive's procedural maps.

A YAML map:

    name: crossing
    lanes: 1                  # per direction, every street
    lane_width_m: 3.5
    parking_lane_m: 2.2       # optional: a parking lane along both kerbs
    nodes:                    # control: signal | stop | yield | none; major: streets with priority
      - {id: 0, xy: [0, 0], control: signal}
      - {id: 1, xy: [120, 0]}
    streets:                  # two-way, straight, meeting at right angles
      - {id: 0, from: 0, to: 1, speed_limit_mps: 13.9, crosswalks: true}
    signals:                  # optional timing; a signalised node without one gets two phases
      - {node: 0, phases: [{green: [0, 2], green_s: 15}, {green: [1, 3], green_s: 10}],
         yellow_s: 3, all_red_s: 1, offset_s: 0}
"""

from __future__ import annotations

import math

import numpy as np

from decision.town import MapError, Node, Phase, SignalPlan, Street, Town, default_plan

TOP_KEYS = {"name", "lanes", "lane_width_m", "parking_lane_m", "nodes", "streets", "signals"}
NODE_KEYS = {"id", "xy", "control", "major"}
STREET_KEYS = {"id", "from", "to", "speed_limit_mps", "crosswalks"}
SIGNAL_KEYS = {"node", "phases", "yellow_s", "all_red_s", "offset_s"}
PHASE_KEYS = {"green", "green_s"}
SPEED_LIMITS_MPS = (8.3, 11.1, 13.9)  # 30, 40, 50 km/h


# ---------------------------------------------------------------------------- YAML
def parse_town(data) -> Town:
    """A `Town` from a mapping (the YAML); MapError naming the key on anything wrong."""
    _keys(data, TOP_KEYS, "town")
    for key in ("nodes", "streets"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise MapError(f"town.{key} must be a non-empty list")
    nodes = {}
    for i, nd in enumerate(data["nodes"]):
        where = f"town.nodes[{i}]"
        _keys(nd, NODE_KEYS, where, required={"id", "xy"})
        xy = nd["xy"]
        if not (isinstance(xy, list | tuple) and len(xy) == 2 and all(_is_number(v) for v in xy)):
            raise MapError(f"{where}.xy must be [x, y] in metres, got {xy!r}")
        node = Node(
            _int(nd["id"], f"{where}.id"),
            (float(xy[0]), float(xy[1])),
            str(nd.get("control", "none")),
            tuple(_int(s, f"{where}.major") for s in nd.get("major", ())),
        )
        if node.id in nodes:
            raise MapError(f"{where}.id={node.id} is used twice")
        nodes[node.id] = node
    streets = {}
    for i, st in enumerate(data["streets"]):
        where = f"town.streets[{i}]"
        _keys(st, STREET_KEYS, where, required={"id", "from", "to"})
        limit = st.get("speed_limit_mps", 13.9)
        if not (_is_number(limit) and 0 < limit <= 40):
            raise MapError(f"{where}.speed_limit_mps={limit!r} is out of range: (0, 40]")
        street = Street(
            _int(st["id"], f"{where}.id"),
            _int(st["from"], f"{where}.from"),
            _int(st["to"], f"{where}.to"),
            float(limit),
            bool(st.get("crosswalks", True)),
        )
        if street.id in streets:
            raise MapError(f"{where}.id={street.id} is used twice")
        streets[street.id] = street
    signals = {
        plan.node: plan
        for plan in (_signal(s, f"town.signals[{i}]") for i, s in enumerate(data.get("signals") or []))
    }
    lanes = data.get("lanes", 1)
    width = data.get("lane_width_m", 3.5)
    if not (_is_number(width) and 2.5 <= width <= 5.0):
        raise MapError(f"town.lane_width_m={width!r} is out of range: [2.5, 5]")
    parking = data.get("parking_lane_m", 0.0)
    if not _is_number(parking):
        raise MapError(f"town.parking_lane_m must be a number, got {parking!r}")
    name = str(data.get("name", "town"))
    return Town(nodes, streets, _int(lanes, "town.lanes"), float(width), signals, name, float(parking))


def _signal(sg, where: str) -> SignalPlan:
    _keys(sg, SIGNAL_KEYS, where, required={"node", "phases"})
    if not isinstance(sg["phases"], list) or not sg["phases"]:
        raise MapError(f"{where}.phases must be a non-empty list")
    phases = []
    for k, ph in enumerate(sg["phases"]):
        _keys(ph, PHASE_KEYS, f"{where}.phases[{k}]", required={"green"})
        green_s = _seconds(ph.get("green_s", 12.0), f"{where}.phases[{k}].green_s", low=1.0)
        phases.append(Phase(tuple(_int(s, f"{where}.phases[{k}].green") for s in ph["green"]), green_s))
    return SignalPlan(
        _int(sg["node"], f"{where}.node"),
        tuple(phases),
        _seconds(sg.get("yellow_s", 3.0), f"{where}.yellow_s", low=1.0),
        _seconds(sg.get("all_red_s", 1.0), f"{where}.all_red_s", low=0.0),
        _seconds(sg.get("offset_s", 0.0), f"{where}.offset_s", low=0.0),
    )


def _keys(d, allowed: set[str], where: str, required: set[str] = frozenset()) -> None:
    if not isinstance(d, dict):
        raise MapError(f"{where} must be a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise MapError(f"{where}.{unknown[0]} is not a key of a town map ({', '.join(sorted(allowed))})")
    missing = sorted(required - set(d))
    if missing:
        raise MapError(f"{where}.{missing[0]} is missing")


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise MapError(f"{where} must be an integer, got {v!r}")
    return v


def _seconds(v, where: str, low: float) -> float:
    if not (_is_number(v) and low <= v <= 600):
        raise MapError(f"{where}={v!r} is out of range: [{low:g}, 600] s")
    return float(v)


# ---------------------------------------------------------------------------- generator
def generate_town(
    rng: np.random.Generator,
    blocks: tuple[int, int] = (4, 3),
    block_m: tuple[float, float] = (60.0, 110.0),
    lanes: int | None = None,
    drop_fraction: float = 0.2,
    signal_p: float = 0.5,
    stop_p: float = 0.5,
) -> Town:
    """A procedural town: (blocks + 1) x (blocks + 1) grid nodes, block sides drawn from `block_m`,
    a `drop_fraction` of the streets between two 4-way junctions removed (T junctions, larger
    blocks), `lanes` per direction (1 or 2, drawn when None), speed limits per street.

    4-way junctions get a light with probability `signal_p`, else stop signs (all-way with
    probability `stop_p`, else on the minor street, the major one through); T junctions give
    priority to their through street, stop or yield on the stem. Same rng state, same town."""
    nx_, ny_ = blocks
    if nx_ < 1 or ny_ < 1:
        raise MapError(f"town: blocks={blocks} must be at least 1 x 1")
    lanes = int(rng.choice((1, 1, 2))) if lanes is None else lanes
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(*block_m, nx_))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(*block_m, ny_))])
    ids = {(i, j): i * (ny_ + 1) + j for i in range(nx_ + 1) for j in range(ny_ + 1)}
    edges = [((i, j), (i + 1, j)) for i in range(nx_) for j in range(ny_ + 1)]
    edges += [((i, j), (i, j + 1)) for i in range(nx_ + 1) for j in range(ny_)]
    degree = {k: 0 for k in ids}
    for a, b in edges:
        degree[a] += 1
        degree[b] += 1
    keep = []
    for k in rng.permutation(len(edges)):
        a, b = edges[k]
        if degree[a] == 4 and degree[b] == 4 and rng.random() < drop_fraction * 2:
            degree[a] -= 1
            degree[b] -= 1
        else:
            keep.append(edges[k])
    keep.sort()
    streets = {
        k: Street(k, ids[a], ids[b], float(rng.choice(SPEED_LIMITS_MPS)), True)
        for k, (a, b) in enumerate(keep)
    }
    nodes = {}
    for (i, j), n in ids.items():
        arms = [k for k, (a, b) in enumerate(keep) if n in (ids[a], ids[b])]
        nodes[n] = _node_control(rng, n, (float(xs[i]), float(ys[j])), arms, keep, ids, signal_p, stop_p)
    town = Town(nodes, streets, lanes, 3.5, {}, f"generated-{nx_}x{ny_}")
    for n in town.signals:  # varied timing: green 10-20 s, random offsets
        plan = default_plan(town, n, green_s=float(rng.uniform(10.0, 20.0)))
        town.signals[n] = SignalPlan(n, plan.phases, offset_s=float(rng.uniform(0.0, plan.cycle_s)))
    return town


def _node_control(rng, n: int, xy, arms: list[int], edges, ids, signal_p: float, stop_p: float) -> Node:
    """The control of one grid node from its arms (street ids)."""
    if len(arms) <= 2:
        return Node(n, xy)
    horizontal = tuple(k for k in arms if edges[k][0][1] == edges[k][1][1])
    vertical = tuple(k for k in arms if k not in horizontal)
    if len(arms) == 3:  # a T: the two collinear arms are the through street
        through = horizontal if len(horizontal) == 2 else vertical
        return Node(n, xy, "stop" if rng.random() < 0.5 else "yield", through)
    if rng.random() < signal_p:
        return Node(n, xy, "signal")
    if rng.random() < stop_p:
        return Node(n, xy, "stop")
    return Node(n, xy, "stop", horizontal if rng.random() < 0.5 else vertical)
