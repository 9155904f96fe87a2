"""Colour to grey, one rule for files and Slicer volumes alike.

ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B (the weights DICOM's YBR uses). A fourth
(alpha) channel is ignored; a 2-channel image is grey + alpha and keeps its first channel.
Which pixels carry colour (Doppler, coloured markers, kept as they are) is judged against the
display's grey map, which some scanners tint (sepia, blue): see display_tint.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

LUMA = np.array([0.299, 0.587, 0.114])
RGB_NOTE = "converted RGB to grey (0.299 R + 0.587 G + 0.114 B)"


def to_grey(pixels: np.ndarray) -> tuple[np.ndarray, str]:
    """Grey image of `pixels` (components on the last axis) in the same dtype, and a note saying how."""
    comps = pixels.shape[-1]
    if comps in (3, 4):
        grey, note = pixels[..., :3].astype(np.float64) @ LUMA, RGB_NOTE
    elif comps == 2:
        grey, note = pixels[..., 0].astype(np.float64), "used the first channel of a 2-channel (grey + alpha) image"
    elif comps == 1:
        return pixels[..., 0], "used the single component"
    else:
        raise InputError(f"images with {comps} components per pixel are not supported")
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        grey = np.clip(np.rint(grey), info.min, info.max)
    return grey.astype(pixels.dtype), note


TINT_SHARE = 0.5
"""A display map is tinted (its grey levels shown sepia, blue, ...) when at least this share of the
image's mid-grey pixels have channels that differ: Doppler boxes and markers cover a minority."""
TINT_FIT = 0.8
"""... and when its per-grey-level colour explains at least this share of them (else it is not one map)."""
MID_GREY = (48, 240)
SMOOTH_LEVELS = 4


def display_tint(rgb: np.ndarray, luma: np.ndarray, tolerance: int) -> np.ndarray | None:
    """(256, 3) int16 in 0..255: the colour a tinted display gives each grey level (luma), or None for a
    grey display. Without it every tissue pixel of a tinted image would count as colour, kept as
    it is and never denoised."""
    step = max(1, int(np.sqrt(luma.size / 2e6)))
    rgb, luma = rgb[..., ::step, ::step, :3].reshape(-1, 3), luma[..., ::step, ::step].reshape(-1)
    mid = (luma >= MID_GREY[0]) & (luma <= MID_GREY[1])
    if not mid.any() or (_channel_spread(rgb[mid]) > tolerance).mean() < TINT_SHARE:
        return None
    curve = _median_colour_per_level(rgb, luma)
    fit = np.abs(rgb[mid].astype(np.int16) - curve[luma[mid]]).max(axis=1) <= tolerance
    return curve if fit.mean() >= TINT_FIT else None


def colour_pixels(rgb: np.ndarray, luma: np.ndarray, tolerance: int, tint: np.ndarray | None = None) -> np.ndarray:
    """Mask of the pixels that carry colour (Doppler, coloured markers): channels that differ by more
    than `tolerance`, or on a tinted display, a colour more than `tolerance` away from its grey level's."""
    if tint is None:
        return _channel_spread(rgb[..., :3]) > tolerance
    return np.abs(rgb[..., :3].astype(np.int16) - tint[luma]).max(axis=-1) > tolerance


def _channel_spread(rgb: np.ndarray) -> np.ndarray:
    return rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)


def _median_colour_per_level(rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Each grey level's median colour (levels without pixels take their nearest level's), smoothed
    over ±SMOOTH_LEVELS levels."""
    order = np.argsort(luma, kind="stable")
    levels, starts = np.unique(luma[order], return_index=True)
    medians = np.stack([np.median(part, axis=0) for part in np.split(rgb[order], starts[1:])])
    every = np.arange(256)
    curve = np.stack([np.interp(every, levels.astype(np.float64), medians[:, c]) for c in range(3)], axis=1)
    padded = np.pad(curve, ((SMOOTH_LEVELS, SMOOTH_LEVELS), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * SMOOTH_LEVELS + 1, axis=0)
    return np.rint(np.median(windows, axis=-1)).astype(np.int16)
