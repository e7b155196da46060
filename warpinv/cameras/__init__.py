"""EG3D camera conventions, exact: labels, LookAt poses, trajectories, rays, projection and warping."""
from __future__ import annotations

from warpinv.cameras.distributions import POSE_KINDS, PoseDistribution
from warpinv.cameras.labels import (
    IBRNET_CAMERA_DIM,
    LABEL_DIM,
    CameraError,
    RadiusReport,
    check_label_shape,
    entry_name,
    flip_yaw,
    normalize_camera,
    pack_label,
    to_ibrnet_camera,
    unpack_label,
    validate_label,
)
from warpinv.cameras.lookat import (
    DEFAULT_LOOKAT,
    DEFAULT_RADIUS,
    FFHQ_FOCAL,
    FFHQ_FOV_DEG,
    cam2world_to_yaw_pitch,
    create_cam2world,
    focal_to_intrinsics,
    fov_to_intrinsics,
    lookat_pose,
    yaw_pitch_camera,
)
from warpinv.cameras.rays import generate_rays, lift_to_camera, pixel_grid
from warpinv.cameras.trajectories import HFGI3D_NUM_VIEWS, HFGI3D_PI, hfgi3d_orbit, ibrnet_views, yaw_sweep
from warpinv.cameras.warp import backward_warp, pixels_to_grid, project_points, unproject_depth

__all__ = [
    "POSE_KINDS",
    "PoseDistribution",
    "CameraError",
    "DEFAULT_LOOKAT",
    "DEFAULT_RADIUS",
    "FFHQ_FOCAL",
    "FFHQ_FOV_DEG",
    "HFGI3D_NUM_VIEWS",
    "HFGI3D_PI",
    "IBRNET_CAMERA_DIM",
    "LABEL_DIM",
    "RadiusReport",
    "backward_warp",
    "cam2world_to_yaw_pitch",
    "check_label_shape",
    "create_cam2world",
    "entry_name",
    "flip_yaw",
    "focal_to_intrinsics",
    "fov_to_intrinsics",
    "generate_rays",
    "hfgi3d_orbit",
    "ibrnet_views",
    "lift_to_camera",
    "lookat_pose",
    "normalize_camera",
    "pack_label",
    "pixel_grid",
    "pixels_to_grid",
    "project_points",
    "to_ibrnet_camera",
    "unpack_label",
    "unproject_depth",
    "validate_label",
    "yaw_pitch_camera",
    "yaw_sweep",
]
