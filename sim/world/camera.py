"""The front camera: pinhole model, rendering (actors by PyBullet, ground, road and sky by
`sim.world.ground_shader.GroundShader`), and ground-truth 2D boxes.

Conventions (used everywhere a pixel is meant):
- Optical frame: x right, y down, z forward (along the optical axis).
- Continuous pixel coordinates: pixel (row r, column c) covers u in [c, c + 1), v in [r, r + 1);
  its centre is (c + 0.5, r + 0.5). The principal point of `intrinsics` is the image centre
  (W/2, H/2). Boxes are (x0, y0, x1, y1) in these coordinates, inside [0, W] x [0, H].
- The OpenGL view and projection matrices are built from K and cam_to_world directly (not from a
  field-of-view formula), so a 3D point lands on the pixel that K and the pose predict, with either
  renderer (TinyRenderer samples half a pixel off the centre; its matrix corrects for that).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pybullet as p
from scipy.special import ndtri

from perception.types import CameraFrame
from sim.config import CameraConfig
from sim.traffic.actors import Actors
from sim.world.ground_shader import GroundShader
from sim.world.world import World

# Ground truth.
MIN_BOX_HEIGHT_PX = 4.0  # boxes shorter than this (after clipping to the image) are dropped
NEAR_CLIP_M = 0.05  # 3D boxes are clipped against the plane z = NEAR_CLIP_M in the camera frame
FACE_GRID = 5  # occlusion test: FACE_GRID x FACE_GRID points on each face that faces the camera
FACE_INSET = 0.1  # keep the points this fraction of the face size away from its edges
DEPTH_TOL_M = 0.25  # a point is visible when its depth <= rendered depth + tolerance
DEPTH_TOL_FRACTION = 0.02  # ... + this fraction of its depth
# TinyRenderer samples pixel (row r, column c) at (u, v) = (c, r + 1) instead of the centre
# (c + 0.5, r + 0.5) that EGL uses (measured against analytic depth in tests/sim/world/test_camera.py);
# its projection matrix shifts the principal point by this much [px] to sample the centres.
TINY_PRINCIPAL_POINT_SHIFT_PX = (-0.5, 0.5)
NOISE_LUT_SIZE = 1 << 16  # pixel noise: Gaussian quantiles picked by uniform 16-bit draws

# The 8 corners of a unit box (x, y in [-0.5, 0.5], z in [0, 1]) and its 12 edges.
UNIT_CORNERS = np.array([[x, y, z] for z in (0.0, 1.0) for y in (-0.5, 0.5) for x in (-0.5, 0.5)])
BOX_EDGES = np.array(
    [[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7]]
)


def _face_samples() -> tuple[np.ndarray, np.ndarray]:
    """Sample points on the 5 faces of the unit box that can face a camera (no bottom face).

    Returns points (5, G*G, 3) in unit-box coordinates and outward normals (5, 3).
    """
    g = FACE_INSET + (1 - 2 * FACE_INSET) * (np.arange(FACE_GRID) + 0.5) / FACE_GRID  # in (0, 1)
    a, b = (x.ravel() for x in np.meshgrid(g - 0.5, g, indexing="ij"))  # a in (-.5, .5), b in (0, 1)
    ones = np.ones_like(a)
    faces = np.stack(
        [
            np.stack([0.5 * ones, a, b], 1),  # front (+x)
            np.stack([-0.5 * ones, a, b], 1),  # rear (-x)
            np.stack([a, 0.5 * ones, b], 1),  # left (+y)
            np.stack([a, -0.5 * ones, b], 1),  # right (-y)
            np.stack([a, b - 0.5, ones], 1),  # top (+z)
        ]
    )
    normals = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 1.0]])
    return faces, normals


FACE_POINTS, FACE_NORMALS = _face_samples()
FACE_CENTRES = np.array(
    [[0.5, 0, 0.5], [-0.5, 0, 0.5], [0, 0.5, 0.5], [0, -0.5, 0.5], [0, 0, 1.0]]
)  # unit box


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole intrinsics K (3, 3): square pixels, principal point at the image centre."""
    fx = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[fx, 0.0, width / 2], [0.0, fx, height / 2], [0.0, 0.0, 1.0]])


def camera_pose(
    ego_x: float,
    ego_y: float,
    ego_yaw: float,
    mount_x_m: float,
    mount_z_m: float,
    pitch_deg: float,
    mount_y_m: float = 0.0,
    yaw_deg: float = 0.0,
) -> np.ndarray:
    """cam_to_world (4, 4) of a camera `mount_x_m` ahead of the ego centre and `mount_y_m` left of
    it, `mount_z_m` above the ground, looking `yaw_deg` left of straight ahead and `pitch_deg` down
    (optical frame: x right, y down, z forward)."""
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    cp, sp = np.cos(np.radians(pitch_deg)), np.sin(np.radians(pitch_deg))
    # Optical axes in the frame of a camera looking along x (x forward, y left, z up), then turned by
    # the camera's yaw on the vehicle and the vehicle's in the world.
    x_axis = np.array([0.0, -1.0, 0.0])
    z_axis = np.array([cp, 0.0, -sp])
    y_axis = np.cross(z_axis, x_axis)
    heading = ego_yaw + np.radians(yaw_deg)
    ch, sh = np.cos(heading), np.sin(heading)
    turn = np.array([[ch, -sh, 0.0], [sh, ch, 0.0], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = turn @ np.stack([x_axis, y_axis, z_axis], axis=1)
    pose[:3, 3] = (ego_x + mount_x_m * c - mount_y_m * s, ego_y + mount_x_m * s + mount_y_m * c, mount_z_m)
    return pose


def gl_view_matrix(cam_to_world: np.ndarray) -> list[float]:
    """OpenGL view matrix (column-major 16 floats) of an optical-frame camera pose."""
    world_to_cam = np.linalg.inv(cam_to_world)
    world_to_gl = np.diag([1.0, -1.0, -1.0, 1.0]) @ world_to_cam  # GL camera: y up, z backward
    return world_to_gl.T.ravel().tolist()


def gl_projection_matrix(K: np.ndarray, width: int, height: int, near_m: float, far_m: float) -> list[float]:
    """OpenGL projection matrix (column-major 16 floats) that reproduces K on a W x H image.

    Row 0 of the image read back by PyBullet is the top row, so v grows downwards as in K.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    proj = np.zeros((4, 4))
    proj[0, 0] = 2 * fx / width
    proj[0, 2] = 1 - 2 * cx / width
    proj[1, 1] = 2 * fy / height
    proj[1, 2] = 2 * cy / height - 1
    proj[2, 2] = -(far_m + near_m) / (far_m - near_m)
    proj[2, 3] = -2 * far_m * near_m / (far_m - near_m)
    proj[3, 2] = -1.0
    return proj.T.ravel().tolist()


def depth_buffer_to_metres(buffer: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """PyBullet's non-linear depth buffer in [0, 1] (H, W) to depth along the optical axis [m]."""
    buffer = np.asarray(buffer, dtype=np.float32)
    return (far_m * near_m / (far_m - (far_m - near_m) * buffer)).astype(np.float32)


def project(
    points_world: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (..., 3): pixel coordinates (..., 2) and depth z (...,) in the camera.

    Points with z <= 0 get meaningless pixels; check z.
    """
    rot, t = cam_to_world[:3, :3], cam_to_world[:3, 3]
    pc = (points_world - t) @ rot  # world -> camera: R^T (x - t)
    z = pc[..., 2]
    zs = np.where(z > 1e-9, z, 1e-9)
    uv = np.stack([K[0, 0] * pc[..., 0] / zs + K[0, 2], K[1, 1] * pc[..., 1] / zs + K[1, 2]], axis=-1)
    return uv, z


@dataclass(frozen=True, slots=True)
class GTBox:
    """Ground-truth box of one actor in one camera frame.

    box_xyxy: (x0, y0, x1, y1) [px], clipped to the image. distance_m: camera centre to the
    centre of the actor's 3D box. visible_fraction: the share of the actor's camera-facing faces
    (the part inside the image) that the depth image shows, weighted by apparent size, so close to
    visible pixels / all pixels of the actor (1 = unoccluded; NaN when the frame has no depth).
    truncation: 1 - (box area inside the image / whole projected box area); for an actor reaching
    behind the camera the whole box is that of its part in front of z = NEAR_CLIP_M, so it is ~1.
    """

    actor_index: int
    actor_id: int
    class_id: int
    box_xyxy: tuple[float, float, float, float]
    distance_m: float
    visible_fraction: float
    truncation: float


def actor_corners(actors: Actors) -> np.ndarray:
    """World corners (N, 8, 3) of the actors' 3D boxes (on the ground, z from 0 to height)."""
    local = UNIT_CORNERS[None] * actors.size_m[:, None, :]  # (N, 8, 3)
    return _to_world(local, actors.xy_m, actors.yaw_rad)


def _to_world(local: np.ndarray, xy_m: np.ndarray, yaw_rad: np.ndarray) -> np.ndarray:
    """Points (N, P, 3) in each actor's frame to the world, actors at xy_m (N, 2), yaw_rad (N,)."""
    c, s = np.cos(yaw_rad)[:, None], np.sin(yaw_rad)[:, None]
    out = np.empty_like(local)
    out[..., 0] = c * local[..., 0] - s * local[..., 1] + xy_m[:, 0:1]
    out[..., 1] = s * local[..., 0] + c * local[..., 1] + xy_m[:, 1:2]
    out[..., 2] = local[..., 2]
    return out


def ground_truth_boxes(
    frame: CameraFrame,
    actors: Actors,
    max_distance_m: float,
    min_box_height_px: float = MIN_BOX_HEIGHT_PX,
) -> list[GTBox]:
    """Ground-truth boxes of the actors seen in `frame`, vectorised over actors and points.

    The 3D box of each actor is clipped against a plane just in front of the camera (so boxes
    partly behind the camera are handled) and projected through K; an actor is dropped when it is
    wholly behind that plane, farther than `max_distance_m`, wholly outside the image, shorter
    than `min_box_height_px` inside the image, or fully occluded (visible_fraction == 0).
    """
    if len(actors) == 0:
        return []
    height_px, width_px = frame.rgb.shape[:2]
    pose = frame.cam_to_world
    centre = np.concatenate([actors.xy_m, actors.size_m[:, 2:3] / 2], axis=1)
    distance = np.linalg.norm(centre - pose[:3, 3], axis=1)
    corners_cam = (actor_corners(actors) - pose[:3, 3]) @ pose[:3, :3]  # (N, 8, 3)
    box, in_front = _image_boxes(corners_cam, frame.K)
    clipped = np.clip(box, 0.0, [width_px, height_px, width_px, height_px])
    area, area_in = _box_area(box), _box_area(clipped)
    keep = in_front & (distance <= max_distance_m) & (area_in > 0)
    keep &= clipped[:, 3] - clipped[:, 1] >= min_box_height_px
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return []
    truncation = np.clip(1.0 - area_in[idx] / area[idx], 0.0, 1.0)
    visible = _visible_fraction(frame, actors, idx)
    seen = visible != 0.0  # NaN (no depth) keeps the box
    idx, truncation, visible = idx[seen], truncation[seen], visible[seen]
    rows = zip(
        idx.tolist(),
        actors.ids[idx].tolist(),
        actors.class_ids[idx].tolist(),
        clipped[idx].tolist(),
        distance[idx].tolist(),
        visible.tolist(),
        truncation.tolist(),
        strict=True,
    )
    return [GTBox(i, actor_id, cls, tuple(box), *rest) for i, actor_id, cls, box, *rest in rows]


def _image_boxes(corners_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image boxes (N, 4) (x0, y0, x1, y1) [px], not clipped to the image, of N 3D boxes given by
    their corners (N, 8, 3) in the camera's optical frame, and (N,) whether any part of each is in
    front of the plane z = NEAR_CLIP_M (the box is inf where none is).

    The outline of the part in front: the corners in front of the plane plus the points where the
    box's edges cross it.
    """
    a = corners_cam[:, BOX_EDGES[:, 0]]  # (N, 12, 3) edge starts
    b = corners_cam[:, BOX_EDGES[:, 1]]  # edge ends
    za, zb = a[..., 2], b[..., 2]
    crosses = (za - NEAR_CLIP_M) * (zb - NEAR_CLIP_M) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(crosses, (NEAR_CLIP_M - za) / (zb - za), 0.0)
    cuts = a + frac[..., None] * (b - a)
    pts = np.concatenate([corners_cam, cuts], axis=1)  # (N, 20, 3)
    valid = np.concatenate([corners_cam[..., 2] >= NEAR_CLIP_M, crosses], axis=1)
    z = np.where(valid, pts[..., 2], 1.0)
    u = K[0, 0] * pts[..., 0] / z + K[0, 2]
    v = K[1, 1] * pts[..., 1] / z + K[1, 2]
    box = np.stack(
        [
            np.where(valid, u, np.inf).min(1),
            np.where(valid, v, np.inf).min(1),
            np.where(valid, u, -np.inf).max(1),
            np.where(valid, v, -np.inf).max(1),
        ],
        axis=1,
    )
    return box, valid.any(1)


def _box_area(box: np.ndarray) -> np.ndarray:
    """Areas (N,) of boxes (N, 4) (x0, y0, x1, y1); 0 for empty ones."""
    return np.maximum(box[:, 2] - box[:, 0], 0) * np.maximum(box[:, 3] - box[:, 1], 0)


def _visible_fraction(frame: CameraFrame, actors: Actors, idx: np.ndarray) -> np.ndarray:
    """Visible share (len(idx),) of the camera-facing faces of actors `idx`, by the depth image.

    Each face that faces the camera carries a FACE_GRID x FACE_GRID grid of points; a point is
    visible when its depth is at most the rendered depth at its pixel (plus a tolerance). Faces
    count in proportion to their apparent size (area x cos(view angle) / distance^2), so the share
    approximates visible pixels / all pixels of the actor, and points outside the image are left out.
    """
    if frame.depth_m is None:
        return np.full(len(idx), np.nan)
    depth = frame.depth_m
    height_px, width_px = depth.shape
    pose = frame.cam_to_world
    size = actors.size_m[idx]  # (M, 3) length, width, height
    yaw = actors.yaw_rad[idx]
    c, s = np.cos(yaw), np.sin(yaw)
    # The camera in each actor's box frame [m], seen from the centre of each face.
    rel = pose[:2, 3][None] - actors.xy_m[idx]
    cam = np.stack(
        [c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], np.full(len(idx), pose[2, 3])], 1
    )
    to_cam = cam[:, None, :] - FACE_CENTRES[None] * size[:, None, :]  # (M, 5, 3)
    along_normal = (to_cam * FACE_NORMALS[None]).sum(-1)  # (M, 5), > 0 when the face faces the camera
    length, width, height = size.T
    area = np.stack([width * height, width * height, length * height, length * height, length * width], 1)
    weight = area * np.maximum(along_normal, 0.0) / np.linalg.norm(to_cam, axis=-1) ** 3  # apparent size

    local = FACE_POINTS[None] * size[:, None, None, :]  # (M, 5, G*G, 3)
    m, f, g, _ = local.shape
    points = _to_world(local.reshape(m, f * g, 3), actors.xy_m[idx], yaw)
    uv, z = project(points, frame.K, pose)  # (M, 5 G*G, 2), (M, 5 G*G)
    col = np.floor(uv[..., 0]).astype(np.int64)
    row = np.floor(uv[..., 1]).astype(np.int64)
    inside = (z > NEAR_CLIP_M) & (col >= 0) & (col < width_px) & (row >= 0) & (row < height_px)
    seen_depth = depth[np.clip(row, 0, height_px - 1), np.clip(col, 0, width_px - 1)]
    visible = inside & (z <= seen_depth + DEPTH_TOL_M + DEPTH_TOL_FRACTION * z)
    total = (weight * inside.reshape(m, f, g).sum(-1)).sum(1)
    seen = (weight * visible.reshape(m, f, g).sum(-1)).sum(1)
    return np.where(total > 0, seen / np.where(total > 0, total, 1.0), 0.0)


class Camera:
    """A camera on the ego vehicle (`config.name`, mounted where `config` says) that renders a `World`.

    PyBullet draws the actors; the ground, road and sky come from the world's ground texture
    through a `GroundShader` (see `sim.world.ground_shader`), precomputed for this camera's mount at
    construction (plus one more for the last other height and tilt `render_from` was asked for).
    Gaussian pixel noise (`config.noise_std`, 0-255 units, rounded to whole units) is added when it
    is > 0 and the world is randomised, drawn from the generator passed to `render`.
    """

    def __init__(self, config: CameraConfig, world: World):
        self.config = config
        self.world = world
        self.width, self.height = config.width, config.height
        self.K = intrinsics(config.width, config.height, config.hfov_deg)
        k_render = self.K.copy()
        if world.renderer_name == "tiny":
            k_render[:2, 2] += TINY_PRINCIPAL_POINT_SHIFT_PX
        self._projection = gl_projection_matrix(
            k_render, self.width, self.height, config.near_m, config.far_m
        )
        self._ground = self._ground_shader(self.pose(0.0, 0.0, 0.0))
        self._other_ground: GroundShader | None = None  # for render_from at another height or tilt
        self._noise_lut: np.ndarray | None = None
        if config.noise_std > 0 and world.randomise:
            # Gaussian quantiles of NOISE_LUT_SIZE equally likely slots: a uniform index draws noise.
            q = ndtri((np.arange(NOISE_LUT_SIZE) + 0.5) / NOISE_LUT_SIZE)
            self._noise_lut = np.round(config.noise_std * q).astype(np.int16)
        self.last_actor_mask: np.ndarray | None = None  # (H, W) actor index per pixel, see render

    def _ground_shader(self, cam_to_world: np.ndarray) -> GroundShader:
        w = self.world
        return GroundShader(
            self.K, self.width, self.height, cam_to_world, self.config.far_m, w.ground_texture, w.sky_rgb
        )

    def pose(self, ego_x: float, ego_y: float, ego_yaw: float) -> np.ndarray:
        """cam_to_world (4, 4) for an ego pose."""
        cfg = self.config
        return camera_pose(
            ego_x, ego_y, ego_yaw, cfg.mount_x_m, cfg.mount_z_m, cfg.pitch_deg, cfg.mount_y_m, cfg.yaw_deg
        )

    def render(
        self,
        ego_x: float,
        ego_y: float,
        ego_yaw: float,
        t_s: float,
        rng: np.random.Generator,
        with_depth: bool = True,
        with_segmentation: bool = False,
    ) -> CameraFrame:
        """Render one frame from the camera on an ego at (ego_x, ego_y, ego_yaw).

        Gives rgb (H, W, 3) uint8 and, `with_depth`, depth_m (H, W) float32 [m] along the optical
        axis, within [near_m, far_m]: far_m where the sky is seen (and beyond far_m on the
        ground). With `with_segmentation`, `last_actor_mask` is set to the actor index of every
        pixel (H, W) int64, -1 where no actor is seen (else it is None). Actor bodies must be
        where the caller wants them (`World.sync_actors`) before this.
        """
        return self.render_from(self.pose(ego_x, ego_y, ego_yaw), t_s, rng, with_depth, with_segmentation)

    def render_from(
        self,
        cam_to_world: np.ndarray,
        t_s: float,
        rng: np.random.Generator,
        with_depth: bool = True,
        with_segmentation: bool = False,
    ) -> CameraFrame:
        """`render` from any camera pose (4, 4), optical frame (e.g. a bird's-eye view).

        A pose at another height or tilt than the mount's costs a new ground shader (~10 ms at
        320 x 192) unless it is the same as the last such pose.
        """
        cam_to_world = np.array(cam_to_world, dtype=float)
        ground = self._ground
        if not ground.matches(cam_to_world):
            if self._other_ground is None or not self._other_ground.matches(cam_to_world):
                self._other_ground = self._ground_shader(cam_to_world)
            ground = self._other_ground
        flags = (
            p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if with_segmentation else p.ER_NO_SEGMENTATION_MASK
        )
        rgba, depth, seg = self.world.camera_image(
            self.width, self.height, gl_view_matrix(cam_to_world), self._projection, flags
        )
        # Pixels PyBullet left empty (depth buffer at the far plane) show the ground or the sky.
        empty = (depth >= 1.0).view(np.uint8)
        rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
        rgb = cv2.copyTo(ground.shade(cam_to_world), empty, rgb)
        if self._noise_lut is not None:
            slots = rng.integers(0, NOISE_LUT_SIZE, size=rgb.shape, dtype=np.uint16)
            rgb = cv2.add(rgb, self._noise_lut[slots], dtype=cv2.CV_8U)  # saturates at 0 and 255
        depth_m = None
        if with_depth:
            depth_m = depth_buffer_to_metres(depth, self.config.near_m, self.config.far_m)
            depth_m = cv2.copyTo(ground.depth_m, empty, depth_m)
        # Without the flag the mask PyBullet returns is stale (EGL): never read it then.
        self.last_actor_mask = self._actor_mask(seg.astype(np.int64)) if with_segmentation else None
        return CameraFrame(
            rgb=rgb,
            K=self.K.copy(),
            cam_to_world=cam_to_world,
            t_s=float(t_s),
            depth_m=depth_m,
            camera=self.config.name,
        )

    def _actor_mask(self, seg: np.ndarray) -> np.ndarray:
        """PyBullet's body + ((link + 1) << 24) mask to actor indices, -1 where no actor."""
        body = np.where(seg >= 0, seg & ((1 << 24) - 1), -1)
        # One entry per body id that can occur, plus a last one (-1) that body == -1 reads.
        size = max(int(body.max()), max(self.world.body_to_actor, default=-1)) + 2
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[self.world.actor_body_ids] = np.arange(len(self.world.actor_body_ids))
        return lookup[body]
