"""`bulletdrive data`: the Hydra edge of dataset generation (sim/data/generate.py).

`sim.*` and `scenario.*` overrides (and `hydra.searchpath`) apply to every scene. Every scene's
drive config is checked before the first scene runs: each scenario composes with them and samples
for each of its scene seeds.
"""

from __future__ import annotations

from perception.errors import InputError
from sim.app import config as C
from sim.app.schemas import DataConfig
from sim.data.generate import DataSettings, generate, scene_jobs, scene_overrides
from sim.simulation import RandomStreams

HELP = """usage: bulletdrive data [OVERRIDES...]

Generate a labelled COCO dataset from randomised scenarios (conf/data.yaml): images,
annotations/{train,val}.json (objects and traffic lights, a light's class its state), summary.json,
box_heights.png, contact_sheet.png.
Resumes an interrupted run. sim.* and scenario.* overrides apply to every scene; every camera of
the rig (sim/rig: surround6 by default) writes its frames, its mount moved by mount_jitter.
clutter.cones=1 sets a density of roadside objects per 100 m (clutter=null: none).
Example: bulletdrive data out_dir=data/small train_scenes=8 scenario.duration_s=20"""


def settings_of(args: list[str]) -> DataSettings:
    """The checked data settings of the command line. InputError on bad input."""
    keys = C.override_keys(args)
    searchpath = [line for key, line in keys if key == "hydra.searchpath"]
    per_scene = [line for key, line in keys if key.startswith(("sim.", "sim/", "scenario."))]
    d: DataConfig = C.load_checked("data", [a for a in args if a not in per_scene]).values
    C.check_known("scenario", d.scenarios, searchpath, " in scenarios")
    towns = [
        s
        for s in dict.fromkeys(d.scenarios)
        if "town" in C.load("drive", [*searchpath, f"scenario={s}"])[0].scenario
    ]
    jitter = [f"sim.mount_jitter.{k}={v}" for k, v in (d.mount_jitter or {}).items()]
    return DataSettings(
        out_dir=d.out_dir,
        scenarios=tuple(d.scenarios),
        train_scenes=d.train_scenes,
        val_scenes=d.val_scenes,
        seed=d.seed,
        frame_every_s=d.frame_every_s,
        workers=d.workers,
        sim_overrides=(*searchpath, *jitter, *per_scene),  # (the user's sim.* last: they win)
        clutter=d.clutter or {},
        town_scenarios=tuple(towns),
        empty_frames=d.empty_frames,
    )


def check_scenes(settings: DataSettings) -> None:
    """Compose each scenario once per split (train scenes get the clutter) and sample it for each
    of its scene seeds: a bad override or clutter fails here, not in a worker."""
    camera = ["sim.camera.enabled=true", f"sim.camera_hz={1.0 / settings.frame_every_s}"]  # as run_scene
    groups: dict[tuple, list[int]] = {}
    for job in scene_jobs(settings):
        groups.setdefault((job.scenario, tuple(scene_overrides(job))), []).append(job.seed)
    for (scenario, overrides), scene_seeds in groups.items():
        try:
            cfg, _ = C.load("drive", [f"scenario={scenario}", *camera, *overrides])
            for seed in scene_seeds:
                C.scenario_spec(cfg, RandomStreams.from_seed(seed).scenario)
        except InputError as err:
            raise C.ConfigError(f"{err} (scenario {scenario} of the dataset)") from None


def run(args: list[str]) -> int:
    settings = settings_of(args)
    check_scenes(settings)
    C.check_out_dir(settings.out_dir, "out_dir")
    summary = generate(settings)
    for split, s in summary["splits"].items():
        boxes = ", ".join(f"{k} {v}" for k, v in s["boxes"].items())
        print(f"{split}: {s['images']} images from {s['scenes']} scenes; boxes: {boxes}")
    print(f"dataset: {settings.out_dir} (summary.json, box_heights.png, contact_sheet.png)")
    return 0
