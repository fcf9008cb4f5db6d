"""From 2D boxes to object centres on the ground: a ground-plane projection fused with the distance head.

Positions are worked out in the camera's horizontal frame: forward depth z (along the optical axis
laid flat on the ground) and lateral offset x (to the right), both from the camera centre [m].

Forward depth of the object centre, two estimates:

1. Ground projection. The box's bottom-centre pixel ((x0 + x1) / 2, y1) is back-projected through K
   and the camera pose onto the plane z = ground_z_m. The lowest pixel of an object standing on the
   ground is its point of least forward depth, so this "foot" lies on the object's near edge; the
   centre lies half the object's extent along the forward axis further. We add half the class's
   typical length (`CLASS_SIZE_M`): right for objects aligned with the road ahead (cars seen
   end-on); a car seen side-on is placed (4.5 - 1.8) / 2 = 1.35 m too far, which the per-class
   `CLASS_CENTRE_DEPTH_STD_M` accounts for.
   Its error: a pixel error of the bottom edge (box-edge error and the camera pitching on its
   springs, together `pixel_std_px`) moves the foot along the ray by |dg/dv| metres per pixel,
   which grows like range^2 / (camera height x focal length): small pixel errors far away are
   metres. A ray nearly parallel to the ground makes it blow up; a box bottom above the horizon
   has no ground point at all (then only the distance estimate is used).
2. Distance head. The head predicts, like the dataset labels, the distance from the camera centre
   to the centre of the object's 3D box; a lens other than those it learnt on bends it
   (DISTANCE_LENS). Its horizontal part (from the elevation of the ray through the box centre) and
   the lateral model below give the forward depth. Its error: `distance_rel_std` x distance.

The two depths are fused by inverse-variance weighting. A NaN distance (no distance head) leaves
the ground estimate alone; a box with neither gives NaN xy and an infinite sigma.

Lateral offset. Taking the bearing of the box centre would push objects off to one side outwards
(a car 2 m to the side at 10 m by ~0.3 m): the box's outer edge comes from the object's near
corner and its inner edge from the far corner. We model the footprint as a box of the class's
typical length, aligned with the forward axis, at centre depth z_c: a side edge whose ray points
outwards (away from the axis) comes from the near corner (z_c - L/2), one pointing inwards from the
far corner (z_c + L/2). Each edge's bearing tan then gives x_c = alpha z_c + beta, and averaging the
two cancels the width. An edge cut by the image border (when `image_size_px` is given) is left
out; with both cut the box-centre bearing is used.

sigma_m is the isotropic 1-sigma error: the fused depth variance plus the lateral variance from
the pixel error of the side edges. Everything is vectorised over the N boxes.

A rig's cameras overlap: `merge_views` makes one measurement of an object two cameras saw at once,
weighting each by its camera's geometry (its sigma).
"""

from __future__ import annotations

import math

import numpy as np

from perception.types import OBJECT_CLASSES

# Typical footprint per object class id (perception.types.OBJECT_CLASSES order): length, width [m]. Vehicle: a
# mid-size car (the sim's cars are 4.5 x 1.8). Pedestrian: 0.5 x 0.5. Obstacle: a traffic cone
# (0.4 x 0.4); barriers (0.5 long x 2.5 wide) and parked cars are obstacles too, hence the larger
# depth uncertainty below.
CLASS_SIZE_M = np.array([[4.5, 1.8], [0.5, 0.5], [0.4, 0.4]])
# Std of the push-back from the near edge to the centre, per class [m]: how wrong "half the typical
# length" can be (a car seen side-on: 1.35 m; an obstacle that is a parked car: ~2 m).
CLASS_CENTRE_DEPTH_STD_M = np.array([0.6, 0.15, 0.5])
if CLASS_SIZE_M.shape != (len(OBJECT_CLASSES), 2) or CLASS_CENTRE_DEPTH_STD_M.shape != (len(OBJECT_CLASSES),):
    raise RuntimeError("perception.localise: one row of class constants per class in OBJECT_CLASSES")

PIXEL_STD_PX = 1.5  # std of a box edge: box-edge error plus pitch wobble (~0.3 deg) [px]
DISTANCE_REL_STD = 0.07  # std of the distance head as a fraction of the distance [-]
# The distance head reads distance mostly from an object's apparent size, as learnt on the lenses of
# its training data: on a lens of focal length f [px] it gives about d (F / f)^E for a true d, so its
# output is multiplied by (f / F)^E (`localise(distance_lens=(F, E))`). Fitted to the shipped model
# (`bulletdrive detect-eval` reports the bias by lens): the median head / true distance of matched
# val detections is 1.60 at f 100 px and 1.39 at 125 (the rig's 110-degree rear lens, jittered), 1.07
# at 175, 1.00 at 200 and 0.87 at 250 (its 75-degree lenses), and 0.46 at 507 (a 35-degree lens it
# never saw: sim/rig=surround7's front_narrow). (184, 0.76) gives 1.59, 1.34, 1.04, 0.94, 0.79, 0.46.
DISTANCE_LENS = (184.0, 0.76)  # (F [px], E)
MAX_GROUND_RANGE_M = 250.0  # a ground point farther than this counts as no ground point [m]
MIN_RAY_DOWN = 1e-4  # a ray must point down at least this much (unit direction, z) to hit the ground
EDGE_TRUNCATION_MARGIN_PX = 1.0  # a box edge this close to the image border is cut off [px]
MIN_DEPTH_M = 0.1  # forward depth floor [m]
ERROR_BANDS_M = ((0.0, 20.0), (20.0, 40.0), (40.0, np.inf))  # distance bands of `error_by_band` [m]


def class_size_m(class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Typical (length (N,), width (N,)) [m] of objects of classes `class_ids` (N,) int."""
    class_ids = np.asarray(class_ids, dtype=np.int64)
    if class_ids.size and (class_ids.min() < 0 or class_ids.max() >= len(OBJECT_CLASSES)):
        raise ValueError(
            f"object class ids must be in [0, {len(OBJECT_CLASSES)}), got {np.unique(class_ids)}"
        )
    size = CLASS_SIZE_M[class_ids]
    return size[..., 0], size[..., 1]


class _Camera:
    """The camera's pixel-to-ray map and its horizontal frame (forward, right) on the ground."""

    def __init__(self, K: np.ndarray, cam_to_world: np.ndarray):
        self.K = np.asarray(K, dtype=float)
        rot = np.asarray(cam_to_world, dtype=float)[:3, :3]
        self.centre = np.asarray(cam_to_world, dtype=float)[:3, 3]
        self.pix_to_ray = rot @ np.linalg.inv(self.K)  # world ray (3,) per homogeneous pixel
        self.forward = rot[:2, 2] / max(np.linalg.norm(rot[:2, 2]), 1e-12)  # optical axis laid flat
        self.right = np.array([self.forward[1], -self.forward[0]])

    def rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """World-frame directions (N, 3), not unit, of the rays through pixels (u, v) (N,)."""
        return np.stack([u, v, np.ones_like(u)], axis=1) @ self.pix_to_ray.T

    def tan_bearing(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Lateral / forward (N,) of the rays through pixels (u, v) (N,) (right positive)."""
        ray = self.rays(u, v)[:, :2]
        return (ray @ self.right) / np.maximum(ray @ self.forward, 1e-9)

    def to_world(self, depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
        """World xy (N, 2) of points at forward depth and lateral offset (N,) from the camera."""
        return self.centre[:2] + depth_m[:, None] * self.forward + lateral_m[:, None] * self.right


def _lateral_model(
    cam: _Camera, boxes: np.ndarray, class_ids: np.ndarray, image_size_px: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """alpha, beta (N,) such that the object centre's lateral offset is alpha * depth + beta [m]."""
    n = len(boxes)
    length, width = class_size_m(class_ids)
    v_mid = 0.5 * (boxes[:, 1] + boxes[:, 3])
    u = np.concatenate([boxes[:, 0], boxes[:, 2], 0.5 * (boxes[:, 0] + boxes[:, 2])])
    tan_l, tan_r, tan_c = cam.tan_bearing(u, np.tile(v_mid, 3)).reshape(3, n)
    # Left edge: x_c = tan_l * (z_c -+ L/2) + W/2; right edge: x_c = tan_r * (z_c -+ L/2) - W/2, the
    # sign by which corner is extreme. As alpha, beta with the width left out (it cancels in the mean):
    beta_l, beta_r = np.abs(tan_l) * length / 2, -np.abs(tan_r) * length / 2
    alpha, beta = 0.5 * (tan_l + tan_r), 0.5 * (beta_l + beta_r)
    if image_size_px is not None:
        # With one edge cut, the other edge alone needs the width back: +- W/2. With both, the centre.
        cut_l = boxes[:, 0] <= EDGE_TRUNCATION_MARGIN_PX
        cut_r = boxes[:, 2] >= image_size_px[0] - EDGE_TRUNCATION_MARGIN_PX
        alpha = np.where(cut_l, np.where(cut_r, tan_c, tan_r), np.where(cut_r, tan_l, alpha))
        beta = np.where(
            cut_l, np.where(cut_r, 0.0, beta_r - width / 2), np.where(cut_r, beta_l + width / 2, beta)
        )
    return alpha, beta


def _ground_depth(
    cam: _Camera, boxes: np.ndarray, class_ids: np.ndarray, ground_z_m: float, pixel_std_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Forward depth (N,) [m] of the object centres from the box bottoms on the ground plane, and
    its variance (N,) [m^2]; NaN and inf where the bottom ray misses the ground."""
    height_m = cam.centre[2] - ground_z_m
    ray = cam.rays(0.5 * (boxes[:, 0] + boxes[:, 2]), boxes[:, 3])  # (N, 3)
    down = -ray[:, 2] / np.linalg.norm(ray, axis=1)
    hit = (down > MIN_RAY_DOWN) & (height_m > 0)
    dz = np.where(hit, ray[:, 2], -1.0)
    s = -height_m / dz  # ray parameter of the foot (N,)
    foot = s[:, None] * ray[:, :2]  # (N, 2) from the camera
    hit &= np.linalg.norm(foot, axis=1) <= MAX_GROUND_RANGE_M
    length, _ = class_size_m(class_ids)
    depth = np.maximum(foot @ cam.forward, MIN_DEPTH_M) + 0.5 * length
    # d(foot)/dv: the ray moves by e = R K^-1 [0, 1, 0] per pixel, and s with it.
    e = cam.pix_to_ray[:, 1]
    dfoot_dv = s[:, None] * (e[:2] - ray[:, :2] * (e[2] / dz)[:, None])  # (N, 2)
    var = (pixel_std_px * (dfoot_dv @ cam.forward)) ** 2 + CLASS_CENTRE_DEPTH_STD_M[class_ids] ** 2
    return np.where(hit, depth, np.nan), np.where(hit, var, np.inf)


def _distance_depth(
    cam: _Camera,
    boxes: np.ndarray,
    distances_m: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    distance_rel_std: float,
    distance_lens: tuple[float, float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Forward depth (N,) [m] of the object centres from the distance head (corrected for the lens
    by `distance_lens`, see DISTANCE_LENS), and its variance (N,) [m^2]; NaN and inf where the
    distance is NaN or not positive."""
    ray = cam.rays(0.5 * (boxes[:, 0] + boxes[:, 2]), 0.5 * (boxes[:, 1] + boxes[:, 3]))
    ok = np.isfinite(distances_m) & (distances_m > 0)
    dist = np.where(ok, distances_m, 1.0)
    if distance_lens is not None:
        focal_px, exponent = distance_lens
        dist = dist * (cam.K[0, 0] / focal_px) ** exponent
    flat_m = dist * np.linalg.norm(ray[:, :2], axis=1) / np.linalg.norm(ray, axis=1)  # horizontal part
    # The centre (z, alpha z + beta) is flat_m away: (1 + alpha^2) z^2 + 2 alpha beta z + beta^2 - flat^2 = 0.
    a = 1.0 + alpha**2
    disc = np.maximum(a * flat_m**2 - beta**2, 0.0)
    depth = np.maximum((np.sqrt(disc) - alpha * beta) / a, MIN_DEPTH_M)
    return np.where(ok, depth, np.nan), np.where(ok, (distance_rel_std * dist) ** 2, np.inf)


def _inputs(boxes_xyxy, class_ids) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
    return boxes, np.asarray(class_ids, dtype=np.int64).reshape(len(boxes))


def _place(cam: _Camera, depth, var, alpha, beta, pixel_std_px: float) -> tuple[np.ndarray, np.ndarray]:
    """World xy (N, 2) and isotropic variance (N,) of centres at forward `depth` with depth `var`."""
    lateral_var = (depth * pixel_std_px / cam.K[0, 0]) ** 2
    xy = cam.to_world(depth, alpha * depth + beta)
    return xy, np.where(np.isfinite(depth), var + lateral_var, np.inf)


def ground_estimate(
    boxes_xyxy: np.ndarray,
    class_ids: np.ndarray,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    ground_z_m: float = 0.0,
    pixel_std_px: float = PIXEL_STD_PX,
    image_size_px: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Object centres from the ground projection alone (module docstring, 1): xy_m (N, 2) (NaN
    where the bottom ray misses the ground) and variance (N,) [m^2] (inf there). Arguments as in
    `localise`."""
    boxes, class_ids = _inputs(boxes_xyxy, class_ids)
    cam = _Camera(K, cam_to_world)
    alpha, beta = _lateral_model(cam, boxes, class_ids, image_size_px)
    depth, var = _ground_depth(cam, boxes, class_ids, ground_z_m, pixel_std_px)
    return _place(cam, depth, var, alpha, beta, pixel_std_px)


def distance_estimate(
    boxes_xyxy: np.ndarray,
    distances_m: np.ndarray,
    class_ids: np.ndarray,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    pixel_std_px: float = PIXEL_STD_PX,
    distance_rel_std: float = DISTANCE_REL_STD,
    image_size_px: tuple[int, int] | None = None,
    distance_lens: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Object centres from the distance head alone (module docstring, 2): xy_m (N, 2) (NaN where
    the distance is NaN) and variance (N,) [m^2] (inf there). Arguments as in `localise`."""
    boxes, class_ids = _inputs(boxes_xyxy, class_ids)
    dist = np.asarray(distances_m, dtype=float).reshape(len(boxes))
    cam = _Camera(K, cam_to_world)
    alpha, beta = _lateral_model(cam, boxes, class_ids, image_size_px)
    depth, var = _distance_depth(cam, boxes, dist, alpha, beta, distance_rel_std, distance_lens)
    return _place(cam, depth, var, alpha, beta, pixel_std_px)


# Two cameras' measurements of one object (merge_views): within this many combined sigmas and
# never farther apart than this.
MERGE_GATE_SIGMAS = 3.0
MERGE_MAX_GAP_M = 3.0


def localise(
    boxes_xyxy: np.ndarray,
    distances_m: np.ndarray,
    class_ids: np.ndarray,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    ground_z_m: float = 0.0,
    fuse: bool = True,
    pixel_std_px: float = PIXEL_STD_PX,
    distance_rel_std: float = DISTANCE_REL_STD,
    image_size_px: tuple[int, int] | None = None,
    distance_lens: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World-frame ground positions of detected objects' centres, with a 1-sigma error per object.

    boxes_xyxy: (N, 4) [px]; distances_m: (N,) distance-head output [m], NaN where there is none;
    class_ids: (N,) int; K: (3, 3) intrinsics; cam_to_world: (4, 4) camera pose (optical frame:
    x right, y down, z forward). ground_z_m: height of the ground plane [m]. fuse: inverse-variance
    blend of the two depth estimates; False takes the one with the smaller variance.
    pixel_std_px: std of a box edge [px]; distance_rel_std: std of the distance head / distance.
    image_size_px: (width, height) [px]; when given, box edges on the image border are known to be
    cut: a cut bottom drops the ground estimate (unless there is no distance), a cut side edge
    drops that edge from the lateral model. distance_lens: (F, E) of DISTANCE_LENS, or None: the
    distances as given.
    Returns xy_m (N, 2) [m] and sigma_m (N,) [m]; NaN xy and inf sigma where neither estimate
    exists (bottom above the horizon and no distance).
    """
    boxes, class_ids = _inputs(boxes_xyxy, class_ids)
    dist = np.asarray(distances_m, dtype=float).reshape(len(boxes))
    cam = _Camera(K, cam_to_world)
    alpha, beta = _lateral_model(cam, boxes, class_ids, image_size_px)
    depth_g, var_g = _ground_depth(cam, boxes, class_ids, ground_z_m, pixel_std_px)
    depth_d, var_d = _distance_depth(cam, boxes, dist, alpha, beta, distance_rel_std, distance_lens)
    if image_size_px is not None:
        cut_bottom = boxes[:, 3] >= image_size_px[1] - EDGE_TRUNCATION_MARGIN_PX
        var_g = np.where(cut_bottom & np.isfinite(var_d), np.inf, var_g)
    w_g, w_d = 1.0 / var_g, 1.0 / var_d  # 0 where an estimate is missing
    if not fuse:
        g_better = w_g >= w_d
        w_g, w_d = np.where(g_better, w_g, 0.0), np.where(g_better, 0.0, w_d)
    w_sum = w_g + w_d
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (w_g * np.nan_to_num(depth_g) + w_d * np.nan_to_num(depth_d)) / w_sum
        var = 1.0 / w_sum
    depth = np.where(w_sum > 0, depth, np.nan)
    xy, var = _place(cam, depth, var, alpha, beta, pixel_std_px)
    return xy, np.sqrt(var)


def error_by_band(
    est_xy: np.ndarray,
    true_xy: np.ndarray,
    distances_m: np.ndarray,
    bands_m: tuple[tuple[float, float], ...] = ERROR_BANDS_M,
) -> dict[str, dict[str, float]]:
    """Localisation error [m] per distance band.

    est_xy, true_xy: (N, 2) [m]; distances_m: (N,) [m] (e.g. true camera-to-object distance) that
    sort the objects into the bands (lo, hi) of bands_m: lo <= d < hi. Returns {"lo-hi": {"count",
    "missing", "mean_m", "median_m", "p90_m"}}; "missing" counts non-finite estimates (left out of
    the statistics); an empty band has NaN statistics.
    """
    err = np.linalg.norm(np.asarray(est_xy, float) - np.asarray(true_xy, float), axis=1)
    distances_m = np.asarray(distances_m, dtype=float).reshape(-1)
    out: dict[str, dict[str, float]] = {}
    for lo, hi in bands_m:
        in_band = (distances_m >= lo) & (distances_m < hi)
        e = err[in_band & np.isfinite(err)]
        stats = (
            (float(e.mean()), float(np.median(e)), float(np.percentile(e, 90))) if len(e) else (np.nan,) * 3
        )
        out[f"{lo:g}-{hi:g}"] = {
            "count": int(len(e)),
            "missing": int((in_band & ~np.isfinite(err)).sum()),
            "mean_m": stats[0],
            "median_m": stats[1],
            "p90_m": stats[2],
        }
    return out


def merge_views(
    xy_m: np.ndarray,
    sigma_m: np.ndarray,
    class_ids: np.ndarray,
    scores: np.ndarray,
    views: np.ndarray,
    gate_sigmas: float = MERGE_GATE_SIGMAS,
    max_gap_m: float = MERGE_MAX_GAP_M,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One ground measurement per object seen by several cameras of a rig at once.

    xy_m (N, 2), sigma_m (N,), class_ids (N,), scores (N,): the localised detections of one tick;
    views (N,): the camera of each. In order of score, a detection joins the first group (of a
    higher-scored one) of its class that holds nothing from its own camera, within `max_gap_m`
    and `gate_sigmas` x the combined sigma of its seed; each group becomes the inverse-variance
    mean of its positions, with sigma 1 / sqrt(sum of 1 / sigma^2) and the best score.
    Returns (xy (M, 2), sigma (M,), class_ids (M,), scores (M,)), M <= N, groups in score order.
    """
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    groups: list[list[int]] = []
    for i in order.tolist():
        for g in groups:
            j = g[0]
            if class_ids[j] != class_ids[i] or any(views[k] == views[i] for k in g):
                continue
            gap = float(np.hypot(*(xy_m[i] - xy_m[j])))
            if gap <= max_gap_m and gap <= gate_sigmas * math.hypot(sigma_m[i], sigma_m[j]):
                g.append(i)
                break
        else:
            groups.append([i])
    n = len(groups)
    xy, sigma = np.empty((n, 2)), np.empty(n)
    cls, best = np.empty(n, np.int64), np.empty(n)
    for m, g in enumerate(groups):
        w = 1.0 / np.square(sigma_m[g])
        xy[m] = (w[:, None] * xy_m[g]).sum(axis=0) / w.sum()
        sigma[m] = 1.0 / math.sqrt(w.sum())
        cls[m], best[m] = class_ids[g[0]], scores[g[0]]
    return xy, sigma, cls, best
