"""Saturated B-mode pixels: graphics drawn over the image are kept, clipped tissue is denoised."""
import numpy as np

from speckle2self.inference.api import denoise
from speckle2self.mapping.saturation import burned_in


def _tissue(level: float, seed: int = 0, size=(96, 96)) -> np.ndarray:
    """Grey levels in [0, 1]: log-compressed Rayleigh speckle about `level` (spread ~25/255)."""
    rng = np.random.default_rng(seed)
    return np.clip(level + 0.1 * np.log(rng.rayleigh(1.0, size) / 1.25), 0.0, 1.0)


def _graphics(grey: np.ndarray) -> np.ndarray:
    return burned_in((grey >= 1.0)[None], grey[None].astype(np.float32))[0]


def test_clipped_speckle_grains_of_bright_tissue_are_not_graphics():
    grey = _tissue(0.92)
    assert (grey >= 1.0).sum() > 20
    assert not _graphics(grey).any()


def test_a_thin_line_over_bright_tissue_is_a_graphic():
    grey = _tissue(0.92)
    grey[40, 10:70] = 1.0
    assert _graphics(grey)[40, 10:70].all()


def test_a_caliper_cross_and_a_dot_over_grey_tissue_are_graphics():
    grey = np.minimum(_tissue(0.45), 0.99)
    grey[30, 26:35] = grey[26:35, 30] = 1.0
    grey[60, 60] = 1.0
    graphics = _graphics(grey)
    assert graphics[30, 26:35].all() and graphics[26:35, 30].all() and graphics[60, 60]
    assert graphics.sum() == 18


def test_a_clipped_area_wider_than_a_grain_is_kept():
    grey = _tissue(0.92)
    grey[20:40, 20:40] = 1.0
    assert _graphics(grey)[20:40, 20:40].all()


def test_clipped_grains_come_back_denoised_not_as_white_sparkles(tiny_model):
    frame = np.zeros((128, 128), np.uint8)
    frame[8:120, 8:120] = np.rint(255 * _tissue(0.92, seed=2, size=(112, 112))).astype(np.uint8)
    frame[60, 20:100] = 255  # and a line drawn over it
    out = denoise(frame, model=tiny_model, device="cpu")
    grains = (frame == 255)
    grains[60] = False
    assert grains.sum() > 20
    assert (out[grains] < 255).mean() > 0.9
    assert (out[60, 20:100] == 255).all()


def test_a_heavily_clipped_frame_is_judged_as_a_lightly_clipped_one_would_be(monkeypatch):
    from speckle2self.mapping import saturation
    grey = _tissue(0.97, seed=3, size=(128, 128))
    grey[64, 10:100] = grey[5:60, 20] = 1.0
    grey[100:104, 100:104] = 1.0
    sat = (grey >= 1.0)[None]
    assert sat.mean() > saturation.DENSE_FRACTION
    dense = burned_in(sat, grey[None].astype(np.float32))
    monkeypatch.setattr(saturation, "DENSE_FRACTION", 1.0)
    sparse = burned_in(sat, grey[None].astype(np.float32))
    assert np.array_equal(dense, sparse)
    assert dense[0, 64, 10:100].all() and 0 < dense.sum() < sat.sum()
