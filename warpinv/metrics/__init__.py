"""Metrics that papers can cite, each with its protocol, resolution, range and weights stated.

Registry (``METRICS``, in this order): ``mse``, ``psnr``, ``ssim``, ``ssim_valid``, ``ms_ssim``,
``lpips_alex``, ``lpips_vgg``, ``id_arcface``, ``id_facenet``, ``ibrnet_consistency``,
``reprojection_consistency``, ``clean_psnr``, ``blend_iou`` (occluded inputs), ``psnr_visible`` (ground-truth
novel views inside their covisibility masks). See
``warpinv/metrics/README.md`` for each metric's protocol and the papers' tables it is comparable to.

    from warpinv.metrics import build_metric, list_metrics
    psnr = build_metric("psnr")                    # pair metric: psnr(pred, target, mask=None) -> (N,)
    lpips = build_metric("lpips_alex")             # MissingWeightsError when the AlexNet trunk is absent
    lpips = build_metric("lpips_alex", allow_random=True)   # seeded random trunk, lpips.random_weights
"""
from __future__ import annotations

from warpinv.metrics.base import (
    METRICS,
    Metric,
    MetricEntry,
    MetricInfo,
    PairMetric,
    build_metric,
    list_metrics,
    metric_info,
    register_metric,
    unavailable_reason,
)

# Import order = registration order = the order of list_metrics() (not alphabetical on purpose).
from warpinv.metrics.image import MSE, MSSSIM, PSNR, SSIM  # isort: skip
from warpinv.metrics.perceptual import LPIPSMetric  # isort: skip
from warpinv.metrics.identity import ArcFaceIdentity  # isort: skip
from warpinv.metrics.facenet import FaceNetIdentity  # isort: skip
from warpinv.metrics.consistency import IBRNetConsistency, RenderCache, ReprojectionConsistency  # isort: skip
from warpinv.metrics.novel_view import score_novel_views  # isort: skip
from warpinv.metrics.ood import BlendIoU, CleanPSNR, occluded_input_psnr  # isort: skip
from warpinv.metrics.visible import VisiblePSNR  # isort: skip

__all__ = [
    "METRICS",
    "MSE",
    "MSSSIM",
    "PSNR",
    "SSIM",
    "ArcFaceIdentity",
    "BlendIoU",
    "CleanPSNR",
    "FaceNetIdentity",
    "IBRNetConsistency",
    "LPIPSMetric",
    "Metric",
    "MetricEntry",
    "MetricInfo",
    "PairMetric",
    "RenderCache",
    "ReprojectionConsistency",
    "VisiblePSNR",
    "build_metric",
    "list_metrics",
    "metric_info",
    "occluded_input_psnr",
    "register_metric",
    "score_novel_views",
    "unavailable_reason",
]
