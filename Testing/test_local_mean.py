"""The local mean of the noisy frame goes back under the network's output where the two differ for
real (a shrunk contrast), and not where the difference is leftover speckle (mottle)."""
import numpy as np
import torch

from speckle2self.mapping.local_mean import keep_local_mean
from speckle2self.training.speckle_noise import log_speckle, psf_for_grain

STRENGTH = 0.09
"""Log speckle's standard deviation in grey levels at a 60 dB display (5.6 dB / 60 dB)."""


def _speckle(shape=(2, 192, 192), seed=0) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    return STRENGTH * log_speckle(shape, psf_for_grain((0.9, 0.9)), gen).numpy()


def _inner(x: np.ndarray) -> np.ndarray:
    return x[:, 16:-16, 16:-16]


def test_leftover_speckle_is_not_added_back_as_mottle():
    denoised = np.full((2, 192, 192), 0.5, np.float32)
    noisy = (denoised + _speckle()).astype(np.float32)
    ungated = denoised + _box2(noisy - denoised)
    gated = keep_local_mean(denoised, noisy, 3)
    assert _inner(gated).std() < 0.6 * _inner(ungated).std()  # measured 0.52 (the coarse band goes back whole)


def test_a_shrunk_cyst_gets_its_contrast_back_through_the_speckle():
    rows, cols = np.indices((192, 192))
    cyst = ((rows - 96) ** 2 + (cols - 96) ** 2 < 30 ** 2)
    clean = np.where(cyst, 0.2, 0.6).astype(np.float32)[None].repeat(2, axis=0)
    noisy = (clean + _speckle(seed=1)).astype(np.float32)
    shrunk = (0.5 + 0.5 * (clean - 0.5)).astype(np.float32)
    out = keep_local_mean(shrunk, noisy, 3)
    inside = out[:, 86:106, 86:106].mean()
    assert abs(inside - 0.2) < 0.02, inside
    assert abs(out[:, 10:40, 10:40].mean() - 0.6) < 0.02


def test_radius_zero_leaves_the_output_alone():
    denoised = np.full((1, 32, 32), 0.5, np.float32)
    assert np.array_equal(keep_local_mean(denoised, denoised + 0.3, 0), denoised)


def _box2(x: np.ndarray) -> np.ndarray:
    from speckle2self.mapping.grain import box_blur
    return box_blur(box_blur(x, 3), 3)
