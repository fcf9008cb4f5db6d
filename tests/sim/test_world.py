"""The PyBullet world: the road it builds matches the map, few bodies, several worlds per process."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

import sim.world as world_module
from decision.route import Road, Segment
from sim.actors import Actors
from sim.camera import Camera
from sim.config import CameraConfig
from sim.world import DASH_GAP_M, DASH_LENGTH_M, LINE_WIDTH_M, SHOULDER_M, World

LANE_WIDTH_M = 3.5


def straight_road(lanes: int = 2) -> Road:
    return Road([Segment("straight", 200.0)], lane_count=lanes, lane_width_m=LANE_WIDTH_M, speed_limit_mps=20)


def curved_road() -> Road:
    return Road(
        [Segment("straight", 40.0), Segment("arc", 60.0, 40.0), Segment("arc", 50.0, -60.0)],
        lane_count=3,
        lane_width_m=LANE_WIDTH_M,
        speed_limit_mps=20,
        origin_xy_yaw=(5.0, -3.0, 0.3),
    )


def camera_config(**changes) -> CameraConfig:
    values = dict(
        enabled=True,
        width=320,
        height=192,
        hfov_deg=75.0,
        mount_x_m=0.8,
        mount_z_m=1.4,
        pitch_deg=4.0,
        near_m=0.2,
        far_m=150.0,
        max_label_distance_m=80.0,
        noise_std=0.0,
    )
    values.update(changes)
    return CameraConfig(**values)


def actors_at(road: Road, rows: list[tuple[str, float, float]]) -> Actors:
    """Actors (model, s, d) on `road`, heading along it."""
    sizes = {
        "car": (4.5, 1.8, 1.5),
        "van": (5.2, 2.0, 2.2),
        "pedestrian": (0.5, 0.5, 1.75),
        "cone": (0.4, 0.4, 0.7),
    }
    sizes["barrier"] = (3.0, 0.4, 1.0)
    classes = {"car": 0, "van": 0, "pedestrian": 1, "cone": 2, "barrier": 2}
    n = len(rows)
    s = np.array([r[1] for r in rows], dtype=float)
    d = np.array([r[2] for r in rows], dtype=float)
    x, y, h = road.to_world(s, d)
    return Actors(
        ids=np.arange(10, 10 + n),
        class_ids=np.array([classes[r[0]] for r in rows]),
        models=[r[0] for r in rows],
        size_m=np.array([sizes[r[0]] for r in rows], dtype=float).reshape(n, 3),
        xy_m=np.stack([x, y], axis=1).reshape(n, 2),
        yaw_rad=np.asarray(h, dtype=float).reshape(n),
        speed_mps=np.zeros(n),
        v_mps=np.zeros((n, 2)),
        accel_mps2=np.zeros(n),
        rgba=np.tile([0.2, 0.4, 0.8, 1.0], (n, 1)),
    )


def test_lane_markings_lie_on_the_lane_boundaries_of_the_map():
    road = curved_road()
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        meshes = world.road_meshes()
    boundaries = np.arange(4) * LANE_WIDTH_M - road.half_width_m  # 3 lanes: 4 lines

    # Every line vertex is half a line width from one boundary, in Frenet coordinates of the map.
    vertices, indices = meshes["lines"]
    s, d = road.to_frenet(vertices[:, :2])
    gap = np.abs(d[:, None] - boundaries[None]).min(axis=1)
    assert gap == pytest.approx(np.full(len(d), LINE_WIDTH_M / 2), abs=0.02)
    nearest = np.abs(d[:, None] - boundaries[None]).argmin(axis=1)
    # Solid edge lines run the whole road; the separators are dashes of the set length and period.
    for k in (0, 3):
        assert s[nearest == k].min() == pytest.approx(0.0, abs=0.05)
        assert s[nearest == k].max() == pytest.approx(road.length_m, abs=0.05)
    period = DASH_LENGTH_M + DASH_GAP_M
    for k in (1, 2):
        phase = np.mod(s[nearest == k] + 0.05, period) - 0.05  # dash ends at 0 or DASH_LENGTH_M
        assert np.minimum(np.abs(phase), np.abs(phase - DASH_LENGTH_M)).max() < 0.05
        assert np.sum(np.abs(phase) < 0.05) == 2 * int(np.ceil((road.length_m - DASH_LENGTH_M) / period))
    # The line vertex midpoints are the map's boundary points: road.to_world(s, boundary).
    stations = int(np.ceil(road.length_m / world_module.ROAD_SAMPLE_SPACING_M)) + 1
    edge = vertices[: 2 * stations]  # the first solid line: (right, left) vertex pair per station
    mid = 0.5 * (edge[0::2, :2] + edge[1::2, :2])
    x, y, _ = road.to_world(np.linspace(0.0, road.length_m, stations), boundaries[0])
    np.testing.assert_allclose(mid, np.stack([x, y], 1), atol=0.02)
    assert indices.max() < len(vertices)

    # The asphalt reaches the shoulder beyond the outer lines, along the whole road.
    surface, _ = meshes["surface"]
    s_surf, d_surf = road.to_frenet(surface[:, :2])
    assert np.abs(d_surf) == pytest.approx(np.full(len(d_surf), road.half_width_m + SHOULDER_M), abs=0.02)
    assert s_surf.max() == pytest.approx(road.length_m, abs=0.05)


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_top_down_view_shows_the_lines_where_the_map_has_them(renderer):
    if renderer == "egl" and world_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    road = straight_road(lanes=2)
    world = World(road, 120.0, renderer, np.random.default_rng(0), randomise=False)
    if world.renderer_name != renderer:
        world.close()
        pytest.skip("the EGL plugin did not load here")
    cam = Camera(camera_config(), world)
    height_m, x0_m = 40.0, 10.5  # above the road; the centre row crosses a dash (painted 9-12 m)
    pose = np.eye(4)
    pose[:3, :3] = np.array(
        [[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
    ).T  # x=-y_w, y=-x_w, z=-z_w
    pose[:3, 3] = (x0_m, 0.0, height_m)
    frame = cam.render_from(pose, 0.0, np.random.default_rng(0))
    world.close()

    row = frame.rgb[frame.rgb.shape[0] // 2].astype(int)
    white = np.flatnonzero(row.min(axis=1) > 200)
    # Expected columns of the three line centres (d = -3.5, 0, 3.5): image right is world -y.
    fx, cx = frame.K[0, 0], frame.K[0, 2]
    dist = height_m - world_module.LINE_Z_M
    expected_u = cx - fx * world.lane_boundary_offsets_m() / dist
    groups = np.split(white, np.flatnonzero(np.diff(white) > 1) + 1)
    centres = np.sort([g.mean() + 0.5 for g in groups if len(g)])
    assert len(centres) == 3
    np.testing.assert_allclose(centres, np.sort(expected_u), atol=1.0)

    # Asphalt ends the shoulder beyond the edge lines: grey inside, ground colour outside.
    def column(d_m: float) -> int:
        return int(np.floor(cx - fx * d_m / (height_m - world_module.ROAD_Z_M)))

    edge_m = road.half_width_m + SHOULDER_M
    inside = row[column(edge_m - SHOULDER_M / 2)]  # between the edge line and the asphalt's end
    outside = row[column(edge_m + 0.3)]
    assert abs(inside[0] - inside[1]) < 10  # grey
    assert outside[1] > outside[0] + 10  # grass green


def test_world_has_few_bodies_and_one_per_actor():
    road = curved_road()
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=True) as world:
        assert len(world.static_body_ids) <= 3
        assert p.getNumBodies(physicsClientId=world.client) == len(world.static_body_ids)
        rows = [("car", 20, 0), ("van", 30, 3.5), ("pedestrian", 25, 6), ("cone", 15, -5), ("barrier", 40, 0)]
        actors = actors_at(road, rows + [("car", 50, 0)])
        actors.models[-1] = "truck"  # a model without its own shape gets a plain box
        world.add_actors(actors)
        world.add_actors(actors)  # again: replaces, does not add
        assert p.getNumBodies(physicsClientId=world.client) == len(world.static_body_ids) + 6
        assert [world.body_to_actor[b] for b in world.actor_body_ids.tolist()] == list(range(6))


def test_sync_actors_moves_the_bodies_to_the_actor_poses():
    road = straight_road()
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        actors = actors_at(road, [("car", 20, 0), ("barrier", 30, 3.5)])
        world.add_actors(actors)
        actors.xy_m[:] = [[50.0, 1.0], [60.0, -2.0]]
        actors.yaw_rad[:] = [0.7, -2.5]
        world.sync_actors(actors)
        for i, body in enumerate(world.actor_body_ids.tolist()):
            pos, quat = p.getBasePositionAndOrientation(body, physicsClientId=world.client)
            assert pos == pytest.approx([*actors.xy_m[i], 0.0], abs=1e-6)
            yaw = p.getEulerFromQuaternion(quat)[2]
            assert math.remainder(yaw - actors.yaw_rad[i], 2 * math.pi) == pytest.approx(0.0, abs=1e-6)
        with pytest.raises(ValueError, match="add_actors"):
            world.sync_actors(actors_at(road, [("car", 20, 0)]))


def test_two_worlds_in_one_process_are_separate():
    road = straight_road()
    a = World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False)
    b = World(road, 240.0, "tiny", np.random.default_rng(0), randomise=False)
    try:
        assert a.client != b.client
        assert (a.dt_s, b.dt_s) == pytest.approx((1 / 120, 1 / 240))
        a.add_actors(actors_at(road, [("car", 15, -1.75)]))
        cfg = camera_config()
        rng = np.random.default_rng(0)
        with_car = Camera(cfg, a).render(0.0, -1.75, 0.0, 0.0, rng)
        without = Camera(cfg, b).render(0.0, -1.75, 0.0, 0.0, rng)
        centre = (slice(82, 96), slice(150, 170))  # the car's rear, 12 m ahead of the camera
        assert np.abs(with_car.rgb[centre].astype(int) - without.rgb[centre]).mean() > 20
        assert with_car.depth_m[centre].max() < 14.0 < 18.0 < without.depth_m[centre].min()
    finally:
        a.close()
        b.close()
    a.close()  # closing twice is harmless


def test_randomisation_follows_the_seed():
    road = straight_road()

    def looks(seed: int, randomise: bool):
        with World(road, 120.0, "tiny", np.random.default_rng(seed), randomise) as w:
            return (
                w.road_rgba,
                w.ground_rgba,
                w.light_direction,
                w.random_vehicle_rgba(np.random.default_rng(seed)),
            )

    assert looks(1, True)[:3] == looks(1, True)[:3]
    assert looks(1, True)[:3] != looks(2, True)[:3]
    assert looks(1, False)[:3] == looks(2, False)[:3]  # fixed without randomise
    for seed in range(5):
        rgba = looks(seed, True)[3]
        assert rgba.shape == (4,) and np.all((rgba >= 0) & (rgba <= 1)) and rgba[3] == 1.0


def test_renderer_choice(monkeypatch):
    road = straight_road()
    with pytest.raises(ValueError, match="renderer"):
        World(road, 120.0, "opengl", np.random.default_rng(0), randomise=False)
    monkeypatch.setattr(world_module, "egl_plugin_path", lambda: None)  # as if the plugin were missing
    with pytest.raises(RuntimeError, match="EGL"):
        World(road, 120.0, "egl", np.random.default_rng(0), randomise=False)
    with World(road, 120.0, "auto", np.random.default_rng(0), randomise=False) as world:
        assert world.renderer_name == "tiny"
        assert world.renderer_flag == p.ER_TINY_RENDERER


def test_egl_world_keeps_stdout_clean(capfd):
    if world_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    print("before", flush=True)
    with World(straight_road(), 120.0, "egl", np.random.default_rng(0), randomise=False) as world:
        Camera(camera_config(width=32, height=16), world).render(0.0, 0.0, 0.0, 0.0, np.random.default_rng(0))
        Camera(camera_config(width=32, height=16), world).render(0.0, 0.0, 0.0, 0.0, np.random.default_rng(0))
    print("after", flush=True)
    # The plugin prints its GL set-up and a line per frame; none of it may reach stdout.
    assert capfd.readouterr().out == "before\nafter\n"
