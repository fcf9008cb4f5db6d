"""Traffic-light states from light boxes tied to the map's lights, and their evaluation."""

import numpy as np
import pytest

from perception.evaluation.light_eval import light_states
from perception.lights import (
    LightStates,
    MappedLight,
    lamp_colour,
    match_lights,
    projected_boxes,
    recognise_lights,
)
from perception.types import CLASSES, FIRST_LIGHT_CLASS, CameraFrame
from sim.world.camera import camera_pose, intrinsics
from sim.world.props import HOUSING_RGBA, LAMP_ORDER, LAMP_RGBA, LightPose, light_box_corners, light_boxes

RED, GREEN = FIRST_LIGHT_CLASS + 2, FIRST_LIGHT_CLASS


def frame_at(x: float = 0.0) -> CameraFrame:
    """The front camera of an ego at (x, 0) heading +x."""
    pose = camera_pose(x, 0.0, 0.0, 0.8, 1.4, 4.0)
    return CameraFrame(
        np.zeros((192, 320, 3), np.uint8), intrinsics(320, 192, 75.0), pose, 0.0, camera="front"
    )


def mapped(poles: list[LightPose]) -> list[MappedLight]:
    return [
        MappedLight(p.signal_id, c, p.yaw_rad) for p, c in zip(poles, light_box_corners(poles), strict=True)
    ]


# Two lights 30 m ahead facing the ego (groups 7 and 8, 6 m apart), one facing away (group 9).
POLES = [LightPose(30.0, 4.0, np.pi, 7), LightPose(30.0, -2.0, np.pi, 8), LightPose(30.0, 10.0, 0.0, 9)]


def detections(boxes, classes, scores) -> dict:
    return {
        "boxes_xyxy": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "class_ids": np.asarray(classes, dtype=np.int64),
        "scores": np.asarray(scores, dtype=np.float32),
    }


def test_the_map_lights_project_where_the_labeller_boxes_them():
    frame = frame_at()
    index, boxes = projected_boxes(mapped(POLES), frame)
    truth = light_boxes(frame, POLES, {7: "red", 8: "green", 9: "red"}, 80.0)
    assert index.tolist() == [0, 1] and [b.signal_id for b in truth] == [7, 8]  # not the one facing away
    assert boxes == pytest.approx(np.array([b.box_xyxy for b in truth]), abs=1e-6)


def test_a_light_box_gives_the_state_of_the_light_it_lies_on():
    frame, lights = frame_at(), mapped(POLES)
    _, (b7, b8) = projected_boxes(lights, frame)
    shift = np.array([1.0, 1.0, 1.0, 1.0])  # a box a pixel off its projection still lies on it
    det = detections([b7 + shift, b8, [10, 10, 14, 20], b8], [RED, GREEN, RED, 0], [0.9, 0.8, 0.9, 0.9])
    found = match_lights(lights, frame, det, 0.35)
    assert {sid: state for sid, (state, _) in found.items()} == {7: "red", 8: "green"}
    # The most confident box of a light wins; boxes under the threshold count for nothing.
    det = detections([b7, b7], [RED, GREEN], [0.5, 0.7])
    assert match_lights(lights, frame, det, 0.35)[7][0] == "green"
    assert match_lights(lights, frame, detections([b7], [RED], [0.2]), 0.35) == {}
    assert match_lights([], frame, det, 0.35) == {}
    # From behind the lights (the ego past them), no light faces the camera: no state.
    assert match_lights(lights, frame_at(40.0), det, 0.35) == {}


def test_a_light_cut_by_the_image_edge_gives_no_state():
    frame = frame_at()
    over = mapped([LightPose(9.5, -2.75, np.pi, 7, arm_m=3.0)])  # over the road, 9 m ahead of the camera
    _, (box,) = projected_boxes(over, frame)
    assert box[1] < 0 < box[3]  # its top (the red lamp) above the image
    assert match_lights(over, frame, detections([np.clip(box, 0, None)], [GREEN], [0.9]), 0.35) == {}
    whole = mapped([LightPose(20.0, -2.75, np.pi, 7, arm_m=3.0)])
    _, (box,) = projected_boxes(whole, frame)
    assert match_lights(whole, frame, detections([box], [GREEN], [0.9]), 0.35)[7][0] == "green"


def painted_light(lit: str | None, x0: int = 100, y0: int = 50, lamp_px: int = 2) -> np.ndarray:
    """A grey frame with a light's housing at (x0, y0) (xyxy: x0, y0, x0 + 3 lamps' width, ...) and its
    three lamps (red on top) as the renderer colours them, `lit` lit (None: all dark)."""
    rgb = np.full((192, 320, 3), 128, np.uint8)
    u8 = lambda rgba: (255 * np.array(rgba[:3])).astype(np.uint8)  # noqa: E731
    rgb[y0 : y0 + 7 * lamp_px, x0 : x0 + 3 * lamp_px] = u8(HOUSING_RGBA)
    for k, colour in enumerate(LAMP_ORDER):
        y = y0 + (1 + 2 * k) * lamp_px
        rgb[y : y + lamp_px, x0 + lamp_px : x0 + 2 * lamp_px] = u8(LAMP_RGBA[colour][colour != lit])
    return rgb


def test_the_lit_lamp_gives_the_state_by_its_colour():
    box = np.array([100, 50, 106, 64], np.float32)
    for state in ("red", "yellow", "green"):
        assert lamp_colour(painted_light(state), box) == state
        assert (
            lamp_colour(painted_light(state, lamp_px=1), np.array([100, 50, 103, 57])) == state
        )  # 1 px lamps
    assert lamp_colour(painted_light(None), box) is None  # all dark: the colour cannot tell
    assert lamp_colour(painted_light("green"), np.array([0, 0, 20, 20])) is None  # no light in the box
    assert lamp_colour(painted_light("green"), np.array([330, 200, 340, 210])) is None  # off the image
    dim = (painted_light("red").astype(np.float32) * 0.25).astype(np.uint8)
    assert lamp_colour(dim, box) is None  # too dim to tell the lit lamp from a dark one


def test_a_clearly_lit_lamp_overrides_the_detectors_class():
    rgb = painted_light("green")
    det = detections(
        [[100, 50, 106, 64], [10, 10, 30, 40], [150, 20, 156, 34]], [RED, 0, RED], [0.6, 0.9, 0.5]
    )
    out = recognise_lights(rgb, det, 0.35)
    # Best first; the object, and the light box on no lit lamp, keep their classes.
    assert out["class_ids"].tolist() == [0, GREEN, RED] and out["scores"].tolist() == pytest.approx(
        [0.9, 0.6, 0.5]
    )
    assert det["class_ids"].tolist() == [RED, 0, RED]  # the input is not changed


def test_the_weak_boxes_of_one_light_in_several_states_are_one_light():
    # Unsure of the state, the detector gives a green light three weak boxes, one per state.
    rgb, box = painted_light("green"), [100, 50, 106, 64]
    yellow = FIRST_LIGHT_CLASS + 1
    det = detections(
        [box, [100, 51, 106, 64], box, [200, 50, 206, 64], [5, 5, 9, 9]],
        [RED, GREEN, yellow, RED, 0],
        [0.26, 0.23, 0.15, 0.2, 0.12],
    )
    out = recognise_lights(rgb, det, 0.35)
    assert out["class_ids"].tolist() == [GREEN]  # by its lit lamp; the lone weak box elsewhere is dropped
    assert out["scores"][0] == pytest.approx(1 - 0.74 * 0.77 * 0.85, abs=1e-6)  # any of the three
    assert out["boxes_xyxy"][0].tolist() == box  # the strongest's box
    low = recognise_lights(rgb, det, 0.1)  # under the threshold, the object and the lone box stay
    assert sorted(low["class_ids"].tolist()) == [0, GREEN, RED]
    # Two boxes of one state are two lights (suppressing duplicates is decode's work), and boxes
    # of different states apart are two lights.
    two = detections([box, box], [RED, RED], [0.4, 0.4])
    assert len(recognise_lights(painted_light(None), two, 0.35)["scores"]) == 2
    apart = detections([box, [107, 50, 113, 64]], [RED, GREEN], [0.4, 0.4])
    assert recognise_lights(painted_light(None), apart, 0.35)["class_ids"].tolist() == [RED, GREEN]


def test_a_state_is_the_vote_of_the_last_boxes_and_lapses_without_them():
    states = LightStates(hold_s=0.5)
    states.update(1.0, {7: ("green", 0.9)})
    assert states.signals(1.4) == ((7, "green"),)
    assert states.signals(1.6) == ()  # unseen: the planner takes it for red
    states.update(2.0, {7: ("green", 0.8), 8: ("red", 0.5)})
    states.update(2.1, {7: ("red", 0.6)})  # one box calls it red: the green ones outvote it
    assert states.signals(2.1) == ((7, "green"), (8, "red"))
    states.update(2.2, {7: ("red", 0.7)})  # the light turned: red wins once its boxes weigh more
    assert states.signals(2.2) == ((7, "red"), (8, "red"))
    with pytest.raises(ValueError, match="light_hold_s"):
        LightStates(-1.0)


def test_light_states_count_found_lights_and_their_states():
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    images = [{"id": 1}, {"id": 2}]
    light = {"iscrowd": 0, "distance_m": 20.0}
    gt = {
        "categories": cats,
        "images": images,
        "annotations": [
            {"image_id": 1, "category_id": RED + 1, "bbox": [100, 50, 4, 10], "state": "red", **light},
            {"image_id": 1, "category_id": GREEN + 1, "bbox": [200, 50, 4, 10], "state": "green", **light},
            {"image_id": 2, "category_id": GREEN + 1, "bbox": [100, 50, 4, 10], "state": "green", **light},
            # Too far for the measure, and a don't-care box: neither counts.
            {
                "image_id": 2,
                "category_id": RED + 1,
                "bbox": [200, 50, 4, 10],
                "state": "red",
                "iscrowd": 0,
                "distance_m": 70.0,
            },
            {
                "image_id": 2,
                "category_id": RED + 1,
                "bbox": [250, 50, 4, 10],
                "state": "red",
                "iscrowd": 1,
                "distance_m": 10.0,
            },
        ],
    }
    dets = [
        {"image_id": 1, "category_id": RED + 1, "bbox": [101, 51, 4, 9], "score": 0.9},  # right
        {"image_id": 1, "category_id": RED + 1, "bbox": [201, 50, 4, 10], "score": 0.8},  # wrong state
        {"image_id": 1, "category_id": GREEN + 1, "bbox": [100, 50, 4, 10], "score": 0.7},  # light taken
        {"image_id": 2, "category_id": GREEN + 1, "bbox": [150, 50, 4, 10], "score": 0.9},  # on no light
        {"image_id": 2, "category_id": GREEN + 1, "bbox": [100, 50, 4, 10], "score": 0.2},  # too unsure
    ]
    m = light_states(gt, dets, score_threshold=0.35)
    assert (m["n_gt"], m["found"]) == (3, 2)
    assert m["recall"] == pytest.approx(2 / 3) and m["state_accuracy"] == pytest.approx(0.5)
    assert m["confusion"]["green"]["red"] == 1 and m["confusion"]["red"]["red"] == 1
    gt["categories"] = cats[:FIRST_LIGHT_CLASS]  # a dataset without the light classes
    assert light_states(gt, dets, 0.35) is None
