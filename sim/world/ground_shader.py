"""The camera's deferred ground shader: the ground, the road and the sky of one frame.

The camera is level at a fixed height (`sim.world.camera.camera_pose` uses only the ego's x, y and yaw), so
each pixel below the horizon sees the ground at a point that is fixed relative to the camera, up to
the camera's yaw and position. `GroundShader` precomputes, for every pixel, that point, its depth
along the optical axis and the band of rows (mipmap level, sub-rows) it belongs to; a frame is then
one affine transform and one `cv2.remap` of the world's `sim.world.ground.GroundTexture` per band, the
paint near the camera drawn as polygons, and a sky gradient above the horizon.
`sim.world.camera.Camera.render_from` puts it wherever PyBullet (which draws only the actors) drew nothing.

Anti-aliasing: seen from a car the ground footprint of a pixel is long and thin (at 60 m about
0.3 m across and 12 m along the road). The mipmap level follows the larger of the short side and
the long side / `MAX_ANISOTROPY`, and up to `MAX_ANISOTROPY` sub-rows per pixel sample the long side
(averaged with `cv2.resize(INTER_AREA)`), so far lane lines stay visible and dashes do not flicker.
Near the camera a texel covers several pixels and bilinear sampling blurs the paint, so the paint
there is drawn as anti-aliased polygons: first an asphalt-coloured cover over the texture's blurred
paint (the asphalt is one flat colour), then the paint.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim.world.ground import SUBPIXEL_BITS, GroundTexture, rgb255

# Bands, sky and near paint.
MAX_ANISOTROPY = 8  # at most this many samples along a pixel's long ground footprint
SAMPLE_SPACING_TEXELS = 2.0  # sub-rows are at most this many texels (of their level) apart
GROUND_EPS = 1e-9  # a ray counts as reaching the ground when its world z slope is below -eps
SKY_GRADIENT_RAD = 0.6  # the sky goes from its horizon to its zenith colour over this elevation [rad]
OFF_TEXTURE_M = 1e7  # where sky pixels of a ground band sample (far off the texture: border colour)
NEAR_PAINT_RANGE_M = 25.0  # paint pieces up to this depth along the optical axis [m]
NEAR_PAINT_MIN_DEPTH_M = 0.5  # pieces reaching closer than this are left out (they are out of view)


def _ground_points(
    K: np.ndarray, rot: np.ndarray, height_m: float, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the rays of pixels (u, v) (broadcast together, continuous pixel coordinates) meet the
    ground, for a camera `height_m` above it with rotation `rot` (3, 3) (camera to world).

    Returns the points relative to the camera (..., 2) [m], world axes, and their depth along the
    optical axis (...) [m]; inf depth (and points far off) where the ray misses the ground.
    """
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    d = [rot[i, 0] * x + rot[i, 1] * y + rot[i, 2] for i in range(3)]  # world direction, z_cam = 1
    hits = (d[2] < -GROUND_EPS) & (height_m > 0)
    depth = np.where(hits, height_m / np.where(hits, -d[2], 1.0), np.inf)
    reach = np.where(hits, depth, OFF_TEXTURE_M)
    return np.stack([reach * d[0], reach * d[1]], axis=-1), depth


@dataclass
class _Band:
    """Image rows [row0, row1) sampled on one pyramid level with `samples` sub-rows per row."""

    row0: int
    row1: int
    level: int
    samples: int
    points: np.ndarray  # ((row1 - row0) * samples, W, 2) float32, ground points / texel size


class GroundShader:
    """The ground and sky a camera at a given height and tilt sees, for any yaw and position.

    Precomputes per pixel (for `cam_to_world`'s rotation and height; its x, y and yaw do not
    matter) the ground point, its depth and its pyramid band. `shade` then gives the picture for a
    pose with the same height and tilt (`matches`).
    """

    def __init__(
        self,
        K: np.ndarray,
        width: int,
        height: int,
        cam_to_world: np.ndarray,
        far_m: float,
        texture: GroundTexture,
        sky_rgb: tuple,
    ):
        self.texture = texture
        self.width, self.height = width, height
        self._K = np.array(K, dtype=float)
        self._paint_centres = texture.paint.mean(axis=1) if len(texture.paint) else np.zeros((0, 2))
        self._rot = np.array(cam_to_world[:3, :3], dtype=float)
        self._height_m = float(cam_to_world[2, 3])
        u = np.arange(width) + 0.5
        v = np.arange(height)[:, None] + 0.5
        _, depth = _ground_points(K, self._rot, self._height_m, u, v)
        ground = np.isfinite(depth)
        # (H, W) depth along the optical axis [m]: the ground's up to far_m, far_m where none.
        self.depth_m = np.minimum(depth, far_m).astype(np.float32)
        self.ground_mask = ground  # (H, W) bool, True where the pixel sees the ground
        self.image = self._sky(K, sky_rgb)  # (H, W, 3) uint8: sky, ground rows filled by `shade`
        self._sky_image = self.image.copy()
        self._bands = self._make_bands(K, ground)
        rows = np.flatnonzero(ground.any(axis=1))
        mixed = rows[~ground[rows].all(axis=1)]  # ground rows that also see sky
        self._mixed = (int(mixed.min()), int(mixed.max()) + 1) if len(mixed) else None
        self._sky_mask = (~ground).astype(np.uint8)

    def _sky(self, K: np.ndarray, sky_rgb: tuple) -> np.ndarray:
        """(H, W, 3) uint8 gradient from the horizon colour up to the zenith colour."""
        horizon, zenith = (rgb255(c).astype(np.float32) for c in sky_rgb)
        x = (np.arange(self.width) + 0.5 - K[0, 2]) / K[0, 0]
        y = (np.arange(self.height)[:, None] + 0.5 - K[1, 2]) / K[1, 1]
        r = self._rot
        dz = r[2, 0] * x + r[2, 1] * y + r[2, 2]
        elevation = np.arcsin(np.clip(dz / np.sqrt(x * x + y * y + 1.0), -1.0, 1.0))
        t = np.clip(elevation / SKY_GRADIENT_RAD, 0.0, 1.0).astype(np.float32)[..., None]
        return np.round(horizon + t * (zenith - horizon)).astype(np.uint8)

    def _make_bands(self, K: np.ndarray, ground: np.ndarray) -> list[_Band]:
        m, levels = self.texture.m_per_px, len(self.texture.levels)
        u = np.arange(self.width) + 0.5
        v = np.arange(self.height)[:, None] + 0.5

        def points(du: float, dv: float) -> np.ndarray:
            return _ground_points(K, self._rot, self._height_m, u + du, v + dv)[0]

        # Ground footprint of each pixel [m]: the distances between its edges' ground points.
        across = np.linalg.norm(points(0.5, 0.0) - points(-0.5, 0.0), axis=-1)
        along = np.linalg.norm(points(0.0, 0.5) - points(0.0, -0.5), axis=-1)
        rows = np.flatnonzero(ground.any(axis=1))
        seen = ground[rows]
        # Per row: the median short and long sides over its ground pixels.
        short = np.nanmedian(np.where(seen, np.minimum(across, along)[rows], np.nan), axis=1)
        long = np.nanmedian(np.where(seen, np.maximum(across, along)[rows], np.nan), axis=1)
        reach = np.maximum(short, long / MAX_ANISOTROPY) / m
        level = np.clip(np.floor(np.log2(np.clip(reach, 1.0, 2.0**levels))), 0, levels - 1).astype(int)
        spacing = SAMPLE_SPACING_TEXELS * m * 2.0**level
        samples = np.clip(np.ceil(np.minimum(long / spacing, MAX_ANISOTROPY)), 1, MAX_ANISOTROPY).astype(int)
        bands: list[_Band] = []
        for row, lv, n in zip(rows.tolist(), level.tolist(), samples.tolist(), strict=True):
            if bands and bands[-1].row1 == row and (bands[-1].level, bands[-1].samples) == (lv, n):
                bands[-1].row1 = row + 1
            else:
                bands.append(_Band(row, row + 1, lv, n, np.zeros(0)))
        for band in bands:
            n = band.samples
            sub = band.row0 + (np.arange((band.row1 - band.row0) * n) + 0.5) / n  # sub-row v
            rel, _ = _ground_points(K, self._rot, self._height_m, u, sub[:, None])
            band.points = (rel / (m * 2**band.level)).astype(np.float32)
        return bands

    def matches(self, cam_to_world: np.ndarray, tol: float = 1e-7) -> bool:
        """Whether a pose has this shader's height and tilt (it may differ in x, y and yaw)."""
        return bool(
            abs(cam_to_world[2, 3] - self._height_m) < tol
            and np.abs(cam_to_world[2, :3] - self._rot[2]).max() < tol
        )

    def shade(self, cam_to_world: np.ndarray) -> np.ndarray:
        """The ground and sky (H, W, 3) uint8 seen from a pose that `matches`.

        The array is reused by the next call: copy what must be kept.
        """
        turn = cam_to_world[:3, :3] @ self._rot.T  # a rotation about z: the yaw from the reference
        tex = self.texture
        a = tex.world_to_px
        # Band points (relative to the camera, per texel of their level) to texel coordinates.
        linear = (a[:, :2] * tex.m_per_px) @ turn[:2, :2]
        camera_px = a[:, :2] @ cam_to_world[:2, 3] + a[:, 2]  # the camera on level 0
        for band in self._bands:
            affine = np.concatenate([linear, (camera_px / 2**band.level - 0.5)[:, None]], axis=1)
            maps = cv2.transform(band.points, affine)
            dst = self.image[band.row0 : band.row1]
            src = tex.levels[band.level]
            if band.samples == 1:
                cv2.remap(src, maps, None, cv2.INTER_LINEAR, dst, cv2.BORDER_CONSTANT, tex.border_rgb)
            else:
                fine = cv2.remap(src, maps, None, cv2.INTER_LINEAR, None, cv2.BORDER_CONSTANT, tex.border_rgb)
                cv2.resize(fine, (self.width, band.row1 - band.row0), dst, interpolation=cv2.INTER_AREA)
        self._draw_near_paint(cam_to_world)
        if self._mixed is not None:
            r0, r1 = self._mixed
            cv2.copyTo(self._sky_image[r0:r1], self._sky_mask[r0:r1], self.image[r0:r1])
        return self.image

    def _draw_near_paint(self, cam_to_world: np.ndarray) -> None:
        """Draw the paint pieces between `NEAR_PAINT_MIN_DEPTH_M` and `NEAR_PAINT_RANGE_M` deep as
        anti-aliased polygons over the texture's (covers first)."""
        tex = self.texture
        xy = cam_to_world[:2, 3]
        # Pieces that can be within range (a point z deep is at most z / cos(half fov) away).
        reach_m = 2.0 * NEAR_PAINT_RANGE_M
        near = np.flatnonzero(((self._paint_centres - xy) ** 2).sum(axis=1) < reach_m**2)
        if len(near) == 0:
            return
        rot = cam_to_world[:3, :3]
        rel = np.stack([tex.paint_cover[near], tex.paint[near]]) - xy  # (2, M, 4, 2)
        cam = rel[..., 0:1] * rot[0] + rel[..., 1:2] * rot[1] - cam_to_world[2, 3] * rot[2]  # R^T (p - t)
        z = cam[..., 2]
        keep = (z.min(axis=(0, 2)) > NEAR_PAINT_MIN_DEPTH_M) & (z.max(axis=(0, 2)) < NEAR_PAINT_RANGE_M)
        if not keep.any():
            return
        cam, z = cam[:, keep], z[:, keep, :, None]
        K = self._K
        uv = cam[..., :2] / z * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
        pts = np.round((uv - 0.5) * 2**SUBPIXEL_BITS).astype(np.int32)  # cv2 draws at pixel centres
        if tex.paint_rgb is None:  # a road's paint: no two pieces or covers overlap, one fill each
            for quads, colour in ((pts[0], tex.road_rgb), (pts[1], tex.line_rgb)):
                cv2.fillPoly(self.image, list(quads), colour, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
            return
        # A town's paint: pieces and covers may overlap (one fill would leave their overlaps empty,
        # even-odd), and have several colours (white and yellow): one fill per quad.
        colours = [tuple(c) for c in tex.paint_rgb[near][keep].tolist()]
        for quad in pts[0]:
            cv2.fillConvexPoly(self.image, quad, tex.road_rgb, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
        for quad, colour in zip(pts[1], colours, strict=True):
            cv2.fillConvexPoly(self.image, quad, colour, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
