"""Graphics a scanner draws inside the image in one flat grey below white: text, depth and focus dots.

White graphics are found by saturation (speckle2self.mapping.saturation). Many scanners draw their
annotations in a fixed grey instead (ALOKA's frame counter is 190 of 255, Philips' depth dots 224),
and inside the scan region the network would smear them into a blurred halo. Such a grey is a
palette value of the display, found once per input on the sampled frames, where
- most of its pixels lie in strokes: at least two of their eight neighbours have exactly the same
  value, and a pixel within two is STEP darker (a hard edge drawn on the tissue), which speckle, a
  different value from pixel to pixel, does not form;
- its count stands out of the histogram, SPIKE times that of any grey within SPIKE_LEVELS levels:
  tissue spreads over neighbouring levels, a drawn colour sits on one;
- and the ground around its pixels is on average STEP darker: text stands on the image, while a
  bright reflector clipped at a display's ceiling below white (a fetal skull) stands on bright tissue.
Each frame's pixels of a palette value with a same-valued neighbour are kept, with a pixel around
them (the anti-aliased rim), as burned-in graphics are: hidden from the network, returned bit for bit.
"""
from __future__ import annotations

import numpy as np

STEP = 0.25
"""A stroke's edge: a neighbour this far below it (grey levels in [0, 1]); speckle in a log display
spreads by about 0.1."""
MIN_STROKE_PX = 12
"""Fewer stroke pixels of one grey than this over the sampled frames are not a palette value."""
STROKE_SHARE = 0.5
SPIKE = 4.0
SPIKE_LEVELS = 2.5 / 255
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def palette_of(grey: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The grey values below white in which graphics are drawn inside `region` of the (N, H, W)
    `grey` frames in [0, 1] (sorted; empty for most scans)."""
    grey = np.asarray(grey, dtype=np.float32)
    inside = np.broadcast_to(region, grey.shape) & (grey < 1.0)
    values, counts = np.unique(grey[inside], return_counts=True)
    candidates = values[counts >= MIN_STROKE_PX]
    if not len(candidates):
        return np.zeros(0, np.float32)
    strokes = np.zeros(len(values), np.int64)
    for frame, mask in zip(grey, inside):
        pixels = frame[_strokes(frame) & mask]
        found, n = np.unique(pixels, return_counts=True)
        strokes[np.searchsorted(values, found)] += n
    lo = np.searchsorted(values, values - SPIKE_LEVELS, side="left")
    hi = np.searchsorted(values, values + SPIKE_LEVELS, side="right")
    chosen = [i for i in range(len(values))
              if strokes[i] >= MIN_STROKE_PX and strokes[i] >= STROKE_SHARE * counts[i]
              and counts[i] >= SPIKE * max([counts[j] for j in range(lo[i], hi[i]) if j != i], default=0)
              and _surroundings(grey, inside, values[i]) <= values[i] - STEP]
    return values[chosen].astype(np.float32)


def _surroundings(grey: np.ndarray, inside: np.ndarray, value: float) -> float:
    """Mean grey within two pixels of the pixels of `value` (themselves left out): text drawn over
    the image stands on darker ground; a bright reflector clipped at a display's ceiling (a skull, a
    phantom's clipped grains) stands on bright tissue."""
    total, count = 0.0, 0
    for frame, mask in zip(grey, inside):
        own = frame == value
        ring = _grown(_grown(own)) & ~own & mask
        total += float(frame[ring].sum(dtype=np.float64))
        count += int(ring.sum())
    return total / max(count, 1)


def palette_graphics(grey: np.ndarray, region: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(N, H, W) mask of the pixels of (N, H, W) `grey` frames drawn in a `palette` grey inside
    `region`, with the pixel ring around them. Costs nothing when the palette is empty."""
    grey = np.asarray(grey, dtype=np.float32)
    out = np.zeros(grey.shape, dtype=bool)
    if not len(palette):
        return out
    for i, frame in enumerate(grey):
        drawn = np.isin(frame, palette) & region
        if not drawn.any():
            continue
        rows, cols = np.nonzero(drawn)
        box = (slice(max(rows.min() - 1, 0), rows.max() + 2), slice(max(cols.min() - 1, 0), cols.max() + 2))
        out[i][box] = _grown(drawn[box] & (_same_neighbours(frame[box]) >= 1)) & region[box]
    return out


def _strokes(frame: np.ndarray) -> np.ndarray:
    """Pixels with two same-valued neighbours, STEP or more above the darkest pixel within two."""
    return (_same_neighbours(frame) >= 2) & (frame - _darkest(_darkest(frame)) >= STEP)


def _darkest(frame: np.ndarray) -> np.ndarray:
    """Minimum over each pixel's 3×3 neighbourhood (edges repeated)."""
    padded = np.pad(frame, 1, mode="edge")
    h, w = frame.shape
    out = frame.copy()
    for dy, dx in _OFFSETS:
        np.minimum(out, padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w], out=out)
    return out


def _same_neighbours(frame: np.ndarray) -> np.ndarray:
    padded = np.pad(frame, 1, mode="constant", constant_values=np.nan)
    h, w = frame.shape
    return sum((padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] == frame).astype(np.int8) for dy, dx in _OFFSETS)


def _grown(mask: np.ndarray) -> np.ndarray:
    """`mask` dilated by one pixel (8-connected)."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    out = mask.copy()
    for dy, dx in _OFFSETS:
        out |= padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    return out
