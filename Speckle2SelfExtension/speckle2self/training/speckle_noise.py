"""Synthetic log-domain speckle with a frame's own strength and grain: the re-speckling noise.

In log-compressed grey levels, fully developed speckle is additive and independent of the echo
level: `y = x + n`, where `n` is the log of a Rayleigh-distributed amplitude pattern whose grain
follows the system's resolution cell. A second, independent pattern `z` drawn from the same law
lets a network learn the clean image from noisy frames alone (Noisier2Noise, Moran et al., CVPR
2020): trained to predict `y` from `w = y + z`, the best prediction is `(E[x|w] + w) / 2`, since
`n` and `z` are exchangeable. Neither the law's strength (it depends on the display's dynamic
range) nor its grain (probe, depth and pixel spacing) is known for a clinical image, so both are
measured from the frame itself and a pattern is synthesised to match:

- grain: `speckle2self.mapping.grain.grain_size` of the frame, matched by the width of a Gaussian
  point-spread function that gives the same measured grain (a calibration table);
- strength: the median, over blocks of tissue, of the standard deviation of what a local mean
  leaves, divided by the same statistic of a unit-strength synthetic pattern of that grain.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..mapping.grain import grain_size, local_residual

PSF_SIGMAS = np.linspace(0.3, 4.0, 20)
"""Gaussian point-spread widths (pixels, amplitude) of the calibration table."""
BLOCK = 16
MIN_BLOCK_FILL = 0.9
"""A block counts for the strength estimate when this share of it is scan region and not clipped."""
CLIP_LEVEL = 0.02
"""Grey levels at or below this are taken as clipped to the display's floor (no speckle there)."""
CALIBRATION_SIDE = 192


def log_speckle(shape: tuple[int, ...], psf_sigma: tuple[float, float],
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-mean, unit-variance log-amplitude speckle of `shape` (..., H, W).

    Complex circular Gaussian scatterer sums filtered by a separable Gaussian point-spread
    function of `psf_sigma` (rows, cols) pixels: the envelope is Rayleigh-distributed and its log
    has the skewed law (long dark tail) of real speckle in B-mode.
    """
    *lead, h, w = shape
    pad = int(np.ceil(3 * max(psf_sigma))) + 1
    field = torch.randn((int(np.prod(lead or [1])), 2, h + 2 * pad, w + 2 * pad), generator=generator)
    field = _separable_blur(field, psf_sigma)[:, :, pad:pad + h, pad:pad + w]
    log_amp = 0.5 * torch.log(field.square().sum(dim=1).clamp_min(1e-12))
    log_amp = log_amp - log_amp.mean(dim=(-2, -1), keepdim=True)
    log_amp = log_amp / log_amp.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return log_amp.reshape(*lead, h, w) if lead else log_amp[0]


def _separable_blur(x: torch.Tensor, sigma: tuple[float, float]) -> torch.Tensor:
    channels = x.shape[1]
    for axis, s in enumerate(sigma):
        radius = int(np.ceil(3 * max(s, 0.3)))
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k = torch.exp(-0.5 * (t / max(s, 0.3)) ** 2)
        k = (k / k.sum()).repeat(channels, 1, 1)
        kernel = k[:, :, :, None] if axis == 0 else k[:, :, None, :]
        x = F.conv2d(x, kernel, groups=channels)
        pad = (0, 0, radius, radius) if axis == 0 else (radius, radius, 0, 0)
        x = F.pad(x, pad)
    return x


@lru_cache(maxsize=1)
def _grain_table() -> np.ndarray:
    """Measured grain (pixels) of synthetic speckle for each of PSF_SIGMAS (fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    measured = []
    for s in PSF_SIGMAS:
        z = log_speckle((2, CALIBRATION_SIDE, CALIBRATION_SIDE), (float(s), float(s)), gen).numpy()
        a, lat = grain_size(z)
        measured.append(0.5 * (a + lat))
    return np.maximum.accumulate(np.asarray(measured))


def psf_for_grain(grain: tuple[float, float]) -> tuple[float, float]:
    """The Gaussian point-spread widths whose synthetic speckle measures `grain` (axial, lateral).

    The table is isotropic; with unequal widths each axis's measurement also feels the other's
    (through the 2-D local mean that grain_size removes), so one corrective step measures the
    first guess and aims each axis off by its error.
    """
    return _psf_for_grain(round(float(grain[0]), 2), round(float(grain[1]), 2))


@lru_cache(maxsize=4096)
def _psf_for_grain(axial: float, lateral: float) -> tuple[float, float]:
    table = _grain_table()
    first = [float(np.interp(g, table, PSF_SIGMAS)) for g in (axial, lateral)]
    if abs(axial - lateral) < 0.05:
        return first[0], first[1]
    z = log_speckle((2, CALIBRATION_SIDE, CALIBRATION_SIDE), (first[0], first[1]), torch.Generator().manual_seed(2))
    measured = grain_size(z.numpy())
    aimed = [g * np.sqrt(g / max(m, 1e-3)) for g, m in zip((axial, lateral), measured)]
    return tuple(float(np.interp(g, table, PSF_SIGMAS)) for g in aimed)  # type: ignore[return-value]


def _block_std(residual: np.ndarray, usable: np.ndarray) -> float:
    """Median over well-filled BLOCK² blocks of the residual's standard deviation (NaN if none)."""
    h, w = (s - s % BLOCK for s in residual.shape)
    r = residual[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)
    u = usable[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)
    good = u.mean(axis=1) >= MIN_BLOCK_FILL
    if not good.any():
        return float("nan")
    return float(np.median([r[i][u[i]].std() for i in np.nonzero(good)[0]]))


def speckle_params(grey: np.ndarray, region: np.ndarray | None = None) -> tuple[float, tuple[float, float]]:
    """(strength, PSF widths) of a log-domain frame in [0, 1]: the noise `log_speckle` must mimic.

    The strength is the standard deviation of the frame's log speckle in grey levels; the widths
    are for `log_speckle`. Clipped pixels (the display floor) and pixels outside `region` are left
    out. Returns strength 0 where no tissue block is found (nothing to re-speckle).
    """
    frame = np.asarray(grey, dtype=np.float64)
    mask = np.ones(frame.shape, dtype=bool) if region is None else np.asarray(region, dtype=bool)
    usable = mask & (frame > CLIP_LEVEL)
    if usable.mean() < 0.05:
        return 0.0, (1.0, 1.0)
    psf = psf_for_grain(grain_size(frame, usable))
    measured = _block_std(local_residual(frame, usable), usable)
    reference = _unit_block_std(round(psf[0], 2), round(psf[1], 2))
    if not np.isfinite(measured) or not reference > 0:
        return 0.0, psf
    return float(measured / reference), psf


@lru_cache(maxsize=4096)
def _unit_block_std(axial: float, lateral: float) -> float:
    """The strength statistic of unit-strength synthetic speckle of these PSF widths (fixed seed)."""
    unit = log_speckle((CALIBRATION_SIDE, CALIBRATION_SIDE), (axial, lateral), torch.Generator().manual_seed(1))
    everywhere = np.ones(unit.shape, dtype=bool)
    return _block_std(local_residual(unit.numpy().astype(np.float64), everywhere), everywhere)
