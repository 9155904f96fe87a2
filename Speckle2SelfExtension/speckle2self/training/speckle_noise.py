"""Synthetic log-domain speckle with a frame's own strength and grain: the re-speckling noise.

In log-compressed grey levels, fully developed speckle is additive and independent of the echo
level: `y = x + n`, where `n` is the log of a Rayleigh-distributed amplitude pattern whose grain
follows the system's resolution cell. A second, independent pattern `z` drawn from the same law
lets a network learn the clean image from noisy frames alone (Noisier2Noise, Moran et al., CVPR
2020): trained to predict `y` from `w = y + z`, the best prediction is `(E[x|w] + w) / 2`, since
`n` and `z` are exchangeable. Neither the law's strength (it depends on the display's dynamic
range) nor its grain (probe, depth and pixel spacing) is known for a clinical image, so both are
measured from the frame itself and a pattern is synthesised to match:

- where: the frame's most homogeneous tissue windows, each less its plane, which hold speckle
  and little else;
- grain: the widths of a Gaussian point-spread function whose synthetic speckle has the same
  autocorrelation half widths in such windows, axially and laterally (a calibration table);
- strength: the windows' median standard deviation over that of unit synthetic speckle;
- display power: clinical grey maps are not a pure log. Measured in the real training frames'
  windows, speckle is skewed towards bright grains (skewness +0.4 to +0.6), where the log of a
  Rayleigh envelope has a long tail of dark pits (-1.2); such pits, drawn out laterally, look like
  the thin lines of muscle and lung. So the pattern is the envelope to the power whose skewness
  matches the windows' (0: its log, as simulations and log displays show it).

A mismatch is not harmless: synthetic speckle coarser than the frame's own teaches the network to
erase real structure of that size (lateral smearing), and weaker or finer speckle leaves the real
speckle in place. Measured on real frames, the earlier estimate from `grain_size` (which a 2-px
local mean caps near 1.7 px) made lateral widths 3-6× too coarse on fine linear-array speckle and
the strength 2-5× too weak on coarse fetal scans.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..mapping.grain import _half_width, box_blur, grain_size

PSF_SIGMAS = np.linspace(0.3, 4.0, 20)
"""Gaussian point-spread widths (pixels, amplitude) of the grain_size calibration table."""
WINDOW_SIGMAS = np.linspace(0.3, 8.0, 40)
"""... of the speckle-window calibration table (real frames reach 6 px half widths laterally)."""
POWERS = np.linspace(0.0, 1.5, 16)
"""Display powers of the skewness calibration table (0: a log display)."""
WINDOW = 40
"""Side of the homogeneous windows speckle is measured in: several grains even of coarse speckle."""
WINDOWS = 12
WIDTH_PERCENTILE = 25
"""Speckle is the finest texture of tissue; anatomy, reverberation bands and clutter in a window
only widen its autocorrelation. A low percentile of the windows' widths resists them."""
CALIBRATION_WINDOWS = 48
CLIP_LEVEL = 0.02
"""Grey levels at or below this are taken as clipped to the display's floor (no speckle there)."""
CALIBRATION_SIDE = 192


def log_speckle(shape: tuple[int, ...], psf_sigma: tuple[float, float],
                generator: torch.Generator | None = None, power: float = 0.0) -> torch.Tensor:
    """Zero-mean, unit-variance speckle of `shape` (..., H, W) as a display shows it.

    Complex circular Gaussian scatterer sums filtered by a separable Gaussian point-spread
    function of `psf_sigma` (rows, cols) pixels: the envelope is Rayleigh-distributed. `power` 0
    shows its log (a log-compressed display: a long dark tail of pits, skewness about -1.2);
    power p > 0 shows the envelope to the p-th power, as grey maps that compress less than a log
    do (p = 1: the envelope itself, skewed the other way, +0.6: bright grains on a darker floor).
    """
    *lead, h, w = shape
    pad = int(np.ceil(3 * max(psf_sigma))) + 1
    field = torch.randn((int(np.prod(lead or [1])), 2, h + 2 * pad, w + 2 * pad), generator=generator)
    field = _separable_blur(field, psf_sigma)[:, :, pad:pad + h, pad:pad + w]
    intensity = field.square().sum(dim=1)
    shown = 0.5 * torch.log(intensity.clamp_min(1e-12)) if power <= 0 else intensity.pow(0.5 * power)
    shown = shown - shown.mean(dim=(-2, -1), keepdim=True)
    shown = shown / shown.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return shown.reshape(*lead, h, w) if lead else shown[0]


@contextmanager
def one_thread():
    """Run torch on one thread inside: a calibration that inference caches must not depend on the
    caller's thread count (a convolution's float32 rounding does), or one process and a Ray worker
    on one thread would write files that differ in the last bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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


class SpeckleLaw(NamedTuple):
    """What re-speckling synthesises for a frame: `strength` times unit `log_speckle` of these
    point-spread widths (axial, lateral) and display power."""

    strength: float
    psf: tuple[float, float]
    power: float = 0.0


def speckle_params(grey: np.ndarray, region: np.ndarray | None = None) -> SpeckleLaw:
    """The speckle law of a frame's grey levels in [0, 1]: the noise `log_speckle` must mimic.

    Measured in the frame's most homogeneous tissue windows (speckle_windows), where what a
    window's plane fit leaves is speckle: the widths are those whose synthetic speckle has the
    same autocorrelation half widths there, the display power the one whose synthetic speckle has
    the windows' median skewness, and the strength the ratio of the windows' median standard
    deviation to that of unit synthetic speckle measured the same way. Clipped pixels (the display
    floor) and pixels outside `region` are left out. Returns strength 0 where no tissue window is
    found (nothing to re-speckle).
    """
    frame = np.asarray(grey, dtype=np.float64)
    mask = np.ones(frame.shape, dtype=bool) if region is None else np.asarray(region, dtype=bool)
    usable = mask & (frame > CLIP_LEVEL)
    windows = speckle_windows(frame, usable)
    if not windows:
        return SpeckleLaw(0.0, (1.0, 1.0))
    patches = np.stack([_detrended(frame[w]) for w in windows])
    power = _power_for_skew(float(np.median([_skewness(p) for p in patches])))
    widths = np.array([_half_widths(p[None]) for p in patches])
    psf = _psf_for_widths(*np.percentile(widths, WIDTH_PERCENTILE, axis=0), power)
    measured = float(np.median(patches.std(axis=(1, 2))))
    reference = _unit_window_std(round(psf[0], 2), round(psf[1], 2), power)
    return SpeckleLaw(float(measured / reference) if reference > 0 else 0.0, psf, power)


def speckle_windows(frame: np.ndarray, usable: np.ndarray, count: int = WINDOWS,
                    side: int = WINDOW) -> list[tuple[slice, slice]]:
    """Up to `count` non-overlapping side² windows of usable tissue (mean grey 0.12-0.8) whose
    local mean (a 9×9 box) varies least: where the frame is speckle on an even background rather
    than anatomy. (In log grey levels speckle's spread does not depend on the echo level, so the
    spread itself, not its ratio to the level, is compared.)"""
    h, w = frame.shape
    if min(h, w) < side:
        return []
    smooth = box_blur(frame[None].astype(np.float32), 4)[0].astype(np.float64)
    step = side // 4
    candidates = []
    for r in range(0, h - side + 1, step):
        for c in range(0, w - side + 1, step):
            box = (slice(r, r + side), slice(c, c + side))
            if not usable[box].all():
                continue
            level = frame[box].mean()
            if 0.12 <= level <= 0.8:
                candidates.append((smooth[box].std(), r, c))
    chosen: list[tuple[slice, slice]] = []
    for _score, r, c in sorted(candidates):
        if all(abs(r - b[0].start) >= side or abs(c - b[1].start) >= side for b in chosen):
            chosen.append((slice(r, r + side), slice(c, c + side)))
        if len(chosen) == count:
            break
    return chosen


def _detrended(patch: np.ndarray) -> np.ndarray:
    """A window less its least-squares plane (depth gain and slow shading are not speckle)."""
    rows, cols = np.indices(patch.shape, dtype=np.float64)
    design = np.stack([np.ones(patch.size), rows.ravel(), cols.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, patch.ravel(), rcond=None)
    return patch - (design @ coef).reshape(patch.shape)


def _half_widths(patches: np.ndarray) -> tuple[float, float]:
    """(axial, lateral) half widths at half maximum of the windows' pooled autocorrelation."""
    side = patches.shape[-1]
    spectrum = np.fft.rfft2(patches, (2 * side, 2 * side))
    acf = np.fft.irfft2(np.abs(spectrum) ** 2, (2 * side, 2 * side)).sum(axis=0)
    acf /= max(acf[0, 0], 1e-12)
    return _half_width(acf[:side // 2, 0]), _half_width(acf[0, :side // 2])


@lru_cache(maxsize=len(POWERS))
def _width_table(power: float = 0.0) -> np.ndarray:
    """Autocorrelation half width (pixels) in windows of synthetic speckle of a display power for
    each of WINDOW_SIGMAS (the envelope's speckle is about a quarter wider than its log's)."""
    gen = torch.Generator().manual_seed(0)
    widths = [np.mean(_half_widths(_calibration_windows((float(s), float(s)), power, gen))) for s in WINDOW_SIGMAS]
    return np.maximum.accumulate(np.asarray(widths))


def _psf_for_widths(axial: float, lateral: float, power: float = 0.0) -> tuple[float, float]:
    """Along an axis, speckle's autocorrelation depends only on that axis's PSF width (the
    field's correlation is separable), so one isotropic table serves both axes."""
    table = _width_table(power)
    return float(np.interp(axial, table, WINDOW_SIGMAS)), float(np.interp(lateral, table, WINDOW_SIGMAS))


@lru_cache(maxsize=4096)
def _unit_window_std(axial: float, lateral: float, power: float = 0.0) -> float:
    """Median window standard deviation of unit synthetic speckle of these widths, detrended as the
    frame's windows are (coarse speckle loses more of its variance to a window's plane)."""
    unit = _calibration_windows((axial, lateral), power, torch.Generator().manual_seed(1))
    return float(np.median(unit.std(axis=(1, 2))))


def _skewness(patch: np.ndarray) -> float:
    centred = patch - patch.mean()
    return float((centred ** 3).mean() / max(centred.std() ** 3, 1e-12))


@lru_cache(maxsize=1)
def _skew_table() -> np.ndarray:
    """Median window skewness of synthetic speckle for each of POWERS (windows detrended as the
    frame's are; the grain barely moves it)."""
    windows = (_calibration_windows((2.0, 4.0), float(p), torch.Generator().manual_seed(3)) for p in POWERS)
    skews = [np.median([_skewness(w) for w in z]) for z in windows]
    return np.maximum.accumulate(np.asarray(skews))


def _calibration_windows(psf: tuple[float, float], power: float, generator: torch.Generator) -> np.ndarray:
    """CALIBRATION_WINDOWS windows of unit synthetic speckle, each less its plane as a frame's are."""
    z = log_speckle((CALIBRATION_WINDOWS, WINDOW, WINDOW), psf, generator, power).numpy().astype(np.float64)
    return np.stack([_detrended(w) for w in z])


def _power_for_skew(skew: float) -> float:
    """The display power whose speckle has this skewness, 0 (log) up to POWERS' last, to the
    table's step (a width table is made for each)."""
    step = POWERS[1] - POWERS[0]
    return round(round(float(np.interp(skew, _skew_table(), POWERS)) / step) * step, 2)
