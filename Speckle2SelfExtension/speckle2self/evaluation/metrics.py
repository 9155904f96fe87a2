"""Image-quality figures, defined once for tests, benchmarks and the demo (design.md §4)."""
from __future__ import annotations

import numpy as np


def minmax(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def clip_extremes(image: np.ndarray, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """The image clipped to its own 0.1th..99.9th percentiles, before PSNR or SSIM: a point target
    tens of dB above the tissue would otherwise make min-max put all of the tissue near zero, and a
    few black speckle nulls would decide where zero is."""
    x = np.asarray(image, dtype=np.float64)
    return np.clip(x, *np.percentile(x, [low, high]))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of min-max normalised images (data range 1)."""
    mse = float(np.mean((minmax(reference) - minmax(test)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over size×size windows (valid part only), by cumulative sums."""
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), axis=0), axis=1)
    s = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    return s / (size * size)


def ssim(reference: np.ndarray, test: np.ndarray, window: int = 7) -> float:
    """Mean SSIM (Wang et al. 2004) of min-max normalised images, 7×7 uniform window, data range 1."""
    x, y = minmax(reference), minmax(test)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    n = window * window
    cov = n / (n - 1)
    mx, my = _box_mean(x, window), _box_mean(y, window)
    vx = cov * (_box_mean(x * x, window) - mx * mx)
    vy = cov * (_box_mean(y * y, window) - my * my)
    vxy = cov * (_box_mean(x * y, window) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def speckle_snr(region: np.ndarray) -> float:
    """Mean / standard deviation of a homogeneous region (1.91 for fully developed Rayleigh speckle)."""
    r = np.asarray(region, dtype=np.float64)
    return float(r.mean() / r.std()) if r.std() > 0 else float("inf")


def cnr(region_a: np.ndarray, region_b: np.ndarray) -> float:
    a, b = np.asarray(region_a, dtype=np.float64), np.asarray(region_b, dtype=np.float64)
    return float(abs(a.mean() - b.mean()) / np.sqrt(a.var() + b.var()))


def gcnr(region_a: np.ndarray, region_b: np.ndarray, bins: int = 256) -> float:
    """Generalised CNR: 1 - overlap of the two regions' intensity histograms (0 = inseparable, 1 = disjoint)."""
    a, b = np.ravel(region_a).astype(np.float64), np.ravel(region_b).astype(np.float64)
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()) + 1e-12, bins + 1)
    ha = np.histogram(a, edges)[0] / a.size
    hb = np.histogram(b, edges)[0] / b.size
    return float(1.0 - np.minimum(ha, hb).sum())


def glcm_homogeneity(region: np.ndarray, value_range: tuple[float, float] | None = None) -> float:
    """GLCM homogeneity of a region quantised to 8 bits, distance 1, angles 0, π/4, π/2, 3π/4
    averaged (scikit-image, an optional dependency: pip install "speckle2self[bench]").

    `value_range` is the (low, high) of the whole image's 8-bit scale, so that a region is judged
    as it is displayed; without it the region is min-max scaled on its own, which stretches the
    faint ripple left in a nearly flat region to the full 8 bits and scores it as rough.
    """
    from skimage.feature import graycomatrix, graycoprops
    if value_range is None:
        scaled = minmax(region)
    else:
        lo, hi = value_range
        scaled = np.clip((np.asarray(region, dtype=np.float64) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    grey = np.rint(scaled * 255).astype(np.uint8)
    glcm = graycomatrix(grey, distances=[1], angles=[0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=256,
                        symmetric=True, normed=True)
    return float(graycoprops(glcm, "homogeneity").mean())
