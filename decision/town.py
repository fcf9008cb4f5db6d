"""Towns: a graph of two-way streets joined at junctions, and routes through it.

A `Town` is a set of nodes (junctions, bends and dead ends) and straight two-way streets between
them, meeting at right angles (a grid of blocks, as MetaDrive's procedural maps). Each junction is a
square box of half size h = (lanes x lane width + parking lane) + CORNER_RADIUS_M around its node;
a street runs between the boxes of its two nodes, with a crosswalk and a stop line at each junction
end, and a sidewalk with a kerb on both sides (dead ends, with no box, leave a trap: rejected).

The key to everything downstream: a route through the town is one `decision.route.Road` (the
"corridor"), built from the streets it follows (straight segments) and the junctions it crosses (a
straight of 2h, or a quarter arc of radius h for a turn), with lanes in both directions
(`Road.oncoming_lanes`). The planner, the criteria, the traffic and the ground texture all work in
its Frenet coordinates, along any route. `Route.junctions` says where it crosses each junction, with
the control of its approach (signal, stop sign, yield, priority).

Traffic lights: a signalised node has a `SignalPlan`, a cycle of phases; each phase gives green to
some of the node's arms (by street id) for `green_s`, then yellow for `yellow_s`, then all red for
`all_red_s`. One signal group per (node, phase), id `node * MAX_PHASES + phase`. The state of a
signal is a pure function of time (`Town.signal_state`).

Towns come from YAML (`parse_town`, conf/town/*.yaml) or from the seeded generator
(`generate_town`). Bad maps raise a one-line `MapError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from decision.route import Approach, JunctionCrossing, Road, Route, Segment
from perception.errors import InputError
from perception.types import SIGNAL_STATES

CORNER_RADIUS_M = 5.0  # kerb radius at junction corners: the box reaches this far beyond the street
CROSSWALK_WIDTH_M = 3.0  # along the street, at junction ends
STOP_LINE_SETBACK_M = 1.0  # the stop line is this far before the crosswalk (or the box)
FAR_LIGHT_SETBACK_M = 2.0  # a far-side traffic light stands this far beyond the junction box
SIDEWALK_WIDTH_M = 2.5
KERB_WIDTH_M = 0.2
MAX_PHASES = 8  # signal ids: node * MAX_PHASES + phase
CONTROLS = ("signal", "stop", "yield", "none")  # node controls; "none": equal roads, give way
ANGLE_TOL_RAD = 1e-6
MIN_STREET_M = 10.0  # drivable length between two junction boxes, at least


class MapError(InputError):
    """A town map that cannot be used (one line naming the problem)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A junction, bend or dead end at (x, y) [m]. `control` applies to the arms not in `major`
    (those have priority); a signal applies to every arm."""

    id: int
    xy_m: tuple[float, float]
    control: str = "none"
    major: tuple[int, ...] = ()  # street ids with right of way (control "stop" / "yield")


@dataclass(frozen=True, slots=True)
class Street:
    """A straight two-way street from node `a` to node `b` ("forward" runs a -> b)."""

    id: int
    a: int
    b: int
    speed_limit_mps: float = 13.9
    crosswalks: bool = True


@dataclass(frozen=True, slots=True)
class Phase:
    green: tuple[int, ...]  # street ids (arms of the node) with green
    green_s: float


@dataclass(frozen=True, slots=True)
class SignalPlan:
    node: int
    phases: tuple[Phase, ...]
    yellow_s: float = 3.0
    all_red_s: float = 1.0
    offset_s: float = 0.0

    @property
    def cycle_s(self) -> float:
        return sum(ph.green_s + self.yellow_s + self.all_red_s for ph in self.phases)


@dataclass(frozen=True, slots=True)
class Arm:
    """A street leaving node `node` with heading `heading_rad` (away from the node)."""

    street: int
    node: int
    heading_rad: float
    other: int  # the node at the street's other end


@dataclass(frozen=True, slots=True)
class Leg:
    """A street driven in one direction: `forward` from its node a to its node b, else b to a."""

    street: int
    forward: bool  # a -> b

    def reverse(self) -> Leg:
        return Leg(self.street, not self.forward)


@dataclass
class Town:
    """A town map. See the module docstring. `lanes`: lanes per direction on every street."""

    nodes: dict[int, Node]
    streets: dict[int, Street]
    lanes: int = 1
    lane_width_m: float = 3.5
    signals: dict[int, SignalPlan] = field(default_factory=dict)
    name: str = "town"
    parking_m: float = 0.0  # a parking lane this wide along both kerbs of every street

    @property
    def half_width_m(self) -> float:
        """A street's paved half width [m]: its lanes one way and the parking lane."""
        return self.lanes * self.lane_width_m + self.parking_m

    def __post_init__(self):
        self._signal_table: np.ndarray | None = None  # see signal_codes
        if not 0.0 <= self.parking_m <= 4.0:
            raise MapError(f"town.parking_lane_m={self.parking_m} is out of range: [0, 4]")
        if not 1 <= self.lanes <= 3:
            raise MapError(f"town.lanes={self.lanes} is out of range: 1 to 3 per direction")
        self.arms: dict[int, list[Arm]] = {n: [] for n in self.nodes}
        for st in self.streets.values():
            for end in (st.a, st.b):
                if end not in self.nodes:
                    raise MapError(f"town: street {st.id} names node {end}, which does not exist")
            if st.a == st.b:
                raise MapError(f"town: street {st.id} starts and ends at node {st.a}")
            (ax, ay), (bx, by) = self.nodes[st.a].xy_m, self.nodes[st.b].xy_m
            heading = math.atan2(by - ay, bx - ax)
            self.arms[st.a].append(Arm(st.id, st.a, heading, st.b))
            self.arms[st.b].append(Arm(st.id, st.b, _wrap(heading + math.pi), st.a))
        self._check_nodes()
        self.half_size_m = {n: self._half_size(n) for n in self.nodes}
        self._check_streets()
        self._check_signals()
        self.graph = self._lane_graph()
        self._check_connected()

    # ------------------------------------------------------------------ checks
    def _check_nodes(self) -> None:
        for n, node in self.nodes.items():
            arms = self.arms[n]
            if not arms:
                raise MapError(f"town: node {n} is not on any street (a disconnected node)")
            if node.control not in CONTROLS:
                raise MapError(f"town: node {n} control {node.control!r} is not one of {', '.join(CONTROLS)}")
            for i, a in enumerate(arms):
                for b in arms[i + 1 :]:
                    rel = _wrap(a.heading_rad - b.heading_rad)
                    if abs(rel) < ANGLE_TOL_RAD:
                        raise MapError(f"town: streets {a.street} and {b.street} overlap at node {n}")
                    if abs(abs(rel) - math.pi / 2) > 1e-3 and abs(abs(rel) - math.pi) > 1e-3:
                        raise MapError(
                            f"town: streets {a.street} and {b.street} meet at node {n} at "
                            f"{math.degrees(abs(rel)):.0f} degrees; streets meet at right angles"
                        )
            for s in node.major:
                if s not in {a.street for a in arms}:
                    raise MapError(
                        f"town: node {n} gives priority to street {s}, which is not one of its arms"
                    )

    def _half_size(self, n: int) -> float:
        """A junction's box half size [m]; 0 for a dead end (the street just ends)."""
        return 0.0 if len(self.arms[n]) == 1 else self.half_width_m + CORNER_RADIUS_M

    def _check_streets(self) -> None:
        ids = sorted(self.streets)
        for st in self.streets.values():
            free = self.street_length_m(st.id) - self.half_size_m[st.a] - self.half_size_m[st.b]
            if free < MIN_STREET_M:
                raise MapError(
                    f"town: street {st.id} is too short: {free:.1f} m between its junctions, "
                    f"at least {MIN_STREET_M:.0f} m (its lanes would overlap the junctions')"
                )
        # Streets that cross each other away from a node would put lanes on top of each other.
        for i, s1 in enumerate(ids):
            for s2 in ids[i + 1 :]:
                if self._cross(self.streets[s1], self.streets[s2]):
                    raise MapError(f"town: streets {s1} and {s2} cross away from a node (overlapping lanes)")

    def _cross(self, s1: Street, s2: Street) -> bool:
        """Whether two streets' paved areas overlap away from a node. (Streets that share a node and
        leave it the same way, two streets between the same nodes among them, are `_check_nodes`'
        "overlap": they meet at 0 degrees.)"""
        if {s1.a, s1.b} & {s2.a, s2.b}:
            return False
        p1, p2 = np.array(self.nodes[s1.a].xy_m), np.array(self.nodes[s1.b].xy_m)
        q1, q2 = np.array(self.nodes[s2.a].xy_m), np.array(self.nodes[s2.b].xy_m)
        reach = 2 * (self.half_width_m + SIDEWALK_WIDTH_M)
        return _segment_distance(p1, p2, q1, q2) < reach

    def _check_signals(self) -> None:
        for n, plan in self.signals.items():
            if n not in self.nodes:
                raise MapError(f"town: a signal plan names node {n}, which does not exist")
            if self.nodes[n].control != "signal":
                raise MapError(
                    f"town: node {n} has a signal plan but its control is {self.nodes[n].control!r}"
                )
            if not 1 <= len(plan.phases) <= MAX_PHASES:
                raise MapError(f"town: the signal plan of node {n} needs 1 to {MAX_PHASES} phases")
            arms = {a.street for a in self.arms[n]}
            seen: set[int] = set()
            for ph in plan.phases:
                for s in ph.green:
                    if s not in arms:
                        raise MapError(
                            f"town: a light at node {n} names approach street {s}, which does not meet it"
                        )
                seen |= set(ph.green)
            if arms - seen:
                raise MapError(f"town: no phase at node {n} gives green to street {min(arms - seen)}")
        for n, node in self.nodes.items():
            if node.control == "signal" and n not in self.signals:
                self.signals[n] = default_plan(self, n)

    def _lane_graph(self) -> nx.DiGraph:
        """Directed streets (Legs) joined through junctions; edges carry the turn and the length."""
        g = nx.DiGraph()
        for st in self.streets.values():
            for leg in (Leg(st.id, True), Leg(st.id, False)):
                g.add_node(leg, length_m=self.leg_free_m(leg))
        for leg in list(g.nodes):
            end = self.leg_end(leg)
            for arm in self.arms[end]:
                if arm.street == leg.street:
                    continue  # no U-turns
                turn = self.turn(leg, arm)
                out = Leg(arm.street, self.streets[arm.street].a == end)
                g.add_edge(leg, out, turn=turn, length_m=self.leg_free_m(out) + self.turn_length_m(end, turn))
        return g

    def _check_connected(self) -> None:
        """One piece (every street reachable from every other, ignoring directions) with no trap
        (every directed street leads on: a street ending at a dead end is a trap, as there are no
        U-turns). A goal may still be unreachable in the direction driven (`legs_to` says so)."""
        for leg in self.graph.nodes:
            if self.graph.out_degree(leg) == 0:
                raise MapError(
                    f"town: street {leg.street} ends at node {self.leg_end(leg)} with no way on (a dead end)"
                )
        streets = nx.MultiGraph([(st.a, st.b, {"street": st.id}) for st in self.streets.values()])
        pieces = list(nx.connected_components(streets))
        if len(pieces) > 1:
            small = min(pieces, key=len)
            street = min(st.id for st in self.streets.values() if st.a in small)
            raise MapError(f"town: street {street} is disconnected from the rest of the town")

    # ------------------------------------------------------------------ geometry
    def street_length_m(self, street: int) -> float:
        st = self.streets[street]
        (ax, ay), (bx, by) = self.nodes[st.a].xy_m, self.nodes[st.b].xy_m
        return math.hypot(bx - ax, by - ay)

    def leg_start(self, leg: Leg) -> int:
        st = self.streets[leg.street]
        return st.a if leg.forward else st.b

    def leg_end(self, leg: Leg) -> int:
        st = self.streets[leg.street]
        return st.b if leg.forward else st.a

    def leg_heading(self, leg: Leg) -> float:
        (ax, ay), (bx, by) = self.nodes[self.leg_start(leg)].xy_m, self.nodes[self.leg_end(leg)].xy_m
        return math.atan2(by - ay, bx - ax)

    def leg_free_m(self, leg: Leg) -> float:
        """Length of the street between its junction boxes [m]."""
        st = self.streets[leg.street]
        return self.street_length_m(leg.street) - self.half_size_m[st.a] - self.half_size_m[st.b]

    def turn(self, leg: Leg, out: Arm) -> str:
        rel = _wrap(out.heading_rad - self.leg_heading(leg))
        return "straight" if abs(rel) < 0.1 else ("left" if rel > 0 else "right")

    def turn_length_m(self, node: int, turn: str) -> float:
        h = self.half_size_m[node]
        return 2 * h if turn == "straight" else 0.5 * math.pi * h

    def approach_control(self, node: int, street: int) -> tuple[str, int]:
        """(control, signal id) of the approach to `node` along `street`."""
        nd = self.nodes[node]
        if len(self.arms[node]) <= 2:
            return "priority", -1  # a bend or a dead end
        if nd.control == "signal":
            plan = self.signals[node]
            phase = next(k for k, ph in enumerate(plan.phases) if street in ph.green)
            return "signal", node * MAX_PHASES + phase
        if street in nd.major:
            return "priority", -1
        return ("yield" if nd.control == "none" else nd.control), -1

    def stop_setback_m(self, node: int, street: int) -> float:
        """Distance from the junction box back to the stop line of that approach [m]."""
        cross = self.streets[street].crosswalks and len(self.arms[node]) >= 3
        return (CROSSWALK_WIDTH_M if cross else 0.0) + STOP_LINE_SETBACK_M

    # ------------------------------------------------------------------ signals
    def signal_ids(self) -> list[int]:
        return [
            n * MAX_PHASES + k for n, plan in sorted(self.signals.items()) for k in range(len(plan.phases))
        ]

    def signal_codes(self, t_s: float) -> np.ndarray:
        """(S,) the state of every signal group at time t [s], in `signal_ids()` order, as indices
        into SIGNAL_STATES (0 green, 1 yellow, 2 red): each group is green from its phase's start in
        the (offset) cycle for green_s, then yellow for yellow_s, else red. The one copy of the
        phase rule; the table is made when first needed (the signal plans are fixed by then)."""
        if self._signal_table is None:
            rows = []
            for _, plan in sorted(self.signals.items()):
                start = 0.0
                for ph in plan.phases:
                    rows.append((plan.cycle_s, plan.offset_s, start, ph.green_s, plan.yellow_s))
                    start += ph.green_s + plan.yellow_s + plan.all_red_s
            self._signal_table = np.array(rows, float).reshape(-1, 5).T
            self._signal_index = {sid: k for k, sid in enumerate(self.signal_ids())}
        cycle, offset, start, green, yellow = self._signal_table
        t = np.mod(t_s + offset, cycle) - start
        return np.where((t >= 0) & (t < green), 0, np.where((t >= 0) & (t < green + yellow), 1, 2))

    def signal_state(self, signal_id: int, t_s: float) -> str:
        codes = self.signal_codes(t_s)
        return SIGNAL_STATES[int(codes[self._signal_index[signal_id]])]

    def signal_states(self, t_s: float) -> tuple[tuple[int, str], ...]:
        codes = self.signal_codes(t_s).tolist()
        return tuple((sid, SIGNAL_STATES[c]) for sid, c in zip(self.signal_ids(), codes, strict=True))

    # ------------------------------------------------------------------ routes
    def legs_through(self, start: Leg, turns: list[str]) -> list[Leg]:
        """The legs driven from `start` taking `turns` at the junctions in order (MapError if a turn
        is not possible there)."""
        legs = [start]
        for k, turn in enumerate(turns):
            options = {d["turn"]: out for _, out, d in self.graph.out_edges(legs[-1], data=True)}
            if turn not in options:
                node = self.leg_end(legs[-1])
                raise MapError(
                    f"route: turn {k} ({turn}) is not possible at node {node}: it allows {', '.join(sorted(options)) or 'nothing'}"
                )
            legs.append(options[turn])
        return legs

    def legs_to(self, start: Leg, goal_street: int) -> list[Leg]:
        """The shortest legs from `start` to either direction of `goal_street`."""
        if goal_street not in self.streets:
            raise MapError(f"route: goal street {goal_street} does not exist")
        best = None
        for goal in (Leg(goal_street, True), Leg(goal_street, False)):
            try:
                length, path = nx.single_source_dijkstra(self.graph, start, goal, weight="length_m")
            except nx.NetworkXNoPath:
                continue
            if best is None or length < best[0]:
                best = (length, path)
        if best is None:
            raise MapError(f"route: goal street {goal_street} cannot be reached from street {start.street}")
        return best[1]

    def random_legs(
        self, rng: np.random.Generator, start: Leg, min_length_m: float, turns: set[str] | None = None
    ) -> list[Leg]:
        """A random walk from `start` (no U-turns) at least `min_length_m` long, taking only `turns`
        where a junction offers one of them (None: any)."""
        legs, length = [start], self.leg_free_m(start)
        while length < min_length_m:
            outs = sorted(
                self.graph.out_edges(legs[-1], data=True), key=lambda e: (e[1].street, e[1].forward)
            )
            if turns is not None:
                outs = [e for e in outs if e[2]["turn"] in turns] or outs
            _, out, data = outs[int(rng.integers(len(outs)))]
            legs.append(out)
            length += data["length_m"]
        return legs

    def turns_of(self, legs: list[Leg]) -> list[str]:
        return [self.graph.edges[a, b]["turn"] for a, b in zip(legs, legs[1:], strict=False)]

    def corridor(self, legs: list[Leg]) -> tuple[Road, list[JunctionCrossing]]:
        """The `Road` along `legs` (from the start box of the first, to the end box of the last) and
        the junctions it crosses. The reference line is the street centre line; lanes 0.. drive along
        s, the `lanes` leftmost are oncoming."""
        segments, limits, crossings = [], [], []
        s = 0.0
        for k, leg in enumerate(legs):
            limit = self.streets[leg.street].speed_limit_mps
            limits.append((s, limit))
            free = self.leg_free_m(leg)
            segments.append(Segment("straight", free))
            s += free
            if k + 1 == len(legs):
                break
            node, nxt = self.leg_end(leg), legs[k + 1]
            turn = self.graph.edges[leg, nxt]["turn"]
            h = self.half_size_m[node]
            control, signal = self.approach_control(node, leg.street)
            length = self.turn_length_m(node, turn)
            crossings.append(
                JunctionCrossing(
                    junction_id=node,
                    stop_s_m=s - self.stop_setback_m(node, leg.street),
                    entry_s_m=s,
                    exit_s_m=s + length,
                    turn=turn,
                    control=control,
                    signal_id=signal,
                    centre_xy_m=self.nodes[node].xy_m,
                    half_size_m=h,
                    heading_rad=self.leg_heading(leg),
                    approaches=self.approaches(node, leg),
                )
            )
            radius = {"left": h, "right": -h}.get(turn)
            segments.append(Segment("straight", length) if radius is None else Segment("arc", length, radius))
            limits.append((s, min(limit, self.streets[nxt.street].speed_limit_mps)))
            s += length
        first = legs[0]
        heading = self.leg_heading(first)
        x0, y0 = self.nodes[self.leg_start(first)].xy_m
        start_out = self.half_size_m[self.leg_start(first)]
        origin = (x0 + start_out * math.cos(heading), y0 + start_out * math.sin(heading), heading)
        w = self.lane_width_m
        limit = max(v for _, v in limits)
        road = Road(segments, 2 * self.lanes, w, limit, origin, self.lanes, tuple(limits), self.parking_m)
        return road, crossings

    def approaches(self, node: int, leg: Leg) -> tuple[Approach, ...]:
        """The lanes coming into `node` from its arms other than the one `leg` arrives by (traffic
        keeps right: lane k of an arm lies (k + 1/2) lane widths right of its traffic's heading)."""
        cx, cy = self.nodes[node].xy_m
        h, w = self.half_size_m[node], self.lane_width_m
        ego_heading = self.leg_heading(leg)
        out = []
        for arm in self.arms[node]:
            if arm.street == leg.street:
                continue
            rel = _wrap(arm.heading_rad - ego_heading)
            side = "ahead" if abs(rel) < 0.25 * math.pi else ("left" if rel > 0 else "right")
            heading = _wrap(arm.heading_rad + math.pi)
            edge_x, edge_y = cx + h * math.cos(arm.heading_rad), cy + h * math.sin(arm.heading_rad)
            free, limit = self.leg_free_m(Leg(arm.street, True)), self.streets[arm.street].speed_limit_mps
            control, _ = self.approach_control(node, arm.street)
            setback = self.stop_setback_m(node, arm.street)
            for k in range(self.lanes):
                off = (k + 0.5) * w
                xy = (edge_x + off * math.sin(heading), edge_y - off * math.cos(heading))
                out.append(Approach(side, xy, heading, free, limit, control, setback))
        return tuple(out)

    def route(
        self,
        legs: list[Leg],
        start_m: float,
        goal_m: float,
        cruise_speed_mps: float,
        lane: int = 0,
    ) -> Route:
        """The ego's route along `legs`: from `start_m` into the first leg (from its start box) to
        `goal_m` into the last (both measured from the leg's start box). The corridor runs from the
        first leg's start box to the last leg's end box."""
        first_free, last_free = self.leg_free_m(legs[0]), self.leg_free_m(legs[-1])
        if not 0 <= start_m <= first_free or (len(legs) == 1 and goal_m <= start_m):
            raise MapError(f"route: start_m={start_m} is not within street {legs[0].street} before the goal")
        if not 0 < goal_m <= last_free:
            raise MapError(
                f"route: goal_m={goal_m} is not within street {legs[-1].street} ({last_free:.0f} m)"
            )
        road, crossings = self.corridor(legs)
        end_s = road.length_m - last_free + goal_m
        return Route(road, float(start_m), float(end_s), lane, cruise_speed_mps, tuple(crossings))

    # ------------------------------------------------------------------ things to draw
    def light_poles(self) -> list[tuple[float, float, float, int]]:
        """(x, y, yaw, signal id) of two lights per signalised approach, both facing the approaching
        traffic (yaw points towards it): one on the right kerb at the stop line, and one on the far
        side of the junction, on the same side, which a car waiting at the line still sees (the
        near one is then above and beside its cameras), as real junctions have."""
        poles = []
        for n in sorted(self.signals):
            for arm in self.arms[n]:
                _, sid = self.approach_control(n, arm.street)
                h = self.half_size_m[n]
                c, s = math.cos(arm.heading_rad), math.sin(arm.heading_rad)
                near = h + self.stop_setback_m(n, arm.street) - STOP_LINE_SETBACK_M
                # Traffic arrives heading -arm; its right side is to the arm's left (-s, c) ... rotated.
                side = self.half_width_m + 0.8
                for along in (near, -h - FAR_LIGHT_SETBACK_M):
                    x = self.nodes[n].xy_m[0] + along * c - side * s
                    y = self.nodes[n].xy_m[1] + along * s + side * c
                    poles.append((x, y, arm.heading_rad, sid))
        return poles

    def stop_signs(self) -> list[tuple[float, float, float]]:
        """(x, y, yaw) of each stop sign, at the right kerb of every approach with control "stop"."""
        signs = []
        for n in sorted(self.nodes):
            for arm in self.arms[n]:
                if self.approach_control(n, arm.street)[0] != "stop":
                    continue
                h = self.half_size_m[n] + self.stop_setback_m(n, arm.street)
                c, s = math.cos(arm.heading_rad), math.sin(arm.heading_rad)
                side = self.half_width_m + 0.8
                x = self.nodes[n].xy_m[0] + h * c - side * s
                y = self.nodes[n].xy_m[1] + h * s + side * c
                signs.append((x, y, arm.heading_rad))
        return signs

    def bounds_m(self) -> tuple[float, float, float, float]:
        xy = np.array([nd.xy_m for nd in self.nodes.values()])
        return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())

    def drivable(self, xy_m: np.ndarray) -> np.ndarray:
        """Whether each point (N, 2) lies on a street or in a junction box."""
        pts = np.atleast_2d(np.asarray(xy_m, float))
        inside = np.zeros(len(pts), bool)
        half = self.half_width_m
        for st in self.streets.values():
            a, b = np.array(self.nodes[st.a].xy_m), np.array(self.nodes[st.b].xy_m)
            u = (b - a) / np.linalg.norm(b - a)
            rel = pts - a
            along, across = rel @ u, rel @ np.array([-u[1], u[0]])
            inside |= (along >= 0) & (along <= np.linalg.norm(b - a)) & (np.abs(across) <= half)
        for n, h in self.half_size_m.items():
            if h > 0:
                c = np.array(self.nodes[n].xy_m)
                heading = self.arms[n][0].heading_rad
                rot = np.array(
                    [[math.cos(heading), math.sin(heading)], [-math.sin(heading), math.cos(heading)]]
                )
                local = (pts - c) @ rot.T
                inside |= np.all(np.abs(local) <= h, axis=1)
        return inside


def default_plan(town: Town, node: int, green_s: float = 12.0, offset_s: float = 0.0) -> SignalPlan:
    """Two phases: the arms along one axis, then the others."""
    arms = town.arms[node]
    h0 = arms[0].heading_rad
    axis0 = tuple(sorted(a.street for a in arms if abs(math.sin(a.heading_rad - h0)) < 0.5))
    axis1 = tuple(sorted(a.street for a in arms if a.street not in axis0))
    phases = tuple(Phase(g, green_s) for g in (axis0, axis1) if g)
    return SignalPlan(node, phases, offset_s=offset_s)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _segment_distance(p1, p2, q1, q2) -> float:
    """Shortest distance between segments p1p2 and q1q2 (2D)."""

    def point_seg(p, a, b):
        ab = b - a
        t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
        return float(np.linalg.norm(p - (a + t * ab)))

    d1, d2 = p2 - p1, q2 - q1
    den = d1[0] * d2[1] - d1[1] * d2[0]
    if abs(den) > 1e-12:
        r = q1 - p1
        t = (r[0] * d2[1] - r[1] * d2[0]) / den
        u = (r[0] * d1[1] - r[1] * d1[0]) / den
        if 0 <= t <= 1 and 0 <= u <= 1:
            return 0.0
    return min(point_seg(p1, q1, q2), point_seg(p2, q1, q2), point_seg(q1, p1, p2), point_seg(q2, p1, p2))
