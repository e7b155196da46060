"""The cameras an inversion is scored at: the input view, the dataset's ground-truth novel views, the
suite's yaw sweep and the named view sets of published protocols, with the names rows use for them.

Named protocols (``views.protocols``), scored with identity metrics against the input image:

- ``goae``: two views at **absolute** yaw ``±π·25/360`` (±12.5°) and the frontal pitch, on the
  generator's average camera sphere (``avg_camera_radius``, looking at ``avg_camera_pivot``) with the
  input's intrinsics (GOAE's novel-view identity protocol); rows ``goae:yaw-0.22``, ``goae:yaw+0.22``.
- ``hfgi3d``: **one random novel view** per image (HFGI3D Tab. 3: "a random novel view"), drawn from a
  seeded distribution we document because the paper gives none: yaw ``U(-0.35, 0.35)`` and pitch
  ``U(-0.25, 0.25)`` radians around the frontal pose (the range of the EG3D video trajectory HFGI3D's
  5-view protocol samples), seeded by ``crc32("hfgi3d:" + image id)`` so every method and every run
  scores the same view of an image; row ``hfgi3d:yaw+0.12,pitch-0.05``.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from warpinv.bench.rows import INPUT_VIEW


def view_name(camera: Tensor, prefix: str = "") -> str:
    """``yaw+0.35,pitch-0.20`` from a ``(25,)`` label (yaw/pitch as in ``yaw_pitch_camera``).

    Example:
        >>> from warpinv.cameras import yaw_pitch_camera
        >>> view_name(yaw_pitch_camera(0.35, -0.2)[0], "gt:")
        'gt:yaw+0.35,pitch-0.20'
    """
    from warpinv.cameras import cam2world_to_yaw_pitch, unpack_label

    yaw, pitch = cam2world_to_yaw_pitch(unpack_label(camera.reshape(1, 25).double())[0])
    return f"{prefix}yaw{float(yaw):+.2f},pitch{float(pitch):+.2f}"


def sweep_cameras(camera: Tensor, yaws: list[float], pitch: float | None,
                  lookat: tuple[float, float, float] | None = None) -> tuple[Tensor, list[str]]:
    """Cameras at ``input yaw + offset`` (pitch fixed or the input's), same radius and focal, looking
    at ``lookat`` (the generator's ``avg_camera_pivot``; EG3D's FFHQ pivot when ``None``).

    ``camera (1, 25)`` -> ``(len(yaws), 25)`` and the view names ``yaw+0.25``, ...
    """
    from warpinv.cameras import cam2world_to_yaw_pitch, unpack_label, yaw_pitch_camera
    from warpinv.cameras.lookat import DEFAULT_LOOKAT

    if not yaws:
        return camera.new_zeros(0, 25), []
    pose, intrinsics = unpack_label(camera.reshape(1, 25).double())
    yaw0, pitch0 = cam2world_to_yaw_pitch(pose)
    radius = float(pose[0, :3, 3].norm())
    focal = float(intrinsics[0, 0, 0])
    p = float(pitch0) if pitch is None else float(pitch)
    yaw_t = torch.tensor([float(yaw0) + y for y in yaws], dtype=torch.float64)
    cams = yaw_pitch_camera(yaw_t, torch.full_like(yaw_t, p), radius, lookat or DEFAULT_LOOKAT, focal)
    names = [f"yaw{y:+.2f}" for y in yaws]
    return cams.to(camera.device, camera.dtype), names


#: Named view sets of published protocols (see the module docstring).
PROTOCOLS = ("goae", "hfgi3d")
GOAE_YAW = math.pi * 25 / 360
HFGI3D_YAW_RANGE = 0.35
HFGI3D_PITCH_RANGE = 0.25


def protocol_cameras(protocol: str, image_id: str, camera: Tensor, radius: float,
                     lookat: tuple[float, float, float] | None) -> tuple[Tensor, list[str]]:
    """The cameras ``(V, 25)`` and row names of one named protocol for one image (``camera (1, 25)``
    gives the intrinsics).

    Example:
        >>> from warpinv.cameras import yaw_pitch_camera
        >>> cams, names = protocol_cameras("goae", "a.png", yaw_pitch_camera(0.4, 0.1), 2.7, None)
        >>> names, tuple(cams.shape)
        (['goae:yaw-0.22', 'goae:yaw+0.22'], (2, 25))
        >>> protocol_cameras("hfgi3d", "a.png", cams[:1], 2.7, None)[1] == protocol_cameras(
        ...     "hfgi3d", "a.png", cams[1:], 2.7, None)[1]
        True
    """
    from warpinv.cameras import unpack_label, yaw_pitch_camera
    from warpinv.cameras.lookat import DEFAULT_LOOKAT

    focal = float(unpack_label(camera.reshape(1, 25).double())[1][0, 0, 0])
    if protocol == "goae":
        yaws, pitches = [-GOAE_YAW, GOAE_YAW], [0.0, 0.0]
        names = [f"goae:yaw{y:+.2f}" for y in yaws]
    elif protocol == "hfgi3d":
        g = torch.Generator().manual_seed(zlib.crc32(f"hfgi3d:{image_id}".encode("utf-8", "surrogateescape")))
        u = torch.rand(2, generator=g, dtype=torch.float64) * 2 - 1
        yaws, pitches = [float(u[0]) * HFGI3D_YAW_RANGE], [float(u[1]) * HFGI3D_PITCH_RANGE]
        names = [f"hfgi3d:yaw{yaws[0]:+.2f},pitch{pitches[0]:+.2f}"]
    else:
        raise ValueError(f"unknown view protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    cams = yaw_pitch_camera(torch.tensor(yaws, dtype=torch.float64), torch.tensor(pitches, dtype=torch.float64),
                            radius, lookat or DEFAULT_LOOKAT, focal)
    return cams.to(camera.device, camera.dtype), names


@dataclass
class ViewSet:
    """Every camera of one image, in render order: the input view, ``n_gt`` ground-truth novel
    views, ``n_sweep`` sweep views, then ``n_protocol`` views of named protocols.

    Attributes:
        cameras: ``(1 + n_gt + n_sweep + n_protocol, 25)``.
        names: one row view name per camera (``input``, ``gt:...``, ``yaw+0.25``, ``goae:yaw+0.22``).
    """

    cameras: Tensor
    names: list[str]
    n_gt: int
    n_sweep: int
    n_protocol: int = 0

    @property
    def gt(self) -> slice:
        return slice(1, 1 + self.n_gt)

    @property
    def sweep(self) -> slice:
        return slice(1 + self.n_gt, 1 + self.n_gt + self.n_sweep)

    @property
    def protocol(self) -> slice:
        start = 1 + self.n_gt + self.n_sweep
        return slice(start, start + self.n_protocol)


def image_views(camera: Tensor, extras: dict, *, gt_novel: bool, yaw_sweep: list[float], sweep_pitch: float | None,
                lookat: tuple[float, float, float] | None, protocols: list[str] | tuple[str, ...] = (),
                image_id: str = "", radius: float = 2.7) -> ViewSet:
    """The :class:`ViewSet` of one item: ``camera (1, 25)`` and the dataset's ``novel_cameras``
    (``(1, V, 25)``, scored only with ``novel_images``, named by ``novel_view_names`` when given),
    the sweep, and the named ``protocols`` (on the sphere of ``radius`` around ``lookat``)."""
    cams = [camera.reshape(1, 25)]
    names = [INPUT_VIEW]
    gt_cams = extras.get("novel_cameras") if gt_novel else None
    n_gt = 0
    if gt_cams is not None and extras.get("novel_images") is not None:
        gt_cams = gt_cams.reshape(-1, 25).to(camera)
        n_gt = gt_cams.shape[0]
        cams.append(gt_cams)
        names += _gt_names(gt_cams, extras.get("novel_view_names"))
    sweep, sweep_names = sweep_cameras(camera, yaw_sweep, sweep_pitch, lookat)
    cams.append(sweep.to(camera))
    names += sweep_names
    n_protocol = 0
    for protocol in protocols:
        pcams, pnames = protocol_cameras(protocol, image_id, camera, radius, lookat)
        cams.append(pcams)
        names += pnames
        n_protocol += len(pnames)
    return ViewSet(torch.cat(cams), names, n_gt, len(sweep_names), n_protocol)


def _gt_names(cameras: Tensor, given: object) -> list[str]:
    if isinstance(given, (list, tuple)) and given and isinstance(given[0], (list, tuple)):
        given = given[0]
    if isinstance(given, (list, tuple)) and len(given) == cameras.shape[0]:
        return [f"gt:{g}" for g in given]
    return [view_name(c, "gt:") for c in cameras]
