import json

import pytest

from perception.evaluation.groups import (
    DARK_MAX_VALUE,
    KIND_DEFINITIONS,
    SATURATED_MIN_SATURATION,
    as_slices,
    colour_group,
    evaluate_groups,
    format_groups,
    worst_gap,
)

W, H = 320, 192
THRESHOLD = 0.35
VEHICLE, PEDESTRIAN = 1, 2
# Per image: (category, box, distance_m, visible_fraction, actor_rgb, on_road)
OBJECTS = (
    (VEHICLE, [10.0, 50.0, 80.0, 60.0], 10.0, 1.0, (0.08, 0.08, 0.09), True),  # near, dark car
    (
        PEDESTRIAN,
        [130.0, 60.0, 20.0, 40.0],
        30.0,
        0.6,
        (0.6, 0.2, 0.2),
        True,
    ),  # mid, half hidden, on the road
    (PEDESTRIAN, [170.0, 60.0, 20.0, 40.0], 32.0, 1.0, (0.3, 0.3, 0.3), False),  # mid, on the sidewalk
    (VEHICLE, [220.0, 80.0, 16.0, 12.0], 50.0, 1.0, (0.92, 0.92, 0.92), True),  # far, light car
)


def ground_truth(n_images=4, labels=True):
    """n_images frames of OBJECTS; without `labels`, a dataset of format 2 (no actor_rgb, on_road)."""
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": W, "height": H, "lighting": "bright"})
        for j, (cat, box, dist, vis, rgb, on_road) in enumerate(OBJECTS):
            ann = {"id": 10 * i + j + 1, "image_id": i + 1, "category_id": cat, "bbox": box,
                   "iscrowd": 0, "distance_m": dist, "visible_fraction": vis}  # fmt: skip
            if labels:
                ann.update(actor_rgb=list(rgb), on_road=on_road)
            anns.append(ann)
    categories = [
        {"id": 1, "name": "vehicle"},
        {"id": 2, "name": "pedestrian"},
        {"id": 3, "name": "obstacle"},
    ]
    return {"images": images, "annotations": anns, "categories": categories}


def detection(a, score=0.9, distance_m=None, shift_px=0.0):
    x, y, w, h = a["bbox"]
    d = {
        "image_id": a["image_id"],
        "category_id": a["category_id"],
        "bbox": [x + shift_px, y, w, h],
        "score": score,
    }
    d["distance_m"] = a["distance_m"] if distance_m is None else distance_m
    return d


def groups_of(gt, dets, min_boxes=1):
    return evaluate_groups(gt, dets, score_threshold=THRESHOLD, min_boxes=min_boxes)["kinds"]


def test_a_false_positive_in_another_distance_band_leaves_a_band_alone():
    gt = ground_truth()
    dets = [detection(a) for a in gt["annotations"]]
    clean = groups_of(gt, dets)["distance"]
    assert clean["metric"] == "AP50"
    assert all(g["AP50"] == pytest.approx(1.0) for g in clean["groups"].values())
    # Confident false positives the detector places at 45 m (no object there): only 40m+ pays.
    ghosts = [{"image_id": i, "category_id": VEHICLE, "bbox": [280.0, 10.0, 20.0, 20.0], "score": 0.99,
               "distance_m": 45.0} for i in (1, 2, 3, 4)]  # fmt: skip
    bands = groups_of(gt, dets + ghosts)["distance"]["groups"]
    assert bands["0-20m"]["AP50"] == pytest.approx(1.0) and bands["20-40m"]["AP50"] == pytest.approx(1.0)
    assert bands["40m+"]["AP50"] < 0.9
    # A detection matched to a box of another band is ignored there, even with a wrong distance.
    wrong = [
        detection(a, distance_m=5.0) if a["distance_m"] == 50.0 else detection(a) for a in gt["annotations"]
    ]
    bands = groups_of(gt, wrong)["distance"]["groups"]
    assert bands["0-20m"]["AP50"] == pytest.approx(1.0) and bands["40m+"]["AP50"] == pytest.approx(1.0)


def test_a_miss_in_a_band_lowers_its_recall_and_ap_only():
    gt = ground_truth()
    missed = {1, 11}  # the near vehicle of images 1 and 2
    dets = [detection(a) for a in gt["annotations"] if a["id"] not in missed]
    bands = groups_of(gt, dets)["distance"]["groups"]
    assert bands["0-20m"]["recall"] == pytest.approx(0.5) and bands["0-20m"]["AP50"] < 0.6
    assert bands["20-40m"]["recall"] == 1.0 and bands["40m+"]["recall"] == 1.0
    assert bands["0-20m"]["n_gt"] == 4 and bands["20-40m"]["n_gt"] == 8


@pytest.mark.parametrize("distance_m", [None, float("nan")], ids=["absent", "nan"])
def test_without_predicted_distances_the_distance_bands_report_recall(distance_m):
    gt = ground_truth()
    dets = [{**detection(a), "distance_m": distance_m} for a in gt["annotations"]]  # a model without the head
    distance = groups_of(gt, dets)["distance"]
    assert distance["metric"] == "recall" and distance["definition"] == KIND_DEFINITIONS["distance_recall"]
    assert all(g["recall"] == 1.0 and "AP50" not in g for g in distance["groups"].values())


def test_recall_counts_matches_at_the_score_threshold():
    gt = ground_truth(n_images=1)
    a = {ann["id"]: ann for ann in gt["annotations"]}
    dets = [
        detection(a[1], score=THRESHOLD),  # exactly at the threshold: found
        detection(a[2], score=0.2),  # below it: missed
        detection(a[2], score=0.9, shift_px=12.0),  # IoU 0.25 with the half-hidden pedestrian: missed
        {**detection(a[3], score=0.9), "category_id": VEHICLE},  # the wrong class: missed
        detection(a[4], score=0.9),
        {
            "image_id": 1,
            "category_id": PEDESTRIAN,
            "bbox": [280, 5, 9, 20],
            "score": 0.99,
            "distance_m": 40.0,
        },
    ]
    kinds = groups_of(gt, dets)
    assert kinds["class"]["groups"]["vehicle"]["recall"] == 1.0
    assert kinds["class"]["groups"]["pedestrian"]["recall"] == 0.0
    occlusion = kinds["occlusion"]
    assert occlusion["metric"] == "recall" and "AP" not in occlusion["groups"]["visible>=0.8"]
    assert occlusion["groups"]["visible0.4-0.8"] == {
        "n_gt": 1,
        "recall": 0.0,
        "small": False,
        "recall_per_class": {"vehicle": None, "pedestrian": 0.0, "obstacle": None},
    }
    assert occlusion["groups"]["visible>=0.8"]["recall"] == pytest.approx(2 / 3)
    assert occlusion["groups"]["visible<0.4"]["recall"] is None  # no box there
    # COCO's greedy matching goes by score: a confident detection takes the box before a better-
    # placed one under the threshold, as it would with no detection under the threshold at all.
    low_exact, high_shifted = detection(a[1], score=0.1), detection(a[1], score=0.9, shift_px=6.0)  # IoU 0.86
    vehicle = groups_of(gt, [low_exact, high_shifted])["class"]["groups"]["vehicle"]
    assert vehicle["recall"] == 0.5  # the near one found, the far one not
    assert groups_of(gt, [low_exact])["class"]["groups"]["vehicle"]["recall"] == 0.0


@pytest.mark.parametrize(
    "rgb, group",
    [
        ((0.08, 0.08, 0.09), "dark"),  # black car
        ((0.3, 0.3, 0.3), "dark"),  # grey clothes
        ((0.15, 0.35, 0.2), "dark"),  # dark green car
        ((0.92, 0.92, 0.92), "light"),  # white car
        ((0.55, 0.56, 0.58), "light"),  # grey car
        ((0.65, 0.08, 0.07), "saturated"),  # red car
        ((1.0, 0.45, 0.0), "saturated"),  # cone
        ((0.25, 0.5, 0.3), "saturated"),  # green clothes
        ((DARK_MAX_VALUE - 0.01, 0.0, 0.0), "dark"),
        ((DARK_MAX_VALUE, DARK_MAX_VALUE, DARK_MAX_VALUE), "light"),
        ((1.0, 1.0 - SATURATED_MIN_SATURATION, 0.8), "saturated"),
        ((1.0, 1.0 - SATURATED_MIN_SATURATION + 0.01, 0.8), "light"),
        ((0.0, 0.0, 0.0), "dark"),
    ],
)
def test_colour_groups(rgb, group):
    assert colour_group(rgb) == group


def test_colour_and_road_side_groups():
    gt = ground_truth()
    found = [detection(a) for a in gt["annotations"] if a["visible_fraction"] == 1.0]  # misses the red one
    kinds = groups_of(gt, found)
    colour = kinds["colour"]["groups"]
    assert {name: g["n_gt"] for name, g in colour.items()} == {"dark": 8, "light": 4, "saturated": 4}
    assert colour["saturated"]["recall"] == 0.0 and colour["dark"]["recall"] == 1.0
    assert colour["dark"]["recall_per_class"] == {"vehicle": 1.0, "pedestrian": 1.0, "obstacle": None}
    road = kinds["pedestrian_road"]["groups"]  # pedestrians only
    assert {name: (g["n_gt"], g["recall"]) for name, g in road.items()} == {
        "road": (4, 0.0),
        "sidewalk": (4, 1.0),
    }
    assert road["road"]["recall_per_class"] == {"vehicle": None, "pedestrian": 0.0, "obstacle": None}
    assert (
        kinds["pedestrian_road"]["gap"] == pytest.approx(-0.5) and kinds["pedestrian_road"]["worst"] == "road"
    )


def test_an_old_dataset_reports_its_missing_groups_as_unavailable():
    gt = ground_truth(labels=False)
    result = evaluate_groups(
        gt, [detection(a) for a in gt["annotations"]], score_threshold=THRESHOLD, min_boxes=1
    )
    kinds = result["kinds"]
    for kind in ("colour", "pedestrian_road"):
        assert kinds[kind]["available"] is False and "format 3" in kinds[kind]["reason"]
        assert "groups" not in kinds[kind] and kinds[kind]["definition"] == KIND_DEFINITIONS[kind]
    assert kinds["camera"]["groups"]["front"]["AP50"] == pytest.approx(1.0)  # no camera name: front
    assert kinds["lighting"]["available"] and kinds["occlusion"]["available"]
    table = format_groups(result)
    assert "colour           unavailable" in table
    json.dumps(result)  # plain values only


def test_cameras_are_image_groups():
    gt = ground_truth()
    for img in gt["images"]:
        img["camera"] = "front" if img["id"] <= 2 else "rear"
    dets = [detection(a) for a in gt["annotations"] if a["image_id"] != 4]  # the rear camera misses one frame
    camera = groups_of(gt, dets)["camera"]
    assert camera["groups"]["front"]["AP50"] == pytest.approx(1.0)
    assert camera["groups"]["rear"]["recall"] == 0.5 and camera["groups"]["rear"]["AP50"] < 0.6
    assert camera["worst"] == "rear"


def test_small_groups_are_flagged_and_left_out_of_the_gap():
    groups = {
        "a": {"AP50": 0.9, "small": False},
        "b": {"AP50": 0.7, "small": False},
        "c": {"AP50": 0.1, "small": True},
        "d": {"AP50": None, "small": False},
    }
    gap = worst_gap(groups, "AP50")
    assert gap["worst"] == "b" and gap["mean"] == pytest.approx(0.8) and gap["gap"] == pytest.approx(-0.1)
    assert worst_gap({"a": groups["a"], "c": groups["c"]}, "AP50")["gap"] is None
    gt = ground_truth()
    result = evaluate_groups(
        gt, [detection(a) for a in gt["annotations"]], score_threshold=THRESHOLD, min_boxes=5
    )
    occlusion = result["kinds"]["occlusion"]["groups"]
    assert occlusion["visible0.4-0.8"]["small"] and not occlusion["visible>=0.8"]["small"]
    assert result["kinds"]["occlusion"]["gap"] is None  # one group of >= 5 boxes


def test_worst_group_over_all_kinds_and_the_old_slices():
    gt = ground_truth()
    dets = [detection(a) for a in gt["annotations"] if not (a["category_id"] == PEDESTRIAN and a["on_road"])]
    result = evaluate_groups(gt, dets, score_threshold=THRESHOLD, min_boxes=1)
    # The red pedestrian is the only saturated object: colour's gap (0 - 2/3) is the largest; the
    # road side's and the occlusion's are -0.5 each.
    assert result["kinds"]["pedestrian_road"]["gap"] == pytest.approx(-0.5)
    worst = result["worst"]
    assert (worst["kind"], worst["group"], worst["metric"]) == ("colour", "saturated", "recall")
    assert worst["gap"] == pytest.approx(-2 / 3) and worst["value"] == 0.0
    slices = as_slices(result)
    assert set(slices) == {"distance", "lighting", "height"}
    assert set(slices["distance"]["0-20m"]) == {"AP", "AP50", "AP75", "n_gt", "AP50_per_class"}
    assert "worst group: colour saturated (recall 0.000, gap -0.667)" in format_groups(result)


def test_recall_is_at_the_closed_loops_score_threshold(conf_values):
    assert (
        conf_values("detect_eval.yaml")["recall_score_threshold"]
        == conf_values("perception/cnn.yaml")["score_threshold"]
    )
