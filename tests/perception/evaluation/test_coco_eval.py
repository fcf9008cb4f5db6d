import json

import cv2
import numpy as np
import pytest

from perception.evaluation.coco_eval import evaluate, format_table, pr_plot

W, H = 320, 192


def ground_truth(n_images=4, light=True):
    """Per image: a near vehicle (10 m), a mid pedestrian (30 m, half occluded), a far small vehicle (50 m)."""
    images, anns = [], []
    for i in range(n_images):
        img = {"id": i + 1, "file_name": f"{i}.jpg", "width": W, "height": H}
        if light:
            img["light"] = "bright" if i % 2 == 0 else "dim"
        images.append(img)
        x = 10.0 + 5 * i
        for j, (cat, box, dist, vis) in enumerate(
            [
                (1, [x, 50.0, 80.0, 60.0], 10.0, 1.0),
                (2, [x + 120, 60.0, 20.0, 40.0], 30.0, 0.6),
                (1, [x + 200, 80.0, 16.0, 12.0], 50.0, 0.2),
            ]
        ):
            anns.append(
                {
                    "id": 10 * i + j + 1,
                    "image_id": i + 1,
                    "category_id": cat,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                    "distance_m": dist,
                    "visible_fraction": vis,
                }  # fmt: skip
            )
    return {"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "vehicle"}, {"id": 2, "name": "pedestrian"}, {"id": 3, "name": "obstacle"}]}  # fmt: skip


def perfect(gt, keep=lambda a: True, shift_px=0.0):
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "score": 1.0,
            "bbox": [a["bbox"][0] + shift_px, a["bbox"][1], a["bbox"][2], a["bbox"][3]],
        }  # fmt: skip
        for a in gt["annotations"]
        if keep(a)
    ]


def test_perfect_detections_score_one(tmp_path):
    gt = ground_truth()
    r = evaluate(gt, perfect(gt))
    assert r["overall"]["AP"] == pytest.approx(1.0)
    assert r["overall"]["AP50"] == pytest.approx(1.0) and r["overall"]["AP75"] == pytest.approx(1.0)
    assert r["per_class"]["vehicle"]["AP"] == pytest.approx(1.0)
    assert r["per_class"]["obstacle"]["AP"] is None  # no ground truth of that class (COCO's -1)
    assert r["overall"]["n_gt"] == 12 and r["per_class"]["pedestrian"]["n_gt"] == 4
    # the same from a file path, and the input dict is not modified
    path = tmp_path / "val.json"
    path.write_text(json.dumps(gt))
    assert evaluate(path, perfect(gt), slices=())["overall"]["AP"] == pytest.approx(1.0)
    assert gt == ground_truth()
    assert isinstance(json.dumps(r), str)  # plain numbers only


def test_shift_hurts_ap75_more_than_ap50():
    gt = ground_truth()
    r = evaluate(gt, perfect(gt, shift_px=0.15 * 20), slices=())  # 15 % of the pedestrian width
    o = r["overall"]
    assert o["AP50"] == pytest.approx(1.0)
    assert o["AP75"] < 1.0 and o["AP50"] - o["AP75"] > 0.2
    assert o["AP"] < o["AP50"]


def test_missing_class_and_no_detections():
    gt = ground_truth()
    r = evaluate(gt, perfect(gt, keep=lambda a: a["category_id"] == 1))
    assert r["per_class"]["pedestrian"]["AP"] == 0.0
    assert r["per_class"]["vehicle"]["AP"] == pytest.approx(1.0)
    assert r["overall"]["AP"] == pytest.approx(0.5)  # mean over the two classes with ground truth
    empty = evaluate(gt, [])
    assert empty["overall"]["AP"] == 0.0 and empty["per_class"]["obstacle"]["AP"] is None
    with pytest.raises(ValueError, match="image_id 99"):
        evaluate(gt, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}])


def test_slices_mark_other_boxes_ignored():
    gt = ground_truth()
    r = evaluate(gt, perfect(gt, keep=lambda a: a["distance_m"] < 20))
    d = r["slices"]["distance"]
    assert d["0-20m"]["AP"] == pytest.approx(1.0) and d["0-20m"]["n_gt"] == 4
    assert d["40m+"]["AP"] == 0.0 and d["20-40m"]["AP"] == 0.0
    assert "occlusion" not in r["slices"]  # replaced by recall (perception/evaluation/groups.py)
    height = r["slices"]["height"]
    assert height["height>=20px"]["n_gt"] == 8 and height["height<20px"]["AP"] == 0.0
    assert set(r["slices"]["lighting"]) == {"bright", "dim"}
    assert r["slices"]["lighting"]["dim"]["n_gt"] == 6
    # perfect detections everywhere: every slice scores 1 (detections on other slices' boxes are ignored)
    full = evaluate(gt, perfect(gt))
    for bands in full["slices"].values():
        for m in bands.values():
            assert m["AP"] == pytest.approx(1.0)


def test_unmatched_detection_outside_height_slice_is_ignored():
    gt = ground_truth()
    dets = perfect(gt) + [{"image_id": 1, "category_id": 1, "bbox": [150, 150, 10, 10], "score": 1.0}]
    r = evaluate(gt, dets, slices=("height",))
    assert r["slices"]["height"]["height>=20px"]["AP"] == pytest.approx(
        1.0
    )  # a 10-px false positive is not in it
    assert r["slices"]["height"]["height<20px"]["AP"] < 1.0
    assert "lighting" not in evaluate(ground_truth(light=False), dets)["slices"]


def test_pr_plot_and_table(tmp_path):
    gt = ground_truth()
    r = evaluate(gt, perfect(gt, keep=lambda a: a["distance_m"] < 40))
    pr = r["pr"]
    assert len(pr["recall"]) == 101 and pr["recall"][0] == 0.0 and pr["recall"][-1] == 1.0
    assert pr["precision"]["pedestrian"] == pytest.approx([1.0] * 101)
    vehicle = np.array(pr["precision"]["vehicle"])  # half the vehicles found: precision 1 up to recall 0.5
    assert np.all(vehicle[:51] == 1.0) and np.all(vehicle[51:] == 0.0)
    assert pr["precision"]["obstacle"] is None
    path = tmp_path / "plots" / "pr.png"
    pr_plot(pr, path)
    img = cv2.imread(str(path))
    assert img is not None and img.shape[2] == 3 and (img != 255).any()
    assert [p.name for p in path.parent.iterdir()] == ["pr.png"]  # no temporary left behind
    table = format_table(r)
    for name in ("vehicle", "pedestrian", "obstacle", "0-20m", "bright", "AP50", "AP75"):
        assert name in table
    assert (
        len(table.splitlines()) == 1 + 1 + 3 + 3 + 2 + 2
    )  # header, overall, classes, distance, light, height


def test_per_class_ap50_matches_the_per_class_runs():
    gt = ground_truth()
    r = evaluate(gt, perfect(gt, keep=lambda a: a["category_id"] == 1 and a["distance_m"] < 20))
    by_class = r["overall"]["AP50_per_class"]
    assert by_class["vehicle"] == pytest.approx(0.5, abs=0.01) and by_class["pedestrian"] == 0.0
    assert by_class["obstacle"] is None
    for name, m in r["per_class"].items():
        assert by_class[name] == m["AP50"]
    assert r["slices"]["distance"]["0-20m"]["AP50_per_class"]["vehicle"] == pytest.approx(1.0)


def test_crowd_boxes_are_dont_care():
    gt = ground_truth()
    for a in gt["annotations"]:
        a["iscrowd"] = int(a["distance_m"] == 50.0)  # the far small vehicles
    found_all = evaluate(gt, perfect(gt))["per_class"]["vehicle"]
    missed_far = evaluate(gt, perfect(gt, keep=lambda a: a["distance_m"] < 50))["per_class"]["vehicle"]
    assert found_all["AP"] == pytest.approx(1.0) and missed_far["AP"] == pytest.approx(1.0)
    assert found_all["n_gt"] == 4  # crowd boxes are not counted
