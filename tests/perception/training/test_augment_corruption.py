"""The corruption option of the training's augmentation: off, it reproduces the augmentation as it
was before the option existed, bit for bit; on, it applies the benchmark's corruptions."""

import hashlib

import numpy as np
import pytest

from perception.evaluation.corruptions import KINDS, corrupt
from perception.training.augment import Augment

# sha256 of the outputs of Augment(**conf/train.yaml augment) on `frame()` for seeds 0-15, computed
# with the code of main 668a5d1, before the corruption option was added.
BEFORE_THE_OPTION = "c8f800349e52f902ecbdeac5f62b35b65340b8bcb3e10dfe2e3e359585ce1786"
CORRUPTION_OFF = {"corrupt_p": 0.0, "corrupt_kinds": list(KINDS), "corrupt_severity": [0.5, 3.0]}
PLAIN = {"flip_p": 0.0, "jitter": 0.0, "hue_shift_deg": 0.0, "noise_std": 0.0, "scale_p": 0.0,
         "scale_range": [1.0, 1.0], "min_kept_fraction": 0.4, "min_box_size_px": 2.0}  # fmt: skip


def frame():
    """A 64x96 random frame with two coloured boxes."""
    rgb = np.random.default_rng(123).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    rgb[6:26, 4:30] = (255, 0, 0)
    rgb[10:50, 50:62] = (0, 255, 0)
    boxes = np.array([[4, 6, 30, 26], [50, 10, 62, 50]], dtype=np.float32)
    return rgb, boxes, np.array([0, 1]), np.array([10.0, 20.0], dtype=np.float32)


def digest(augment: Augment) -> str:
    h = hashlib.sha256()
    for seed in range(16):
        for array in augment(np.random.default_rng(seed), *frame()):
            h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def test_with_the_option_off_the_augmentation_is_as_before(conf_values):
    values = conf_values("train.yaml")["augment"]
    assert {k: values[k] for k in CORRUPTION_OFF} == CORRUPTION_OFF  # off by default
    assert digest(Augment(**values)) == BEFORE_THE_OPTION


def test_with_the_option_on_it_applies_a_corruption_from_the_generator():
    rgb, boxes, cls, dist = frame()
    fog_only = Augment(**PLAIN, corrupt_p=1.0, corrupt_kinds=["fog"], corrupt_severity=[2.0, 2.0])
    rng = np.random.default_rng(4)
    out, oboxes, ocls, odist = fog_only(rng, rgb, boxes, cls, dist)
    replay = np.random.default_rng(4)
    replay.random(2)  # the zoom's and the flip's draws
    replay.random()  # the corruption's
    replay.integers(1)  # its kind
    expected = corrupt(replay, rgb, "fog", replay.uniform(2.0, 2.0))
    assert np.array_equal(out, expected)
    assert np.array_equal(oboxes, boxes) and np.array_equal(ocls, cls) and np.array_equal(odist, dist)
    # p 0.5 over many seeds: about half the frames change, every kind is drawn
    half = Augment(**PLAIN, corrupt_p=0.5, corrupt_kinds=list(KINDS), corrupt_severity=[1.0, 3.0])
    changed = [
        not np.array_equal(half(np.random.default_rng(s), rgb, boxes, cls, dist)[0], rgb) for s in range(200)
    ]
    assert 0.4 < np.mean(changed) < 0.6


@pytest.mark.parametrize(
    "change, word",
    [({"corrupt_kinds": ["snow"]}, "snow"), ({"corrupt_kinds": []}, "empty"), ({"corrupt_severity": [2, 1]}, "corrupt_severity"),
     ({"corrupt_severity": [0, 4]}, "corrupt_severity")],
)  # fmt: skip
def test_bad_corruption_options_are_refused(change, word):
    with pytest.raises(ValueError, match=word):
        Augment(**PLAIN, **{"corrupt_p": 0.5, "corrupt_kinds": ["fog"], "corrupt_severity": [1, 2], **change})
