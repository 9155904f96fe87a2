"""Speckle grain is measured from the image, and decides how the frame is resampled."""
import numpy as np
import pytest

from speckle2self.mapping.grain import grain_size
from speckle2self.mapping.log_mapping import resampling_for


def _speckle(shape, sigma_rows, sigma_cols, seed=0):
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    field = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    env = np.abs(gaussian_filter(field.real, (sigma_rows, sigma_cols)) + 1j * gaussian_filter(field.imag, (sigma_rows, sigma_cols)))
    return 1 + 20 * np.log10(env / env.max()) / 60


def test_a_coarser_grain_measures_larger():
    fine = grain_size(_speckle((256, 256), 0.7, 0.7))
    coarse = grain_size(_speckle((256, 256), 1.4, 1.4))
    assert coarse[0] > 1.4 * fine[0] and coarse[1] > 1.4 * fine[1]


def test_axial_and_lateral_grain_are_told_apart():
    axial, lateral = grain_size(_speckle((256, 256), 0.7, 2.0))
    assert lateral > 1.5 * axial


def test_the_mask_keeps_the_background_out_of_the_measurement():
    img = _speckle((200, 200), 1.5, 1.5)
    mask = np.zeros(img.shape, dtype=bool)
    mask[40:160, 40:160] = True
    framed = np.where(mask, img, 0.0)
    assert grain_size(framed, mask) == pytest.approx(grain_size(img[40:160, 40:160]), rel=0.15)


def test_frames_are_shrunk_to_the_model_grain_but_never_enlarged():
    r = resampling_for((2.4, 3.6), (1.2, 1.2), (400, 600))
    assert r.factors == pytest.approx((0.5, 1 / 3)) and r.size == (200, 200)
    assert resampling_for((0.7, 0.8), (1.2, 1.2), (256, 256)).identity


def test_resampling_is_bounded():
    r = resampling_for((20.0, 20.0), (1.2, 1.2), (256, 256))
    assert min(r.factors) >= 0.25
