"""The edge term: near strong edges the full-resolution output follows a 7×7 median, neither softer
nor overshooting."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, median_filter as scipy_median

import real_frames as rf
from speckle2self.training.losses import (LossWeights, edge_term, gradient_magnitude, median_filter,
                                          speckle2self_loss)
from speckle2self.training.speckle_noise import log_speckle

SIDE = 96


def _batch(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32).view(1, 1, *a.shape)


def _speckle(strength=0.06, seed=0) -> np.ndarray:
    return strength * log_speckle((SIDE, SIDE), (1.0, 1.0), torch.Generator().manual_seed(seed)).numpy()


def _step_edge() -> np.ndarray:
    """A vertical boundary between tissue at grey 0.3 and 0.7."""
    clean = np.full((SIDE, SIDE), 0.3, np.float32)
    clean[:, SIDE // 2:] = 0.7
    return clean


def test_the_operators_are_the_real_scan_benchmarks():
    x = np.random.default_rng(0).random((SIDE, SIDE))
    inner = (slice(6, -6), slice(6, -6))
    assert np.allclose(gradient_magnitude(_batch(x)).numpy()[0, 0][inner], rf.gradient_magnitude(x)[inner], atol=1e-5)
    assert np.allclose(median_filter(_batch(x), 7).numpy()[0, 0][inner], scipy_median(x, 7)[inner], atol=1e-6)


def _halo(edge: np.ndarray) -> np.ndarray:
    """The edge sharpened by unsharp masking: a dark band before it and a bright one after."""
    return edge + 1.5 * (edge - gaussian_filter(edge, 2.0))


def test_a_blurred_edge_and_a_haloed_edge_are_penalised_and_a_clean_edge_is_not():
    noisy = _batch(_step_edge() + _speckle())
    clean = float(edge_term(_batch(_step_edge()), noisy, 0.03))
    assert float(edge_term(_batch(gaussian_filter(_step_edge(), 3.0)), noisy, 0.03)) > 2 * clean
    assert float(edge_term(_batch(_halo(_step_edge())), noisy, 0.03)) > 2 * clean


@pytest.mark.parametrize("psf", [(1.0, 1.0), (2.0, 4.0), (3.0, 7.0)])
def test_plain_tissue_has_no_edge_to_keep_so_smoothing_its_speckle_costs_nothing(psf):
    noisy = 0.5 + 0.06 * log_speckle((SIDE, SIDE), psf, torch.Generator().manual_seed(1)).numpy()
    assert float(edge_term(_batch(np.full_like(noisy, 0.5)), _batch(noisy), 0.03)) == 0.0


def test_the_edge_term_enters_the_loss_only_when_weighted():
    noisy, blurred = _batch(_step_edge() + _speckle()), _batch(gaussian_filter(_step_edge(), 3.0))
    plain_total, plain = speckle2self_loss([blurred], [noisy], LossWeights())
    total, terms = speckle2self_loss([blurred], [noisy], LossWeights(edge=2.0))
    assert "edge" not in plain
    assert terms["edge"] == pytest.approx(float(edge_term(blurred, noisy, 0.03)))
    assert float(total) == pytest.approx(float(plain_total) + 2.0 * terms["edge"], rel=1e-5)
