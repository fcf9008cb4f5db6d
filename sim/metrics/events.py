"""The typed events of a closed-loop run: what happened, when, and to whom.

Criteria (sim/metrics/criteria.py) emit them, the scores (sim/metrics/scores.py) are pure functions
of them, as CARLA scenario_runner's criteria emit traffic events that the leaderboard's statistics
manager turns into penalties.

`EventKind` is a `str` enum: a kind compares, hashes and serialises as its plain string value
("collision_vehicle"), so metrics.json and log.npz hold the same strings as before the enum, and
a dict keyed by kinds reads the same with either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE


class EventKind(str, Enum):
    """What an event is. The order here is the order of the counts in metrics.json."""

    COLLISION_VEHICLE = "collision_vehicle"
    COLLISION_PEDESTRIAN = "collision_pedestrian"
    COLLISION_STATIC = "collision_static"
    OFF_ROAD = "off_road"
    LANE_INVASION = "lane_invasion"
    ROUTE_COMPLETED = "route_completed"
    TIMEOUT = "timeout"
    BLOCKED = "blocked"
    # Towns (issue 12); appended, so that the counts above keep their order.
    RED_LIGHT = "red_light"  # CARLA TRAFFIC_LIGHT_INFRACTION
    STOP_SIGN = "stop_sign"  # CARLA STOP_INFRACTION
    WRONG_WAY = "wrong_way"  # CARLA WRONG_WAY_INFRACTION: entered a lane against traffic (informational)
    ROUTE_DEVIATION = "route_deviation"  # CARLA ROUTE_DEVIATION: left the route (ends the run)
    MIN_SPEED = "min_speed"  # CARLA MIN_SPEED_INFRACTION: `value` = ego speed as % of the traffic's
    SPEED_CHECKPOINT = "speed_checkpoint"  # every min-speed checkpoint, `value` as above (informational)
    YIELD_EMERGENCY_VEHICLE = "yield_emergency_vehicle"  # CARLA YIELD_TO_EMERGENCY_VEHICLE

    # The plain value in f-strings, str() and JSON keys (json_safe uses str(key)), not "EventKind.X".
    __str__ = str.__str__
    __format__ = str.__format__


EVENT_KINDS = tuple(EventKind)
COLLISION_KINDS = (EventKind.COLLISION_VEHICLE, EventKind.COLLISION_PEDESTRIAN, EventKind.COLLISION_STATIC)
COLLISION_KIND_BY_CLASS = {
    VEHICLE: EventKind.COLLISION_VEHICLE,
    PEDESTRIAN: EventKind.COLLISION_PEDESTRIAN,
    OBSTACLE: EventKind.COLLISION_STATIC,
}
EVENT_FIELDS = ("t_s", "kind", "actor_id", "detail", "speed_mps", "value")
# Infractions that the traffic rules define (not collisions): what nuPlan-style traffic-rule
# compliance and Bench2Drive's traffic-sign success look at.
TRAFFIC_RULE_KINDS = (EventKind.RED_LIGHT, EventKind.STOP_SIGN)
# ... and every infraction of the rules of the road, yielding to emergency vehicles included
# (nuPlan-style traffic-rule compliance, the per-km counts).
RULE_KINDS = (*TRAFFIC_RULE_KINDS, EventKind.YIELD_EMERGENCY_VEHICLE)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at time `t_s`.

    actor_id: the other actor (collisions), else -1. detail: a few words for people (which edge,
    which lanes). speed_mps: ego speed at the event (nuPlan blames no collision on a still ego).
    value: the number a percentage-based infraction carries (min_speed: the ego's mean speed as a
    percent of the surrounding traffic's, as CARLA's event dict 'percentage'); None for the others,
    and then left out of `to_dict`, so that the other events serialise as they always did.
    """

    t_s: float
    kind: EventKind
    actor_id: int = -1
    detail: str = ""
    speed_mps: float = 0.0
    value: float | None = None

    def to_dict(self) -> dict:
        """Plain JSON types: kind as its string value, numpy scalars made Python numbers."""
        d = asdict(self)
        d["t_s"], d["speed_mps"], d["actor_id"] = float(self.t_s), float(self.speed_mps), int(self.actor_id)
        d["kind"] = str(self.kind)
        if self.value is None:
            del d["value"]
        else:
            d["value"] = float(self.value)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Event:
        """The inverse of `to_dict`. ValueError naming the problem on anything else (an unknown kind,
        a missing or extra field, a wrong type)."""
        if not isinstance(d, dict):
            raise ValueError(f"an event must be a mapping, got {type(d).__name__}")
        if set(d) - set(EVENT_FIELDS) or not {"t_s", "kind"} <= set(d):
            raise ValueError(
                f"an event has the fields {', '.join(EVENT_FIELDS)}, got {', '.join(map(str, d))}"
            )
        try:
            kind = EventKind(d["kind"])
        except ValueError:
            raise ValueError(f"unknown event kind {d['kind']!r}") from None
        try:
            return cls(
                float(d["t_s"]),
                kind,
                int(d.get("actor_id", -1)),
                str(d.get("detail", "")),
                float(d.get("speed_mps", 0.0)),
                None if d.get("value") is None else float(d["value"]),
            )
        except (TypeError, ValueError):
            raise ValueError(f"an event field has the wrong type: {d}") from None
