"""Speckle grain size, measured from the image itself, and the resampling that normalises it.

The network learns to despeckle at one grain size. A probe's resolution cell, the depth and the
pixel spacing decide how many pixels a speckle grain covers in front of it (about one at 0.5 mm
pixels of an echo, five or more on a fine linear probe), so the grain is measured from the data and
the frame resampled to the grain the model was trained at, then back.

Grain = half width at half maximum of the autocorrelation of the image's speckle (what a smooth
local mean leaves), axially (rows) and laterally (columns), in pixels.
"""
from __future__ import annotations

import numpy as np

MAX_LAG = 24
LOCAL_MEAN_SIGMA = 2.0
"""The local mean removed before the autocorrelation: small, so tissue texture and organ boundaries
(which a wider mean leaves in and which widen the measured grain 1.5-2x on real scans) stay out."""


def grain_size(grey: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(axial, lateral) speckle half widths in pixels of a log-compressed frame or stack.

    `grey` is (rows, cols) or (frames, rows, cols); `mask` (same shape or 2-D) marks the scan
    region, so the black around a sector and burned-in text do not count. Frames are pooled.
    """
    stack = grey[None] if grey.ndim == 2 else grey
    if mask is None:
        mask = np.ones(stack.shape[-2:], dtype=bool)
    masks = np.broadcast_to(mask if mask.ndim == 3 else mask[None], stack.shape)
    acf_sum = np.zeros((2 * MAX_LAG + 1, 2 * MAX_LAG + 1))
    norm_sum = np.zeros_like(acf_sum)
    for frame, m in zip(stack, masks):
        acf, norm = _frame_acf(np.asarray(frame, dtype=np.float64), np.asarray(m, dtype=np.float64))
        acf_sum += acf
        norm_sum += norm
    acf = acf_sum / np.maximum(norm_sum, 1e-12)
    if not acf[MAX_LAG, MAX_LAG] > 0:
        return 1.0, 1.0
    acf /= acf[MAX_LAG, MAX_LAG]
    return _half_width(acf[MAX_LAG:, MAX_LAG]), _half_width(acf[MAX_LAG, MAX_LAG:])


SLICE_RADIUS = 8
"""Up to this radius a box is summed from shifted slices (2r + 1 float32 adds per axis: faster than
running sums and exact to float32 rounding); beyond it, from float64 running sums."""


def box_blur(frames: np.ndarray, radius: int) -> np.ndarray:
    """(N, H, W) float32 averaged over (2r+1)² boxes, edges repeated.

    Plain numpy: a millisecond or two for a 512² frame, and free of the thread start-up and
    oversubscription costs that small torch kernels pay (100× slower on a busy 2-core machine).
    """
    r = int(radius)
    if r <= SLICE_RADIUS:
        return _box_by_slices(np.asarray(frames, dtype=np.float32), r)
    x = np.pad(np.asarray(frames, dtype=np.float64), ((0, 0), (r + 1, r), (r + 1, r)), mode="edge")
    x = x.cumsum(axis=1)
    x = x[:, 2 * r + 1:] - x[:, :-2 * r - 1]
    x = x.cumsum(axis=2)
    x = x[:, :, 2 * r + 1:] - x[:, :, :-2 * r - 1]
    return (x / (2 * r + 1) ** 2).astype(np.float32)


def _box_by_slices(frames: np.ndarray, r: int) -> np.ndarray:
    h, w = frames.shape[-2:]
    x = np.pad(frames, ((0, 0), (r, r), (r, r)), mode="edge")
    rows = x[:, 0:h, :].copy()
    for i in range(1, 2 * r + 1):
        rows += x[:, i:i + h, :]
    out = rows[:, :, 0:w].copy()
    for i in range(1, 2 * r + 1):
        out += rows[:, :, i:i + w]
    out *= np.float32(1.0 / (2 * r + 1) ** 2)
    return out


def local_residual(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What a small masked local mean (LOCAL_MEAN_SIGMA) leaves of a frame: its speckle, mostly."""
    frame = np.asarray(frame, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    local = _smooth(frame * mask) / np.maximum(_smooth(mask), 1e-6)
    return frame - local


def _smooth(x: np.ndarray) -> np.ndarray:
    """About a Gaussian of LOCAL_MEAN_SIGMA: two passes of a box of the same variance."""
    radius = max(1, int(round((np.sqrt(6 * LOCAL_MEAN_SIGMA ** 2 + 1) - 1) / 2)))
    return box_blur(box_blur(x[None].astype(np.float32), radius), radius)[0].astype(np.float64)


def _eroded(mask: np.ndarray, radius: int) -> np.ndarray:
    import SimpleITK as sitk
    image = sitk.BinaryErode(sitk.GetImageFromArray(mask.astype(np.uint8)), [radius, radius])
    return sitk.GetArrayFromImage(image).astype(bool)


def _frame_acf(frame: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masked autocorrelation sums of the speckle residual, and of the mask (its pair counts)."""
    inner = _eroded(mask > 0, 2).astype(np.float64)
    residual = local_residual(frame, mask) * inner
    shape = [s + MAX_LAG for s in frame.shape]
    spectrum = np.fft.rfft2(residual, shape)
    counts = np.fft.rfft2(inner, shape)
    acf = np.fft.irfft2(np.abs(spectrum) ** 2, shape)
    pairs = np.fft.irfft2(np.abs(counts) ** 2, shape)
    return _centred(acf), _centred(np.maximum(pairs, 0.0))


def _centred(a: np.ndarray) -> np.ndarray:
    rows = np.r_[-MAX_LAG:MAX_LAG + 1]
    return a[np.ix_(rows % a.shape[0], rows % a.shape[1])]


def _half_width(profile: np.ndarray) -> float:
    """First lag where the normalised autocorrelation falls to 0.5, linearly interpolated."""
    below = np.nonzero(profile < 0.5)[0]
    if below.size == 0:
        return float(MAX_LAG)
    k = int(below[0])
    a, b = profile[k - 1], profile[k]
    return float(k - 1 + (a - 0.5) / max(a - b, 1e-12))
