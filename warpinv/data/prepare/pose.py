"""Camera from 5 landmarks: the 3D 5-point template fitted to the landmarks of an EG3D crop.

The landmarks are given in the **output crop** (512 x 512 after :func:`~.align.crop_face`), where
EG3D's intrinsics hold: focal ``4.2647 * 512`` pixels, principal point at the centre. Two solvers:

- ``pos``: Deep3DFaceRecon's least-squares scaled-orthographic fit (the one that yields the crop).
  The two fitted rows are orthonormalised (SVD) into a rotation; no perspective.
- ``pnp`` (default): perspective-n-point by Levenberg-Marquardt on the 10 reprojection residuals
  (the mouth corners' vertical residuals down-weighted, :data:`MOUTH_Y_WEIGHT`), started from the
  POS solution (5 nearly coplanar points make unseeded PnP unstable, see
  ``../shared/reference/lightning-and-data.md`` §3.4). It models the EG3D camera exactly, so it
  removes POS's weak-perspective bias; ``benchmarks/data/pose_error_curve.py`` measures both.

Where the face sits in EG3D's world: ``3dface2idr_mat.py`` turns Deep3DFaceRecon's camera (10
template units from the face) into EG3D's by scaling positions by 0.27 and adding
``(0, 0.006, 0.161)``; the same map places the template in the world here
(:func:`template_world`). Only the *orientation* of the fitted camera is kept: it is converted to
EG3D's convention (:func:`camera_from_rotation`), an OpenCV cam2world on the origin-centred sphere of
radius 2.7 looking at ``(0, 0, 0.2)`` with intrinsics ``4.2647 / 0.5``, built with
:func:`warpinv.cameras.lookat_pose`; roll about the optical axis is kept by default (the official
in-the-wild cameras keep it too, since the crop does not remove it) and can be dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from warpinv.cameras import (
    DEFAULT_LOOKAT,
    DEFAULT_RADIUS,
    FFHQ_FOCAL,
    cam2world_to_yaw_pitch,
    focal_to_intrinsics,
    lookat_pose,
    pack_label,
    unpack_label,
    yaw_pitch_camera,
)
from warpinv.data.prepare.align import LM3D_TEMPLATE, AlignmentError, check_landmarks, pos_fit

#: ``3dface2idr_mat.py``: EG3D world = 0.27 x template frame + (0, 0.006, 0.161).
TEMPLATE_TO_WORLD_SCALE = 0.27
TEMPLATE_TO_WORLD_OFFSET = (0.0, 0.006, 0.161)

#: Weight of the two mouth corners' *vertical* residuals in the PnP fit. Expressions move the mouth
#: corners up and down (a smile raises them, an open mouth lowers them) while the template has a
#: neutral mouth, and the vertical mouth position is what pitch is read from; at weight 1 the
#: smiling astronaut of ``skimage.data.astronaut()`` (a frontal portrait) comes out at -28 degrees of
#: pitch, at 0.25 at about -3 degrees. On exact projections the weight changes nothing; under 1 px
#: noise it moves the median pitch error from 0.65 to 0.66 degrees and the 90th percentile from 1.51
#: to 1.64 (the protocol of :func:`pose_error_table`, 500 cameras).
#: One real face is not a validation: the value is a documented choice, not a fitted constant.
MOUTH_Y_WEIGHT = 0.25

PoseMethod = Literal["pos", "pnp"]
POSE_METHODS: tuple[str, ...] = ("pos", "pnp")
#: ``camera_source`` values written into dataset.json.
CAMERA_SOURCES = {"pos": "pos5", "pnp": "pnp5"}


def template_world() -> np.ndarray:
    """``(5, 3)`` template points in EG3D world coordinates."""
    return LM3D_TEMPLATE * TEMPLATE_TO_WORLD_SCALE + np.asarray(TEMPLATE_TO_WORLD_OFFSET)


def intrinsics_px(resolution: int, focal: float = FFHQ_FOCAL) -> tuple[float, float]:
    """Focal length and principal point in pixels for an EG3D crop of ``resolution``.

    Pixel coordinates put pixel centres at integers, so the normalised principal point 0.5 is at
    ``0.5 * resolution - 0.5``.
    """
    return focal * resolution, 0.5 * resolution - 0.5


def project_points(points: np.ndarray, label: np.ndarray | torch.Tensor, resolution: int) -> np.ndarray:
    """Project world points with an EG3D label into pixel coordinates of a ``resolution`` image.

    Args:
        points: ``(N, 3)`` world points.
        label: ``(25,)`` EG3D camera label (OpenCV cam2world + normalised intrinsics).
        resolution: image side in pixels.

    Returns:
        ``(N, 2)`` pixel coordinates (x right, y down, pixel centres at integers).
    """
    c = torch.as_tensor(np.asarray(label, dtype=np.float64)).reshape(1, 25)
    c2w, k = unpack_label(c)
    c2w, k = c2w[0].numpy(), k[0].numpy()
    rot, centre = c2w[:3, :3], c2w[:3, 3]
    cam = (np.asarray(points, dtype=np.float64) - centre) @ rot
    uv = cam[:, :2] / cam[:, 2:3]
    u = (k[0, 0] * uv[:, 0] + k[0, 1] * uv[:, 1] + k[0, 2]) * resolution - 0.5
    v = (k[1, 1] * uv[:, 1] + k[1, 2]) * resolution - 0.5
    return np.stack([u, v], axis=1)


@dataclass
class PoseEstimate:
    """A camera fitted to 5 landmarks.

    Attributes:
        method: ``pos`` or ``pnp``.
        yaw, pitch: the project's LookAt angles (radians; see :func:`warpinv.cameras.yaw_pitch_camera`).
        roll: rotation about the optical axis (radians; positive turns the image x axis toward y).
        label: ``(25,)`` EG3D camera label (radius 2.7, look-at (0, 0, 0.2), focal 4.2647).
        rotation: ``(3, 3)`` fitted cam2world rotation (OpenCV axes), before the LookAt conversion.
        residual_px: RMS reprojection error of the fit in crop pixels (``pos``: of its affine model).
        distance: fitted distance of the camera from the template centroid (``pnp``; ``nan`` for ``pos``).
    """

    method: str
    yaw: float
    pitch: float
    roll: float
    label: np.ndarray
    rotation: np.ndarray
    residual_px: float
    distance: float = float("nan")
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"method": self.method, "yaw": self.yaw, "pitch": self.pitch, "roll": self.roll,
                "yaw_deg": math.degrees(self.yaw), "pitch_deg": math.degrees(self.pitch),
                "roll_deg": math.degrees(self.roll), "residual_px": self.residual_px,
                "distance": None if math.isnan(self.distance) else self.distance, "notes": list(self.notes)}


def _orthonormal_rows(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Nearest pair of orthonormal rows to ``[r1; r2]`` (polar factor), completed to a rotation."""
    u, _, vt = np.linalg.svd(np.stack([r1, r2]), full_matrices=False)
    q = u @ vt
    return np.stack([q[0], q[1], np.cross(q[0], q[1])])


def _rodrigues(w: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        kx = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        return np.eye(3) + kx
    k = w / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def _log_rotation(r: np.ndarray) -> np.ndarray:
    cos = min(1.0, max(-1.0, (np.trace(r) - 1) / 2))
    theta = math.acos(cos)
    if theta < 1e-9:
        return np.zeros(3)
    if math.pi - theta < 1e-6:
        # Axis from the symmetric part; sign is irrelevant at pi.
        m = (r + np.eye(3)) / 2
        axis = m[np.argmax(np.diag(m))]
        return axis / np.linalg.norm(axis) * theta
    v = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return v * theta / (2 * math.sin(theta))


def _pos_rotation(landmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, float, float]:
    """POS on crop landmarks -> OpenCV cam2world rotation, POS scale, affine residual (px)."""
    up = np.stack([landmarks[:, 0], -landmarks[:, 1]], axis=1)  # y up, as the POS template
    t, s, k = pos_fit(up, template)
    rows = _orthonormal_rows(k[0:3], k[4:7])  # camera right, up, toward-viewer, in template axes
    c2w = np.stack([rows[0], -rows[1], -rows[2]], axis=1)  # OpenCV: x right, y down, z forward
    pred = np.stack([template @ k[0:3] + k[3], template @ k[4:7] + k[7]], axis=1)
    resid = float(np.sqrt(np.mean(np.sum((pred - up) ** 2, axis=1))))
    return c2w, s, resid


def _pnp(landmarks: np.ndarray, world: np.ndarray, f: float, c: float, c2w0: np.ndarray, scale0: float,
         weights: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray, float]:
    """Levenberg-Marquardt PnP. Returns cam2world rotation, camera centre, RMS residual (px)."""
    w2c = c2w0.T
    centroid = world.mean(axis=0)
    # Start: distance from the POS scale (pixels per template unit -> world units), centroid on its ray.
    depth = f * TEMPLATE_TO_WORLD_SCALE / scale0
    mean_px = landmarks.mean(axis=0)
    ray = np.array([(mean_px[0] - c) / f, (mean_px[1] - c) / f, 1.0])
    t = ray * depth - w2c @ centroid
    params = np.concatenate([_log_rotation(w2c), t])

    def residuals(p: np.ndarray) -> np.ndarray:
        r = _rodrigues(p[:3])
        cam = world @ r.T + p[3:]
        z = cam[:, 2]
        z = np.where(np.abs(z) < 1e-9, 1e-9, z)
        proj = np.stack([f * cam[:, 0] / z + c, f * cam[:, 1] / z + c], axis=1)
        return ((proj - landmarks) * weights).reshape(-1)

    lam = 1e-3
    res = residuals(params)
    cost = float(res @ res)
    for _ in range(iterations):
        jac = np.empty((res.size, 6))
        for i in range(6):
            step = 1e-6 if i < 3 else 1e-6 * max(1.0, abs(params[5]))
            d = np.zeros(6)
            d[i] = step
            jac[:, i] = (residuals(params + d) - residuals(params - d)) / (2 * step)
        jtj = jac.T @ jac
        g = jac.T @ res
        improved = False
        for _ in range(10):
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -g)
            cand = params + delta
            cres = residuals(cand)
            ccost = float(cres @ cres)
            if ccost < cost:
                params, res, cost = cand, cres, ccost
                lam = max(lam / 10, 1e-12)
                improved = True
                break
            lam *= 10
        if not improved or np.linalg.norm(delta) < 1e-12:
            break
    r = _rodrigues(params[:3])
    c2w = r.T
    centre = -r.T @ params[3:]
    return c2w, centre, math.sqrt(cost / float((weights ** 2).sum()) * 2)


def camera_from_rotation(
    cam2world_rotation: np.ndarray,
    *,
    keep_roll: bool = True,
    radius: float = DEFAULT_RADIUS,
    lookat: tuple[float, float, float] = DEFAULT_LOOKAT,
    focal: float = FFHQ_FOCAL,
) -> tuple[np.ndarray, float, float, float]:
    """EG3D LookAt camera with the viewing direction (and roll) of ``cam2world_rotation``.

    The camera centre is put on the origin-centred sphere of ``radius`` such that the camera looks
    at ``lookat`` along the fitted forward axis ``f``: ``o = lookat - lam f`` with ``|o| = radius``.
    Yaw and pitch are read off ``o`` (:func:`warpinv.cameras.cam2world_to_yaw_pitch`), the pose is
    rebuilt with :func:`warpinv.cameras.lookat_pose`, and the roll is the angle of the fitted x axis
    in the LookAt camera's image plane.

    Returns:
        ``(label (25,), yaw, pitch, roll)``.
    """
    r = np.asarray(cam2world_rotation, dtype=np.float64)
    forward = r[:, 2] / np.linalg.norm(r[:, 2])
    target = np.asarray(lookat, dtype=np.float64)
    b = float(target @ forward)
    disc = b * b - float(target @ target) + radius * radius
    if disc < 0:
        raise AlignmentError("the look-at point lies outside the camera sphere")
    lam = b + math.sqrt(disc)
    origin = target - lam * forward
    m = torch.eye(4, dtype=torch.float64)[None]
    m[0, :3, 3] = torch.from_numpy(origin)
    yaw_t, pitch_t = cam2world_to_yaw_pitch(m)
    yaw, pitch = float(yaw_t[0]), float(pitch_t[0])
    pose = lookat_pose(math.pi / 2 + yaw, math.pi / 2 + pitch, lookat, radius, dtype=torch.float64)[0]
    x_l, y_l = pose[:3, 0].numpy(), pose[:3, 1].numpy()
    roll = math.atan2(float(r[:, 0] @ y_l), float(r[:, 0] @ x_l))
    if keep_roll and roll != 0.0:
        cr, sr = math.cos(roll), math.sin(roll)
        rz = torch.tensor([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        pose = pose.clone()
        pose[:3, :3] = pose[:3, :3] @ rz
    label = pack_label(pose[None], focal_to_intrinsics(focal, dtype=torch.float64))[0]
    return label.numpy(), yaw, pitch, roll if keep_roll else 0.0


def estimate_pose(
    landmarks: np.ndarray,
    resolution: int = 512,
    *,
    method: PoseMethod = "pnp",
    keep_roll: bool = True,
    focal: float = FFHQ_FOCAL,
    mouth_y_weight: float = MOUTH_Y_WEIGHT,
) -> PoseEstimate:
    """Fit the EG3D camera of a crop from its 5 landmarks.

    Args:
        landmarks: ``(5, 2)`` pixel coordinates in the crop (left eye, right eye, nose, mouth left,
            mouth right; image-left first; pixel centres at integers).
        resolution: crop side in pixels (EG3D: 512).
        method: ``pnp`` (perspective, POS-seeded) or ``pos`` (scaled orthographic).
        keep_roll: keep the fitted roll about the optical axis in the camera.
        focal: normalised focal length of the crop.
        mouth_y_weight: weight of the mouth corners' vertical residuals in ``pnp`` (see
            :data:`MOUTH_Y_WEIGHT`); 1 weighs all ten coordinates equally.

    Example:
        >>> from warpinv.cameras import yaw_pitch_camera
        >>> c = yaw_pitch_camera(0.3, -0.1)[0].double().numpy()
        >>> est = estimate_pose(project_points(template_world(), c, 512))
        >>> round(est.yaw, 4), round(est.pitch, 4)
        (0.3, -0.1)
    """
    if method not in POSE_METHODS:
        raise ValueError(f"unknown pose method {method!r}; choose one of {POSE_METHODS}")
    lm = check_landmarks(landmarks)
    f, c = intrinsics_px(resolution, focal)
    c2w, scale, resid = _pos_rotation(lm, LM3D_TEMPLATE)
    distance = float("nan")
    notes: list[str] = []
    if method == "pnp":
        weights = np.ones((5, 2))
        weights[3:, 1] = mouth_y_weight
        c2w_p, centre, resid_p = _pnp(lm, template_world(), f, c, c2w, scale, weights)
        forward = c2w_p[:, 2]
        to_face = template_world().mean(axis=0) - centre
        if np.isfinite(c2w_p).all() and float(forward @ to_face) > 0:
            c2w, resid = c2w_p, resid_p
            distance = float(np.linalg.norm(to_face))
        else:
            method_used = "pos"
            notes.append("PnP did not converge to a camera in front of the face; POS used")
            label, yaw, pitch, roll = camera_from_rotation(c2w, keep_roll=keep_roll, focal=focal)
            return PoseEstimate(method_used, yaw, pitch, roll, label, c2w, resid, distance, notes)
    label, yaw, pitch, roll = camera_from_rotation(c2w, keep_roll=keep_roll, focal=focal)
    return PoseEstimate(method, yaw, pitch, roll, label, c2w, resid, distance, notes)


#: Camera range of the pose-error protocol: yaw in [-0.6, 0.6] rad (+-34 deg), pitch in [-0.3, 0.3].
ERROR_CURVE_YAW_RANGE = 0.6
ERROR_CURVE_PITCH_RANGE = 0.3


def random_cameras(n: int, rng: np.random.Generator, yaw_range: float = ERROR_CURVE_YAW_RANGE,
                   pitch_range: float = ERROR_CURVE_PITCH_RANGE) -> list[np.ndarray]:
    """``n`` EG3D LookAt labels ``(25,)`` (float64) with uniform yaw and pitch in the given ranges."""
    yaw = rng.uniform(-yaw_range, yaw_range, n)
    pitch = rng.uniform(-pitch_range, pitch_range, n)
    labels = yaw_pitch_camera(torch.from_numpy(yaw), torch.from_numpy(pitch), dtype=torch.float64)
    return [row.numpy() for row in labels]


def pose_error_table(
    noise_px: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0),
    n: int = 500,
    seed: int = 0,
    methods: tuple[str, ...] = POSE_METHODS,
    resolution: int = 512,
) -> dict[tuple[str, float], dict[str, float]]:
    """The pose-error protocol: project the template with random EG3D cameras, add noise, re-fit.

    For ``n`` cameras (:func:`random_cameras`, seeded), the 5 template points are projected into a
    ``resolution`` crop (:func:`project_points`), Gaussian noise of ``noise_px`` standard deviation is
    added to every coordinate, and :func:`estimate_pose` fits the camera back. Returns, per
    ``(method, noise)``, the median, 90th percentile and maximum absolute yaw and pitch errors in
    degrees. The same cameras and noise draws are used for every method.
    """
    rng = np.random.default_rng(seed)
    cams = random_cameras(n, rng)
    world = template_world()
    truth = [cam2world_to_yaw_pitch(torch.from_numpy(c[:16].reshape(1, 4, 4))) for c in cams]
    out: dict[tuple[str, float], dict[str, float]] = {}
    for sigma in noise_px:
        noise = np.random.default_rng([seed, int(round(sigma * 1000))]).normal(0.0, 1.0, (n, 5, 2)) * sigma
        for method in methods:
            dy, dp = [], []
            for c, (yaw_t, pitch_t), eps in zip(cams, truth, noise):
                est = estimate_pose(project_points(world, c, resolution) + eps, resolution,
                                    method=method)  # type: ignore[arg-type]
                dy.append(abs(est.yaw - float(yaw_t[0])))
                dp.append(abs(est.pitch - float(pitch_t[0])))
            dy_deg, dp_deg = np.degrees(dy), np.degrees(dp)
            out[(method, float(sigma))] = {
                "yaw_median": float(np.median(dy_deg)), "yaw_p90": float(np.percentile(dy_deg, 90)),
                "yaw_max": float(dy_deg.max()), "pitch_median": float(np.median(dp_deg)),
                "pitch_p90": float(np.percentile(dp_deg, 90)), "pitch_max": float(dp_deg.max()),
            }
    return out
