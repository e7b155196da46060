"""warpinv.checks: every check accepts good input and names the argument, the expectation and the input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from warpinv.cameras import CameraError, yaw_pitch_camera
from warpinv.checks import (
    check_batch,
    check_camera_labels,
    check_choice,
    check_finite,
    check_floating,
    check_image,
    check_mask,
    check_min,
    check_range,
    check_same_device,
    check_same_shape,
    check_shape,
    check_tensor,
    check_weights_or_random,
    describe,
)


def test_check_shape_binds_names_and_refuses_mismatches() -> None:
    assert check_shape(torch.zeros(2, 3, 4, 4), "N 3 H H", "image") == {"N": 2, "H": 4}
    assert check_shape(np.zeros((5, 2)), "5 2", "landmarks") == {}
    with pytest.raises(ValueError, match=r"landmarks must be a \(5, 2\) array, got \(4, 2\)"):
        check_shape(np.zeros((4, 2)), "5 2", "landmarks")
    with pytest.raises(ValueError, match=r"image must be a \(N, 3, H, H\) tensor, got \(2, 3, 4, 5\)"):
        check_shape(torch.zeros(2, 3, 4, 5), "N 3 H H", "image")
    with pytest.raises(ValueError, match=r"\(N, 3\) tensor, got \(2, 3, 1\)"):
        check_shape(torch.zeros(2, 3, 1), "N 3", "x")
    with pytest.raises(ValueError, match=r"camera must be a \(34,\) tensor = \[H, W\], got list"):
        check_shape([0.0] * 34, "34", "camera", note=" = [H, W]")
    with pytest.raises(CameraError, match=r"\(N=3, 2\)"):
        check_shape(torch.zeros(2, 2), "N 2", "uv", sizes={"N": 3}, error=CameraError)


def test_dtype_value_and_type_checks() -> None:
    check_tensor(torch.zeros(1), "x")
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        check_tensor(np.zeros(1), "x")
    with pytest.raises(ValueError, match="floating-point tensor, got torch.int64"):
        check_floating(torch.zeros(1, dtype=torch.long), "x")
    check_finite(np.zeros(3), "a")
    with pytest.raises(ValueError, match="a contains NaN or Inf"):
        check_finite(torch.tensor([float("inf")]), "a")
    check_range(torch.tensor([-1.00005, 1.0]), "t", (-1.0, 1.0), tolerance=1e-4)
    with pytest.raises(ValueError, match=r"t must lie in \[-1, 1\], found values in \[0, 1.5\] \(\[0, 1\] images"):
        check_range(torch.tensor([0.0, 1.5]), "t", (-1.0, 1.0))
    with pytest.raises(ValueError, match="must lie"):
        check_range(torch.tensor([float("nan")]), "t", (0.0, 1.0))
    assert describe(torch.zeros(1, 2)) == "(1, 2)" and describe(3) == "int"


def test_check_image() -> None:
    assert check_image(torch.zeros(3, 4, 4), "x").shape == (1, 3, 4, 4)
    assert check_image(torch.full((1, 3, 4, 4), -3.0), "p", clamp_within=(-10, 10)).min() == -1
    for bad, message in [
        (torch.zeros(1, 4, 4, 4), r"x must be \(N, 3, H, W\) or \(3, H, W\) RGB, got shape \(1, 4, 4, 4\)"),
        (torch.zeros(0, 3, 4, 4), "x is empty"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "floating-point tensor in \\[-1, 1\\], got torch.uint8"),
        (torch.full((1, 3, 4, 4), float("nan")), "NaN"),
        (torch.full((1, 3, 4, 4), 2.0), r"\[-1, 1\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_image(bad, "x")
    with pytest.raises(ValueError, match=r"found values in \[20, 20\]"):
        check_image(torch.full((1, 3, 4, 4), 20.0), "p", clamp_within=(-10, 10))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        check_image(torch.full((1, 3, 4, 4), -0.5), "rgb", value_range=(0.0, 1.0))


def test_check_mask() -> None:
    images = torch.zeros(1, 3, 4, 4)
    assert check_mask(None, images) is None
    assert check_mask(torch.ones(1, 4, 4, dtype=torch.bool), images).shape == (1, 1, 4, 4)
    for bad, message in [
        (torch.ones(1, 1, 4, 4, dtype=torch.long), "bool or float"),
        (torch.full((1, 1, 4, 4), 2.0), r"\[0, 1\]"),
        (torch.zeros(1, 1, 4, 4), r"no valid pixel for image\(s\) \[0\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_mask(bad, images, "mask")
    with pytest.raises(TypeError, match="valid must be a torch.Tensor"):
        check_mask([1.0], images, "valid")


def test_pairs_batches_and_cameras() -> None:
    check_same_shape(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2,\) and \(3,\)"):
        check_same_shape(torch.zeros(2), torch.zeros(3), ("a", "b"))
    with pytest.raises(ValueError, match="images is on cpu but net is on meta; move it"):
        check_same_device(torch.zeros(1), torch.zeros(1, device="meta"), ("images", "net"), hint="; move it")
    with pytest.raises(CameraError, match="camera batch 2 does not match depth batch 1"):
        check_batch(torch.zeros(2, 25), 1, "camera", "depth", error=CameraError)
    check_camera_labels(yaw_pitch_camera(0.1, 0.0), finite=True)
    with pytest.raises(ValueError, match=r"floating-point"):
        check_camera_labels(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got \(2, 24\) \(24 entries per label"):
        check_camera_labels(torch.zeros(2, 24))
    c = yaw_pitch_camera(0.1, 0.0).repeat(3, 1)
    c[2, 20] = float("nan")
    with pytest.raises(CameraError, match=r"cams sample 2, entry 20 \(intrinsics\[1,1\]\) is nan"):
        check_camera_labels(c, "cams", finite=True, error=CameraError)


def test_scalar_and_choice_checks() -> None:
    check_choice("a", ("a", "b"), "mode")
    with pytest.raises(ValueError, match="mode must be 'a', 'b' or 'c', got 'd'"):
        check_choice("d", ("a", "b", "c"), "mode")
    check_min(1, 1, "n")
    with pytest.raises(ValueError, match="n must be > 1, got 1"):
        check_min(1, 1, "n", strict=True)
    check_weights_or_random(None, True)
    check_weights_or_random("w.pth", False)
    with pytest.raises(ValueError, match="not both"):
        check_weights_or_random("w.pth", True)
