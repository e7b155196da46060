"""Camera trajectories used by the methods and metrics, as ``(V, 25)`` EG3D labels.

Yaw and pitch follow :func:`warpinv.cameras.lookat.yaw_pitch_camera`: offsets of LookAt's ``h`` and
``v`` from ``pi/2``; ``yaw > 0`` moves the camera toward +x, ``pitch > 0`` moves it down.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from warpinv.cameras.labels import CameraError, pack_label
from warpinv.cameras.lookat import (
    DEFAULT_LOOKAT,
    DEFAULT_RADIUS,
    FFHQ_FOCAL,
    focal_to_intrinsics,
    lookat_pose,
    yaw_pitch_camera,
)
from warpinv.checks import check_min

HFGI3D_PI: float = 3.14
"""The literal EG3D's ``gen_videos.py`` and HFGI3D write for pi in their orbit formula."""
HFGI3D_NUM_VIEWS: int = 30


def hfgi3d_orbit(
    n: int = HFGI3D_NUM_VIEWS,
    *,
    yaw_range: float = 0.35,
    pitch_range: float = 0.25,
    pitch_offset: float = -0.05,
    radius: float = DEFAULT_RADIUS,
    lookat: Sequence[float] = DEFAULT_LOOKAT,
    focal: float = FFHQ_FOCAL,
    pi: float = HFGI3D_PI,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """HFGI3D's pseudo-multi-view orbit (the EG3D video orbit sampled at ``n`` frames).

    Source: ``jiaxinxie97/HFGI3D`` @ 198fa00, ``inversion/training/coaches/single_id_coach.py``,
    ``SingleIDCoach.train`` lines 125-138 (``render_poses``; the same formula is repeated for the
    saved orbit videos further down)::

        h_k = 3.14/2 + 0.35 * sin(2 * 3.14 * k / 30)
        v_k = 3.14/2 - 0.05 + 0.25 * cos(2 * 3.14 * k / 30),   k = 0 .. 29
        LookAtPoseSampler.sample(h_k, v_k, (0, 0, 0.2), radius=2.7), intrinsics fx = fy = 4.2647

    View ``k`` is pseudo-view ``multi_views_blending/<name>/{k}.png`` and ``render_poses[k]``. The
    orbit starts below the face (``k = 0``: yaw 0, pitch +0.2 with the code's pi), passes +x
    (``k`` = 7-8), the top (``k = 15``) and -x (``k`` = 22-23). ``pi = 3.14`` is the code's
    literal, kept on purpose (the centre is ``h = v + 0.05 = 1.57``, not ``pi/2``, and the orbit
    does not quite close); pass ``pi=math.pi`` for the idealised orbit.

    Returns:
        ``(n, 25)`` labels.

    Example:
        >>> hfgi3d_orbit().shape
        torch.Size([30, 25])
    """
    check_min(n, 1, "n", error=CameraError)
    # Angles in float64 first, like the official numpy arithmetic, then one rounding to dtype.
    t = [2 * pi * k / n for k in range(n)]
    h = torch.tensor([pi / 2 + yaw_range * math.sin(a) for a in t], dtype=torch.float64)
    v = torch.tensor([pi / 2 + pitch_offset + pitch_range * math.cos(a) for a in t], dtype=torch.float64)
    pose = lookat_pose(h, v, lookat, radius, dtype=dtype)
    return pack_label(pose, focal_to_intrinsics(focal, dtype=dtype))


def ibrnet_views(
    *,
    yaw_range: float = 0.35,
    pitch_range: float = 0.25,
    pitch_offset: float = -0.05,
    canonical_pitch: float = 0.0,
    radius: float = DEFAULT_RADIUS,
    lookat: Sequence[float] = DEFAULT_LOOKAT,
    focal: float = FFHQ_FOCAL,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """HFGI3D's five IBRNet source views: the canonical view plus the orbit's four edge views.

    HFGI3D (CVPR 2023, Tab. 3 text) uses "the canonical view plus four edge views of a trajectory
    with yaw [-0.35, 0.35] rad and pitch [-0.25, 0.25] rad"; its repository has no evaluation code.
    The trajectory is the EG3D/HFGI3D orbit (:func:`hfgi3d_orbit`) centred at pitch offset -0.05;
    its extreme points, in trajectory order, are the edge views. Order of the returned views:

    0. canonical: yaw 0, pitch ``canonical_pitch`` (0, the frontal camera);
    1. yaw 0, pitch ``pitch_offset + pitch_range`` (camera below, orbit t = 0);
    2. yaw ``+yaw_range``, pitch ``pitch_offset`` (camera toward +x, t = 1/4);
    3. yaw 0, pitch ``pitch_offset - pitch_range`` (camera above, t = 1/2);
    4. yaw ``-yaw_range``, pitch ``pitch_offset`` (camera toward -x, t = 3/4).

    Exact ``pi/2`` centres are used (the orbit code's 3.14 shifts them by 0.0008 rad).

    Returns:
        ``(5, 25)`` labels.

    Example:
        >>> ibrnet_views().shape
        torch.Size([5, 25])
    """
    yaw = [0.0, 0.0, yaw_range, 0.0, -yaw_range]
    pitch = [
        canonical_pitch,
        pitch_offset + pitch_range,
        pitch_offset,
        pitch_offset - pitch_range,
        pitch_offset,
    ]
    return _yaw_pitch_views(yaw, pitch, radius, lookat, focal, dtype)


def yaw_sweep(
    n: int,
    max_yaw: float,
    *,
    pitch: float = 0.0,
    radius: float = DEFAULT_RADIUS,
    lookat: Sequence[float] = DEFAULT_LOOKAT,
    focal: float = FFHQ_FOCAL,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``n`` cameras with yaw evenly spaced from ``-max_yaw`` to ``+max_yaw`` (both included).

    ``n = 1`` gives the single yaw 0.

    Returns:
        ``(n, 25)`` labels, ordered by increasing yaw (camera moving toward +x).

    Example:
        >>> c = yaw_sweep(3, 0.5)
        >>> c.shape, [round(x, 3) + 0.0 for x in c[:, 3].tolist()]
        (torch.Size([3, 25]), [-1.294, 0.0, 1.294])
    """
    check_min(n, 1, "n", error=CameraError)
    check_min(max_yaw, 0, "max_yaw", error=CameraError)
    yaw = [0.0] if n == 1 else [-max_yaw + 2 * max_yaw * i / (n - 1) for i in range(n)]
    return _yaw_pitch_views(yaw, [pitch] * n, radius, lookat, focal, dtype)


def _yaw_pitch_views(
    yaw: list[float],
    pitch: list[float],
    radius: float,
    lookat: Sequence[float],
    focal: float,
    dtype: torch.dtype,
) -> Tensor:
    # float64 offsets keep ``pi/2 + yaw`` exact before the single rounding to dtype.
    yaw_t = torch.tensor(yaw, dtype=torch.float64)
    pitch_t = torch.tensor(pitch, dtype=torch.float64)
    return yaw_pitch_camera(yaw_t, pitch_t, radius, lookat, focal, dtype=dtype)
