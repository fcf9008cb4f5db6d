"""The camera-perception commands end to end on a tiny dataset: data -> train -> detect-eval -> drive."""

import json

import numpy as np
import pytest

from perception.coco import load_coco
from perception.types import CLASSES
from sim.app.cli import main
from sim.config import DATA_SEED_MIN

SCENES = [
    "scenarios=[busy_street,cut_in]",
    "train_scenes=2",
    "val_scenes=1",
    "workers=1",
    "frame_every_s=1.0",
    "scenario.duration_s=3",
    "empty_frames=1.0",  # every frame, so that each capture has all six cameras
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "ds"
    assert main(["data", f"out_dir={out}", *SCENES]) == 0
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    args = ["train", f"data_dir={dataset}", f"out_dir={out}", "model=tiny", "epochs=1", "batch_size=2"]
    assert main(args) == 0
    return out


def test_data_is_coco_with_disjoint_seeds_and_a_summary(dataset):
    train, val = load_coco(dataset, "train"), load_coco(dataset, "val")
    assert len(train.images) >= 4 and len(val.images) >= 2
    assert {im["seed"] for im in train.images}.isdisjoint({im["seed"] for im in val.images})
    assert min(im["seed"] for im in train.images + val.images) >= DATA_SEED_MIN  # never a suite's seed
    coco = json.loads((dataset / "annotations" / "train.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    ann = coco["annotations"][0]
    assert {
        "distance_m",
        "visible_fraction",
        "truncation",
        "bbox",
        "position_m",
        "actor_rgb",
        "on_road",
    } <= set(ann)
    # Each scene moves its cameras' mounts (conf/data.yaml mount_jitter): heights within 1.4 +- 0.3 m,
    # fields of view within 75 +- 10 degrees for the front cameras, and not two scenes alike.
    fronts = [im for im in coco["images"] if im["camera"] == "front"]
    heights = {round(im["cam_to_world"][2][3], 6) for im in fronts}
    fovs = {round(2 * np.degrees(np.arctan2(im["width"] / 2, im["K"][0][0])), 6) for im in fronts}
    assert len(heights) == len({im["seed"] for im in fronts}) >= 2 and all(1.1 <= z <= 1.7 for z in heights)
    assert all(65.0 <= f <= 85.0 for f in fovs) and len(fovs) >= 2
    rig = ["front", "front_left", "front_right", "rear_left", "rear_right", "rear"]  # the default, surround6
    assert [im["camera"] for im in coco["images"]][:6] == rig and {
        im["camera"] for im in coco["images"]
    } == set(rig)
    # The group labels: busy_street's pedestrians stand beside the road; the ego's lane has cars on it.
    pedestrians = [a for a in coco["annotations"] if a["category_id"] == 2]
    assert pedestrians and not any(a["on_road"] for a in pedestrians if a["iscrowd"] == 0)
    assert any(a["on_road"] for a in coco["annotations"] if a["category_id"] == 1)
    assert all(
        len(a["actor_rgb"]) == 3 and all(0.0 <= c <= 1.0 for c in a["actor_rgb"]) for a in coco["annotations"]
    )
    # Don't-care (crowd) boxes: exactly those under 5 px, less than 1/4 visible or over 1/2 cut off.
    small = [
        a["bbox"][3] < 5.0 or a["visible_fraction"] < 0.25 or a["truncation"] > 0.5
        for a in coco["annotations"]
    ]
    assert [bool(a["iscrowd"]) for a in coco["annotations"]] == small and any(small)
    summary = json.loads((dataset / "summary.json").read_text())
    assert summary["splits"]["train"]["images"] == len(train.images)
    assert summary["splits"]["train"]["dont_care_boxes"] == sum(small)
    assert (dataset / "contact_sheet.png").exists() and (dataset / "box_heights.png").exists()


def test_data_writes_every_camera_of_a_rig(tmp_path):
    out = tmp_path / "rig"
    args = ["data", f"out_dir={out}", "scenarios=[busy_street]", "train_scenes=1", "val_scenes=1"]
    rig = ["sim/rig=surround4", "mount_jitter=null", "empty_frames=1.0"]  # as configured, every frame
    assert main([*args, "workers=1", "frame_every_s=1.0", "scenario.duration_s=2", *rig]) == 0
    images = load_coco(out, "train").images
    names = ["front", "left", "right", "rear"]
    assert len(images) >= 8 and [im["camera"] for im in images] == names * (len(images) // 4)
    assert (
        images[1]["file_name"].endswith("_000_left.png")
        and (out / "images" / "train" / images[1]["file_name"]).exists()
    )
    # Each camera's own pose: the left one looks 90 degrees left of the front one (optical z axes).
    front, left = (np.array(images[k]["cam_to_world"])[:3, 2] for k in (0, 1))
    turn = np.degrees(np.arctan2(left[1], left[0]) - np.arctan2(front[1], front[0]))
    assert (turn + 180.0) % 360.0 - 180.0 == pytest.approx(90.0, abs=1e-6)


def test_clutter_goes_to_the_train_scenes_only():
    from sim.data.generate import DataSettings, scene_jobs, scene_overrides

    settings = DataSettings("x", ("cut_in",), 2, 1, 0, 1.0, 1, ("sim.camera.noise_std=0",), {"cones": [1, 2]})
    jobs = scene_jobs(settings)
    assert [j.split for j in jobs] == ["train", "train", "val"]
    assert scene_overrides(jobs[0]) == ["sim.camera.noise_std=0", "++scenario.clutter={cones:[1.0,2.0]}"]
    assert scene_overrides(jobs[2]) == ["sim.camera.noise_std=0"]
    # ... of one-road scenarios: a town scene drives as shipped (it has its own parked cars).
    town = DataSettings("x", ("cut_in", "T_Junction"), 2, 1, 0, 1.0, 1, (), {"cones": 1}, ("T_Junction",))
    assert [bool(scene_overrides(j)) for j in scene_jobs(town)] == [True, False, False]


def test_data_is_deterministic_and_resumes(dataset, tmp_path):
    again = tmp_path / "again"
    assert main(["data", f"out_dir={again}", *SCENES]) == 0
    for name in ("train.json", "val.json"):
        assert (again / "annotations" / name).read_bytes() == (dataset / "annotations" / name).read_bytes()
    # A killed run: one scene's shard and one image are gone, another shard is damaged, temporary
    # files are left; the rerun restores them exactly and sweeps the temporaries.
    shard, damaged = sorted((again / "shards" / "train").iterdir())
    image = next((again / "images" / "train").iterdir())
    image_bytes = image.read_bytes()
    shard.unlink()
    image.unlink()
    damaged.write_bytes(b"\x00\xff")
    temporary = again / "images" / "train" / ".busy_street_s0_000.4242.tmp.png"
    temporary.write_bytes(b"\x89PNG")
    assert main(["data", f"out_dir={again}", *SCENES]) == 0
    assert image.read_bytes() == image_bytes and not temporary.exists()
    assert (again / "annotations" / "train.json").read_bytes() == (
        dataset / "annotations" / "train.json"
    ).read_bytes()


def test_data_refuses_a_folder_of_another_dataset(dataset, cli_error):
    assert "other settings" in cli_error(
        ["data", f"out_dir={dataset}", *SCENES[:-1], "scenario.duration_s=4"]
    )


def test_train_writes_checkpoints_history_and_curve_and_resumes(trained, dataset):
    history = json.loads((trained / "history.json").read_text())
    assert len(history) == 1 and history[0]["train"]["total"] > 0
    assert (trained / "model.pt").exists() and (trained / "loss_curve.png").exists()
    args = ["train", f"data_dir={dataset}", f"out_dir={trained}", "model=tiny", "epochs=2", "batch_size=2"]
    assert main(args) == 0
    history = json.loads((trained / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_detect_eval_reports_coco_metrics(trained, dataset, tmp_path):
    out = tmp_path / "eval"
    assert (
        main(["detect-eval", f"checkpoint={trained / 'model.pt'}", f"data_dir={dataset}", f"out_dir={out}"])
        == 0
    )
    results = json.loads((out / "detect_eval.json").read_text())
    assert {"overall", "per_class", "slices", "pr", "groups", "replaced", "distance_head_by_lens"} <= set(
        results
    )
    assert 0.0 <= results["overall"]["AP50"] <= 1.0
    assert (out / "pr_curve.png").exists() and "vehicle" in (out / "detect_eval.txt").read_text()
    kinds = results["groups"]["kinds"]
    assert all(kinds[k]["available"] for k in ("class", "distance", "camera", "occlusion", "colour"))
    assert set(results["slices"]) == {"distance", "lighting", "height"}
    assert results["groups"]["score_threshold"] == 0.35 and results["groups"]["min_boxes"] == 50
    assert "worst" in results["groups"] and "groups:" in (out / "detect_eval.txt").read_text()


def test_the_distance_heads_lens_bias_is_fitted_back():
    from perception.evaluation.detect_eval import lens_calibration

    focal = np.repeat([100.0, 200.0, 500.0], 30)
    noise = np.exp(np.random.default_rng(0).normal(0.0, 0.05, focal.size))
    lens = lens_calibration(focal, (184.0 / focal) ** 0.76 * noise)
    assert lens["fit"]["exponent"] == pytest.approx(0.76, abs=0.03)
    assert lens["fit"]["focal_px"] == pytest.approx(184.0, rel=0.05)
    assert set(lens["by_focal_px"]) == {"100", "200", "500"}
    assert lens["by_focal_px"]["500"]["median_ratio"] == pytest.approx((184 / 500) ** 0.76, rel=0.05)
    assert lens_calibration(focal[:1], np.ones(1)) is None


def test_detect_eval_reads_a_dataset_without_the_group_labels(trained, dataset, tmp_path):
    """A dataset of format 2 (before actor_rgb, on_road and the camera name): evaluated as before,
    with the colour and road-side groups reported as unavailable."""
    old = tmp_path / "old"
    (old / "annotations").mkdir(parents=True)
    (old / "images").symlink_to(dataset / "images")
    coco = json.loads((dataset / "annotations" / "val.json").read_text())
    for ann in coco["annotations"]:
        del ann["actor_rgb"], ann["on_road"]
    for image in coco["images"]:
        del image["camera"]
    (old / "annotations" / "val.json").write_text(json.dumps(coco))
    out = tmp_path / "eval"
    assert (
        main(["detect-eval", f"checkpoint={trained / 'model.pt'}", f"data_dir={old}", f"out_dir={out}"]) == 0
    )
    kinds = json.loads((out / "detect_eval.json").read_text())["groups"]["kinds"]
    assert not kinds["colour"]["available"] and not kinds["pedestrian_road"]["available"]
    assert kinds["camera"]["available"] and list(kinds["camera"]["groups"]) == ["front"]
    assert "colour           unavailable" in (out / "detect_eval.txt").read_text()


def test_drive_with_the_cnn_in_the_loop(trained, tmp_path):
    run = tmp_path / "run"
    args = [
        "drive",
        "scenario=follow_lead",
        "perception=cnn",
        f"perception.checkpoint={trained / 'model.pt'}",
        "scenario.duration_s=2",
        f"hydra.run.dir={run}",
    ]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["perception"] == "cnn" and (run / "video.mp4").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "data_dir={tmp}/nothing"], ["nothing"]),
        (["detect-eval", "checkpoint={tmp}/missing.pt", "data_dir={data}"], ["missing.pt"]),
        (["detect-eval", "checkpoint={tmp}/corrupt.pt", "data_dir={data}"], ["corrupt.pt"]),
        (["drive", "perception=cnn", "perception.checkpoint={tmp}/corrupt.pt"], ["corrupt.pt"]),
        (["data", "train_scenes=0"], ["train_scenes"]),
        (["data", "scenarios=[nope]"], ["nope"]),
        (["data", "clutter={{trees:1}}"], ["trees"]),
        (["data", "clutter={{cones:abc}}"], ["cones"]),
    ],
)
def test_bad_perception_input_is_one_clear_line(args, words, dataset, tmp_path, cli_error):
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "nothing").mkdir()
    args = [a.format(tmp=tmp_path, data=dataset) for a in args]
    if args[0] == "drive":
        args.append(f"hydra.run.dir={tmp_path}/run")
    if args[0] == "data":
        args.append(f"out_dir={tmp_path}/d")
    err = cli_error(args)
    assert all(w in err for w in words), err


def test_train_frames_without_a_label_are_thinned_and_val_keeps_them_all(tmp_path):
    out = tmp_path / "d"
    args = [
        "data",
        f"out_dir={out}",
        "scenarios=[follow_lead]",
        "train_scenes=1",
        "val_scenes=1",
        "workers=1",
    ]
    assert main([*args, "scenario.duration_s=6", "frame_every_s=1.0", "empty_frames=0.0"]) == 0

    def labelled(split):
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        boxed = {a["image_id"] for a in coco["annotations"] if not a["iscrowd"]}
        return [im["id"] in boxed for im in coco["images"]]

    train, val = labelled("train"), labelled("val")
    assert train and all(train)  # the rear cameras' empty road is left out ...
    assert any(val) and not all(val)  # ... but val measures false positives on it too


def test_data_of_a_town_labels_its_traffic_lights_with_their_states(tmp_path):
    from sim.app import config as C
    from sim.simulation import RandomStreams

    out = tmp_path / "town"
    args = ["data", f"out_dir={out}", "scenarios=[SignalizedJunctionLeftTurn,cut_in]", "train_scenes=2"]
    assert main([*args, "val_scenes=1", "workers=1", "scenario.duration_s=12", "frame_every_s=1.0"]) == 0
    coco = json.loads((out / "annotations" / "train.json").read_text())
    names = [c["name"] for c in coco["categories"]]
    assert names[3:] == ["light_green", "light_yellow", "light_red"]  # a light's class is its state
    images = {im["id"]: im for im in coco["images"]}
    lights = [a for a in coco["annotations"] if names[a["category_id"] - 1].startswith("light_")]
    labelled = [a for a in lights if not a["iscrowd"]]
    assert labelled and {images[a["image_id"]]["scenario"] for a in labelled} == {
        "SignalizedJunctionLeftTurn"
    }
    assert all(names[a["category_id"] - 1] == f"light_{a['state']}" for a in lights)
    # Each label's state is its signal group's at the frame's time, in the scene's own town.
    cfg, _ = C.load("drive", ["scenario=SignalizedJunctionLeftTurn"])
    for a in labelled:
        image = images[a["image_id"]]
        town = C.scenario_spec(cfg, RandomStreams.from_seed(image["seed"]).scenario).town.town
        assert town.signal_state(a["signal_id"], image["t_s"]) == a["state"]
        assert a["bbox"][3] >= 5.0 and a["distance_m"] <= 80.0 and a["lamp_visible"]
    assert all(a["iscrowd"] for a in lights if not a["lamp_visible"])  # the state does not show
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["splits"]["train"]["traffic_lights"].values()) == len(labelled)
