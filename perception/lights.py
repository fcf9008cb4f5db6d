"""Traffic-light states from the camera: the detector's light boxes, tied to the map's lights.

The detector finds a traffic light as one of three classes, one per state its lamps show
(perception.types.LIGHT_CLASSES). Which signal group a box shows comes from the map, as in a real
stack's HD-map prior (Apollo projects the map's lights into the image and recognises them there):
each light of the map (`MappedLight`: its signal group, its housing's 3D box and the way it faces)
is projected through the frame's camera; a light box whose centre falls inside a mapped light's
projection, grown by MATCH_GROW of its size, shows that light's state. A light seen from its back
or side (more than FACING_MAX_DEG off the way it faces) shows no state and takes no box, and so
does one whose lamps are not all in the image (the head above a car waiting at the line, cut by
the image's top edge: which lamp is lit may not show).

The detector's light boxes go through a recogniser first (`recognise_lights`, as Apollo recognises
a light's state after detecting it):
- the detector scores each state in its own heatmap, so a light whose state it is unsure of shows as
  weak boxes, one per state: overlapping boxes of different states are one light, scored as any of
  them (1 - prod(1 - score)). On the val split, the lights within 50 m with a box at the loop's
  threshold went from 84.5 % to 97.9 %;
- its state is the colour of its lit lamp (`lamp_colour`: the box's most red, yellow or green
  pixel, when it stands LIT_MARGIN grey levels clear of the other channels; a dark lamp reaches
  about 45), or, with no lamp clearly lit (blur, haze, dim light), the strongest box's class.

Over a rig's frames, the most confident box of a signal group wins. `LightStates` gives a group the
state its boxes of the last `hold_s` vote for (weighted by score): one missed frame does not turn a
green light into an unseen one (which the planner takes for red), nor one wrong box into a red one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perception.coco import iou_matrix
from perception.types import FIRST_LIGHT_CLASS, SIGNAL_STATES, CameraFrame

FACING_MAX_DEG = 60.0  # a light seen farther off the way it faces shows no state (as the labels)
LIGHT_PEAK_MIN_SCORE = 0.1  # light boxes are decoded down to this score: a light's states add up
SAME_LIGHT_IOU = 0.5  # boxes of different states overlapping this much are one light
LIT_MARGIN = 60.0  # [grey levels] a lit lamp's own channel stands this far above the others
LAMP_GROW = 0.2  # a box is searched for its lit lamp grown by this of its size on each side
MATCH_GROW = 0.5  # a box matches a projected light when its centre lies in the projection grown by this
NEAR_PLANE_M = 0.05  # a light with a corner nearer the camera plane than this is not projected


@dataclass(frozen=True)
class MappedLight:
    """A traffic light of the map: the signal group whose state it shows, its housing's corners
    (8, 3) in the world [m] and the direction it faces (towards the traffic it governs) [rad]."""

    signal_id: int
    corners_m: np.ndarray
    yaw_rad: float


def projected_boxes(lights: Sequence[MappedLight], frame: CameraFrame) -> tuple[np.ndarray, np.ndarray]:
    """(indices (M,) into `lights`, boxes (M, 4) xyxy px) of the lights that face the camera of
    `frame` and lie in front of it, overlapping its image."""
    if not lights:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    corners = np.stack([light.corners_m for light in lights])  # (N, 8, 3)
    world_to_cam = np.linalg.inv(frame.cam_to_world)
    p = corners @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # (N, 8, 3) camera frame
    z = p[..., 2]
    uv = (p @ np.asarray(frame.K).T)[..., :2] / np.maximum(z, NEAR_PLANE_M)[..., None]
    to_camera = frame.cam_to_world[:2, 3] - corners.mean(axis=1)[:, :2]  # (N, 2)
    yaw = np.array([light.yaw_rad for light in lights])
    along = (np.cos(yaw) * to_camera[:, 0] + np.sin(yaw) * to_camera[:, 1]) / np.maximum(
        np.linalg.norm(to_camera, axis=1), 1e-9
    )
    boxes = np.concatenate([uv.min(axis=1), uv.max(axis=1)], axis=1)
    h, w = frame.rgb.shape[:2]
    keep = (z.min(axis=1) > NEAR_PLANE_M) & (along > np.cos(np.radians(FACING_MAX_DEG)))
    keep &= (boxes[:, 2] > 0) & (boxes[:, 0] < w) & (boxes[:, 3] > 0) & (boxes[:, 1] < h)
    return np.flatnonzero(keep), boxes[keep]


def lamp_colour(rgb: np.ndarray, box_xyxy: np.ndarray) -> str | None:
    """The state a light box's lit lamp shows by its colour (sim/world/props.py LAMP_RGBA: red,
    yellow, green), or None when no pixel in the box (grown by LAMP_GROW) is lit clearly enough."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    gx, gy = LAMP_GROW * (x1 - x0), LAMP_GROW * (y1 - y0)
    h, w = rgb.shape[:2]
    xa, ya = max(math.floor(x0 - gx), 0), max(math.floor(y0 - gy), 0)
    xb, yb = min(math.ceil(x1 + gx), w), min(math.ceil(y1 + gy), h)
    if xa >= xb or ya >= yb:
        return None
    r, g, b = rgb[ya:yb, xa:xb].reshape(-1, 3).astype(np.float32).T
    stand_out = {
        "red": (r - np.maximum(g, b)).max(),
        "yellow": (np.minimum(r, g) - b - 0.5 * np.abs(r - g)).max(),  # red and green both high
        "green": (g - np.maximum(r, b)).max(),
    }
    state = max(stand_out, key=stand_out.get)
    return state if stand_out[state] >= LIT_MARGIN else None


def recognise_lights(rgb: np.ndarray, det: dict, min_score: float) -> dict:
    """`det` (one image's `decode` dict, decoded down to LIGHT_PEAK_MIN_SCORE or lower) with its
    light boxes recognised (module docstring: one box per light, its state from its lit lamp), and
    every box under `min_score` dropped. Best first, as decode gives them."""
    scores, class_ids, boxes = det["scores"].copy(), det["class_ids"].copy(), det["boxes_xyxy"]
    keep = np.ones(len(scores), dtype=bool)
    lights = np.flatnonzero(class_ids >= FIRST_LIGHT_CLASS)
    same = iou_matrix(boxes[lights], boxes[lights]) >= SAME_LIGHT_IOU
    for i, k in enumerate(lights):  # decode gives them best first
        if not keep[k]:
            continue
        merged = {int(class_ids[k])}
        for j in lights[i + 1 :][same[i, i + 1 :]]:
            if keep[j] and int(class_ids[j]) not in merged:
                merged.add(int(class_ids[j]))
                keep[j] = False
                scores[k] = 1.0 - (1.0 - scores[k]) * (1.0 - scores[j])
        if scores[k] >= min_score:
            state = lamp_colour(rgb, boxes[k])
            if state is not None:
                class_ids[k] = FIRST_LIGHT_CLASS + SIGNAL_STATES.index(state)
    keep &= scores >= min_score
    order = np.argsort(-scores[keep], kind="stable")
    out = {name: value[keep][order] for name, value in det.items()}
    out["scores"], out["class_ids"] = scores[keep][order], class_ids[keep][order]
    return out


def match_lights(
    lights: Sequence[MappedLight], frame: CameraFrame, det: dict, min_score: float
) -> dict[int, tuple[str, float]]:
    """{signal id: (state, score)} of the light boxes of one frame's detections (`decode`'s dict)
    at `min_score` or more, each tied to the mapped light it lies on; the best box per signal."""
    found: dict[int, tuple[str, float]] = {}
    is_light = (det["class_ids"] >= FIRST_LIGHT_CLASS) & (det["scores"] >= min_score)
    if not lights or not is_light.any():
        return found
    index, proj = projected_boxes(lights, frame)
    h, w = frame.rgb.shape[:2]
    centre_x = 0.5 * (proj[:, 0] + proj[:, 2])
    whole = (proj[:, 1] >= 0) & (proj[:, 3] <= h) & (centre_x >= 0) & (centre_x < w)  # every lamp in view
    index, proj = index[whole], proj[whole]
    if not len(index):
        return found
    grow = MATCH_GROW * (proj[:, 2:] - proj[:, :2])  # (M, 2)
    lo, hi = proj[:, :2] - grow, proj[:, 2:] + grow
    boxes, classes, scores = det["boxes_xyxy"][is_light], det["class_ids"][is_light], det["scores"][is_light]
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])  # (K, 2)
    inside = ((centres[:, None] >= lo[None]) & (centres[:, None] <= hi[None])).all(axis=2)  # (K, M)
    # Nearest projected centre among those it lies in: lights on one pole stand apart by their boxes.
    gap = np.linalg.norm(centres[:, None] - 0.5 * (lo + hi)[None], axis=2)
    for k in np.argsort(-scores):
        if not inside[k].any():
            continue
        m = int(np.argmin(np.where(inside[k], gap[k], np.inf)))
        sid = lights[index[m]].signal_id
        if sid not in found or scores[k] > found[sid][1]:
            found[sid] = (SIGNAL_STATES[int(classes[k]) - FIRST_LIGHT_CLASS], float(scores[k]))
    return found


class LightStates:
    """The perceived state of each signal group: the vote of its boxes of the last `hold_s`, each
    box weighted by its score (one frame that calls a green light red does not stop the ego; a
    change of state wins within half the window)."""

    def __init__(self, hold_s: float):
        if not hold_s >= 0:
            raise ValueError(f"perception.light_hold_s={hold_s} is out of range: >= 0")
        self.hold_s = hold_s
        self._seen: dict[int, list[tuple[float, str, float]]] = {}  # signal id -> (time, state, score)

    def reset(self) -> None:
        self._seen.clear()

    def update(self, t_s: float, seen: dict[int, tuple[str, float]]) -> None:
        """Add one tick's boxes ({signal id: (state, score)}) and forget those older than hold_s."""
        for sid, (state, score) in seen.items():
            self._seen.setdefault(sid, []).append((t_s, state, score))
        for sid in list(self._seen):
            self._seen[sid] = [b for b in self._seen[sid] if t_s - b[0] <= self.hold_s]
            if not self._seen[sid]:
                del self._seen[sid]

    def signals(self, t_s: float) -> tuple[tuple[int, str], ...]:
        """(signal id, state) of the groups seen within `hold_s` before t_s, by id."""
        out = []
        for sid in sorted(self._seen):
            recent = [
                (state, score) for seen_s, state, score in self._seen[sid] if t_s - seen_s <= self.hold_s
            ]
            if recent:
                votes = {state: sum(sc for st, sc in recent if st == state) for state, _ in recent}
                out.append((sid, max(votes, key=votes.get)))
        return tuple(out)
