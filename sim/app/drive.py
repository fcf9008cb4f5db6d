"""`bulletdrive drive`: one closed-loop drive from config overrides; also what tests, benchmarks,
suites and data generation call. Hydra stays here at the edge; the library gets plain objects."""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml

from sim.app import config as C
from sim.loop import RunResult, run_closed_loop
from sim.record.outputs import ExplainedView, VideoRecorder, video_size, write_outputs
from sim.record.viz import VideoWriter
from sim.simulation import RandomStreams, Simulation

HELP = """usage: bulletdrive drive [OVERRIDES...]

Drive one scenario in closed loop and write metrics.json, log.npz, trajectory.png and
video.mp4 into the run folder (hydra.run.dir). Config groups: scenario, perception,
decision, control, sim. Example: bulletdrive drive scenario=cut_in seed=3"""


def drive(overrides: list[str], write: bool = True, on_frame=None) -> tuple[RunResult, Path]:
    """Compose conf/drive.yaml with `overrides`, run it, and (if `write`) write the run folder:
    metrics.json, log.npz, trajectory.png (plot=true), video.mp4 (video=true) and .hydra/.

    Returns the result and the run folder. Raises an InputError (nothing written) on bad input.
    """
    loaded = C.load_checked("drive", overrides)
    cfg, values, run_dir = loaded.cfg, loaded.values, loaded.run_dir
    if write:
        C.check_out_dir(run_dir, "hydra.run.dir")
    sim_cfg = values.sim
    spec = C.scenario_spec(cfg, RandomStreams.from_seed(values.seed).scenario)
    perceiver, planner, controller = C.build_stack(cfg, sim_cfg)
    if perceiver.needs_camera and not sim_cfg.camera.enabled:
        raise C.ConfigError("this perception needs the camera: sim.camera.enabled must be true")
    want_video = write and values.video and sim_cfg.camera.enabled
    explain = _explained_view(perceiver) if want_video and values.video_explain else None
    camera = sim_cfg.camera.enabled and (want_video or perceiver.needs_camera or on_frame is not None)
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        _save_config(cfg, run_dir, overrides)

    sim = Simulation(sim_cfg, spec, values.seed, camera=camera)
    try:
        with contextlib.ExitStack() as video:  # a run that raises leaves no half-written video
            if want_video:
                size = video_size(len(sim.cameras), sim_cfg.camera.width, sim_cfg.camera.height)
                writer = video.enter_context(VideoWriter(run_dir / "video.mp4", sim_cfg.camera_hz, size))
                on_frame = VideoRecorder(writer, explain)
            result = run_closed_loop(sim, perceiver, planner, controller, values.seed, on_frame)
        result.summary = {
            "scenario": spec.name,
            "seed": values.seed,
            "perception": cfg.hydra.runtime.choices.get("perception", "custom"),
            "ego_model": sim_cfg.ego_model,
            **result.summary,
        }
        if write:
            write_outputs(run_dir, sim, result, plot=values.plot, camera_perception=perceiver.needs_camera)
    finally:
        sim.close()
    return result, run_dir


def _explained_view(perceiver) -> ExplainedView:
    try:
        return ExplainedView(perceiver)
    except ValueError as err:
        raise C.ConfigError(str(err)) from None


def _save_config(cfg, run_dir: Path, overrides: list[str]) -> None:
    """Like a Hydra app: the resolved config and the overrides in RUN_DIR/.hydra/."""
    from omegaconf import OmegaConf

    from perception.files import write_bytes

    conf = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    write_bytes(run_dir / ".hydra" / "config.yaml", yaml.safe_dump(conf, sort_keys=False).encode())
    write_bytes(run_dir / ".hydra" / "overrides.yaml", yaml.safe_dump(list(overrides)).encode())


def run(args: list[str]) -> int:
    result, run_dir = drive(args)
    m = result.summary
    print(
        f"{m['scenario']} seed {m['seed']}: driving score {m['driving_score']:.1f} ({m['scorer']}), "
        f"route completion {m['route_completion']:.1f}%, outcome {m['outcome']}"
    )
    print(f"run folder: {run_dir}")
    for name in ("metrics.json", "trajectory.png", "video.mp4"):
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")
    return 0
