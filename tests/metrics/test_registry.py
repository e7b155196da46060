"""The metric registry: every metric listed with complete metadata, built offline, weights policy, README."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import warpinv.metrics as metrics_package
from warpinv.metrics import METRICS, MetricInfo, build_metric, list_metrics, metric_info, register_metric
from warpinv.metrics.base import unavailable_reason
from warpinv.weights import MissingWeightsError, get_spec

EXPECTED = ["mse", "psnr", "ssim", "ssim_valid", "ms_ssim", "lpips_alex", "lpips_vgg", "id_arcface", "id_facenet",
            "ibrnet_consistency", "reprojection_consistency", "clean_psnr", "blend_iou", "psnr_visible"]
NEEDS_WEIGHTS = {"lpips_alex", "lpips_vgg", "id_arcface", "id_facenet", "ibrnet_consistency"}
README = Path(metrics_package.__file__).with_name("README.md")

pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")


def test_every_metric_is_registered_in_order() -> None:
    assert list(METRICS) == EXPECTED
    assert [info.name for info in list_metrics()] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_metadata_is_complete(name: str) -> None:
    info = metric_info(name)
    assert isinstance(info, MetricInfo) and info.name == name
    assert isinstance(info.higher_is_better, bool)
    low, high = info.value_range
    assert low < high and not math.isnan(low) and not math.isnan(high)
    assert info.resolution is None or info.resolution > 0
    assert info.input_range == ((0.0, 1.0) if name == "blend_iou" else (-1.0, 1.0))  # blend map and mask
    assert len(info.protocol) > 80 and len(info.comparable_to) > 20
    assert bool(info.weights) == bool(info.weight_names) == (name in NEEDS_WEIGHTS)
    for weight in info.weight_names:
        get_spec(weight)  # every weight is a registry entry
    columns = info.columns()
    if info.kind == "pair" or name == "blend_iou":
        assert columns == {name: info} and not info.outputs
    else:
        assert info.kind in ("multiview", "ood") and len(columns) >= 2
        for column, sub in columns.items():
            assert sub.name == column and sub.kind == info.kind and sub.protocol and sub.comparable_to


def test_pair_metric_resolutions() -> None:
    resolutions = {info.name: info.resolution for info in list_metrics()}
    for name in ("mse", "psnr", "ssim", "ssim_valid", "ms_ssim", "lpips_alex", "lpips_vgg", "id_arcface", "clean_psnr",
                 "psnr_visible"):
        assert resolutions[name] == 256, name
    assert resolutions["id_facenet"] == 160
    assert resolutions["ibrnet_consistency"] is None  # the render resolution
    assert resolutions["blend_iou"] is None  # the OOD mask's resolution


@pytest.mark.parametrize("name", sorted(NEEDS_WEIGHTS))
def test_missing_weights_raise_and_are_reported(name: str) -> None:
    with pytest.raises(MissingWeightsError):
        build_metric(name)
    reason = unavailable_reason(name)
    assert reason is not None and "not found" in reason


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - NEEDS_WEIGHTS))
def test_weight_free_metrics_are_always_available(name: str) -> None:
    assert unavailable_reason(name) is None
    metric = build_metric(name, allow_random=True)
    assert not metric.random_weights and metric.weight_files == {}


@pytest.mark.parametrize("name", ["lpips_alex", "id_arcface", "id_facenet", "ibrnet_consistency"])
def test_allow_random_builds_seeded_random_weights(name: str) -> None:
    options = {"resolution": 16} if name == "ibrnet_consistency" else {}
    metric = build_metric(name, allow_random=True, seed=3, **options)
    assert metric.random_weights and "random" in metric.source and metric.weight_files == {}
    again = build_metric(name, allow_random=True, seed=3, **options)
    for (key, a), b in zip(metric.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), key
    assert not metric.training and not any(p.requires_grad for p in metric.parameters())


@pytest.mark.slow
def test_pair_metrics_share_one_call_convention() -> None:
    pred = torch.rand(2, 3, 256, 256) * 2 - 1
    for info in list_metrics():
        if info.kind != "pair":
            continue
        metric = build_metric(info.name, allow_random=True)
        scores = metric(pred, pred.clone(), torch.ones(2, 1, 256, 256))
        assert scores.shape == (2,) and scores.dtype == torch.float32, info.name
        best = {True: info.value_range[1], False: info.value_range[0]}[info.higher_is_better]
        assert torch.allclose(scores, torch.full((2,), best), atol=1e-5) or info.name in ("id_arcface", "id_facenet")
        with pytest.raises(ValueError, match="same shape"):
            metric(pred, pred[..., :128])
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            metric(pred, pred * 2)


def test_registry_errors() -> None:
    with pytest.raises(KeyError, match="unknown metric 'fid'"):
        build_metric("fid")
    with pytest.raises(ValueError, match="already registered"):
        register_metric(metric_info("psnr"), lambda **_: None)


def test_readme_documents_every_metric() -> None:
    text = README.read_text()
    for name in EXPECTED:
        assert f"`{name}`" in text, name
    for topic in ("pytorch_msssim", "skimage", "valid", "random weights", "MissingWeightsError", "Comparable to",
                  "256"):
        assert topic in text, topic
