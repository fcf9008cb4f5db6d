"""Pictures of a run: a bird's-eye plot, camera overlays and a live BEV inset drawn with OpenCV, and
H.264 video written with PyAV.

All images here are RGB uint8 (H, W, 3); conversion to OpenCV's BGR happens only when a PNG is
encoded. Every file is written atomically (perception.files): a killed run leaves no half file.
(Charts with axes, such as score bars and loss curves, are drawn with matplotlib: perception/charts.py.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from decision.route import Road
from perception.files import atomic_path, write_bytes
from perception.types import FIRST_LIGHT_CLASS, OBSTACLE, PEDESTRIAN, VEHICLE
from sim.metrics.events import COLLISION_KINDS, Event, EventKind
from sim.world.geometry import box_corners

# Colours (RGB).
CLASS_COLOURS = {VEHICLE: (0, 150, 255), PEDESTRIAN: (255, 160, 0), OBSTACLE: (230, 50, 50)}
# Traffic-light boxes in their states' colours (the classes after the objects: green, yellow, red).
LIGHT_COLOURS = dict(enumerate(((60, 220, 60), (255, 220, 0), (255, 40, 40)), start=FIRST_LIGHT_CLASS))
EGO_COLOUR = (40, 200, 60)
BACKGROUND = (246, 246, 246)
ROAD_SURFACE = (205, 205, 205)
ROAD_EDGE = (70, 70, 70)
LANE_LINE = (255, 255, 255)
TRAIL = (150, 150, 150)
TEXT = (20, 20, 20)
# Event markers: kind -> (colour, cv2 marker, size px, legend label).
MARKERS = {
    **{k: ((220, 0, 0), cv2.MARKER_TILTED_CROSS, 18, "collision") for k in COLLISION_KINDS},
    EventKind.OFF_ROAD: ((255, 120, 0), cv2.MARKER_TRIANGLE_UP, 14, "off road"),
    EventKind.LANE_INVASION: ((0, 90, 220), cv2.MARKER_DIAMOND, 9, "lane change"),
    EventKind.BLOCKED: ((150, 0, 150), cv2.MARKER_SQUARE, 14, "blocked"),
    EventKind.TIMEOUT: ((150, 0, 150), cv2.MARKER_SQUARE, 14, "timeout"),
}

# Bird's-eye plot layout.
LONG_SIDE_PX = 1000
PAD_PX = 20
HEADER_PX = 36
FOOTER_PX = 56
MIN_MAP_PX = 160
MIN_WIDTH_PX = 640
MARGIN_M = 5.0  # world margin around everything drawn
DASH_M, DASH_PERIOD_M = 3.0, 9.0  # lane-line dashes
SPEED_BINS = 64  # colour levels of the trajectory
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _speed_colours() -> np.ndarray:
    """(256, 3) RGB colour map for speed (TURBO: slow blue -> fast red)."""
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_TURBO)
    return bgr[:, 0, ::-1].copy()


def _road_edges(road: Road, offsets_m) -> list[np.ndarray]:
    """Polylines (M, 2) parallel to the reference line at the given lateral offsets [m]."""
    normal = np.stack([-np.sin(road.heading_rad), np.cos(road.heading_rad)], axis=1)
    return [road.xy_m + normal * off for off in offsets_m]


@dataclass(frozen=True, slots=True)
class BevLayout:
    """World -> pixel mapping of a bird's-eye plot (x right, y up in the picture)."""

    width_px: int
    height_px: int
    scale_px_per_m: float
    xmin_m: float
    ymax_m: float
    ox_px: float
    oy_px: float

    def to_px(self, xy_m: np.ndarray) -> np.ndarray:
        """(N, 2) world points [m] -> (N, 2) int32 pixel (u, v)."""
        xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
        u = self.ox_px + (xy[:, 0] - self.xmin_m) * self.scale_px_per_m
        v = self.oy_px + (self.ymax_m - xy[:, 1]) * self.scale_px_per_m
        return np.round(np.stack([u, v], axis=1)).astype(np.int32)


def bev_layout(road: Road, point_sets: list[np.ndarray] = ()) -> BevLayout:
    """Fit the road and the given (K, 2) point sets into a picture LONG_SIDE_PX on its long side."""
    pts = [*_road_edges(road, (-road.half_width_m, road.half_width_m))]
    pts += [np.asarray(p, dtype=float).reshape(-1, 2) for p in point_sets if len(p)]
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(axis=1)]
    lo, hi = allp.min(0) - MARGIN_M, allp.max(0) + MARGIN_M
    ex, ey = max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)
    scale = min((LONG_SIDE_PX - 2 * PAD_PX) / ex, (LONG_SIDE_PX - HEADER_PX - FOOTER_PX - 2 * PAD_PX) / ey)
    width = min(max(int(round(ex * scale + 2 * PAD_PX)), MIN_WIDTH_PX), LONG_SIDE_PX)
    map_h = max(int(round(ey * scale + 2 * PAD_PX)), MIN_MAP_PX)
    height = min(HEADER_PX + FOOTER_PX + map_h, LONG_SIDE_PX)
    ox = (width - ex * scale) / 2
    oy = HEADER_PX + (map_h - ey * scale) / 2
    return BevLayout(width, height, scale, float(lo[0]), float(hi[1]), ox, oy)


def _draw_road(img: np.ndarray, road: Road, lay: BevLayout) -> None:
    hw = road.half_width_m
    right, left = (lay.to_px(e) for e in _road_edges(road, (-hw, hw)))
    cv2.fillPoly(img, [np.concatenate([left, right[::-1]])], ROAD_SURFACE, cv2.LINE_AA)
    dash = max(int(DASH_M / (road.s_m[1] - road.s_m[0])), 1)
    period = max(int(DASH_PERIOD_M / (road.s_m[1] - road.s_m[0])), dash + 1)
    inner = [-hw + k * road.lane_width_m for k in range(1, road.lane_count)]
    for line in _road_edges(road, inner):
        px = lay.to_px(line)
        dashes = [px[i : i + dash + 1] for i in range(0, len(px) - 1, period)]
        cv2.polylines(img, dashes, False, LANE_LINE, 2, cv2.LINE_AA)
    cv2.polylines(img, [left, right], False, ROAD_EDGE, 2, cv2.LINE_AA)


def _draw_trajectory(img: np.ndarray, px: np.ndarray, speed: np.ndarray, vmax: float) -> None:
    """Ego path as runs of equal speed colour (one polyline per run, not one line per tick)."""
    if len(px) < 2:
        return
    colours = _speed_colours()
    seg_speed = 0.5 * (speed[1:] + speed[:-1])
    level = np.clip((seg_speed / vmax * SPEED_BINS).astype(int), 0, SPEED_BINS - 1)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(level)) + 1])
    ends = np.concatenate([starts[1:], [len(level)]])
    for a, b in zip(starts, ends, strict=True):
        c = colours[int((level[a] + 0.5) * 256 / SPEED_BINS)]
        cv2.polylines(img, [px[a : b + 1]], False, tuple(int(v) for v in c), 3, cv2.LINE_AA)


def _nice_length_m(max_m: float) -> float:
    for m in (1000, 500, 200, 100, 50, 20, 10, 5, 2, 1):
        if m <= max_m:
            return float(m)
    return 1.0


def _draw_footer(img: np.ndarray, lay: BevLayout, vmax: float, kinds: list[str]) -> None:
    y = lay.height_px - FOOTER_PX + 22
    # Scale bar (bottom left).
    bar_m = _nice_length_m(150 / lay.scale_px_per_m)
    bar_px = int(round(bar_m * lay.scale_px_per_m))
    x0 = PAD_PX
    cv2.line(img, (x0, y), (x0 + bar_px, y), TEXT, 2)
    for x in (x0, x0 + bar_px):
        cv2.line(img, (x, y - 5), (x, y + 5), TEXT, 2)
    cv2.putText(img, f"{bar_m:g} m", (x0, y + 22), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    # Speed colour bar (bottom right).
    cb_w, cb_h = 160, 12
    cx = lay.width_px - PAD_PX - cb_w
    bar = np.repeat(
        cv2.resize(_speed_colours()[None], (cb_w, 1), interpolation=cv2.INTER_LINEAR), cb_h, axis=0
    )
    img[y - cb_h // 2 : y - cb_h // 2 + cb_h, cx : cx + cb_w] = bar
    cv2.putText(img, "0", (cx, y + 22), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    label = f"{vmax:.1f} m/s"
    (tw, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
    cv2.putText(img, label, (cx + cb_w - tw, y + 22), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    cv2.putText(img, "speed", (cx - 52, y + 5), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    # Legend of the markers used (middle).
    x = x0 + max(bar_px, 60) + 30
    seen = []
    for kind in kinds:
        colour, marker, size, text = MARKERS[kind]
        if text in seen:
            continue
        seen.append(text)
        cv2.drawMarker(img, (x, y), colour, marker, min(size, 14), 2, cv2.LINE_AA)
        cv2.putText(img, text, (x + 12, y + 5), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
        x += 24 + cv2.getTextSize(text, FONT, 0.45, 1)[0][0]


def bev_plot(
    road: Road,
    ticks: dict[str, np.ndarray],
    events: list[Event],
    path: str | os.PathLike,
    actor_trails: dict[int, np.ndarray] | None = None,
    title: str = "",
    goal_xy_m: tuple[float, float] | None = None,
) -> None:
    """Write a bird's-eye PNG of a run to `path` (LONG_SIDE_PX on its long side).

    ticks: (T,) arrays t_s, x_m, y_m, speed_mps (others ignored). actor_trails: id -> (K, 2) world
    positions. Draws the road, the ego path coloured by speed, actor trails, event markers
    (collisions as red X), start (green dot), goal (`goal_xy_m`, black square) or end of the path,
    a scale bar, a speed colour bar and the title.
    """
    trails = [np.asarray(tr, dtype=float).reshape(-1, 2) for tr in (actor_trails or {}).values()]
    ego_xy = np.stack([np.asarray(ticks["x_m"], float), np.asarray(ticks["y_m"], float)], axis=1)
    extra = [ego_xy, *trails] + ([np.array([goal_xy_m], float)] if goal_xy_m is not None else [])
    lay = bev_layout(road, extra)
    img = np.full((lay.height_px, lay.width_px, 3), BACKGROUND, dtype=np.uint8)
    _draw_road(img, road, lay)
    for tr in trails:
        if len(tr) > 1:
            cv2.polylines(img, [lay.to_px(tr)], False, TRAIL, 1, cv2.LINE_AA)
    speed = np.asarray(ticks["speed_mps"], dtype=float)
    vmax = max(float(speed.max()) if len(speed) else 0.0, 1.0)
    ego_px = lay.to_px(ego_xy)
    _draw_trajectory(img, ego_px, speed, vmax)
    if len(ego_px):
        cv2.circle(img, tuple(int(v) for v in ego_px[0]), 7, EGO_COLOUR, -1, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in ego_px[0]), 7, TEXT, 1, cv2.LINE_AA)
        end = lay.to_px(np.array(goal_xy_m))[0] if goal_xy_m is not None else ego_px[-1]
        u, v = int(end[0]), int(end[1])
        cv2.rectangle(img, (u - 6, v - 6), (u + 6, v + 6), TEXT, -1)
        cv2.rectangle(img, (u - 3, v - 3), (u + 3, v + 3), (255, 255, 255), -1)
    t = np.asarray(ticks["t_s"], dtype=float)
    kinds = []
    for e in events:
        if e.kind not in MARKERS or len(t) == 0:
            continue
        kinds.append(e.kind)
        x, y = np.interp(e.t_s, t, ego_xy[:, 0]), np.interp(e.t_s, t, ego_xy[:, 1])
        colour, marker, size, _ = MARKERS[e.kind]
        cv2.drawMarker(img, tuple(int(v) for v in lay.to_px(np.array([x, y]))[0]), colour, marker, size, 3)
    cv2.putText(img, title, (PAD_PX, 24), FONT, 0.6, TEXT, 1, cv2.LINE_AA)
    _draw_footer(img, lay, vmax, kinds)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode the bird's-eye plot for {path}")
    write_bytes(path, png.tobytes())


# ---------------------------------------------------------------------------- camera overlay
def draw_overlay(rgb: np.ndarray, boxes, hud_lines: list[str]) -> np.ndarray:
    """A copy of `rgb` (H, W, 3) with boxes and a HUD.

    boxes: iterable of (x0, y0, x1, y1, class_id, label) in pixels; coloured by class.
    hud_lines: text lines drawn top-left on a darkened backdrop.
    """
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    h, w = out.shape[:2]
    scale = 0.35 if h < 400 else 0.5
    for x0, y0, x1, y1, class_id, label in boxes:
        colour = CLASS_COLOURS.get(int(class_id)) or LIGHT_COLOURS.get(int(class_id), (255, 255, 255))
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.rectangle(out, p0, p1, colour, 1)
        if label:
            (tw, th), base = cv2.getTextSize(label, FONT, scale, 1)
            ty = p0[1] - 2 if p0[1] - th - base - 2 >= 0 else p1[1] + th + 2
            cv2.rectangle(out, (p0[0], ty - th - 2), (p0[0] + tw + 2, ty + base - 1), colour, -1)
            cv2.putText(out, label, (p0[0] + 1, ty - 1), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    if hud_lines:
        sizes = [cv2.getTextSize(line, FONT, scale, 1) for line in hud_lines]
        line_h = max(s[0][1] + s[1] for s in sizes) + 4
        box_w = min(max(s[0][0] for s in sizes) + 8, w)
        box_h = min(line_h * len(hud_lines) + 4, h)
        out[:box_h, :box_w] = (out[:box_h, :box_w] * 0.35).astype(np.uint8)
        for i, line in enumerate(hud_lines):
            y = 2 + line_h * (i + 1) - 4
            cv2.putText(out, line, (4, y), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# ---------------------------------------------------------------------------- live inset
INSET_BACKGROUND = (45, 50, 45)
INSET_ROAD = (115, 115, 115)
INSET_LINE = (225, 225, 225)
_SUB = 4  # fixed-point bits for sub-pixel drawing


@dataclass(frozen=True, slots=True)
class EgoView:
    """World -> pixel mapping of a square view centred on the ego, heading up (left is left)."""

    ex_m: float
    ey_m: float
    cos_yaw: float
    sin_yaw: float
    size_px: int
    px_per_m: float

    @staticmethod
    def of(ego_xy, ego_yaw_rad: float, size_px: int, range_m: float) -> EgoView:
        s = int(size_px)
        return EgoView(
            float(ego_xy[0]), float(ego_xy[1]), math.cos(ego_yaw_rad), math.sin(ego_yaw_rad), s, s / range_m
        )

    def to_px(self, xy_m: np.ndarray) -> np.ndarray:
        """(..., 2) world points [m] -> (..., 2) int32 fixed-point pixels (_SUB fractional bits)."""
        dx, dy = xy_m[..., 0] - self.ex_m, xy_m[..., 1] - self.ey_m
        fwd, left = self.cos_yaw * dx + self.sin_yaw * dy, -self.sin_yaw * dx + self.cos_yaw * dy
        half = self.size_px / 2
        return (
            np.stack([half - left * self.px_per_m, half - fwd * self.px_per_m], axis=-1) * (1 << _SUB)
        ).astype(np.int32)

    def near(self, xy_m: np.ndarray, radius_m: float) -> np.ndarray:
        """Indices of the (N, 2) points within radius_m of the ego."""
        return np.flatnonzero(((xy_m - (self.ex_m, self.ey_m)) ** 2).sum(1) < radius_m * radius_m)


def bev_inset(
    road: Road,
    ego_xy: np.ndarray,
    ego_yaw: float,
    actors_xy: np.ndarray,
    actors_yaw: np.ndarray,
    actors_size: np.ndarray,
    class_ids: np.ndarray,
    *,
    size_px: int,
    ego_size_m: tuple[float, float],
    range_m: float = 60.0,
    outlines: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """A small top view centred on the ego, heading up: (size_px, size_px, 3) RGB uint8.

    ego_size_m: the ego's length and width (the run's sim.vehicle). range_m: side of the square
    view [m]. actors_xy (N, 2), actors_yaw (N,), actors_size (N, 2+) length, width; class_ids (N,)
    choose the colours. outlines: optional (xy (M, 2), yaw (M,), size (M, 2)) boxes drawn as white
    outlines over the actors (e.g. what perception reported).
    """
    view = EgoView.of(ego_xy, ego_yaw, size_px, range_m)
    img = np.full((view.size_px, view.size_px, 3), INSET_BACKGROUND, dtype=np.uint8)
    _inset_road(img, view, road, reach_m=0.75 * range_m + road.half_width_m)
    if len(actors_xy):
        _inset_actors(img, view, actors_xy, actors_yaw, actors_size, class_ids, reach_m=0.75 * range_m + 5.0)
    ego = view.to_px(
        box_corners(np.array([[view.ex_m, view.ey_m]]), [ego_yaw], [ego_size_m[0]], [ego_size_m[1]])
    )
    cv2.fillPoly(img, list(ego), EGO_COLOUR, cv2.LINE_8, _SUB)
    if outlines is not None and len(outlines[0]):
        oxy, oyaw, osize = (np.asarray(a, dtype=float) for a in outlines)
        corners = view.to_px(box_corners(oxy.reshape(-1, 2), oyaw, osize[:, 0], osize[:, 1]))
        cv2.polylines(img, list(corners), True, (255, 255, 255), 1, cv2.LINE_8, _SUB)
    return img


def _inset_road(img: np.ndarray, view: EgoView, road: Road, reach_m: float) -> None:
    """The stretch of road within reach_m of the ego: surface, edges and lane lines."""
    near = view.near(road.xy_m, reach_m)
    if near.size < 2:
        return
    sl = slice(near[0], near[-1] + 1)
    xy, h = road.xy_m[sl], road.heading_rad[sl]
    normal = np.stack([-np.sin(h), np.cos(h)], axis=1)
    hw = road.half_width_m
    left, right = view.to_px(xy + normal * hw), view.to_px(xy - normal * hw)
    cv2.fillPoly(img, [np.concatenate([left, right[::-1]])], INSET_ROAD, cv2.LINE_8, _SUB)
    lines = [view.to_px(xy + normal * (-hw + k * road.lane_width_m)) for k in range(1, road.lane_count)]
    cv2.polylines(img, [left, right, *lines], False, INSET_LINE, 1, cv2.LINE_8, _SUB)


def _inset_actors(img, view: EgoView, actors_xy, actors_yaw, actors_size, class_ids, reach_m: float) -> None:
    """The actors within reach_m of the ego, filled in their class colours."""
    axy = np.asarray(actors_xy, dtype=float).reshape(-1, 2)
    size = np.asarray(actors_size, dtype=float).reshape(len(axy), -1)
    vis = view.near(axy, reach_m)
    if not vis.size:
        return
    corners = view.to_px(box_corners(axy[vis], np.asarray(actors_yaw)[vis], size[vis, 0], size[vis, 1]))
    cls = np.asarray(class_ids)[vis]
    for class_id, colour in CLASS_COLOURS.items():
        polys = list(corners[cls == class_id])
        if polys:
            cv2.fillPoly(img, polys, colour, cv2.LINE_8, _SUB)


# ---------------------------------------------------------------------------- video
H264_ENCODERS = ("libx264", "libopenh264")  # PyAV's wheels ship ffmpeg with libx264


class VideoWriter:
    """Write RGB frames to an H.264 mp4 (yuv420p, "faststart") that plays in a browser, with PyAV.

    Atomic: frames go to a temporary file beside the target, renamed onto it by `close()`; an error
    inside a `with` block removes it. yuv420p needs even sides, so a frame of an odd width or height
    is padded by repeating its last column or row (`encoded_size`). crf: x264's quality (lower is
    better, 23 its default); threads: encoder threads (1: runs in a worker beside others).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        frame_size: tuple[int, int],
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 1,
    ):
        w, h = int(frame_size[0]), int(frame_size[1])
        if w < 1 or h < 1 or not fps > 0:
            raise ValueError(f"a video needs a positive frame size and rate, got {w}x{h} at {fps} fps")
        self.frame_size = (w, h)
        self.encoded_size = (w + w % 2, h + h % 2)
        self.fps = float(fps)
        self.frames = 0
        self.path = Path(path)
        self._container = None
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        try:
            self._container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream(
                _h264_encoder(), rate=Fraction(self.fps).limit_denominator(1001)
            )
            self._stream.width, self._stream.height = self.encoded_size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(int(crf)), "preset": preset}
            self._stream.thread_count = int(threads)
        except Exception:
            self._abort()
            raise
        self.codec = self._stream.codec_context.name

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame of exactly `frame_size` (W, H)."""
        if self._container is None:
            raise RuntimeError("write() after close()")
        h, w = rgb.shape[:2]
        if (w, h) != self.frame_size or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(
                f"frame is {w}x{h} ({rgb.shape}), the video is {self.frame_size[0]}x{self.frame_size[1]} RGB"
            )
        frame = np.ascontiguousarray(rgb, dtype=np.uint8)
        if self.encoded_size != self.frame_size:
            pad_w, pad_h = self.encoded_size[0] - w, self.encoded_size[1] - h
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        self._mux(av.VideoFrame.from_ndarray(frame, format="rgb24"))
        self.frames += 1

    def _mux(self, frame) -> None:
        """Encode `frame` (None: flush the encoder) and write the packets it gives."""
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the file and rename it onto `path` (idempotent)."""
        if self._container is None:
            return
        try:
            self._mux(None)
            self._container.close()
        except Exception:
            self._abort()
            raise
        self._container = None
        self._ctx.__exit__(None, None, None)

    def _abort(self) -> None:
        """Close the container and remove the temporary file without renaming it."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # the file is being thrown away: its errors do not matter
                pass
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._container is not None:
            self._abort()


def _h264_encoder() -> str:
    """The first H.264 encoder this PyAV has."""
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # av.codec.codec.UnknownCodecError: not in this build
            continue
    raise RuntimeError(f"this PyAV (ffmpeg) has no H.264 encoder ({', '.join(H264_ENCODERS)})")
