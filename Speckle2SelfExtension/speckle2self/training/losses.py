"""Speckle2Self objective: per-scale reconstruction plus cross-scale consistency."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from .perturb import perturb


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
    reconstruction_norm: str = "mse"
    """'mse' (the paper's) or 'l1': reconstruction's minimiser is then the conditional median, which
    at an edge whose position speckle makes uncertain picks a side instead of averaging both."""
    consistency_band: str = "full"
    """'full' (the paper's): two scales' outputs must agree pixel for pixel. 'matched': they must
    agree in the band both views carry, each output passed through the coarser view's own
    perturbation first. A view down-sampled 4× has lost the detail finer than its grid, so asking the
    full-resolution output to equal its output asks that output to lose that detail too."""

    def __post_init__(self) -> None:
        if self.reconstruction_norm not in ("mse", "l1"):
            raise InputError(f"reconstruction_norm must be 'mse' or 'l1', not {self.reconstruction_norm!r}")
        if self.consistency_band not in ("full", "matched"):
            raise InputError(f"consistency_band must be 'full' or 'matched', not {self.consistency_band!r}")


def speckle2self_loss(outputs: list[torch.Tensor], views: list[torch.Tensor],
                      weights: LossWeights = LossWeights(),
                      inputs: list[torch.Tensor] | None = None,
                      scales: tuple[float, ...] | None = None,
                      interpolation: str = "bilinear") -> tuple[torch.Tensor, dict[str, float]]:
    """Σ_s MSE(y_s, x_s) (or L1) + Σ_{s<t} L1(y_s, y_t) (in the band both views carry, with
    consistency_band 'matched'); returns the total and its terms as floats.

    `inputs` are the re-speckled views the outputs were computed from (weights.respeckle > 0).
    `scales` (ascending, one per output) are needed for weights.consistency_band == 'matched'.
    """
    implied = [_as_noisy(y, w, weights.respeckle)
               for y, w in zip(outputs, inputs if inputs is not None else [None] * len(views))]
    norm = F.l1_loss if weights.reconstruction_norm == "l1" else F.mse_loss
    rec = sum(norm(n, x) for n, x in zip(implied, views))
    matched = weights.consistency_band == "matched"
    if matched and scales is None and len(outputs) > 1:
        raise InputError("consistency_band 'matched' needs the scales of the outputs")
    cons = consistency_term(outputs, scales if matched else None, interpolation)
    total = weights.reconstruction * rec + weights.consistency * cons
    terms = {"reconstruction": float(rec.detach()), "consistency": float(cons.detach())}
    if weights.local_mean > 0:
        # On the noisy image each output implies, as reconstruction: a re-speckled input's own local
        # means hold coarse synthetic speckle, which a clean estimate must not keep.
        window = weights.local_mean_window
        mean_term = sum(F.mse_loss(local_means(n, window), local_means(x, window)) for n, x in zip(implied, views))
        total = total + weights.local_mean * mean_term
        terms["local_mean"] = float(mean_term.detach())
    return total, {"total": float(total.detach()), **terms}


def consistency_term(outputs: list[torch.Tensor], scales: tuple[float, ...] | None = None,
                     interpolation: str = "bilinear") -> torch.Tensor:
    """Σ over pairs of L1 between outputs; with `scales`, each pair is compared after the coarser
    scale's perturbation (the band both views carry)."""
    if len(outputs) < 2:
        return torch.zeros((), device=outputs[0].device)
    if scales is not None and len(scales) != len(outputs):
        raise InputError(f"{len(outputs)} outputs but {len(scales)} scales")
    total = torch.zeros((), device=outputs[0].device)
    for i, a in enumerate(outputs):
        for j in range(i + 1, len(outputs)):
            b = outputs[j]
            if scales is not None:
                coarse = min(scales[i], scales[j])
                a, b = perturb(a, coarse, interpolation), perturb(b, coarse, interpolation)
            total = total + F.l1_loss(a, b)
    return total


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
