"""Which saturated pixels of a B-mode frame are burned-in graphics, and which are tissue.

A B-mode display clips at white, and so do the calipers, markers, text and box outlines a scanner
draws over the image. Graphics come back bit for bit and are hidden from the network. Tissue that
clips (the brightest speckle grains of a phantom, a tendon or a pleural line) is denoised with the
tissue around it: kept as it was, it would stay as white sparkles on the smooth output.

A saturated pixel is a graphic where
- it lies in a straight horizontal or vertical run of at least LINE_PX saturated pixels (box
  outlines, caliper arms, dotted lines drawn long), which speckle grains, a few pixels long, do not
  form;
- or at least CLUSTER_PX of its (2 CLUSTER_RADIUS + 1)² neighbours are saturated too (text,
  caliper crosses, thick marks, and clipped areas wider than a speckle grain, where denoising has
  nothing to change), where clipped grains of tissue, one to a few pixels each, lie apart;
- or the unsaturated pixels of its (2 NEIGHBOURHOOD_RADIUS + 1)² neighbourhood are dark (mean below
  TISSUE_MIN_GREY of white): speckle in a log display spreads by about 25 grey levels of 255, so a
  lone white pixel over grey tissue is drawn (a dotted line, a marker dot).
"""
from __future__ import annotations

import numpy as np

from .grain import box_blur

LINE_PX = 12
CLUSTER_RADIUS = 4
CLUSTER_PX = 12
NEIGHBOURHOOD_RADIUS = 3
DENSE_FRACTION = 1 / 64
"""Above this share of a frame saturated outside straight runs (the pixels still to judge),
neighbourhoods are summed over the whole frame at once instead of gathered pixel by pixel."""
TISSUE_MIN_GREY = 0.6
"""Measured on 15 held-out real frames: calipers, markers and text stand over tissue whose 7×7
median is 0-141 grey levels of 255; the clipped speckle grains of phantoms and muscle over 168-252."""


def burned_in(saturated: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """(N, H, W) mask of the `saturated` pixels of (N, H, W) `grey` frames in [0, 1] that are
    graphics drawn over the image (see the module docstring). Where few pixels are saturated only
    their own neighbourhoods are read: a frame with a handful costs well under a millisecond."""
    sat = np.asarray(saturated, dtype=bool)
    out = np.zeros_like(sat)
    for i in np.nonzero(sat.reshape(len(sat), -1).any(axis=1))[0]:
        out[i] = _graphics(sat[i], np.asarray(grey[i], dtype=np.float32))
    return out


def _graphics(sat: np.ndarray, grey: np.ndarray) -> np.ndarray:
    lines = _in_run(sat, LINE_PX) | _in_run(sat.T, LINE_PX).T
    rest = sat & ~lines
    if rest.sum() > DENSE_FRACTION * rest.size:
        side = 2 * CLUSTER_RADIUS + 1
        cluster = _window_means(sat, CLUSTER_RADIUS)[rest] * side ** 2 >= CLUSTER_PX - 0.5
        open_ = ~sat
        share = _window_means(open_, NEIGHBOURHOOD_RADIUS)[rest]
        around = _window_means(np.where(open_, grey, 0.0), NEIGHBOURHOOD_RADIUS)[rest] / np.maximum(share, 1e-6)
    else:
        rows, cols = np.nonzero(rest)
        near, valid = _neighbours(rows, cols, CLUSTER_RADIUS, sat.shape)
        cluster = (sat[near] & valid).sum(axis=1) >= CLUSTER_PX
        near, valid = _neighbours(rows, cols, NEIGHBOURHOOD_RADIUS, sat.shape)
        open_ = ~sat[near] & valid
        around = np.where(open_, grey[near], 0.0).sum(axis=1) / np.maximum(open_.sum(axis=1), 1)
    drawn = cluster | (around < TISSUE_MIN_GREY)
    out = lines.copy()
    out[rest] = drawn
    return out


def _neighbours(rows: np.ndarray, cols: np.ndarray, radius: int,
                shape: tuple[int, int]) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Indices of each pixel's (2 radius + 1)² neighbourhood (clipped to the frame), and which of
    them lie inside it."""
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    rr, cc = rows[:, None] + dy.ravel(), cols[:, None] + dx.ravel()
    valid = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
    return (np.clip(rr, 0, shape[0] - 1), np.clip(cc, 0, shape[1] - 1)), valid


def _window_means(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of x over each pixel's (2 radius + 1)² neighbourhood, zero outside the frame (as the
    sparse path's neighbourhoods count it)."""
    padded = np.pad(np.asarray(x, dtype=np.float32), radius)[None]
    return box_blur(padded, radius)[0, radius:-radius, radius:-radius]


def _in_run(mask: np.ndarray, length: int) -> np.ndarray:
    """Pixels of a (rows, cols) mask inside a run of at least `length` consecutive True along a
    row (only rows holding that many are looked at)."""
    out = np.zeros_like(mask)
    candidates = np.nonzero(mask.sum(axis=1) >= length)[0]
    n = mask.shape[1]
    if not len(candidates) or n < length:
        return out
    m = mask[candidates].astype(np.int32)
    zero = np.zeros((len(m), 1), np.int32)
    counts = np.concatenate([zero, np.cumsum(m, axis=1)], 1)
    full = (counts[:, length:] - counts[:, :-length]) == length  # windows starting at 0..n-length
    starts = np.concatenate([zero, np.cumsum(full, axis=1, dtype=np.int32)], 1)
    idx = np.arange(n)
    lo = np.clip(idx - length + 1, 0, n - length + 1)
    hi = np.clip(idx + 1, 0, n - length + 1)
    out[candidates] = (starts[:, hi] - starts[:, lo]) > 0
    return out
