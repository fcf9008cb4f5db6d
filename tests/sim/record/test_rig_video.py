"""A rig of several cameras in the closed loop: every camera rendered each camera tick and tiled in
the video, ground truth and the CNN perceiver driving with it."""

import av

from sim.app.drive import drive
from sim.record.outputs import video_size


def test_video_size_tiles_the_cameras_in_rows_of_three_beside_a_square_inset():
    assert video_size(1, 320, 192) == (320 + 192, 192)
    assert video_size(4, 320, 192) == (3 * 320 + 2 * 192, 2 * 192)
    assert video_size(6, 320, 192) == (3 * 320 + 2 * 192, 2 * 192)


def test_drive_with_a_surround_rig_renders_every_camera_into_the_video(tmp_path):
    seen = []

    def keep(sim, frames, world, plan):
        seen.append([f.camera for f in frames])

    args = ["scenario=dense_traffic", "seed=1", "scenario.duration_s=2", "sim/rig=surround4"]
    drive([*args, "video=false", "plot=false"], write=False, on_frame=keep)
    assert seen and all(names == ["front", "left", "right", "rear"] for names in seen)

    run = tmp_path / "run"
    result, _ = drive([*args, "perception=cnn", "plot=false", f"hydra.run.dir={run}"])
    assert result.summary["outcome"] in ("completed", "timeout")
    with av.open(str(run / "video.mp4")) as video:
        frame = next(video.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (2 * 192, 3 * 320 + 2 * 192, 3)
    # Row 1: the rear camera's view, then black where the row is short.
    assert frame[192:, :320].max() > 100 and frame[200:, 330:950].max() < 40
