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
EVENT_FIELDS = ("t_s", "kind", "actor_id", "detail", "speed_mps")


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at time `t_s`.

    actor_id: the other actor (collisions), else -1. detail: a few words for people (which edge,
    which lanes). speed_mps: ego speed at the event (nuPlan blames no collision on a still ego).
    """

    t_s: float
    kind: EventKind
    actor_id: int = -1
    detail: str = ""
    speed_mps: float = 0.0

    def to_dict(self) -> dict:
        """Plain JSON types: kind as its string value, numpy scalars made Python numbers."""
        d = asdict(self)
        d["t_s"], d["speed_mps"], d["actor_id"] = float(self.t_s), float(self.speed_mps), int(self.actor_id)
        d["kind"] = str(self.kind)
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
            )
        except (TypeError, ValueError):
            raise ValueError(f"an event field has the wrong type: {d}") from None
