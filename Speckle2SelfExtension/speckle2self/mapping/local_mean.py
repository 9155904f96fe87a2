"""Putting the noisy frame's local mean back under the network's output, where it differs for real.

Speckle averages out over a few grains, so the mean grey level over a neighbourhood of several
grains is an unbiased measure of the tissue there. Self-supervised training (the cross-scale
consistency term) tends to shrink contrasts towards the frame's mean, and cysts and lumens come out
grey (measured: 14.5 -> 8.2 dB of cyst contrast on field simulations). The correction is the local
mean (two passes of a (2r+1)² box, about a Gaussian of σ = 2.8 network pixels for r = 3) of
noisy − denoised. That local mean also holds what is left of the speckle after averaging: added
back everywhere, it lays a faint mottle over the denoised image (measured on the field-simulated
benchmark: 0.07-0.1 lower SSIM and Hom). So it is split in two bands. Its coarse part (the same
mean over COARSE × the radius, where speckle has all but averaged out) goes back whole; the rest
goes back only where it is larger than leftover speckle could make it: fully beyond 3× its
expected level, not at all below 1.5×, linearly in between. The expected level is the frame's own
speckle (the robust spread of what the local mean leaves of noisy − denoised) times how much of
speckle of the network's grain that band lets through (measured once on synthetic log speckle).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .grain import box_blur
from .resample import Resize

LOCAL_MEAN_RADIUS = 3
"""Default box radius (network pixels); a model card's input "local_mean_radius" overrides it, 0
for none."""
SIGNIFICANCE = 1.5
"""The correction starts at this many times the leftover speckle's level and is whole at twice it."""
NETWORK_GRAIN_PX = (0.9, 0.9)
COARSE = 3
"""The coarse band is the local mean taken on frames shrunk this many times (a radius this many times
larger)."""
SAMPLE_STEP = 4
"""The speckle's spread is measured on every SAMPLE_STEP-th row and column (cheap, and enough)."""


def keep_local_mean(denoised: np.ndarray, noisy: np.ndarray, radius: int = LOCAL_MEAN_RADIUS,
                    grain_px: tuple[float, float] = NETWORK_GRAIN_PX) -> np.ndarray:
    """(N, H, W) denoised frames with the (N, H, W) noisy frames' local mean put back where the two
    differ by more than leftover speckle would explain.

    The difference is split in two bands. Its mean over COARSE × the radius, where speckle has all
    but averaged out, goes back whole (so a faint shrink of a wide area is undone). The rest of the
    local mean goes back where it exceeds the level leftover speckle gives that band."""
    if radius <= 0:
        return denoised
    grain = tuple(round(float(g) * 20) / 20 for g in grain_px)  # 0.05 px steps: the factor barely moves
    residual = np.asarray(noisy, np.float32) - denoised
    fine, coarse = _bands(residual, radius)
    band = fine - coarse
    step = (slice(None), slice(None, None, SAMPLE_STEP), slice(None, None, SAMPLE_STEP))
    spread = _robust_spread((residual[step] - fine[step]).reshape(len(residual), -1))
    tau = (SIGNIFICANCE * _reduction(radius, *grain) * spread)[:, None, None]
    weight = np.clip(np.abs(band) / np.maximum(tau, 1e-6) - 1.0, 0.0, 1.0)
    return denoised + coarse + band * weight


def _bands(x: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """The local mean of (N, H, W) x, and its coarse part: the same local mean taken on x shrunk
    COARSE times (so over COARSE × the radius, at a ninth of the cost) and grown back."""
    h, w = x.shape[-2:]
    small = (max(1, round(h / COARSE)), max(1, round(w / COARSE)))
    shrink, grow = _resizers((h, w), small)
    return _local_mean(x, radius), grow(_local_mean(shrink(x), radius))


@lru_cache(maxsize=8)
def _resizers(size: tuple[int, int], small: tuple[int, int]) -> tuple[Resize, Resize]:
    return Resize(size, small), Resize(small, size)


def _local_mean(x: np.ndarray, radius: int) -> np.ndarray:
    return box_blur(box_blur(x, radius), radius)


def _robust_spread(samples: np.ndarray) -> np.ndarray:
    """Per row: 1.4826 × the median absolute deviation (edges and bright targets barely move it)."""
    centre = np.median(samples, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(samples - centre), axis=1)


@lru_cache(maxsize=16)
def _reduction(radius: int, axial: float, lateral: float) -> float:
    """Spread of the fine band (local mean minus its coarse part) of synthetic log speckle of this
    grain (fixed seed), per unit of robust spread of its detail (what the local mean leaves): how
    much of the speckle averaging lets through."""
    import torch
    from ..training.speckle_noise import log_speckle, one_thread, psf_for_grain
    side = 96 + 12 * COARSE * radius
    with one_thread():
        pattern = log_speckle((side, side), psf_for_grain((axial, lateral)), torch.Generator().manual_seed(0)).numpy()
    pattern = pattern[None].astype(np.float32)
    fine, coarse = _bands(pattern, radius)
    inner = (0,) + (slice(4 * COARSE * radius, -4 * COARSE * radius),) * 2
    detail = _robust_spread((pattern - fine)[inner].reshape(1, -1))[0]
    return float((fine - coarse)[inner].std() / detail)
