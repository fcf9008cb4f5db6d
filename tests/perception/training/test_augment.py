import numpy as np
import pytest

from perception.training.augment import Augment, hflip, photometric_jitter, scale_crop

W, H = 96, 64
COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], dtype=np.uint8)


def scene():
    """Grey image with three coloured rectangles; boxes (x0, y0, x1, y1) in pixel-corner coordinates."""
    rgb = np.full((H, W, 3), 128, dtype=np.uint8)
    boxes = np.array([[4, 6, 30, 26], [50, 10, 62, 50], [70, 30, 94, 60]], dtype=np.float32)
    for box, colour in zip(boxes.astype(int), COLOURS, strict=True):
        rgb[box[1] : box[3], box[0] : box[2]] = colour
    return rgb, boxes, np.array([0, 1, 2], dtype=np.int64), np.array([10.0, 20.0, 30.0], dtype=np.float32)


def assert_boxes_on_objects(rgb, boxes, class_ids, inset_px=2, tol=30):
    """The pixels inside every box (inset a little for resampling at the edges) have its colour."""
    assert len(boxes) > 0
    for box, cid in zip(boxes, class_ids, strict=True):
        x0, y0 = int(np.ceil(box[0])) + inset_px, int(np.ceil(box[1])) + inset_px
        x1, y1 = int(np.floor(box[2])) - inset_px, int(np.floor(box[3])) - inset_px
        patch = rgb[y0:y1, x0:x1].reshape(-1, 3).astype(int)
        assert len(patch) > 0
        assert np.abs(patch - COLOURS[cid].astype(int)).max() <= tol, (box, cid)
        # ...and the box is tight: a pixel just outside it is not the object's colour (unless at the border)
        if box[2] < W - 2:
            outside = rgb[int((box[1] + box[3]) / 2), int(np.ceil(box[2])) + 1].astype(int)
            assert np.abs(outside - COLOURS[cid].astype(int)).max() > tol


def test_hflip_moves_boxes_with_pixels():
    rgb, boxes, cls, _ = scene()
    flipped, fboxes = hflip(rgb, boxes)
    assert fboxes[0].tolist() == [W - 30, 6, W - 4, 26]
    assert not np.array_equal(flipped, rgb)
    assert_boxes_on_objects(flipped, fboxes, cls, inset_px=0, tol=0)


@pytest.mark.parametrize("scale", [1.3, 1.12, 0.8])
def test_scale_crop_keeps_boxes_on_objects(scale):
    rgb, boxes, cls, dist = scene()
    for seed in range(5):
        out, oboxes, ocls, odist = scale_crop(
            np.random.default_rng(seed), rgb, boxes, cls, dist, scale, 0.4, 2.0
        )
        assert out.shape == rgb.shape and out.dtype == np.uint8
        assert np.all(oboxes[:, [0, 2]] >= 0) and np.all(oboxes[:, [0, 2]] <= W)
        assert np.all(oboxes[:, [1, 3]] >= 0) and np.all(oboxes[:, [1, 3]] <= H)
        assert_boxes_on_objects(out, oboxes, ocls)
        # distances follow the zoom and stay with their class
        assert odist == pytest.approx(dist[ocls] / scale, rel=0.02)


def test_scale_crop_drops_boxes_mostly_cut_off():
    rgb = np.full((H, W, 3), 128, dtype=np.uint8)
    boxes = np.array([[0, 0, 10, 10], [40, 20, 56, 44]], dtype=np.float32)  # corner box, centre box
    rng = np.random.default_rng(0)
    # zoom 1.3 and the crop window at the bottom-right: the corner box leaves the image
    for _ in range(20):
        _, oboxes, ocls, odist = scale_crop(
            rng, rgb, boxes, np.array([0, 1]), np.array([5.0, 9.0]), 1.3, 0.4, 2.0
        )
        assert 1 in ocls.tolist()  # the centre box always survives
        assert len(oboxes) == len(ocls) == len(odist)
        if 0 in ocls.tolist():  # a kept corner box keeps >= 40 % of its scaled area
            b = oboxes[ocls.tolist().index(0)]
            assert (b[2] - b[0]) * (b[3] - b[1]) >= 0.4 * (13 * 13) - 1e-3
    rng = np.random.default_rng(1)
    dropped = [
        0 not in scale_crop(rng, rgb, boxes, np.array([0, 1]), np.ones(2), 1.3, 0.4, 2.0)[2]
        for _ in range(50)
    ]
    assert any(dropped)


def test_photometric_jitter_changes_pixels_not_shape():
    rgb, *_ = scene()
    out = photometric_jitter(np.random.default_rng(0), rgb, strength=0.3, hue_shift_deg=8.0, noise_std=0.03)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() > 2.0
    # strength 0, no hue, no noise: the identity
    same = photometric_jitter(np.random.default_rng(0), rgb, strength=0.0, hue_shift_deg=0.0, noise_std=0.0)
    assert np.array_equal(same, rgb)


def test_augment_deterministic_and_consistent(conf_values):
    rgb, boxes, cls, dist = scene()
    aug = Augment(
        flip_p=0.5,
        jitter=0.0,
        hue_shift_deg=0.0,
        noise_std=0.0,
        scale_p=1.0,
        scale_range=(0.8, 1.3),
        min_kept_fraction=0.4,
        min_box_size_px=2.0,
        corrupt_p=0.0,
        corrupt_kinds=(),
        corrupt_severity=(0.0, 0.0),
    )
    runs = [aug(np.random.default_rng(s), rgb, boxes, cls, dist) for s in (7, 7, 8)]
    for x, y in zip(runs[0], runs[1], strict=True):
        assert np.array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(runs[0], runs[2], strict=True))
    for seed in range(10):
        out, oboxes, ocls, odist = aug(np.random.default_rng(seed), rgb, boxes, cls, dist)
        assert out.shape == rgb.shape
        assert oboxes.dtype == np.float32 and ocls.dtype == np.int64 and odist.dtype == np.float32
        assert_boxes_on_objects(out, oboxes, ocls)
    # with the training's augmentation (jitter on), sizes and dtypes still hold and the input is untouched
    before = rgb.copy()
    out, *_ = Augment(**conf_values("train.yaml")["augment"])(np.random.default_rng(0), rgb, boxes, cls, dist)
    assert out.shape == rgb.shape and out.dtype == np.uint8 and np.array_equal(rgb, before)
