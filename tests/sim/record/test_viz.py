import av
import cv2
import numpy as np
import pytest

from decision.route import Road, Segment
from perception.types import OBSTACLE, PEDESTRIAN, VEHICLE
from sim.metrics.events import Event, EventKind
from sim.record.viz import (
    BACKGROUND,
    CLASS_COLOURS,
    EGO_COLOUR,
    LONG_SIDE_PX,
    ROAD_SURFACE,
    VideoWriter,
    bev_inset,
    bev_layout,
    bev_plot,
    draw_overlay,
)


def curved_road():
    return Road(
        [Segment("straight", 50.0), Segment("arc", 80.0, 40.0)],
        lane_count=3,
        lane_width_m=3.5,
        speed_limit_mps=15,
    )


def ticks_along(road, d_m=-1.75, n=300):
    s = np.linspace(5.0, road.length_m - 5.0, n)
    x, y, h = road.to_world(s, d_m)
    return {"t_s": np.arange(n) * 0.05, "x_m": x, "y_m": y, "yaw_rad": h, "speed_mps": np.linspace(0, 15, n)}


@pytest.mark.parametrize("shape", ["straight", "curved"])
def test_bev_plot_draws_the_trajectory(tmp_path, shape, straight_road):
    road = straight_road(300.0) if shape == "straight" else curved_road()
    ticks = ticks_along(road)
    events = [
        Event(float(ticks["t_s"][150]), EventKind.COLLISION_VEHICLE, 3),
        Event(float(ticks["t_s"][60]), EventKind.OFF_ROAD),
    ]
    trail = {3: np.stack([ticks["x_m"][::10], ticks["y_m"][::10] + 3.5], axis=1)}
    path = tmp_path / "plots" / "bev.png"
    bev_plot(road, ticks, events, path, actor_trails=trail, title="test run")
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert max(img.shape[:2]) == LONG_SIDE_PX
    lay = bev_layout(road, [np.stack([ticks["x_m"], ticks["y_m"]], 1), *trail.values()])
    assert (img.shape[1], img.shape[0]) == (lay.width_px, lay.height_px)
    px = lay.to_px(np.stack([ticks["x_m"], ticks["y_m"]], 1))[::7]
    colours = img[px[:, 1], px[:, 0]].astype(int)
    not_plain = (np.abs(colours - BACKGROUND).sum(1) > 30) & (np.abs(colours - ROAD_SURFACE).sum(1) > 30)
    assert not_plain.mean() > 0.9  # the path is drawn over the road
    red = (img[..., 0] > 180) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.sum() > 10  # the collision marker
    assert not list(path.parent.glob(".*tmp*"))  # nothing left behind


def test_draw_overlay_boxes_and_hud():
    rgb = np.full((120, 200, 3), 200, np.uint8)
    boxes = [
        (20, 40, 60, 90, VEHICLE, "car 12m"),
        (100, 50, 120, 100, PEDESTRIAN, ""),
        (150, 60, 170, 80, OBSTACLE, ""),
    ]
    out = draw_overlay(rgb, boxes, ["speed 10.0 m/s", "follow"])
    assert out is not rgb and (rgb == 200).all()  # input untouched
    assert tuple(out[70, 20]) == CLASS_COLOURS[VEHICLE]  # left edge of the car box
    assert tuple(out[75, 100]) == CLASS_COLOURS[PEDESTRIAN]
    assert tuple(out[70, 150]) == CLASS_COLOURS[OBSTACLE]
    assert out[:8, :40].mean() < 120  # dark HUD backdrop top-left
    assert (out[110:, 180:] == 200).all()  # elsewhere unchanged


def test_bev_inset_is_ego_centred_heading_up():
    road = curved_road()
    ego_xy = np.array(road.to_world(20.0, -1.75)[:2])
    # a car 15 m ahead in the same lane, a pedestrian 10 m ahead on the left
    actors_xy = np.array([road.to_world(35.0, -1.75)[:2], road.to_world(30.0, 5.0)[:2]])
    img = bev_inset(
        road,
        ego_xy,
        0.0,
        actors_xy,
        np.zeros(2),
        np.array([[4.5, 1.8], [0.8, 0.8]]),
        np.array([VEHICLE, PEDESTRIAN]),
        size_px=192,
        ego_size_m=(4.5, 1.8),
        range_m=60.0,
    )
    assert img.shape == (192, 192, 3) and img.dtype == np.uint8
    assert tuple(img[96, 96]) == EGO_COLOUR
    ppm = 192 / 60.0
    assert tuple(img[int(96 - 15 * ppm), 96]) == CLASS_COLOURS[VEHICLE]  # ahead = up
    assert tuple(img[int(96 - 10 * ppm), int(96 - 6.75 * ppm)]) == CLASS_COLOURS[PEDESTRIAN]  # left = left
    # turned to face north, a car north of the ego is still drawn straight up
    north = bev_inset(
        road,
        np.zeros(2),
        np.pi / 2,
        np.array([[0.0, 12.0]]),
        np.array([np.pi / 2]),
        np.array([[4.5, 1.8]]),
        np.array([VEHICLE]),
        size_px=192,
        ego_size_m=(4.5, 1.8),
    )
    assert tuple(north[int(96 - 12 * ppm), 96]) == CLASS_COLOURS[VEHICLE]


def read_video(path):
    """(codec name, pixel format, (width, height), frames as RGB arrays) of a video, read with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return ctx.name, ctx.pix_fmt, (stream.width, stream.height), frames


def test_video_is_h264_and_round_trips(tmp_path):
    path = tmp_path / "run.mp4"
    with VideoWriter(path, 10.0, (64, 48)) as vw:
        for i in range(12):
            vw.write(np.full((48, 64, 3), (20 * i, 100, 200 - 10 * i), np.uint8))
        assert not path.exists()  # only the temporary file exists until close
        with pytest.raises(ValueError):
            vw.write(np.zeros((10, 10, 3), np.uint8))
    assert vw.frames == 12 and vw.path == path
    codec, pix_fmt, size, frames = read_video(path)
    assert (codec, pix_fmt, size) == ("h264", "yuv420p", (64, 48))
    assert len(frames) == 12
    # colours survive (RGB in, RGB out, through yuv420p): the last frame is reddish
    assert frames[-1].reshape(-1, 3).mean(0) == pytest.approx([220, 100, 90], abs=6)
    assert [p.name for p in tmp_path.iterdir()] == ["run.mp4"]


def test_video_of_odd_size_is_padded_to_even(tmp_path):
    with VideoWriter(tmp_path / "odd.mp4", 5.0, (33, 21)) as vw:
        for _ in range(3):
            vw.write(np.full((21, 33, 3), 200, np.uint8))
    assert vw.encoded_size == (34, 22)
    codec, pix_fmt, size, frames = read_video(tmp_path / "odd.mp4")
    assert (codec, pix_fmt, size, len(frames)) == ("h264", "yuv420p", (34, 22), 3)
    assert abs(int(frames[0][-1, -1, 0]) - 200) < 6  # the padding repeats the edge


def test_video_aborted_by_an_error_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "bad.mp4", 10.0, (32, 32)) as vw:
            vw.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("simulated crash")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="after close"):
        vw.write(np.zeros((32, 32, 3), np.uint8))


@pytest.mark.parametrize("fps, size", [(0.0, (32, 32)), (10.0, (0, 32))])
def test_video_refuses_a_bad_rate_or_size(tmp_path, fps, size):
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "x.mp4", fps, size)
    assert list(tmp_path.iterdir()) == []
