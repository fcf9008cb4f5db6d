"""The image corruptions: seeded, shape- and type-preserving, each moving the image the way its
name says, and stronger at a higher severity."""

import cv2
import numpy as np
import pytest

from perception.evaluation import corruptions as C

H, W = 96, 160
RANDOM_KINDS = ("gaussian_noise", "fog", "rain", "low_light")


def scene() -> np.ndarray:
    """A driving-like frame: a sky gradient, a textured ground, a road with lane marks, two boxes."""
    rng = np.random.default_rng(5)
    rgb = np.empty((H, W, 3), dtype=np.float32)
    rgb[: H // 3] = np.linspace(200, 150, H // 3)[:, None, None] * np.array([0.8, 0.9, 1.0])
    rgb[H // 3 :] = (90, 110, 60)
    rgb[H // 3 :] += rng.normal(0, 12, size=(H - H // 3, W, 1))
    rgb[H // 2 :, 40:120] = (105, 105, 110)
    rgb[H // 2 :: 8, 78:82] = (235, 235, 235)
    rgb[40:60, 20:50] = (180, 30, 30)
    rgb[45:70, 110:118] = (30, 30, 160)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def grey(value: int = 120) -> np.ndarray:
    return np.full((H, W, 3), value, dtype=np.uint8)


def run(kind, severity, image=None, seed=0):
    return C.corrupt(np.random.default_rng(seed), scene() if image is None else image, kind, severity)


def high_frequency_energy(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(rgb.astype(np.float32), cv2.CV_32F).var())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("kind", C.KINDS)
def test_each_kind_is_seeded_and_keeps_shape_and_type(kind):
    image = scene()
    before = image.copy()
    a, b, other = run(kind, 2, image), run(kind, 2, image), run(kind, 2, image, seed=1)
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.array_equal(image, before)  # the input is left alone
    assert not np.array_equal(a, image)
    assert np.array_equal(a, other) == (kind not in RANDOM_KINDS)  # only the random kinds use the seed
    assert np.array_equal(run(kind, 0, image), image)  # severity 0 is the identity


@pytest.mark.parametrize("kind", C.KINDS)
def test_a_higher_severity_changes_the_image_more(kind):
    image = scene()
    change = [np.abs(run(kind, s, image).astype(float) - image).mean() for s in (0.5, 1, 2, 3)]
    assert change == sorted(change) and change[0] < change[-1], change


def test_noise_has_the_sigma_it_names():
    for severity, sigma in zip(C.SEVERITIES, C.LEVELS["gaussian_noise"]["sigma"][1:], strict=True):
        out = run("gaussian_noise", severity, grey())
        assert (out.astype(float) - 120).std() == pytest.approx(sigma, rel=0.03)
        assert abs(out.astype(float).mean() - 120) < 0.5


def test_blurs_lower_the_high_frequency_energy_in_order():
    for kind in ("gaussian_blur", "motion_blur"):
        energy = [high_frequency_energy(run(kind, s)) for s in (0, 1, 2, 3)]
        assert energy == sorted(energy, reverse=True) and energy[3] < 0.5 * energy[0], (kind, energy)


def test_horizontal_motion_blur_leaves_horizontal_edges_alone():
    rows = np.zeros((H, W, 3), dtype=np.uint8)
    rows[::6] = 255  # horizontal lines: constant along x
    columns = np.ascontiguousarray(rows.transpose(1, 0, 2))[:H, :W]  # vertical lines
    assert np.array_equal(run("motion_blur", 2, rows), rows)  # 9 px at 0 degrees
    assert high_frequency_energy(run("motion_blur", 2, columns)) < 0.2 * high_frequency_energy(columns)
    # at 30 degrees the blur has a vertical component too
    assert not np.array_equal(run("motion_blur", 3, rows), rows)


def test_line_kernel_is_a_normalised_line_through_the_centre():
    k = C.line_kernel(9, 0)
    assert k.sum() == pytest.approx(1.0)
    centre = k.shape[0] // 2
    assert k[centre].sum() == pytest.approx(1.0)  # horizontal: all mass on the centre row
    assert np.allclose(k, k[::-1, ::-1])  # symmetric about the centre: the image does not move
    slanted = C.line_kernel(15, 30)
    ys, xs = np.nonzero(slanted > 0.01)
    assert np.all((xs - slanted.shape[1] // 2) * (ys - slanted.shape[0] // 2) <= 0)  # up and to the right
    assert np.array_equal(C.line_kernel(1, 0), np.array([[1.0]], dtype=np.float32))


def test_brightness_scales_the_mean_and_contrast_the_spread():
    image = scene()
    for severity, factor in zip(C.SEVERITIES, C.LEVELS["brightness"]["factor"][1:], strict=True):
        assert run("brightness", severity, image).mean() == pytest.approx(factor * image.mean(), abs=0.6)
    for severity, factor in zip(C.SEVERITIES, C.LEVELS["contrast"]["factor"][1:], strict=True):
        out = run("contrast", severity, image).astype(float)
        assert out.mean() == pytest.approx(image.mean(), abs=0.6)
        assert out.std() == pytest.approx(factor * image.std(), rel=0.02)


def test_jpeg_quality_lowers_the_psnr():
    image = scene()
    values = [psnr(run("jpeg", s, image), image) for s in C.SEVERITIES]
    assert values == sorted(values, reverse=True) and values[-1] < 35


def test_fog_pulls_towards_its_grey_and_flattens():
    image = scene()
    distance = [np.abs(run("fog", s, image).astype(float) - C.FOG_GREY).mean() for s in (0, 1, 2, 3)]
    spread = [run("fog", s, image).std() for s in (0, 1, 2, 3)]
    assert distance == sorted(distance, reverse=True) and spread == sorted(spread, reverse=True)


def test_rain_adds_bright_slanted_streaks():
    dark = grey(20)
    out = run("rain", 3, dark).astype(int)
    assert out.min() >= 20 and out.max() > 100  # only ever brighter on a dark frame
    lit = (out[..., 0] > 40).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lit, connectivity=8)
    tall = stats[1:, cv2.CC_STAT_HEIGHT] > stats[1:, cv2.CC_STAT_WIDTH]
    assert count > 20 and tall.mean() > 0.8  # streaks, mostly upright
    covered = [(run("rain", s, dark)[..., 0] > 40).mean() for s in C.SEVERITIES]
    assert covered == sorted(covered)


def test_low_light_is_darker_and_noisier_in_order():
    flat = grey(150)
    outs = [run("low_light", s, flat).astype(float) for s in C.SEVERITIES]
    means = [o.mean() for o in outs]
    relative_noise = [o.std() / o.mean() for o in outs]
    assert means == sorted(means, reverse=True) and means[0] < 150
    assert relative_noise == sorted(relative_noise) and relative_noise[0] > 0.01


def test_parameters_interpolate_between_levels_and_refuse_the_unknown():
    assert C.parameters("brightness", 1.5)["factor"] == pytest.approx(0.7)
    assert C.parameters("jpeg", 0)["quality"] == 100
    assert C.describe("motion_blur", 3) == "motion_blur 15 px at 30 deg"
    assert C.describe("gaussian_blur", 2) == "gaussian_blur kernel 9 px"
    with pytest.raises(ValueError, match="unknown corruption"):
        C.parameters("snow", 1)
    with pytest.raises(ValueError, match="severity"):
        C.parameters("fog", 3.5)
    with pytest.raises(ValueError, match="uint8"):
        C.corrupt(np.random.default_rng(0), scene().astype(np.float32), "fog", 1)
