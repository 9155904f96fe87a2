"""The scan region of a B-mode image: the ultrasound field of view (sector, linear or curved).

Everything inside it is tissue and is denoised, anechoic cysts, vessel lumens and acoustic shadows
included; everything outside it (the black around a sector, burned-in text, toolbars, ECG traces,
colour bars, depth scales) keeps its input values bit for bit. The region is a property of the
acquisition, not of each pixel's grey level, so it is found once per image or cine:
  1. content: pixels brighter than BACKGROUND_GREY in any of the sampled frames, or that change
     over time (a cine's tissue moves, its annotations do not);
  2. the field of view: the largest connected content region, closed over CLOSING_PX pixels so
     dark speckle grains and thin shadows do not split it, plus any other region of at least
     MIN_REGION_FRACTION of the frame;
  3. its dark interior: filled along rows and then along columns between the region's own pixels,
     so a shadow or a lumen that reaches the edge of the field of view is still inside; but not
     the notch above a curved array's face (above the first content pixel of a column, between
     content pixels of a row).
A DICOM Sequence of Ultrasound Regions, where a file has one, bounds the region too.
"""
from __future__ import annotations

import numpy as np

BACKGROUND_GREY = 0.02
"""Grey level (fraction of black..white) below which a pixel that never changes is background."""

MOTION_GREY = 2.0 / 255.0
"""A pixel whose grey level varies over a cine by more than this (std) belongs to the image."""

OPENING_PX = 3
CLOSING_PX = 4
MIN_REGION_FRACTION = 0.1
MAX_HULL_GROWTH = 1.15
"""Sectors, linear and curved fields of view are (nearly) convex: where the convex hull of the
region adds at most this fraction, the hull is the region, so dark tissue at the far corners of a
sector that is black in every frame is still inside. A markedly non-convex region keeps its shape."""
SAMPLE_FRAMES = 64


def sampled_frames(count: int, most: int = SAMPLE_FRAMES) -> np.ndarray:
    """Indices of at most `most` frames spread evenly over a cine of `count` frames."""
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(int))


def scan_region(grey: np.ndarray, bounds: np.ndarray | None = None) -> np.ndarray:
    """(rows, cols) mask of the field of view of a (frames, rows, cols) grey stack in [0, 1].

    `bounds`, if given, is a (rows, cols) mask the region must lie within (a DICOM file's
    ultrasound regions).
    """
    frames = np.asarray(grey, dtype=np.float32)
    content = frames.max(axis=0) > BACKGROUND_GREY
    if frames.shape[0] >= 3:
        content |= _std_over_frames(frames) > MOTION_GREY
    if bounds is not None:
        content &= bounds
    if not content.any():
        return content
    core = _largest_regions(_open_close(content))
    if not core.any():
        core = _largest_regions(content)
    region = _fill_columns(_fill_rows(core))
    hull = convex_hull(region)
    if hull.sum() <= MAX_HULL_GROWTH * region.sum():
        region = hull
    region |= _grown(region, OPENING_PX + 1) & content
    region &= ~_above_probe_face(region & content)
    return region & bounds if bounds is not None else region


def _above_probe_face(content: np.ndarray) -> np.ndarray:
    """Pixels above the first content pixel of their column and between content pixels of their
    row: the notch a curved array's face leaves at the top of its fan, where nothing is imaged. The
    row and column fills (and the hull) take it in; denoised as tissue, it would blur the near-field
    border and darken the tissue under it."""
    rows = np.arange(content.shape[0])[:, None]
    above = content.any(axis=0)[None, :] & (rows < np.argmax(content, axis=0)[None, :])
    return above & _fill_rows(content)


def _std_over_frames(frames: np.ndarray, rows: int = 32) -> np.ndarray:
    """frames.std(axis=0), a band of rows at a time: the same numbers without a temporary the size
    of the whole sample (64 frames of 512² are 64 MiB)."""
    out = np.empty(frames.shape[1:], dtype=frames.dtype)
    for start in range(0, frames.shape[1], rows):
        out[start:start + rows] = frames[:, start:start + rows].std(axis=0)
    return out


def _open_close(content: np.ndarray) -> np.ndarray:
    """Thin strokes removed (text, scale ticks, lines joining annotations to the image), gaps closed."""
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(content.astype(np.uint8))
    opened = sitk.BinaryMorphologicalOpening(image, [OPENING_PX, OPENING_PX])
    return sitk.GetArrayFromImage(sitk.BinaryMorphologicalClosing(opened, [CLOSING_PX, CLOSING_PX])).astype(bool)


def _largest_regions(mask: np.ndarray) -> np.ndarray:
    """The largest connected region of `mask`, and any other of at least MIN_REGION_FRACTION."""
    import SimpleITK as sitk
    labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), False))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    if sizes.size == 1:
        return np.zeros_like(mask)
    keep = (sizes >= MIN_REGION_FRACTION * mask.size) | (np.arange(sizes.size) == np.argmax(sizes))
    keep[0] = False
    return keep[labels]


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    import SimpleITK as sitk
    image = sitk.BinaryDilate(sitk.GetImageFromArray(mask.astype(np.uint8)), [radius, radius])
    return sitk.GetArrayFromImage(image).astype(bool)


def _fill_rows(mask: np.ndarray) -> np.ndarray:
    """Every pixel between a row's first and last pixel of `mask`."""
    cols = np.arange(mask.shape[1])
    has = mask.any(axis=1)
    first = np.argmax(mask, axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return has[:, None] & (cols[None, :] >= first[:, None]) & (cols[None, :] <= last[:, None])


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """The filled convex hull of a mask's pixels."""
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size < 2:
        return mask.copy()
    first = np.argmax(mask[rows], axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[rows, ::-1], axis=1)
    left = _chain(np.r_[rows, rows], np.r_[first, last], lambda cross: cross <= 0)
    right = _chain(np.r_[rows, rows], np.r_[first, last], lambda cross: cross >= 0)
    y = np.arange(mask.shape[0])
    lo = np.interp(y, left[:, 0], left[:, 1])
    hi = np.interp(y, right[:, 0], right[:, 1])
    inside_rows = (y >= rows[0]) & (y <= rows[-1])
    cols = np.arange(mask.shape[1])
    return inside_rows[:, None] & (cols >= np.floor(lo + 1e-6)[:, None] - 0) & (cols <= np.ceil(hi - 1e-6)[:, None])


def _chain(ys: np.ndarray, xs: np.ndarray, drop) -> np.ndarray:
    """One side of Andrew's monotone chain over points ordered by row: the left or the right boundary."""
    order = np.lexsort((xs, ys))
    chain: list[tuple[int, int]] = []
    for y, x in zip(ys[order], xs[order]):
        while len(chain) >= 2:
            (y1, x1), (y2, x2) = chain[-2], chain[-1]
            if drop((y2 - y1) * (x - x1) - (x2 - x1) * (y - y1)):
                chain.pop()
            else:
                break
        chain.append((int(y), int(x)))
    return np.array(chain, dtype=np.float64)


def _fill_columns(mask: np.ndarray) -> np.ndarray:
    return _fill_rows(mask.T).T


def nearest_inside(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the (row, col) of the nearest pixel inside `region`.

    Used to extend the tissue over the background before the network and any resampling see it,
    so the black around a sector is not smoothed into the tissue at its edge.
    """
    if region.all() or not region.any():
        rows, cols = np.indices(region.shape)
        return rows, cols
    return _nearest_by_sweep(region)


def _nearest_by_sweep(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest inside pixel along rows first, then columns (a fast, separable approximation).

    Rows without an inside pixel take the nearest row that has one (the upper one on a tie).
    """
    h, w = region.shape
    src_c = _row_sweep(region)
    has_row = region.any(axis=1)
    all_rows = np.arange(h, dtype=np.int32)
    if has_row.all():
        return np.broadcast_to(all_rows[:, None], (h, w)).copy(), src_c
    rows_with = np.nonzero(has_row)[0]
    pos = np.clip(np.searchsorted(rows_with, all_rows), 1, rows_with.size) - 1
    nxt = np.minimum(pos + 1, rows_with.size - 1)
    near_row = np.where(np.abs(rows_with[nxt] - all_rows) < np.abs(rows_with[pos] - all_rows), rows_with[nxt],
                        rows_with[pos])
    src_r = np.where(has_row, all_rows, near_row).astype(np.int32)
    return np.broadcast_to(src_r[:, None], (h, w)).copy(), src_c[src_r]


def _row_sweep(mask: np.ndarray) -> np.ndarray:
    """Per row, the column of the nearest `mask` pixel (the left one on a tie), vectorised: the last
    mask column at or left of each pixel and the first at or right of it are running maxima and
    minima. Rows without a mask pixel give meaningless columns (the callers never use them)."""
    w = mask.shape[1]
    cols = np.arange(w, dtype=np.int32)
    left = np.maximum.accumulate(np.where(mask, cols, np.int32(-1)), axis=1)
    right = np.minimum.accumulate(np.where(mask[:, ::-1], cols[::-1], np.int32(w)), axis=1)[:, ::-1]
    use_right = (left < 0) | ((right < w) & (right - cols < cols - left))
    return np.where(use_right, right, left)


def nearest_inside_without(region: np.ndarray, fill: tuple[np.ndarray, np.ndarray],
                           hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nearest_inside(region & ~hidden), given fill = nearest_inside(region).

    Per frame, markers and saturated pixels inside the image are hidden from the network; they
    cover a few rows, so only the rows that hold them (and the rows filled from those) are swept
    again. The result is the same as sweeping the whole frame.
    """
    changed = np.nonzero((hidden & region).any(axis=1))[0]
    if changed.size == 0:
        return fill
    inside = region & ~hidden
    if not inside[changed].any(axis=1).all():
        return nearest_inside(inside)  # a row lost all its pixels: the column pass changes too
    src_rows = fill[0][:, 0]
    affected = np.isin(src_rows, changed)
    swept = _row_sweep(inside[changed])
    cols = fill[1].copy()
    cols[affected] = swept[np.searchsorted(changed, src_rows[affected])]
    return fill[0], cols
