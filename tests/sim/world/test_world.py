"""The PyBullet world: the road it shows matches the map, few bodies, several worlds per process."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

import sim.world.ground as ground_module
import sim.world.renderer as renderer_module
import sim.world.world as world_module
from decision.route import Road, Segment
from sim.world.camera import Camera, project
from sim.world.ground import (
    DASH_GAP_M,
    DASH_LENGTH_M,
    LINE_WIDTH_M,
    SHOULDER_M,
    lane_boundary_offsets_m,
    road_paint,
)
from sim.world.world import World

LANE_WIDTH_M = 3.5  # as the straight_road fixture's


def curved_road() -> Road:
    return Road(
        [Segment("straight", 40.0), Segment("arc", 60.0, 40.0), Segment("arc", 50.0, -60.0)],
        lane_count=3,
        lane_width_m=LANE_WIDTH_M,
        speed_limit_mps=20,
        origin_xy_yaw=(5.0, -3.0, 0.3),
    )


def test_road_paint_lies_on_the_lane_boundaries_of_the_map():
    road = curved_road()
    paint = road_paint(road)
    boundaries = np.arange(4) * LANE_WIDTH_M - road.half_width_m  # 3 lanes: 4 lines
    np.testing.assert_allclose(lane_boundary_offsets_m(road), boundaries)

    # Every line vertex is half a line width from one boundary, in Frenet coordinates of the map.
    vertices = np.concatenate([*paint.solid_lines, paint.dashes.reshape(-1, 2)])
    s, d = road.to_frenet(vertices)
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
    # The first solid line's outline: the map's boundary points, half a line width either side.
    line = paint.solid_lines[0]
    half = len(line) // 2
    mid = 0.5 * (line[:half] + line[half:][::-1])
    x, y, _ = road.to_world(road.to_frenet(mid)[0], boundaries[0])
    np.testing.assert_allclose(mid, np.stack([x, y], 1), atol=0.02)

    # The asphalt reaches the shoulder beyond the outer lines, along the whole road.
    s_surf, d_surf = road.to_frenet(paint.surface)
    assert np.abs(d_surf) == pytest.approx(np.full(len(d_surf), road.half_width_m + SHOULDER_M), abs=0.02)
    assert s_surf.max() == pytest.approx(road.length_m, abs=0.05)


def test_paint_pieces_cover_the_lines_in_short_pieces():
    road = curved_road()
    pieces, covers = ground_module.paint_pieces(road)
    boundaries = lane_boundary_offsets_m(road)
    s, d = road.to_frenet(pieces.reshape(-1, 2))
    s, d = s.reshape(-1, 4), d.reshape(-1, 4)
    centre_d = d.mean(axis=1)
    assert np.abs(centre_d[:, None] - boundaries[None]).min(axis=1).max() < 0.02  # on a boundary
    assert np.abs(d - centre_d[:, None]) == pytest.approx(np.full(d.shape, LINE_WIDTH_M / 2), abs=0.02)
    assert (s.max(axis=1) - s.min(axis=1)).max() <= ground_module.NEAR_PAINT_PIECE_M + 0.05
    # Solid lines end to end, dashes as in road_paint: the pieces add up to the painted length.
    period = DASH_LENGTH_M + DASH_GAP_M
    n_dashes = len(np.arange(0.0, road.length_m - DASH_LENGTH_M, period))
    painted = 2 * road.length_m + 2 * n_dashes * DASH_LENGTH_M
    assert (s.max(axis=1) - s.min(axis=1)).sum() == pytest.approx(painted, rel=0.01)
    # Covers: the same pieces, NEAR_PAINT_COVER_M wider on both sides.
    _, d_cover = road.to_frenet(covers.reshape(-1, 2))
    width = np.abs(d_cover.reshape(-1, 4) - centre_d[:, None])
    cover_m = LINE_WIDTH_M / 2 + ground_module.NEAR_PAINT_COVER_M
    assert width == pytest.approx(np.full(width.shape, cover_m), abs=0.02)


def test_ground_texture_draws_the_map():
    road = curved_road()
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        tex = world.ground_texture
    assert tex.m_per_px == pytest.approx(ground_module.TEXTURE_M_PER_PX)
    assert [lv.shape[:2] for lv in tex.levels[1:]] == [
        (tex.levels[0].shape[0] // 2**k, tex.levels[0].shape[1] // 2**k) for k in (1, 2)
    ]
    boundaries = lane_boundary_offsets_m(road)
    period = DASH_LENGTH_M + DASH_GAP_M
    s_line = np.arange(1.0, road.length_m - 1.0, 0.7)
    s_dash = np.arange(0.0, road.length_m - DASH_LENGTH_M, period) + DASH_LENGTH_M / 2
    s_gap = np.arange(0.0, road.length_m - period, period) + DASH_LENGTH_M + DASH_GAP_M / 2

    def colours(s_m: np.ndarray, d_m: float, level: int = 0) -> np.ndarray:
        x, y, _ = road.to_world(s_m, d_m)
        return tex.sample(np.stack([x, y], -1), level).astype(int)

    white = 0.95 * 255 * world.up_light_factor
    asphalt = colours(s_line, road.lanes[0].offset_m)
    assert asphalt.std(axis=0).max() < 3 and abs(asphalt[:, 0] - asphalt[:, 1]).max() < 3  # plain grey
    for d in boundaries[[0, -1]]:  # solid edge lines all along the road
        assert colours(s_line, d).min() > white - 12
    for d in boundaries[1:-1]:  # dashes where the map has them, asphalt in the gaps
        assert colours(s_dash, d).min() > white - 12
        assert np.abs(colours(s_gap, d) - asphalt.mean(0)).max() < 4
        # Coarser levels blur the dashes but keep them brighter than the asphalt.
        assert colours(s_dash, d, level=2)[:, 1].min() > asphalt[:, 1].mean() + 30
    grass = colours(s_line, road.half_width_m + SHOULDER_M + 0.5)
    assert (grass[:, 1] > grass[:, 0] + 10).all() and grass[:, 1].std() > 1  # green, not flat
    # Off the texture: the mean ground colour.
    far = tex.sample(np.array([[1e5, 1e5]]))[0]
    assert far[1] == pytest.approx(grass[:, 1].mean(), abs=8)


def test_texels_get_coarser_on_a_huge_map(straight_road):
    road = straight_road(200.0)
    tex = ground_module.build_ground_texture(
        road, (0.3, 0.4, 0.2), (0.3,) * 3, (0.9,) * 3, np.random.default_rng(0), max_pixels=200_000
    )
    h, w = tex.levels[0].shape[:2]
    assert tex.m_per_px > ground_module.TEXTURE_M_PER_PX
    assert h * w <= 1.05 * 200_000
    assert w * tex.m_per_px >= 200.0 + 2 * ground_module.TEXTURE_MARGIN_M  # still covers the road


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_top_down_view_shows_the_lines_where_the_map_has_them(renderer, camera_config, straight_road):
    if renderer == "egl" and renderer_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    road = straight_road(200.0)
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
    expected_u = cx - fx * lane_boundary_offsets_m(road) / height_m
    groups = np.split(white, np.flatnonzero(np.diff(white) > 1) + 1)
    centres = np.sort([g.mean() + 0.5 for g in groups if len(g)])
    assert len(centres) == 3
    np.testing.assert_allclose(centres, np.sort(expected_u), atol=1.0)
    assert frame.depth_m == pytest.approx(np.full(frame.depth_m.shape, height_m), abs=1e-3)

    # Asphalt ends the shoulder beyond the edge lines: grey inside, ground colour outside.
    def column(d_m: float) -> int:
        return int(np.floor(cx - fx * d_m / height_m))

    edge_m = road.half_width_m + SHOULDER_M
    inside = row[column(edge_m - SHOULDER_M / 2)]  # between the edge line and the asphalt's end
    outside = row[column(edge_m + 0.3)]
    assert abs(inside[0] - inside[1]) < 10  # grey
    assert outside[1] > outside[0] + 10  # grass green


def test_forward_view_shows_the_lines_where_the_map_has_them(camera_config):
    road = Road(
        [Segment("straight", 90.0), Segment("arc", 100.0, 300.0)],
        lane_count=3,
        lane_width_m=LANE_WIDTH_M,
        speed_limit_mps=20,
        origin_xy_yaw=(5.0, -3.0, 0.3),
    )
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        cam = Camera(camera_config(), world)
        s_ego, d_ego = 10.0, road.lanes[0].offset_m  # right lane: the view is not symmetric
        x, y, yaw = road.to_world(s_ego, d_ego)
        frame = cam.render(float(x), float(y), float(yaw), 0.0, np.random.default_rng(0))
    rgb = frame.rgb.astype(int)
    period = DASH_LENGTH_M + DASH_GAP_M
    lines = lane_boundary_offsets_m(road)

    def seen(s_m: np.ndarray, d_m: float) -> np.ndarray:
        """Darkest channel at the pixels where map points (s, d) on the ground project, the brightest
        within a pixel to the side (NaN outside the image)."""
        px, py, _ = road.to_world(s_m, d_m)
        uv, z = project(np.stack([px, py, np.zeros_like(px)], -1), frame.K, frame.cam_to_world)
        col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
        ok = (z > 0) & (col >= 1) & (col < 319) & (row >= 0) & (row < 192)
        col, row = np.where(ok, col, 1), np.where(ok, row, 0)
        best = np.max([rgb[row, col + k].min(-1) for k in (-1, 0, 1)], axis=0)
        return np.where(ok, best, np.nan)

    # Solid edge lines 4-25 m ahead: white within a pixel of where K and the pose put them, asphalt
    # 1.5 m inside them. The right one (1.75 m from the camera) is crisp; the left one (8.75 m)
    # is thinner than a pixel across beyond ~10 m (its pixels are partly asphalt).
    near = s_ego + np.arange(4.0, 25.0, 0.5)
    right = seen(near, lines[0])
    assert np.isfinite(right).sum() > 30 and np.nanmin(right) > 200
    assert np.nanmax(seen(near, lines[0] + 1.5)) < 100
    left = seen(near, lines[-1]) - seen(near, lines[-1] - 1.5)
    assert np.isfinite(left).sum() > 15 and np.nanmin(left) > 50
    # Dash centres on the separators 6-30 m ahead; asphalt in the gaps between them.
    dashes = np.arange(0.0, road.length_m - DASH_LENGTH_M, period) + DASH_LENGTH_M / 2
    dashes = dashes[(dashes > s_ego + 6) & (dashes < s_ego + 30)]
    for d in lines[1:-1]:
        assert np.nanmin(seen(dashes, d)) > 160 and np.nanmax(seen(dashes + period / 2, d)) < 100
    # 55-65 m ahead, the lines of the ego's lane are still clearly brighter than the asphalt (a
    # pixel there is ~7 m long on the ground: the dashed one shows as a fainter solid line).
    far = s_ego + np.arange(55.0, 65.0, 1.0)
    edge = seen(far, lines[0]) - seen(far, lines[0] + 1.5)
    separator = seen(far, lines[1]) - seen(far, lines[1] - 1.5)
    assert np.isfinite(edge).sum() > 5 and np.nanmin(edge) > 50, edge
    assert np.isfinite(separator).sum() > 5 and np.nanmin(separator) > 20, separator
    # Sky above the horizon, ground below it, at their depths.
    assert frame.depth_m[:60] == pytest.approx(np.full((60, 320), 150.0))
    assert (frame.rgb[:60, :, 2].astype(int) > frame.rgb[:60, :, 0] + 15).all()  # blue-ish sky
    assert frame.depth_m[-1].max() < 4.0


def test_ground_and_sky_look_the_same_with_both_renderers(make_actors, camera_config, straight_road):
    if renderer_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    road = straight_road(200.0)
    frames, masks = [], []
    for renderer in ("tiny", "egl"):
        with World(road, 120.0, renderer, np.random.default_rng(4), randomise=True) as world:
            if world.renderer_name != renderer:
                pytest.skip("the EGL plugin did not load here")
            world.add_actors(make_actors([("car", 25.0, 1.75)], road=road))
            cam = Camera(camera_config(), world)
            frames.append(cam.render(0.0, -1.75, 0.0, 0.0, np.random.default_rng(0), with_segmentation=True))
            masks.append(cam.last_actor_mask)
    tiny, egl = frames
    car = (masks[0] >= 0) | (masks[1] >= 0)
    assert 100 < car.sum() < 2000
    np.testing.assert_array_equal(tiny.rgb[~car], egl.rgb[~car])
    np.testing.assert_array_equal(tiny.depth_m[~car], egl.depth_m[~car])


def test_ground_is_a_plane_things_rest_on(straight_road):
    with World(straight_road(200.0), 240.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        box = p.createCollisionShape(p.GEOM_BOX, halfExtents=[0.5, 0.5, 0.25], physicsClientId=world.client)
        body = p.createMultiBody(1.0, box, -1, [30.0, -2.0, 1.0], physicsClientId=world.client)
        for _ in range(240):
            world.step()
        pos, _ = p.getBasePositionAndOrientation(body, physicsClientId=world.client)
        assert pos[2] == pytest.approx(0.25, abs=0.01)
        friction = p.getDynamicsInfo(world.ground_id, -1, physicsClientId=world.client)[1]
        assert friction == pytest.approx(world_module.GROUND_FRICTION)


def test_world_has_few_bodies_and_one_per_actor(make_actors):
    road = curved_road()
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=True) as world:
        assert world.static_body_ids == [world.ground_id]
        assert p.getNumBodies(physicsClientId=world.client) == len(world.static_body_ids)
        rows = [("car", 20, 0), ("van", 30, 3.5), ("pedestrian", 25, 6), ("cone", 15, -5), ("barrier", 40, 0)]
        actors = make_actors(rows + [("car", 50, 0)], road=road)
        actors.models[-1] = "truck"  # a model without its own shape gets a plain box
        world.add_actors(actors)
        world.add_actors(actors)  # again: replaces, does not add
        assert p.getNumBodies(physicsClientId=world.client) == len(world.static_body_ids) + 6
        assert [world.body_to_actor[b] for b in world.actor_body_ids.tolist()] == list(range(6))


def test_sync_actors_moves_the_bodies_to_the_actor_poses(make_actors, straight_road):
    road = straight_road(200.0)
    with World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        actors = make_actors([("car", 20, 0), ("barrier", 30, 3.5)], road=road)
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
            world.sync_actors(make_actors([("car", 20, 0)], road=road))


def test_two_worlds_in_one_process_are_separate(make_actors, camera_config, straight_road):
    road = straight_road(200.0)
    a = World(road, 120.0, "tiny", np.random.default_rng(0), randomise=False)
    b = World(road, 240.0, "tiny", np.random.default_rng(0), randomise=False)
    try:
        assert a.client != b.client
        assert (a.dt_s, b.dt_s) == pytest.approx((1 / 120, 1 / 240))
        a.add_actors(make_actors([("car", 15, -1.75)], road=road))
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


def test_randomisation_follows_the_seed(straight_road):
    road = straight_road(200.0)

    def looks(seed: int, randomise: bool):
        with World(road, 120.0, "tiny", np.random.default_rng(seed), randomise) as w:
            return (
                w.road_rgba,
                w.ground_rgba,
                w.light_direction,
                w.sky_rgb,
                w.random_vehicle_rgba(np.random.default_rng(seed)),
                w.ground_texture.levels[0],
            )

    a, b, c = looks(1, True), looks(1, True), looks(2, True)
    assert a[:4] == b[:4] and np.array_equal(a[5], b[5])
    assert a[:4] != c[:4] and not np.array_equal(a[5], c[5])
    fixed_1, fixed_2 = looks(1, False), looks(2, False)  # fixed without randomise
    assert fixed_1[:4] == fixed_2[:4] and np.array_equal(fixed_1[5], fixed_2[5])
    for seed in range(5):
        rgba = looks(seed, True)[4]
        assert rgba.shape == (4,) and np.all((rgba >= 0) & (rgba <= 1)) and rgba[3] == 1.0


def test_renderer_choice(straight_road):
    with pytest.raises(ValueError, match="renderer"):
        World(straight_road(200.0), 120.0, "opengl", np.random.default_rng(0), randomise=False)
    with World(straight_road(200.0), 120.0, "tiny", np.random.default_rng(0), randomise=False) as world:
        assert (world.renderer_name, world.renderer_flag, world.gl_renderer) == (
            "tiny",
            p.ER_TINY_RENDERER,
            None,
        )
    plugin = renderer_module.egl_plugin_path()

    def opened(renderer: str, plugin_path: str | None, gpu_present: bool) -> renderer_module.RenderClient:
        """The client open_client gives, checked to be connected, then disconnected."""
        c = renderer_module.open_client(renderer, plugin_path, gpu_present)
        assert p.getNumBodies(physicsClientId=c.client) == 0
        p.disconnect(physicsClientId=c.client)
        return c

    # Without a GPU device "auto" does not even load the plugin.
    assert opened("auto", plugin, gpu_present=False).gl_renderer is None
    assert opened("auto", plugin, gpu_present=False).renderer_name == "tiny"
    # With one, it keeps EGL only when its GL renderer is not a CPU one (llvmpipe here).
    if plugin is not None:
        c = opened("auto", plugin, gpu_present=True)
        software = any(name in (c.gl_renderer or "").lower() for name in renderer_module.SOFTWARE_GL)
        assert c.renderer_name == ("tiny" if software else "egl")
    assert (
        renderer_module.gl_renderer_name(["x", "GL_RENDERER=llvmpipe (LLVM 15)", "y"]) == "llvmpipe (LLVM 15)"
    )
    assert renderer_module.gl_renderer_name(["ven = Mesa"]) is None
    # Where the plugin is missing, "egl" is an error and "auto" falls back to TinyRenderer.
    with pytest.raises(RuntimeError, match="EGL"):
        renderer_module.open_client("egl", None, gpu_present=True)
    assert opened("auto", None, gpu_present=True).renderer_name == "tiny"


def test_egl_world_keeps_stdout_clean(capfd, camera_config, straight_road):
    if renderer_module.egl_plugin_path() is None:
        pytest.skip("pybullet's EGL plugin is not installed here")
    print("before", flush=True)
    with World(straight_road(200.0), 120.0, "egl", np.random.default_rng(0), randomise=False) as world:
        Camera(camera_config(width=32, height=16), world).render(0.0, 0.0, 0.0, 0.0, np.random.default_rng(0))
        Camera(camera_config(width=32, height=16), world).render(0.0, 0.0, 0.0, 0.0, np.random.default_rng(0))
    print("after", flush=True)
    # The plugin prints its GL set-up and a line per frame; none of it may reach stdout.
    assert capfd.readouterr().out == "before\nafter\n"
