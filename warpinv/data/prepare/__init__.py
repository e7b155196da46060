"""``warpinv data prepare``: raw face photos -> an EG3D-format dataset (crops, masks, cameras, report).

- :mod:`.detect`: facenet-pytorch MTCNN (weights from the wheel), batched;
- :mod:`.align`: EG3D's in-the-wild crop geometry from 5 landmarks (POS fit, 1024 -> 700 -> 512);
- :mod:`.pose`: the camera from the 5 landmarks against the 3D 5-point template (PnP or POS);
- :mod:`.prepare`: the settings and the pipeline, in stages;
- :mod:`.report`: statuses, ``dataset.json`` and ``prepare_report.json``, the run's summary.
"""
from __future__ import annotations

from warpinv.data.prepare.align import (
    LM3D_TEMPLATE,
    AlignmentError,
    CropGeometry,
    crop_face,
    eg3d_crop_geometry,
    pos_fit,
    reference_eg3d_crop,
)
from warpinv.data.prepare.detect import Face, FaceDetector
from warpinv.data.prepare.pose import PoseEstimate, estimate_pose, project_points, template_world
from warpinv.data.prepare.prepare import STATUSES, PrepareConfig, PrepareResult, prepare_folder

__all__ = [
    "LM3D_TEMPLATE",
    "STATUSES",
    "AlignmentError",
    "CropGeometry",
    "Face",
    "FaceDetector",
    "PoseEstimate",
    "PrepareConfig",
    "PrepareResult",
    "crop_face",
    "eg3d_crop_geometry",
    "estimate_pose",
    "pos_fit",
    "prepare_folder",
    "project_points",
    "reference_eg3d_crop",
    "template_world",
]
