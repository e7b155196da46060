"""Generator tuning: PTI's second stage as a function any method can call.

:func:`tune_generator` fine-tunes every parameter of a generator (a private copy of the base one,
or a generator the caller hands in) so that it renders a list of targets from a fixed latent:

- Adam at a constant ``lr`` on all parameters (PTI's ``pti_learning_rate``, 3e-4);
- per step a **view sampler** picks the targets to fit (:func:`input_view`: always the input view,
  as PTI; :class:`InputAndRandomView`: the input view plus one other target drawn at random from a
  seeded generator, as HFGI3D's second tuning); each picked target renders from its camera and
  adds ``weight * (mse_weight * MSE + lpips_weight * LPIPS)`` on the super-resolved ``image``;
- the early stop of PTI: as soon as the step's LPIPS (the mean over its views), measured **before**
  the backward pass, is ``<= lpips_threshold``, the loop ends without taking that step; ``null``
  never stops;
- optionally PTI's locality regulariser (``criteria/localitly_regulizer.py``): the tuned and the
  base generator render latents sampled on a sphere around the pivot, and their MSE + LPIPS joins
  the loss (:func:`locality_loss`).

The base generator is never modified. :func:`changed_parameters` turns a tuned copy into the
``generator_delta`` of an :class:`~warpinv.methods.base.Inversion`.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from warpinv.backbone import EG3DGenerator
from warpinv.methods.base import check_finite
from warpinv.methods.losses import PerceptualLoss, build_lpips, masked_mse
from warpinv.methods.projector import (
    StepCallback,
    check_non_negative,
    check_positive,
    synthesize,
    synthesize_views,
)
from warpinv.metrics.lpips import Net

logger = logging.getLogger(__name__)

#: ``sampler(step) -> indices`` of the targets fitted at that step (index 0: the input view).
ViewSampler = Callable[[int], Sequence[int]]


@dataclass
class TuningConfig:
    """Settings of :func:`tune_generator`. Defaults: ``danielroich/PTI`` ``configs/hyperparameters.py``.

    Example:
        >>> cfg = TuningConfig(steps=90, lr=1e-3, lpips_weight=0.0, lpips_threshold=None)
        >>> cfg.uses_lpips, cfg.lpips_nets(), TuningConfig().lpips_nets()
        (False, [], ['alex'])
        >>> TuningConfig(locality_interval=0)
        Traceback (most recent call last):
        ...
        ValueError: locality_interval must be > 0, got 0
    """

    steps: int = 350
    """Maximum tuning steps (``max_pti_steps``: 350; the EG3D ports: 500)."""
    lr: float = 3e-4
    """Adam learning rate on all generator parameters (``pti_learning_rate``)."""
    mse_weight: float = 1.0
    """Weight of the MSE on the SR image (``pt_l2_lambda``)."""
    lpips_weight: float = 1.0
    """Weight of the LPIPS loss (``pt_lpips_lambda``)."""
    lpips_net: Literal["alex", "vgg"] = "alex"
    """LPIPS trunk of the tuning loss, the early stop and the locality regulariser (``lpips_type``)."""
    lpips_resolution: int | None = None
    """Area-downsample larger images to this before the tuning LPIPS; ``null``: full generator resolution (official)."""
    lpips_threshold: float | None = 0.06
    """Stop tuning as soon as the LPIPS, measured before the backward pass, is <= this (``LPIPS_value_threshold``);
    ``null``: never."""
    deterministic_render: bool = False
    """Render without the renderer's random depth jitter while tuning (the official code jitters)."""
    locality_regularization: bool = False
    """Enable the locality regulariser (``use_locality_regularization``; off in PTI)."""
    locality_alpha: float = 30.0
    """Radius: ``w_r = w_p + alpha (w_z - w_p) / |w_z - w_p|`` (``regulizer_alpha``, a distance, not an interpolation
    weight)."""
    locality_psi: float = 0.5
    """Truncation of the sampled ``w_z``."""
    locality_samples: int = 1
    """Latents sampled per regularised step (``latent_ball_num_of_samples``)."""
    locality_interval: int = 1
    """Regularise every this many steps (``locality_regularization_interval``)."""
    locality_mse_weight: float = 0.1
    """Weight of the MSE between the original and the tuned generator at ``w_r`` (``regulizer_l2_lambda``)."""
    locality_lpips_weight: float = 0.1
    """Weight of their LPIPS (``regulizer_lpips_lambda``)."""

    def __post_init__(self) -> None:
        check_positive(locality_samples=self.locality_samples, locality_interval=self.locality_interval)
        check_non_negative(steps=self.steps, lr=self.lr, mse_weight=self.mse_weight, lpips_weight=self.lpips_weight,
                           locality_alpha=self.locality_alpha, locality_mse_weight=self.locality_mse_weight,
                           locality_lpips_weight=self.locality_lpips_weight)

    @property
    def lpips_in_loop(self) -> bool:
        """Whether each step computes LPIPS on its views (for the loss or the early stop)."""
        return self.lpips_weight > 0 or self.lpips_threshold is not None

    @property
    def uses_lpips(self) -> bool:
        """Whether tuning computes LPIPS at all (its loss, the early stop or the locality term)."""
        return self.lpips_in_loop or (self.locality_regularization and self.locality_lpips_weight > 0)

    def lpips_nets(self) -> list[Net]:
        """The LPIPS trunk tuning needs: ``[lpips_net]`` when it computes LPIPS, else none."""
        return [self.lpips_net] if self.uses_lpips else []

    def perceptual(self, allow_random: bool = False) -> PerceptualLoss | None:
        """The LPIPS loss module of this config, or ``None`` when tuning computes no LPIPS (a missing
        trunk raises ``MissingWeightsError`` here, before any image, unless ``allow_random``)."""
        nets = self.lpips_nets()
        return PerceptualLoss(build_lpips(nets[0], allow_random), self.lpips_resolution) if nets else None


@dataclass
class TuningTarget:
    """One view to fit.

    Attributes:
        image: ``(1, 3, R, R)`` in ``[-1, 1]`` at the generator's resolution.
        camera: ``(1, 25)`` the camera it is seen from.
        mask: ``(1, 1, R, R)`` valid pixels, or ``None``.
        weight: factor on this view's loss.
    """

    image: Tensor
    camera: Tensor
    mask: Tensor | None = None
    weight: float = 1.0


def input_view(step: int) -> tuple[int, ...]:
    """PTI's sampler: the input view (target 0) at every step.

    Example:
        >>> input_view(0), input_view(7)
        ((0,), (0,))
    """
    return (0,)


class InputAndRandomView:
    """HFGI3D's second-tuning sampler: the input view (target 0) plus one of targets ``1..n-1``,
    drawn uniformly at every step from its own ``torch.Generator`` (the global RNG is not touched).

    Example:
        >>> sampler = InputAndRandomView(num_targets=4, seed=0)
        >>> picks = [sampler(step) for step in range(50)]
        >>> all(p[0] == 0 and 1 <= p[1] <= 3 for p in picks), sorted({p[1] for p in picks})
        (True, [1, 2, 3])
        >>> again = InputAndRandomView(4, seed=0)  # the same seed draws the same views
        >>> picks == [again(step) for step in range(50)]
        True
    """

    def __init__(self, num_targets: int, seed: int) -> None:
        if num_targets < 2:
            raise ValueError(f"needs the input view and at least one other target, got {num_targets} target(s)")
        self.num_targets = num_targets
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, step: int) -> tuple[int, int]:
        other = int(torch.randint(1, self.num_targets, (1,), generator=self.generator))
        return (0, other)


def tune_generator(
    base: EG3DGenerator,
    ws: Tensor,
    targets: Sequence[TuningTarget],
    config: TuningConfig,
    *,
    generator: EG3DGenerator | None = None,
    sampler: ViewSampler = input_view,
    perceptual: PerceptualLoss | nn.Module | None = None,
    conditioning: Tensor | None = None,
    neural_rendering_resolution: int | None = None,
    callback: StepCallback | None = None,
) -> tuple[EG3DGenerator, dict[str, Any]]:
    """Tune a generator so that it renders ``targets`` from the latent ``ws``.

    Args:
        base: the reference generator: copied when ``generator`` is ``None``, never modified; the
            locality regulariser compares against it and maps its latents with it.
        ws: ``(1, num_ws, w_dim)`` the latent (the pivot), fixed.
        targets: the views to fit; ``targets[0]`` is the input view (the early stop's and the final
            measurement's view, and the locality regulariser's camera).
        config: steps, learning rate, losses, early stop, locality regulariser.
        generator: the generator to tune in place (e.g. one tuned before); default a deep copy of ``base``.
        sampler: ``sampler(step)`` -> indices of the targets fitted at that step (default: the input view).
        perceptual: the LPIPS loss (needed when ``config.uses_lpips``).
        conditioning: ``(1, 25)`` mapping camera of the locality samples (needed with the regulariser).
        neural_rendering_resolution: raw render size; ``None`` keeps the generator's.
        callback: called after every step taken with the step index and its terms (``loss``,
            ``mse``, ``lpips``: NaN when not computed, ``locality`` when regularised).

    Returns:
        The tuned generator (its parameters frozen again) and the facts for ``Inversion.info``:
        ``tuning_steps_run``, ``early_stopped``, ``final_lpips`` (``None`` without LPIPS),
        ``final_mse``, ``lpips_threshold``, ``locality_regularization``.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the image gets a failed row).
    """
    if not targets:
        raise ValueError("tune_generator needs at least one target")
    if config.uses_lpips and perceptual is None:
        raise ValueError("this tuning config computes LPIPS and needs a perceptual loss module")
    if config.locality_regularization and conditioning is None:
        raise ValueError("the locality regulariser needs the conditioning camera of its latent samples")
    with torch.enable_grad():
        G = (copy.deepcopy(base) if generator is None else generator).requires_grad_(True)
        optimizer = torch.optim.Adam(G.parameters(), lr=config.lr)
        ws = ws.detach()
        render = dict(neural_rendering_resolution=neural_rendering_resolution,
                      deterministic=config.deterministic_render)
        steps_run, early_stopped, lpips_value, mse_value = 0, False, float("nan"), float("nan")
        for step in range(config.steps):
            loss, mses, lpipses = views_loss(G, ws, [targets[i] for i in sampler(step)], config, perceptual, render)
            if lpipses:
                lpips_value = sum(lpipses) / len(lpipses)
            mse_value = sum(mses) / len(mses)
            optimizer.zero_grad(set_to_none=True)
            if config.lpips_threshold is not None and lpips_value <= config.lpips_threshold:
                early_stopped = True  # official: checked on this forward, before any backward
                break
            terms = {"mse": mse_value, "lpips": lpips_value}  # lpips: nan when the loop does not compute it
            if config.locality_regularization and step % config.locality_interval == 0:
                assert conditioning is not None
                locality = locality_loss(G, base, ws, targets[0].camera, conditioning, config, perceptual,
                                         neural_rendering_resolution)
                loss = loss + locality
                terms["locality"] = float(locality.detach())
            check_finite(loss, step)
            loss.backward()
            optimizer.step()
            steps_run += 1
            if callback is not None:
                callback(step, {"loss": float(loss.detach()), **terms})
        if not early_stopped:  # measure the returned generator, not the one before the last step
            lpips_value, mse_value = measure_view(G, ws, targets[0], config, perceptual, render, lpips_value)
    G.requires_grad_(False)
    logger.debug("tuned %d of %d steps (early stop: %s), final MSE %.4g", steps_run, config.steps, early_stopped,
                 mse_value)
    info = {"tuning_steps_run": steps_run, "early_stopped": early_stopped,
            "final_lpips": lpips_value if config.uses_lpips else None,  # None: not computed
            "final_mse": mse_value, "lpips_threshold": config.lpips_threshold,
            "locality_regularization": config.locality_regularization}
    return G, info


def views_loss(G: EG3DGenerator, ws: Tensor, views: Sequence[TuningTarget], config: TuningConfig,
               perceptual: PerceptualLoss | nn.Module | None,
               render: dict[str, Any]) -> tuple[Tensor, list[float], list[float]]:
    """One step's loss over ``views``: ``sum weight * (mse_weight * MSE + lpips_weight * LPIPS)``,
    each view rendered from its camera. Returns the loss and each view's MSE and LPIPS values (the
    LPIPS list is empty when the step computes none). The views share one tri-plane pass
    (:func:`~warpinv.methods.projector.synthesize_views`)."""
    loss: Tensor | None = None
    mses: list[float] = []
    lpipses: list[float] = []
    renders = synthesize_views(G, ws, [view.camera for view in views], **render)
    for view, rendered in zip(views, renders):
        image = rendered["image"]
        mse = masked_mse(image, view.image, view.mask)
        view_loss = config.mse_weight * mse
        if config.lpips_in_loop:
            assert perceptual is not None
            lpips = perceptual(image, view.image, view.mask).mean()
            lpipses.append(float(lpips.detach()))
            view_loss = view_loss + config.lpips_weight * lpips
        mses.append(float(mse.detach()))
        view_loss = view.weight * view_loss
        loss = view_loss if loss is None else loss + view_loss
    assert loss is not None, "the view sampler picked no target"
    return loss, mses, lpipses


@torch.no_grad()
def measure_view(G: EG3DGenerator, ws: Tensor, target: TuningTarget, config: TuningConfig,
            perceptual: PerceptualLoss | nn.Module | None, render: dict[str, Any],
            lpips_value: float) -> tuple[float, float]:
    """LPIPS (``lpips_value`` unchanged when tuning computes none) and MSE of ``G`` at ``target``."""
    image = synthesize(G, ws, target.camera, **render)["image"]
    if perceptual is not None and config.uses_lpips:
        lpips_value = float(perceptual(image, target.image, target.mask).mean())
    return lpips_value, float(masked_mse(image, target.image, target.mask))


def locality_loss(G: EG3DGenerator, base: EG3DGenerator, ws_pivot: Tensor, camera: Tensor, conditioning: Tensor,
                  config: TuningConfig, perceptual: PerceptualLoss | nn.Module | None,
                  neural_rendering_resolution: int | None = None) -> Tensor:
    """PTI's locality regulariser between the base generator and the tuned ``G`` (a scalar).

    ``locality_samples`` latents ``w_z`` (``base``'s mapping, truncation ``locality_psi``,
    conditioned on ``conditioning (1, 25)``, PTI: the frontal camera, as for ``w_avg``) give
    ``w_r = w_p + alpha (w_z - w_p) / |w_z - w_p|`` (the norm over the whole ``(num_ws, w_dim)``
    tensor, as official); both generators render ``w_r`` from ``camera (1, 25)`` with
    ``noise_mode='none'``; the loss is ``0.1 MSE + 0.1 LPIPS``, averaged over the samples. The z
    come from torch's global RNG.
    """
    n = config.locality_samples
    with torch.no_grad():
        z = torch.randn(n, base.z_dim, device=ws_pivot.device)
        w_z = base.mapping(z, conditioning.expand(n, -1), truncation_psi=config.locality_psi)
    render = dict(neural_rendering_resolution=neural_rendering_resolution,
                  deterministic=config.deterministic_render, noise_mode="none")
    total = torch.zeros((), device=ws_pivot.device)
    for i in range(n):
        direction = w_z[i: i + 1] - ws_pivot
        w_r = ws_pivot + config.locality_alpha * direction / direction.norm(p=2)
        new = synthesize(G, w_r, camera, **render)["image"]
        with torch.no_grad():
            old = synthesize(base, w_r, camera, **render)["image"]
        if config.locality_mse_weight > 0:
            total = total + config.locality_mse_weight * masked_mse(new, old)
        if config.locality_lpips_weight > 0:
            assert perceptual is not None
            total = total + config.locality_lpips_weight * perceptual(old, new).mean()
    return total / n


def changed_parameters(base: nn.Module, tuned: nn.Module) -> dict[str, Tensor]:
    """Parameters of ``tuned`` that differ from ``base``'s, by state-dict name (detached copies).

    Example:
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        >>> with torch.no_grad():
        ...     _ = b.bias.add_(1.0)
        >>> sorted(changed_parameters(a, b))
        ['bias']
    """
    reference = dict(base.named_parameters())
    return {name: p.detach().clone() for name, p in tuned.named_parameters()
            if not torch.equal(p.detach(), reference[name].detach())}


__all__ = [
    "InputAndRandomView",
    "TuningConfig",
    "TuningTarget",
    "ViewSampler",
    "changed_parameters",
    "input_view",
    "locality_loss",
    "measure_view",
    "tune_generator",
    "views_loss",
]
