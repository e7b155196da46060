"""Building blocks of IBRNet: feature network, per-ray MLP, projector, samplers and volume renderer.

Re-implemented from the description of googleinterns/IBRNet @ 41807b2 (Apache-2.0); module and
parameter names equal the released checkpoint so its state dicts load with ``strict=True``. The
public entry point is :class:`warpinv.metrics.ibrnet.IBRNet`; this module holds the pieces.

Shape letters: ``V`` source views, ``R`` rays, ``S`` samples per ray, ``C`` feature channels.
Cameras are IBRNet's 34-float vectors ``[H, W, K (4x4 row-major, pixels), cam2world (4x4 row-major,
OpenCV axes)]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "ConvINELU",
    "UpConvINELU",
    "ResUNet",
    "RayAttention",
    "IBRNetMLP",
    "sinusoid_table",
    "split_cameras",
    "project_points",
    "direction_differences",
    "gather_source_samples",
    "coarse_depths",
    "sample_pdf",
    "fine_depths",
    "volume_render",
]


# ----------------------------------------------------------------------------------------------
# Feature network (ResNet-34 layers 1-3 + a two-step U-Net decoder, InstanceNorm everywhere)
# ----------------------------------------------------------------------------------------------


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2, bias=bias,
                     padding_mode="reflect")


class BasicBlock(nn.Module):
    """ResNet basic block with InstanceNorm and reflect padding: ``(N, in, H, W) -> (N, out, H/s, W/s)``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(in_ch, out_ch, 3, stride)
        self.bn1 = _instance_norm(out_ch)
        self.conv2 = _conv(out_ch, out_ch, 3)
        self.bn2 = _instance_norm(out_ch)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(_conv(in_ch, out_ch, 1, stride), _instance_norm(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class ConvINELU(nn.Module):
    """Conv (with bias, reflect padding) -> InstanceNorm -> ELU (the official ``conv`` block)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = _conv(in_ch, out_ch, kernel, stride, bias=True)
        self.bn = _instance_norm(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(self.bn(self.conv(x)))


class UpConvINELU(nn.Module):
    """Bilinear x2 upsampling (``align_corners=True``) followed by :class:`ConvINELU`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = ConvINELU(in_ch, out_ch, kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def _make_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_ch, out_ch, stride), *[BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)])


def _skip_concat(skip: Tensor, up: Tensor) -> Tensor:
    """Zero-pad the encoder ``skip`` map to ``up``'s size, then ``cat([up, skip])`` (upsampled first).

    Order and padding as upstream; the padding only acts for odd sizes, where the upsampled map is
    one pixel larger than the skip map.
    """
    dy = up.shape[2] - skip.shape[2]
    dx = up.shape[3] - skip.shape[3]
    skip = F.pad(skip, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
    return torch.cat([up, skip], dim=1)


class ResUNet(nn.Module):
    """IBRNet's feature network: ``(V, 3, H, W)`` RGB in [0, 1] -> coarse and fine maps at 1/4 size.

    ``conv1`` (7x7, stride 2) and ``layer1`` (stride 2) both halve the resolution, so the output is
    ``(V, coarse_out_ch, h, w)`` and the same for ``fine_out_ch``, with ``h = H/4`` for ``H`` divisible
    by 16 (otherwise ``4 * ceil(H/16)``, from the decoder's x2 upsampling of the stride-16 map).
    With ``coarse_only`` the fine map is ``None`` and all channels are coarse.
    """

    def __init__(self, coarse_out_ch: int = 32, fine_out_ch: int = 32, coarse_only: bool = False) -> None:
        super().__init__()
        self.coarse_out_ch = coarse_out_ch
        self.fine_out_ch = 0 if coarse_only else fine_out_ch
        out_ch = self.coarse_out_ch + self.fine_out_ch
        self.conv1 = _conv(3, 64, 7, stride=2)
        self.bn1 = _instance_norm(64)
        self.layer1 = _make_stage(64, 64, 3, stride=2)
        self.layer2 = _make_stage(64, 128, 4, stride=2)
        self.layer3 = _make_stage(128, 256, 6, stride=2)
        self.upconv3 = UpConvINELU(256, 128)
        self.iconv3 = ConvINELU(128 + 128, 128)
        self.upconv2 = UpConvINELU(128, 64)
        self.iconv2 = ConvINELU(64 + 64, out_ch)
        self.out_conv = nn.Conv2d(out_ch, out_ch, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        x = F.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x = self.iconv3(_skip_concat(x2, self.upconv3(x3)))
        x = self.iconv2(_skip_concat(x1, self.upconv2(x)))
        out = self.out_conv(x)
        if self.fine_out_ch == 0:
            return out, None
        return out[:, : self.coarse_out_ch], out[:, -self.fine_out_ch :]


# ----------------------------------------------------------------------------------------------
# Per-ray network
# ----------------------------------------------------------------------------------------------


def sinusoid_table(n_positions: int, d_hid: int = 16) -> Tensor:
    """Transformer sinusoid table ``(1, n_positions, d_hid)``, float64 maths rounded to float32.

    Entry ``[0, p, j]`` is ``sin`` (even ``j``) or ``cos`` (odd ``j``) of ``p / 10000^(2*(j//2)/d_hid)``.
    """
    rows = []
    for pos in range(n_positions):
        angles = [pos / math.pow(10000.0, 2 * (j // 2) / d_hid) for j in range(d_hid)]
        rows.append([math.sin(a) if j % 2 == 0 else math.cos(a) for j, a in enumerate(angles)])
    return torch.tensor(rows, dtype=torch.float64).float().unsqueeze(0)


class RayAttention(nn.Module):
    """Multi-head self-attention along a ray, post-LayerNorm residual: ``(R, S, d) -> (R, S, d)``.

    The mask ``(R, S, 1)`` marks *query* samples; a masked query gets its whole logit row set to
    -1e9, i.e. uniform attention over all samples. That is what the released model was trained
    with (the upstream mask broadcasts over the query axis, not the key axis), so it is kept.
    """

    def __init__(self, n_head: int = 4, d_model: int = 16, d_k: int = 4, d_v: int = 4) -> None:
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.temperature = d_k**0.5
        self.w_qs = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_ks = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_vs = nn.Linear(d_model, n_head * d_v, bias=False)
        self.fc = nn.Linear(n_head * d_v, d_model, bias=False)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)

    def _heads(self, x: Tensor, layer: nn.Linear, width: int) -> Tensor:
        return layer(x).view(x.shape[0], x.shape[1], self.n_head, width).transpose(1, 2)

    def forward(self, x: Tensor, query_mask: Tensor) -> Tensor:
        q = self._heads(x, self.w_qs, self.d_k)
        k = self._heads(x, self.w_ks, self.d_k)
        v = self._heads(x, self.w_vs, self.d_v)
        logits = torch.matmul(q / self.temperature, k.transpose(2, 3))  # (R, heads, S, S)
        logits = logits.masked_fill(query_mask.unsqueeze(1) == 0, -1e9)
        out = torch.matmul(F.softmax(logits, dim=-1), v)
        out = out.transpose(1, 2).contiguous().view(x.shape[0], x.shape[1], -1)
        return self.layer_norm(self.fc(out) + x)


def _weighted_mean_var(x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.sum(x * weight, dim=2, keepdim=True)
    var = torch.sum(weight * (x - mean) ** 2, dim=2, keepdim=True)
    return mean, var


class IBRNetMLP(nn.Module):
    """IBRNet's per-sample aggregation network plus ray transformer (``net_coarse`` / ``net_fine``).

    ``forward(rgb_feat (R, S, V, 3+C), ray_diff (R, S, V, 4), mask (R, S, V, 1)) -> (R, S, 4)``
    with ``[..., :3]`` the blended source colour and ``[..., 3]`` the density. ``S`` must equal
    ``n_samples``: the positional table is built for that count and is not in the state dict.
    """

    def __init__(self, in_feat_ch: int = 32, n_samples: int = 64, anti_alias_pooling: bool = True) -> None:
        super().__init__()
        self.anti_alias_pooling = bool(anti_alias_pooling)
        self.n_samples = n_samples
        if self.anti_alias_pooling:
            self.s = nn.Parameter(torch.tensor(0.2))
        self.ray_dir_fc = nn.Sequential(nn.Linear(4, 16), nn.ELU(), nn.Linear(16, in_feat_ch + 3), nn.ELU())
        self.base_fc = nn.Sequential(nn.Linear((in_feat_ch + 3) * 3, 64), nn.ELU(), nn.Linear(64, 32), nn.ELU())
        self.vis_fc = nn.Sequential(nn.Linear(32, 32), nn.ELU(), nn.Linear(32, 33), nn.ELU())
        self.vis_fc2 = nn.Sequential(nn.Linear(32, 32), nn.ELU(), nn.Linear(32, 1), nn.Sigmoid())
        self.geometry_fc = nn.Sequential(nn.Linear(32 * 2 + 1, 64), nn.ELU(), nn.Linear(64, 16), nn.ELU())
        self.ray_attention = RayAttention(4, 16, 4, 4)
        self.out_geometry_fc = nn.Sequential(nn.Linear(16, 16), nn.ELU(), nn.Linear(16, 1), nn.ReLU())
        self.rgb_fc = nn.Sequential(nn.Linear(32 + 1 + 4, 16), nn.ELU(), nn.Linear(16, 8), nn.ELU(), nn.Linear(8, 1))
        self.register_buffer("pos_encoding", sinusoid_table(n_samples, 16), persistent=False)

    def _pooling_weights(self, ray_diff: Tensor, mask: Tensor) -> Tensor:
        if not self.anti_alias_pooling:
            return mask / (torch.sum(mask, dim=2, keepdim=True) + 1e-8)
        dot = ray_diff[..., 3:4]
        closeness = torch.exp(torch.abs(self.s) * (dot - 1))
        weight = (closeness - torch.min(closeness, dim=2, keepdim=True)[0]) * mask
        return weight / (torch.sum(weight, dim=2, keepdim=True) + 1e-8)

    def forward(self, rgb_feat: Tensor, ray_diff: Tensor, mask: Tensor) -> Tensor:
        if rgb_feat.shape[1] != self.n_samples:
            raise ValueError(f"this network was built for {self.n_samples} samples per ray, got {rgb_feat.shape[1]}")
        n_views = rgb_feat.shape[2]
        rgb_in = rgb_feat[..., :3]
        rgb_feat = rgb_feat + self.ray_dir_fc(ray_diff)
        weight = self._pooling_weights(ray_diff, mask)

        mean, var = _weighted_mean_var(rgb_feat, weight)
        global_feat = torch.cat([mean, var], dim=-1).expand(-1, -1, n_views, -1)
        x = self.base_fc(torch.cat([global_feat, rgb_feat], dim=-1))

        x_res, vis = torch.split(self.vis_fc(x * weight), [32, 1], dim=-1)
        vis = torch.sigmoid(vis) * mask
        x = x + x_res
        vis = self.vis_fc2(x * vis) * mask
        weight = vis / (torch.sum(vis, dim=2, keepdim=True) + 1e-8)

        mean, var = _weighted_mean_var(x, weight)
        density_feat = torch.cat([mean.squeeze(2), var.squeeze(2), weight.mean(dim=2)], dim=-1)
        density_feat = self.geometry_fc(density_feat) + self.pos_encoding
        n_valid = torch.sum(mask, dim=2)  # (R, S, 1)
        density_feat = self.ray_attention(density_feat, (n_valid > 1).to(density_feat.dtype))
        sigma = self.out_geometry_fc(density_feat).masked_fill(n_valid < 1, 0.0)

        logits = self.rgb_fc(torch.cat([x, vis, ray_diff], dim=-1)).masked_fill(mask == 0, -1e9)
        rgb = torch.sum(rgb_in * F.softmax(logits, dim=2), dim=2)
        return torch.cat([rgb, sigma], dim=-1)


# ----------------------------------------------------------------------------------------------
# Projector
# ----------------------------------------------------------------------------------------------


def split_cameras(cameras: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(..., 34)`` camera vectors -> ``hw (..., 2)``, ``K (..., 4, 4)``, ``cam2world (..., 4, 4)``."""
    lead = cameras.shape[:-1]
    return cameras[..., :2], cameras[..., 2:18].reshape(*lead, 4, 4), cameras[..., 18:34].reshape(*lead, 4, 4)


def project_points(pts: Tensor, cameras: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points into every source view.

    Args:
        pts: ``(R, S, 3)`` world points.
        cameras: ``(V, 34)`` source cameras.

    Returns:
        ``pixels (V, R, S, 2)`` as (column, row), clamped to +-1e6, and ``in_front (V, R, S)`` bool
        (camera-space depth > 0).
    """
    _, intrinsics, cam2world = split_cameras(cameras)
    n_views = cameras.shape[0]
    xyz_h = torch.cat([pts.reshape(-1, 3), torch.ones_like(pts.reshape(-1, 3)[:, :1])], dim=-1)
    world_to_pixels = intrinsics.bmm(torch.inverse(cam2world))
    proj = world_to_pixels.bmm(xyz_h.t().unsqueeze(0).expand(n_views, -1, -1)).transpose(1, 2)
    pixels = proj[..., :2] / torch.clamp(proj[..., 2:3], min=1e-8)
    pixels = torch.clamp(pixels, min=-1e6, max=1e6)
    shape = (n_views,) + pts.shape[:2]
    return pixels.reshape(shape + (2,)), (proj[..., 2] > 0).reshape(shape)


def direction_differences(pts: Tensor, query_centres: Tensor, source_centres: Tensor) -> Tensor:
    """IBRNet's ``ray_diff``: ``[unit(d_query - d_source), d_query . d_source]`` per view.

    ``d_*`` are unit vectors from each point to a camera centre.

    Args:
        pts: ``(R, S, 3)``.
        query_centres: ``(R, 3)`` target-camera centre of each ray (its origin).
        source_centres: ``(V, 3)``.

    Returns:
        ``(V, R, S, 4)``.
    """
    to_query = query_centres[:, None, :] - pts
    to_query = to_query / (torch.norm(to_query, dim=-1, keepdim=True) + 1e-6)
    to_source = source_centres[:, None, None, :] - pts.unsqueeze(0)
    to_source = to_source / (torch.norm(to_source, dim=-1, keepdim=True) + 1e-6)
    diff = to_query.unsqueeze(0) - to_source
    direction = diff / torch.clamp(torch.norm(diff, dim=-1, keepdim=True), min=1e-6)
    dot = torch.sum(to_query.unsqueeze(0) * to_source, dim=-1, keepdim=True)
    return torch.cat([direction, dot], dim=-1)


def gather_source_samples(
    pts: Tensor, query_centres: Tensor, src_rgbs: Tensor, src_cameras: Tensor, featmaps: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample source colours and features at the projections of ``pts`` (IBRNet's ``Projector.compute``).

    Args:
        pts: ``(R, S, 3)`` world points.
        query_centres: ``(R, 3)`` ray origins (target-camera centre).
        src_rgbs: ``(V, 3, H, W)`` in [0, 1].
        src_cameras: ``(V, 34)``; ``H, W`` are read from the first camera as upstream does.
        featmaps: ``(V, C, h, w)`` at any resolution (grid coordinates are normalised).

    Returns:
        ``rgb_feat (R, S, V, 3+C)``, ``ray_diff (R, S, V, 4)``, ``mask (R, S, V, 1)`` float (projection
        inside the image, ``0 <= x <= W-1`` and ``0 <= y <= H-1``, and in front of the camera).
    """
    height, width = src_cameras[0, 0], src_cameras[0, 1]
    pixels, in_front = project_points(pts, src_cameras)
    scale = torch.stack([width - 1.0, height - 1.0]).to(pixels.dtype)
    grid = 2 * pixels / scale - 1.0  # (V, R, S, 2)
    rgb = F.grid_sample(src_rgbs, grid, align_corners=True).permute(2, 3, 0, 1)
    feat = F.grid_sample(featmaps, grid, align_corners=True).permute(2, 3, 0, 1)
    x, y = pixels[..., 0], pixels[..., 1]
    inside = (x <= width - 1.0) & (x >= 0) & (y <= height - 1.0) & (y >= 0)
    mask = (inside & in_front).to(pts.dtype).permute(1, 2, 0)[..., None]
    ray_diff = direction_differences(pts, query_centres, src_cameras[:, 18:34].reshape(-1, 4, 4)[:, :3, 3])
    return torch.cat([rgb, feat], dim=-1), ray_diff.permute(1, 2, 0, 3), mask


# ----------------------------------------------------------------------------------------------
# Sampling along rays
# ----------------------------------------------------------------------------------------------


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def coarse_depths(
    near: Tensor,
    far: Tensor,
    n_rays: int,
    n_samples: int,
    inv_uniform: bool = True,
    deterministic: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Coarse sample depths ``(R, S)``: evenly spaced in depth, or in inverse depth with ``inv_uniform``.

    ``near`` and ``far`` are 0-d tensors (camera-space depths: ray directions are not normalised).
    Without ``deterministic`` each sample is jittered uniformly inside its interval (interval
    bounds are the midpoints, first/last samples keep the near/far end).
    """
    near_r = near * torch.ones(n_rays, dtype=near.dtype, device=near.device)
    far_r = far * torch.ones(n_rays, dtype=near.dtype, device=near.device)
    steps = torch.arange(n_samples, dtype=near.dtype, device=near.device)
    if inv_uniform:
        start = 1.0 / near_r
        step = (1.0 / far_r - start) / (n_samples - 1)
        z_vals = 1.0 / (start[:, None] + steps[None, :] * step[:, None])
    else:
        step = (far_r - near_r) / (n_samples - 1)
        z_vals = near_r[:, None] + steps[None, :] * step[:, None]
    if deterministic:
        return z_vals
    mids = 0.5 * (z_vals[:, 1:] + z_vals[:, :-1])
    upper = torch.cat([mids, z_vals[:, -1:]], dim=-1)
    lower = torch.cat([z_vals[:, :1], mids], dim=-1)
    return lower + (upper - lower) * _uniform(tuple(z_vals.shape), z_vals, generator)


def sample_pdf(
    bins: Tensor,
    weights: Tensor,
    n_samples: int,
    deterministic: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Inverse-CDF sampling of ``bins (R, M+1)`` with ``weights (R, M)`` -> ``(R, n_samples)``.

    ``u = linspace(0, 1, n)`` when ``deterministic``, else uniform random. As upstream, the bin
    index is the count of the first ``M`` CDF entries <= ``u`` (so ``u = 1`` maps to the last bin
    end), and a bin whose CDF step is below 1e-5 uses denominator 1; that switch makes the samples
    discontinuous in nearly empty regions.
    """
    n_bins = weights.shape[1]
    weights = weights + 1e-5
    pdf = weights / torch.sum(weights, dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # (R, M+1)
    n_rays = bins.shape[0]
    if deterministic:
        # Upstream builds u in the default dtype (float32) even in float64 runs; kept so those match too.
        u = torch.linspace(0.0, 1.0, n_samples, dtype=torch.float32, device=bins.device)
        u = u.to(bins.dtype).expand(n_rays, -1)
    else:
        u = _uniform((n_rays, n_samples), bins, generator)
    above = (u.unsqueeze(-1) >= cdf[:, None, :n_bins]).sum(dim=-1)
    below = torch.clamp(above - 1, min=0)
    index = torch.stack([below, above], dim=-1).reshape(n_rays, -1)
    cdf_g = torch.gather(cdf, 1, index).reshape(n_rays, n_samples, 2)
    bins_g = torch.gather(bins, 1, index).reshape(n_rays, n_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    t = (u - cdf_g[..., 0]) / denom
    return bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0])


def fine_depths(
    z_vals: Tensor,
    weights: Tensor,
    n_importance: int,
    inv_uniform: bool = True,
    deterministic: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance samples from the coarse ``weights (R, S)``, merged and sorted with ``z_vals (R, S)``.

    Bins are the midpoints between coarse samples (in inverse depth with ``inv_uniform``, flipped
    to increasing inverse depth); the first and last coarse weights are dropped. Returns
    ``(R, S + n_importance)``.
    """
    weights = weights.detach()[:, 1:-1]
    if inv_uniform:
        inv_z = 1.0 / z_vals
        mids = 0.5 * (inv_z[:, 1:] + inv_z[:, :-1])
        inv_samples = sample_pdf(torch.flip(mids, dims=[1]), torch.flip(weights, dims=[1]), n_importance,
                                 deterministic, generator)
        z_samples = 1.0 / inv_samples
    else:
        mids = 0.5 * (z_vals[:, 1:] + z_vals[:, :-1])
        z_samples = sample_pdf(mids, weights, n_importance, deterministic, generator)
    return torch.sort(torch.cat([z_vals, z_samples], dim=-1), dim=-1)[0]


# ----------------------------------------------------------------------------------------------
# Volume rendering
# ----------------------------------------------------------------------------------------------


def volume_render(raw: Tensor, z_vals: Tensor, sample_mask: Tensor, white_bkgd: bool = False) -> dict[str, Tensor]:
    """Composite ``raw (R, S, 4)`` along each ray.

    ``alpha = 1 - exp(-sigma)`` with no interval length (IBRNet's choice, for scale independence).

    Args:
        raw: per-sample ``[rgb, sigma]``.
        z_vals: ``(R, S)`` depths.
        sample_mask: ``(R, S)`` bool, samples seen by at least two source views.
        white_bkgd: add the missing opacity as white.

    Returns:
        ``rgb (R, 3)``, ``depth (R,)``, ``weights (R, S)``, ``alpha (R, S)``, ``z_vals (R, S)`` and
        ``mask (R,)`` bool (more than 8 samples of the ray seen by >= 2 views).
    """
    alpha = 1.0 - torch.exp(-raw[..., 3])
    transmittance = torch.cumprod(1.0 - alpha + 1e-10, dim=-1)[:, :-1]
    transmittance = torch.cat([torch.ones_like(transmittance[:, :1]), transmittance], dim=-1)
    weights = alpha * transmittance
    rgb = torch.sum(weights.unsqueeze(2) * raw[..., :3], dim=1)
    if white_bkgd:
        rgb = rgb + (1.0 - torch.sum(weights, dim=-1, keepdim=True))
    return {
        "rgb": rgb,
        "depth": torch.sum(weights * z_vals, dim=-1),
        "weights": weights,
        "alpha": alpha,
        "z_vals": z_vals,
        "mask": sample_mask.to(raw.dtype).sum(dim=1) > 8,
    }
