"""Real clinical frames from pydicom and pydicom-data, and the measurements made on them.

Every region is chosen on the input alone (the same pixels are then measured on the output), so
a method cannot move the goal posts: the most homogeneous mid-grey tissue window, the darkest
window inside the scan region, and the strongest tissue edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DYNAMIC_RANGE_DB = 60.0
PATCH = 24


def pydicom_data_file(name: str) -> Path | None:
    """A file shipped by the pydicom-data package (installed by the test extra), or None."""
    try:
        import data_store
    except ImportError:
        return None
    path = Path(data_store.__file__).parent / "data" / name
    return path if path.is_file() else None


def real_files() -> dict[str, Path]:
    from dicom_examples import pydicom_file
    echo = pydicom_file("examples_ybr_color.dcm")  # pydicom 3's; under pydicom 2.4 a copy (see dicom_examples)
    files = {"sonosite_echo_cine": echo} if echo is not None else {}
    for key, name in (("philips_echo", "JPGLosslessP14SV1_1s_1f_8b.dcm"), ("ge_doppler", "US1_UNCR.dcm"),
                      ("aloka", "gdcm-US-ALOKA-16.dcm"), ("sonosite_cine_120", "color3d_jpeg_baseline.dcm")):
        path = pydicom_data_file(name)
        if path is not None:
            files[key] = path
    return files


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(x.astype(np.float64), sigma)


def _window_stats(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import uniform_filter
    mean = uniform_filter(x.astype(np.float64), size)
    var = np.maximum(uniform_filter(x.astype(np.float64) ** 2, size) - mean ** 2, 0)
    return mean, np.sqrt(var)


@dataclass
class Areas:
    tissue: tuple[slice, slice]
    dark: tuple[slice, slice]
    edge: tuple[int, int, int]  # row, col, axis (0: profile along rows)


def choose_areas(frame: np.ndarray, region: np.ndarray) -> Areas:
    """Homogeneous tissue, dark region and edge of one input frame, inside its scan region."""
    from scipy.ndimage import binary_erosion
    inner = binary_erosion(region & ~(frame >= 250), iterations=PATCH)
    smooth_mean, smooth_std = _window_stats(_blur(frame, 3.0), PATCH)
    mean, _ = _window_stats(frame, PATCH)
    tissue_score = np.where(inner & (mean > 40) & (mean < 200), smooth_std / np.maximum(smooth_mean, 1), np.inf)
    dark_score = np.where(inner, mean, np.inf)
    t = np.unravel_index(np.argmin(tissue_score), frame.shape)
    d = np.unravel_index(np.argmin(dark_score), frame.shape)
    g = _blur(frame, 4.0)
    gr, gc = np.gradient(g)
    magnitude = np.where(binary_erosion(region, iterations=30), np.hypot(gr, gc), 0)
    e = np.unravel_index(np.argmax(magnitude), frame.shape)
    axis = 0 if abs(gr[e]) >= abs(gc[e]) else 1
    half = PATCH // 2
    return Areas((slice(t[0] - half, t[0] + half), slice(t[1] - half, t[1] + half)),
                 (slice(d[0] - half, d[0] + half), slice(d[1] - half, d[1] + half)), (int(e[0]), int(e[1]), axis))


def speckle_snr(frame: np.ndarray, areas: Areas) -> float:
    return patch_snr(frame[areas.tissue])


def patch_snr(patch: np.ndarray) -> float:
    """Mean over standard deviation of a patch."""
    patch = patch.astype(np.float64)
    return float(patch.mean() / max(patch.std(), 1e-9))


def tissue_mean(frame: np.ndarray, areas: Areas) -> float:
    return float(frame[areas.tissue].astype(np.float64).mean())


def contrast_db(frame: np.ndarray, areas: Areas) -> float:
    """Tissue minus dark region, in dB of a DYNAMIC_RANGE_DB display map."""
    f = frame.astype(np.float64)
    return float((f[areas.tissue].mean() - f[areas.dark].mean()) / 255.0 * DYNAMIC_RANGE_DB)


def rise_distance(frame: np.ndarray, areas: Areas, half_length: int = 20, width: int = 5) -> float:
    """10-90 % rise distance (pixels) of the edge profile, averaged over 2·width+1 parallel lines."""
    r, c, axis = areas.edge
    f = frame.astype(np.float64)
    if axis == 0:
        profile = f[r - half_length:r + half_length + 1, c - width:c + width + 1].mean(axis=1)
    else:
        profile = f[r - width:r + width + 1, c - half_length:c + half_length + 1].mean(axis=0)
    profile = profile if profile[-6:].mean() >= profile[:6].mean() else profile[::-1]
    low, high = profile[:6].mean(), profile[-6:].mean()
    levels = low + np.array([0.1, 0.9]) * (high - low)
    crossings = [_crossing(profile, level) for level in levels]
    return crossings[1] - crossings[0] if None not in crossings else float(len(profile))


def _crossing(profile: np.ndarray, level: float) -> float | None:
    """Sub-pixel position where the profile first reaches `level` (linear interpolation)."""
    above = np.nonzero(profile >= level)[0]
    if above.size == 0:
        return None
    k = int(above[0])
    if k == 0:
        return 0.0
    a, b = profile[k - 1], profile[k]
    return float(k - 1 + (level - a) / max(b - a, 1e-12))


def pepper(frame: np.ndarray, region: np.ndarray, colour: np.ndarray | None = None) -> float:
    """Fraction of the scan region that is black (≤ 12 of 255) amid tissue (15×15 mean ≥ 25).

    The mean is over grey tissue only: bright Doppler colour next to a dark lumen is not tissue, nor
    are graphics (pass them with the colour: see drawn_graphics), whose own black background would
    count as holes beside bright text.
    """
    from scipy.ndimage import uniform_filter
    f = frame.astype(np.float64)
    tissue = region & (~colour if colour is not None else True)
    local = uniform_filter(f * tissue, 15) / np.maximum(uniform_filter(tissue.astype(np.float64), 15), 1e-6)
    holes = (f <= 12) & (local >= 25) & tissue
    return float(holes.sum() / max(tissue.sum(), 1))


def drawn_graphics(frame: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The graphics drawn over an 8-bit frame inside `region` (white marks, and text or dots in one
    flat grey) as the engine finds them and returns them bit for bit."""
    from speckle2self.mapping.log_mapping import drawn_graphics
    from speckle2self.mapping.palette_graphics import palette_of
    grey = frame[None].astype(np.float32) / 255.0
    return drawn_graphics(grey, region, palette_of(grey, region))[0]


def median7(frame: np.ndarray) -> np.ndarray:
    from scipy.ndimage import median_filter
    return median_filter(frame, size=7)


# The two real-scan measures of the quality issue (#22), on 8-bit grey frames. Regions are chosen on
# the input only and the same pixels are measured on the output.

GAIN_WINDOW = 32
GAIN_WINDOWS = 3
EDGE_TOP_FRACTION = 0.01
MEASURE_MARGIN = 6
"""Pixels the scan region is eroded by, so the border of the field of view is not an 'edge'."""


def homogeneous_windows(frame: np.ndarray, region: np.ndarray, count: int = GAIN_WINDOWS,
                        size: int = GAIN_WINDOW) -> list[tuple[slice, slice]]:
    """The `count` non-overlapping size² windows inside the region whose 9×9 median has the lowest
    coefficient of variation, among windows of mean grey 30-200."""
    from scipy.ndimage import binary_erosion, median_filter
    f = frame.astype(np.float64)
    med = median_filter(f, size=9)
    inner = binary_erosion(region, iterations=2)
    m, s = _window_stats(med, size)
    mean, _ = _window_stats(f, size)
    whole = _window_stats(inner.astype(np.float64), size)[0] > 0.999
    score = np.where(whole & (mean >= 30) & (mean <= 200), s / np.maximum(m, 1e-6), np.inf)
    half = size // 2
    score[:half, :] = score[-half:, :] = np.inf
    score[:, :half] = score[:, -half:] = np.inf
    chosen: list[tuple[slice, slice]] = []
    for flat in np.argsort(score, axis=None):
        if not np.isfinite(score.flat[flat]) or len(chosen) == count:
            break
        r, c = np.unravel_index(flat, score.shape)
        box = (slice(r - half, r - half + size), slice(c - half, c - half + size))
        if all(abs(r - (b[0].start + half)) >= size or abs(c - (b[1].start + half)) >= size for b in chosen):
            chosen.append(box)
    return chosen


def gain_region(frame: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Where gain windows may lie: the region less its saturated-white pixels.

    Burned-in graphics (calipers, a Doppler box outline) are among them, and the engine keeps
    those bit for bit (speckle2self.mapping.saturation): a window crossed by one measures whether
    a method erases the graphic, not how much speckle it removes, and its 9×9 median hides a 1-px
    line, so it still looks homogeneous to the selection rule. Chosen on the input alone, without
    the engine's rule, so the windows are the same for every method.
    """
    top = np.iinfo(frame.dtype).max if np.issubdtype(frame.dtype, np.integer) else 255.0
    return region & (frame < top)


def speckle_snr_gain(frame: np.ndarray, out: np.ndarray, windows: list[tuple[slice, slice]]) -> float:
    """Median over the windows of output SNR / input SNR (mean / std)."""
    return float(np.median([patch_snr(out[w]) / patch_snr(frame[w]) for w in windows]))


def brightness_change(frame: np.ndarray, out: np.ndarray, windows: list[tuple[slice, slice]]) -> float:
    """Largest relative change of the mean grey level over the windows."""
    return float(max(abs(out[w].astype(np.float64).mean() / max(frame[w].astype(np.float64).mean(), 1e-9) - 1)
                     for w in windows))


def gradient_magnitude(frame: np.ndarray) -> np.ndarray:
    """Sobel magnitude after a Gaussian of σ = 1 px."""
    from scipy.ndimage import gaussian_filter, sobel
    g = gaussian_filter(frame.astype(np.float64), 1.0)
    return np.hypot(sobel(g, axis=0), sobel(g, axis=1))


def strongest_edges(frame: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The top 1 % of the input's 7×7-median gradient magnitude inside the (eroded) scan region."""
    from scipy.ndimage import binary_erosion
    inner = binary_erosion(region, iterations=MEASURE_MARGIN)
    magnitude = gradient_magnitude(median7(frame))
    return inner & (magnitude >= np.quantile(magnitude[inner], 1.0 - EDGE_TOP_FRACTION))


def edge_sharpness(frame: np.ndarray, out: np.ndarray, edges: np.ndarray) -> float:
    """Output's mean gradient magnitude on the edges over the 7×7 median's (1.0 = as sharp as it)."""
    return float(gradient_magnitude(out)[edges].mean() / max(gradient_magnitude(median7(frame))[edges].mean(), 1e-9))
