"""What a finished closed-loop run leaves in its folder, and the video frames drawn on the way.

`write_outputs` writes metrics.json, log.npz (sim/record/runlog.py) and trajectory.png;
`VideoRecorder` is the closed loop's `on_frame` callback that writes each tick's annotated camera
frames (the rig's cameras tiled), optionally with the class activation map of the first camera's top
detection blended in (`ExplainedView`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from perception.files import write_json
from perception.types import CLASSES
from sim.loop import RunResult, distance_m
from sim.record import runlog, viz
from sim.simulation import Simulation

VIDEO_COLUMNS = 3  # a rig's camera views are tiled in rows of this many


class VideoRecorder:
    """`on_frame` callback that writes each tick's camera frames, annotated and tiled, to a
    viz.VideoWriter; with `explain` (an ExplainedView), the map of the top detection blended into
    the first camera's view."""

    def __init__(self, writer, explain: ExplainedView | None = None):
        self.writer = writer
        self.explain = explain

    def __call__(self, sim: Simulation, frames, world, plan) -> None:
        self.writer.write(video_frame(sim, frames, world, plan, self.explain))


class ExplainedView:
    """The camera view with the class activation map (perception/explain.py) of its top detection
    blended in, and a HUD line naming it. Built from the camera perceiver's own detector (the same
    checkpoint, device, threads and score threshold), as a second, as-trained copy of its model: the
    perceiver's inference is untouched. Costs a forward and a backward pass per video frame."""

    def __init__(self, perceiver):
        detector = getattr(perceiver, "detector", None)
        if detector is None:
            raise ValueError("video_explain=true needs a camera detector to explain: perception=cnn")
        from perception.explain import Explainer

        self.explainer = Explainer.from_checkpoint(
            str(detector.path), str(detector.device), threads=detector.threads
        )
        self.score_threshold = perceiver.score_threshold

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, str | None]:
        """rgb (H, W, 3) uint8 -> (the view with the map, its HUD line); unchanged without detections."""
        from perception.explain import overlay

        top = self.explainer.explain_detections(rgb, self.score_threshold, max_count=1)
        if not top:
            return rgb, None
        share = top[0].mass_in_box
        return overlay(rgb, top[0].cam), f"map: {top[0].label}, {100 * share:.0f}% in its box"


def video_frame(sim: Simulation, frames, world, plan, explain: ExplainedView | None = None) -> np.ndarray:
    """The rig's camera views with boxes (detections if the perceiver made any, else ground truth),
    tiled in rows of up to VIDEO_COLUMNS in the rig's order, a HUD on the first one and the camera's
    name on the others, and a bird's-eye inset; with `explain`, the map of the first camera's top
    detection blended in."""
    e = sim.ego_state
    hud = [
        f"t {sim.t_s:5.1f}s  v {e.speed_mps * 3.6:5.1f} km/h",
        f"{plan.behaviour.value}: {plan.reason}"[:60],
    ]
    views = []
    for view, frame in enumerate(frames):
        if world.detections:
            boxes = [
                (*d.box_xyxy, d.class_id, f"{CLASSES[d.class_id]} {d.score:.2f}")
                for d in world.detections
                if d.camera == view
            ]
        else:
            boxes = [
                (*b.box_xyxy, b.class_id, f"{CLASSES[b.class_id]} {b.distance_m:.0f}m")
                for b in sim.boxes(frame)
            ]
        lines = hud if view == 0 else [frame.camera]
        rgb = frame.rgb
        if view == 0 and explain is not None:
            rgb, note = explain(rgb)
            lines = hud if note is None else [*hud, note]
        views.append(viz.draw_overlay(rgb, boxes, lines))
    img = _tiles(views)
    inset = viz.bev_inset(
        sim.spec.road,
        (e.x_m, e.y_m),
        e.yaw_rad,
        world.xy_m,
        world.yaw_rad,
        world.size_m,
        world.class_ids,
        size_px=img.shape[0],
        ego_size_m=(sim.ego.length_m, sim.ego.width_m),
    )
    return np.concatenate([img, inset], axis=1)


def video_size(n_cameras: int, width_px: int, height_px: int) -> tuple[int, int]:
    """(width, height) [px] of `video_frame`'s frames for a rig of `n_cameras` of that size."""
    columns = min(n_cameras, VIDEO_COLUMNS)
    rows = -(-n_cameras // columns)
    return columns * width_px + rows * height_px, rows * height_px  # the inset is square


def _tiles(views: list[np.ndarray]) -> np.ndarray:
    """Images of one size in rows of up to VIDEO_COLUMNS (black where the last row is short)."""
    columns = min(len(views), VIDEO_COLUMNS)
    blank = np.zeros_like(views[0])
    padded = views + [blank] * (-len(views) % columns)
    rows = [np.concatenate(padded[i : i + columns], axis=1) for i in range(0, len(padded), columns)]
    return np.concatenate(rows, axis=0)


def run_log(sim: Simulation, result: RunResult, camera_perception: bool = False) -> runlog.RunLog:
    """The compact log of a finished run (sim/record/runlog.py). With `camera_perception` (the
    perceiver saw the world through the rig) its meta holds the rig's views (SimConfig.camera_views)."""
    route = sim.spec.route
    meta = {
        "route_start_s_m": float(route.start_s_m),
        "route_goal_s_m": float(route.goal_s_m),
        "off_road_distance_m": float(sim.criteria.off_road_distance_m),
        "driven_distance_m": distance_m(result.ticks),
        "control_hz": float(sim.cfg.control_hz),
        "ego_size_m": [float(sim.ego.length_m), float(sim.ego.width_m)],
    }
    if camera_perception:
        meta["cameras"] = [asdict(v) for v in sim.cfg.camera_views([c.config for c in sim.cameras])]
    return runlog.RunLog(
        ticks=result.ticks,
        actor_xy_m=sim.actor_trails(),
        actor_yaw_rad=sim.actor_yaw_trails(),
        actor_ids=sim.actors.ids.copy(),
        actor_class_ids=sim.actors.class_ids.copy(),
        actor_size_m=sim.actors.size_m.copy(),
        perception=result.perception["perception"],
        detections=result.perception["detections"],
        events=list(result.events),
        meta=meta,
    )


def write_outputs(
    run_dir: Path, sim: Simulation, result: RunResult, plot: bool, camera_perception: bool = False
) -> None:
    """metrics.json, log.npz (sim/record/runlog.py) and trajectory.png, each written atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    runlog.write(run_dir / "log.npz", run_log(sim, result, camera_perception))
    write_json(run_dir / "metrics.json", result.summary)
    if plot:
        m = result.summary
        trails = sim.actor_trails()
        viz.bev_plot(
            sim.spec.road,
            result.ticks,
            result.events,
            run_dir / "trajectory.png",
            actor_trails={int(i): trails[:, k] for k, i in enumerate(sim.actors.ids)},
            goal_xy_m=_goal_xy(sim.spec.route),
            title=f"{m['scenario']} seed {m['seed']}: driving score {m['driving_score']:.1f}",
        )


def _goal_xy(route) -> tuple[float, float]:
    x, y, _ = route.road.to_world(route.goal_s_m, float(route.road.lane_offset_m(route.lane)))
    return float(x), float(y)
