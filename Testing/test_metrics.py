"""Metric definitions (design.md §4) on cases with known answers."""
import numpy as np
import pytest

from speckle2self.evaluation.metrics import cnr, gcnr, glcm_homogeneity, psnr, speckle_snr, ssim


def test_identical_images_score_perfectly():
    img = np.random.default_rng(0).random((32, 32))
    assert ssim(img, img) == pytest.approx(1.0) and psnr(img, img) == float("inf")


def test_psnr_of_a_known_error():
    ref = np.zeros((10, 10))
    ref[0, 0] = 1.0
    test = ref.copy()
    test[5, 5] = 0.1  # mse = 0.01 / 100
    assert psnr(ref, test) == pytest.approx(40.0)


def test_rayleigh_speckle_snr_is_1_91():
    rng = np.random.default_rng(1)
    env = np.abs(rng.standard_normal(200000) + 1j * rng.standard_normal(200000))
    assert speckle_snr(env) == pytest.approx(1.91, abs=0.02)


def test_contrast_measures_separate_and_overlapping_regions():
    a, b = np.full(100, 1.0), np.full(100, 3.0)
    assert gcnr(a, b) == pytest.approx(1.0) and gcnr(a, a) == pytest.approx(0.0)
    assert cnr(a + np.r_[0, 1] .repeat(50), b) == pytest.approx(1.5 / np.sqrt(0.25), rel=1e-6)


def test_glcm_homogeneity_is_higher_for_smooth_than_for_noisy_regions():
    rng = np.random.default_rng(2)
    smooth = np.tile(np.linspace(0, 1, 64), (64, 1))
    assert glcm_homogeneity(smooth) > 10 * glcm_homogeneity(rng.random((64, 64)))


def test_glcm_homogeneity_on_the_image_scale_rewards_flattening_that_region_minmax_punishes():
    rng = np.random.default_rng(1)
    speckled = 0.5 + 0.1 * rng.standard_normal((32, 32))
    nearly_flat = 0.5 + 0.002 * rng.standard_normal((32, 32))  # what a strong despeckler leaves
    image_scale = (0.0, 1.0)
    assert glcm_homogeneity(nearly_flat, image_scale) > 3 * glcm_homogeneity(speckled, image_scale)
    assert glcm_homogeneity(nearly_flat) < 2 * glcm_homogeneity(speckled)  # per-region min-max cannot tell


def test_clip_extremes_keeps_a_point_target_from_deciding_the_scale():
    from speckle2self.evaluation.metrics import clip_extremes
    rng = np.random.default_rng(4)
    clean = np.ones((64, 64))
    clean[:, 32:] = 2.0
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    marked = noisy.copy()
    marked[5, 5] = 100.0
    assert psnr(clean, marked) < psnr(clean, noisy) - 8  # min-max alone: one pixel ruins it
    assert abs(psnr(clip_extremes(clean), clip_extremes(marked)) - psnr(clip_extremes(clean), clip_extremes(noisy))) < 0.5
