"""Speckle2Self objective: per-scale reconstruction plus cross-scale consistency."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Term weights. The paper uses 1.0 and 1.0; on per-frame min-max normalised envelope data
    (mean ≈ 0.2) the L1 consistency term then outweighs the MSE reconstruction term and the
    outputs collapse to a flat image (measured: PSNR 6 dB after 300 steps against 17 dB with 0.1),
    so consistency defaults to 0.1."""

    reconstruction: float = 1.0
    consistency: float = 0.1
    local_mean: float = 0.0
    """Weight of the local-mean fidelity term: every scale's output keeps the input's mean over
    windows of `local_mean_window` pixels (several speckle grains, where speckle has averaged out).
    Consistency alone is met most cheaply by shrinking every contrast towards the mean; this term
    forbids that without asking the output to keep any speckle."""
    local_mean_window: int = 8
    respeckle: float = 0.0
    """Re-speckling strength α (0: off, the paper's objective). When on, each crop gets α times a
    synthetic speckle pattern of its own measured strength and grain (speckle2self.training.speckle_noise)
    before the views are made, and reconstruction asks (α²·y_s + w_s) / (1 + α²) to equal the
    noisy view x_s, where w_s is the re-speckled view: its minimiser y_s is the clean image's
    estimate (Noisier2Noise), not the noisy input. Measured on field simulations, reconstruction
    of the noisy view alone keeps the speckle coarser than the smallest perturbation scale, which
    the consistency term cannot see (mottling)."""
    edge: float = 0.0
    """Weight of the edge term: within a few pixels of the strongest anatomical edges of each
    noisy crop (the top `edge_fraction` of its 7×7 median's gradient, and at least EDGE_CONTRAST
    times the crop's median gradient, so a crop of plain tissue has none), the full-resolution
    output follows that median (L1, both smoothed at σ = 1 px). Reconstruction towards a noisy
    target is minimised by the conditional mean, which blurs every edge whose position speckle
    makes uncertain; measured on real scans, that left edges softer than a Gaussian of σ = 2 px.
    A median keeps such edges without overshoot; asking only for the median's gradient
    (tried first) was met by dark halos beside bright edges."""
    edge_fraction: float = 0.03


def speckle2self_loss(outputs: list[torch.Tensor], views: list[torch.Tensor],
                      weights: LossWeights = LossWeights(),
                      inputs: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Σ_s MSE(y_s, x_s) + Σ_{s<t} L1(y_s, y_t); returns the total and its terms as floats.

    `inputs` are the re-speckled views the outputs were computed from (weights.respeckle > 0).
    """
    implied = [_as_noisy(y, w, weights.respeckle)
               for y, w in zip(outputs, inputs if inputs is not None else [None] * len(views))]
    rec = sum(F.mse_loss(n, x) for n, x in zip(implied, views))
    pairs = [(a, b) for i, a in enumerate(outputs) for b in outputs[i + 1:]]
    cons = sum(F.l1_loss(a, b) for a, b in pairs) if pairs else torch.zeros((), device=outputs[0].device)
    total = weights.reconstruction * rec + weights.consistency * cons
    terms = {"reconstruction": float(rec.detach()), "consistency": float(cons.detach())}
    if weights.local_mean > 0:
        # On the noisy image each output implies, as reconstruction: a re-speckled input's own local
        # means hold coarse synthetic speckle, which a clean estimate must not keep.
        window = weights.local_mean_window
        mean_term = sum(F.mse_loss(local_means(n, window), local_means(x, window)) for n, x in zip(implied, views))
        total = total + weights.local_mean * mean_term
        terms["local_mean"] = float(mean_term.detach())
    if weights.edge > 0:
        edge = edge_term(outputs[-1], views[-1], weights.edge_fraction)
        total = total + weights.edge * edge
        terms["edge"] = float(edge.detach())
    return total, {"total": float(total.detach()), **terms}


def local_means(x: torch.Tensor, window: int) -> torch.Tensor:
    """Means over window × window blocks, overlapping by half (a cheap, exact pooling)."""
    window = max(2, int(window))
    return F.avg_pool2d(x, window, stride=window // 2)


def _as_noisy(y: torch.Tensor, w: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """The noisy image a clean estimate y implies for the re-speckled input w (Noisier2Noise)."""
    if w is None or alpha <= 0:
        return y
    a2 = alpha * alpha
    return (a2 * y + w) / (1.0 + a2)


EDGE_CONTRAST = 6.0
"""How many times a crop's median gradient an edge must reach. In the 7×7 median of plain
speckle (any grain from 1 to 7 px) no pixel exceeds about 5.2 times it; a boundary of 0.4 grey
between tissues reaches 10-24 times."""


def edge_term(y: torch.Tensor, x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean absolute difference between y and the 7×7 median of x, both smoothed as the edge
    operator smooths (σ = 1 px), within EDGE_REACH px of x's strongest edges: a softer edge and
    an overshooting one (a halo beside it) both differ from the median's, which has neither."""
    with torch.no_grad():
        median = median_filter(x, 7)
        ref = gradient_magnitude(median)
        flat = ref.flatten(1)
        level = torch.maximum(torch.quantile(flat, 1.0 - fraction, dim=1),
                              EDGE_CONTRAST * flat.median(dim=1).values)
        edges = (ref >= level.view(-1, 1, 1, 1)).float()
        near = F.max_pool2d(edges, 2 * EDGE_REACH + 1, stride=1, padding=EDGE_REACH)
        target = gaussian_smooth(median)
    differs = (gaussian_smooth(y) - target).abs()
    return (differs * near).sum() / near.sum().clamp_min(1.0)


EDGE_REACH = 3
"""Pixels either side of an edge the edge term covers: a blur or a halo of a few pixels."""


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """size × size median of a (N, 1, H, W) batch, edges mirrored."""
    r = size // 2
    patches = F.unfold(F.pad(x, (r, r, r, r), mode="reflect"), size)
    return patches.median(dim=1).values.view_as(x)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel magnitude after a Gaussian of σ = 1 px (the real-scan benchmark's edge operator)."""
    smooth = gaussian_smooth(x)
    d = torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)
    s = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    return torch.sqrt(_separable(smooth, d, s).square() + _separable(smooth, s, d).square() + 1e-12)


def gaussian_smooth(x: torch.Tensor) -> torch.Tensor:
    """A Gaussian of σ = 1 px (truncated at 4 σ, as scipy's)."""
    t = torch.arange(-4, 5, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * t * t)
    g = g / g.sum()
    return _separable(x, g, g)


def _separable(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x filtered by rows along H and cols along W (correlation, edges mirrored)."""
    r, c = len(rows) // 2, len(cols) // 2
    x = F.pad(x, (c, c, r, r), mode="reflect")
    x = F.conv2d(x, rows.view(1, 1, -1, 1))
    return F.conv2d(x, cols.view(1, 1, 1, -1))
