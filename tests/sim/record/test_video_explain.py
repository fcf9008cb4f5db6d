"""`drive ... video_explain=true`: the map of each frame's top detection in the video's camera view
(sim/record/outputs.py ExplainedView); off by default, at no cost."""

import av
import numpy as np
import pytest
import yaml

from sim.record.outputs import ExplainedView


def test_the_map_of_the_top_detection_is_blended_in(tiny_cnn):
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    view, note = ExplainedView(tiny_cnn(0.05))(rgb)
    assert view.shape == rgb.shape and view.dtype == np.uint8 and not np.array_equal(view, rgb)
    assert note.startswith("map: ") and "in its box" in note
    same, none = ExplainedView(tiny_cnn(0.99))(rgb)  # no detection: the frame as it was
    assert same is rgb and none is None


def test_a_perceiver_without_a_detector_is_refused():
    with pytest.raises(ValueError, match="perception=cnn"):
        ExplainedView(object())


def test_the_option_is_off_by_default(conf_values):
    assert conf_values("drive.yaml")["video_explain"] is False


def test_drive_without_a_detector_to_explain_is_bad_input(tmp_path, fresh_python):
    """One line, exit 2, no run folder, and torch is not loaded to say so."""
    program = "import sys\nfrom sim.app.cli import main\nprint(main(sys.argv[1:]), 'torch' in sys.modules)"
    out = fresh_python(program, "drive", "video_explain=true", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.stdout.split()[-2:] == ["2", "False"]
    assert out.stderr.strip().splitlines()[-1] == (
        "bulletdrive: error: video_explain=true needs a camera detector to explain: perception=cnn"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_drive_writes_the_explained_video(tmp_path):
    """The shipped detector in the loop for 2 s: every camera frame in the video, and the frames
    with the map differ from those of the same run without it only in the camera view."""
    from sim.app.drive import drive

    frames = {}
    for explain in (False, True):
        run_dir = tmp_path / str(explain)
        args = ["perception=cnn", "scenario=cut_in", "scenario.duration_s=2", "plot=false"]
        drive([*args, f"video_explain={str(explain).lower()}", f"hydra.run.dir={run_dir}"])
        with av.open(str(run_dir / "video.mp4")) as video:
            frames[explain] = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
        assert yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["video_explain"] is explain
    assert len(frames[True]) == len(frames[False]) == 20  # 2 s at the camera's 10 Hz
    width, height = 320, 192  # the first camera's view, top left; the rig's others and the inset beside
    diff = [np.abs(a.astype(int) - b) for a, b in zip(frames[True], frames[False], strict=True)]
    assert max(d[:height, :width].mean(axis=(0, 2)).max() for d in diff) > 10  # the map, in some frame
    # the other views and the inset alike: H.264 rounding only (a drawn box or a map would move
    # whole patches of pixels by far more than 30; the encoder moves a few single ones that much)
    for rest in ((slice(None), slice(width + 8, None)), (slice(height + 8, None), slice(None))):
        assert max(np.percentile(d[rest], 99.9) for d in diff) <= 30
        assert max(d[rest].mean() for d in diff) < 1
