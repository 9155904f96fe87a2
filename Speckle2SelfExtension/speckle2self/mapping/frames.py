"""Checking frames and the per-frame normalisation the network expects."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MIN_SIDE = 8
_FINITE_CHECK_FRAMES = 64
MAX_MAGNITUDE = 1e30
"""Largest absolute value accepted: the network and the mappings compute in float32 (largest finite
value 3.4e38), and sums over a frame must not overflow."""


def as_frame_stack(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """A (frames, rows, cols) view of `frames` (no copy) and whether the input was a single 2-D frame.

    Raises InputError for anything the network cannot take: empty, too small, complex, not numeric,
    more than three dimensions, NaN/Inf, entirely constant, or a masked array with masked pixels
    (its mask would be ignored silently).
    """
    if np.ma.isMaskedArray(frames) and np.ma.getmaskarray(frames).any():
        raise InputError(f"frames is a masked array with {int(np.ma.count_masked(frames))} masked pixels, and "
                         "denoise does not use a mask: pass frames.filled(value) (and keep=np.ma.getmaskarray(frames) "
                         "to return those pixels unchanged)")
    arr = np.asarray(frames)
    if np.iscomplexobj(arr):
        raise InputError("complex data is not supported: pass the envelope (magnitude), e.g. np.abs(iq)")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"frames must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise InputError(f"frames must be 2-D (rows, cols) or 3-D (frames, rows, cols); got {arr.ndim}-D "
                         f"shape {arr.shape}. Split 4-D data (e.g. 3-D + time) into 3-D stacks first")
    if arr.size == 0:
        raise InputError(f"frames are empty (shape {arr.shape})")
    single = arr.ndim == 2
    stack = arr[None] if single else arr
    if min(stack.shape[1:]) < MIN_SIDE:
        _check_not_colour(arr)
        raise InputError(f"frames of {stack.shape[1]}×{stack.shape[2]} pixels are too small to denoise "
                         f"(need at least {MIN_SIDE}×{MIN_SIDE})")
    _check_finite(stack)
    lo, hi = float(np.min(stack)), float(np.max(stack))
    if lo == hi:
        raise InputError(f"every pixel has the same value ({stack.flat[0]}): there is no image to denoise")
    if max(abs(lo), abs(hi)) > MAX_MAGNITUDE:
        raise InputError(f"values reach {max(abs(lo), abs(hi)):.3g}, beyond the {MAX_MAGNITUDE:g} the network's float32 "
                         "arithmetic can take; rescale the frames (e.g. to 0..1) first")
    return stack, single


OFFSET_SPAN = 0.5
"""Values that vary by less than this fraction of their magnitude (positive data: a minimum above
half the maximum) are an offset plus an image, such as 1e9 + x. In float32 the offset swallows the
image (1e9 + x, x in 0..255, came back as 2 distinct values), and as an envelope the image spans a
few dB of the 60, so the network's output is magnified into noise (measured on a 96² phantom with
the bundled model, correlation with the result for x alone: 0.88 at an offset of 100, 0.36 at 1000,
0.07 at 10000). No speckle envelope looks like this: Rayleigh amplitudes reach near zero."""
TINY_MAGNITUDE = 1e-30
"""Values all smaller than this (subnormal numbers included) vanish or lose digits in float32."""


@dataclass(frozen=True)
class Rescale:
    """An affine map, computed in float64, from the input's values to 0..1 and back: how values that
    the float32 pipeline cannot resolve (see rescale_for) are denoised instead of coming back flat."""

    offset: float
    span: float

    def forward(self, stack: np.ndarray) -> np.ndarray:
        return (np.asarray(stack, dtype=np.float64) - self.offset) / self.span

    def back(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.span + self.offset


def rescale_for(lo: float, hi: float) -> Rescale | None:
    """The Rescale that values from `lo` to `hi` need, or None where float32 holds them as they are.

    A large offset is removed (the minimum goes to 0, the maximum to 1); values that are all tiny
    are only scaled (0 stays 0, so an envelope keeps its meaning).
    """
    lo, hi = float(lo), float(hi)
    magnitude, span = max(abs(lo), abs(hi)), hi - lo
    if 0 < span < OFFSET_SPAN * magnitude:
        return Rescale(lo, span)
    if 0 < magnitude < TINY_MAGNITUDE:
        return Rescale(0.0, magnitude)
    return None


def _check_not_colour(arr: np.ndarray) -> None:
    """An array whose last axis has 3 or 4 entries is a colour image, not frames that narrow."""
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and min(arr.shape[:2]) >= MIN_SIDE:
        raise InputError(f"an array of shape {arr.shape} is one colour image (rows, cols, "
                         f"{'RGB' if arr.shape[-1] == 3 else 'RGBA'}), not {arr.shape[0]} frames; convert it to grey "
                         "first, e.g. speckle2self.mapping.colour.to_grey(image)[0], or give the file to the file reader")


def _check_finite(stack: np.ndarray) -> None:
    if not np.issubdtype(stack.dtype, np.floating):
        return
    for start in range(0, stack.shape[0], _FINITE_CHECK_FRAMES):
        chunk = stack[start:start + _FINITE_CHECK_FRAMES]
        if not np.isfinite(chunk).all():
            bad = start + int(np.argmax(~np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)))
            raise InputError(f"frame {bad} contains NaN or infinite values; replace them before denoising")


def cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert float results to `dtype`, rounding and clipping for integer types."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)
