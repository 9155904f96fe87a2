"""Re-speckling: synthetic log speckle with a frame's own measured strength and grain."""
import numpy as np
import pytest
import torch

from speckle2self.mapping.grain import grain_size
from speckle2self.training.losses import LossWeights, speckle2self_loss
from speckle2self.training.speckle_noise import log_speckle, psf_for_grain, speckle_params
from speckle2self.training.loop import TrainConfig, train

from conftest import TINY


def _speckle(psf, seed=0, side=192):
    return log_speckle((side, side), psf, torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


def test_log_speckle_is_standardised_and_has_the_dark_tail_of_log_rayleigh():
    z = _speckle((1.0, 1.0))
    skew = np.mean(z ** 3)
    assert abs(z.mean()) < 1e-6 and z.std() == pytest.approx(1.0, abs=1e-3)
    assert -1.4 < skew < -0.8  # log of a Rayleigh amplitude: skewness -1.14


def test_wider_point_spread_gives_a_coarser_measured_grain():
    fine, coarse = grain_size(_speckle((0.5, 0.5))), grain_size(_speckle((1.5, 1.5)))
    assert coarse[0] > 1.3 * fine[0] and coarse[1] > 1.3 * fine[1]


def test_point_spread_for_a_grain_reproduces_that_grain():
    psf = psf_for_grain((0.7, 1.1))
    measured = grain_size(np.stack([_speckle(psf, seed=s) for s in range(3)]))
    assert measured[0] == pytest.approx(0.7, abs=0.08) and measured[1] == pytest.approx(1.1, abs=0.1)


@pytest.mark.parametrize("strength, psf", [(0.07, (0.8, 0.8)), (0.14, (0.6, 1.2))])
def test_strength_and_grain_are_measured_from_a_textured_frame(strength, psf):
    rows = np.linspace(0, 1, 192)[:, None]
    frame = 0.45 + 0.2 * rows + strength * _speckle(psf, seed=7)  # a depth gradient under the speckle
    measured, measured_psf, _ = speckle_params(frame)
    assert measured == pytest.approx(strength, rel=0.12)
    assert measured_psf == pytest.approx(psf, abs=0.2)


def test_coarse_lateral_speckle_is_matched_in_width_and_strength():
    # A fetal scan's speckle: 2-3× wider laterally than axially, beyond where a local-mean
    # grain measure saturates; too fine or too weak a copy would leave the real speckle in place.
    frame = 0.4 + 0.08 * _speckle((1.2, 6.0), seed=11, side=320)
    strength, psf, _ = speckle_params(frame)
    assert strength == pytest.approx(0.08, rel=0.15)
    assert psf == pytest.approx((1.2, 6.0), rel=0.2)


def test_banded_windows_do_not_widen_the_measured_grain():
    # Reverberation bands and fibres widen a window's autocorrelation along them; synthetic speckle
    # that wide would teach the network to erase real structure of that size (lateral smearing).
    frame = 0.45 + 0.06 * _speckle((0.6, 0.6), seed=12, side=320)
    bands = np.random.default_rng(0).normal(0.0, 0.12, 100)
    frame[:100] += np.convolve(bands, [0.25, 0.5, 0.25], "same")[:, None]  # horizontal streaks across the top
    strength, psf, _ = speckle_params(frame)
    assert psf[1] == pytest.approx(0.6, abs=0.2) and strength == pytest.approx(0.06, rel=0.2)


def test_a_log_display_gets_log_speckle():
    frame = 0.45 + 0.07 * _speckle((1.0, 2.0), seed=5, side=256)
    assert speckle_params(frame).power == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_a_display_that_compresses_less_than_a_log_gets_speckle_skewed_as_its_own(power):
    # Measured on the real training frames: window skewness +0.4 to +0.6 (bright grains), where
    # log speckle has -1.2 (dark pits); log speckle's pits, drawn out laterally, look like the
    # thin dark and bright lines of muscle and lung, which the network then learns to erase.
    z = log_speckle((256, 256), (1.0, 2.0), torch.Generator().manual_seed(6), power).numpy().astype(np.float64)
    law = speckle_params(0.45 + 0.07 * z)
    assert law.power == pytest.approx(power, abs=0.15)
    assert law.strength == pytest.approx(0.07, rel=0.15)
    assert law.psf == pytest.approx((1.0, 2.0), rel=0.2)  # the envelope's grains look a quarter wider than its log's


def test_clipped_pixels_and_pixels_outside_the_region_do_not_count():
    frame = np.clip(0.5 + 0.1 * _speckle((0.8, 0.8), seed=3), 0, 1)
    frame[:, :96] = 0.0  # the display floor: a black half
    region = np.ones(frame.shape, bool)
    region[:40] = False
    frame[:40] = 0.9 + 0.3 * _speckle((0.8, 0.8), seed=4)[:40]  # bright, coarse text band outside the region
    assert speckle_params(frame, region)[0] == pytest.approx(0.1, rel=0.12)


def test_a_frame_without_tissue_has_nothing_to_respeckle():
    assert speckle_params(np.zeros((64, 64)))[0] == 0.0


def test_respeckled_reconstruction_prefers_the_clean_image_to_passing_the_input_through():
    gen = torch.Generator().manual_seed(0)
    clean = torch.full((4, 1, 64, 64), 0.5)
    noisy = clean + 0.1 * log_speckle((4, 1, 64, 64), (0.8, 0.8), gen)
    respeckled = noisy + 0.1 * log_speckle((4, 1, 64, 64), (0.8, 0.8), gen)
    weights = LossWeights(1.0, 0.0, respeckle=1.0)
    loss_clean, _ = speckle2self_loss([clean], [noisy], weights, [respeckled])
    loss_identity, _ = speckle2self_loss([respeckled], [noisy], weights, [respeckled])  # the network sees only w
    assert float(loss_clean) < 0.6 * float(loss_identity)


def test_training_with_respeckling_runs_and_validates(training_frames):
    config = TrainConfig(steps=4, batch_size=2, crop=48, val_every=2,
                         weights=LossWeights(1.0, 0.1, respeckle=1.0),
                         network_input={"domain": "log", "grain_px": [0.9, 0.9]})
    from speckle2self.training.training_data import TrainingFrames
    frames = TrainingFrames(training_frames, 48, network_input=config.network_input)
    fit, held = frames.split(0.25, seed=0)
    result = train(fit, config, arch=TINY, device="cpu", validation=held)
    assert result.steps_done == 4 and np.isfinite(result.best_val_loss)
    assert result.card("x")["training"]["config"]["weights"]["respeckle"] == 1.0


def test_speckle_laws_measured_once_are_reused_by_a_new_frame_set(training_frames):
    from speckle2self.training.training_data import TrainingFrames
    first = TrainingFrames(training_frames[:2], crop=48)
    measured = [first.noise_params(k) for k in range(len(first))]
    laws = {**first.measured_noise(), (7, 0): measured[0]}
    again = TrainingFrames(training_frames[:2], crop=48)
    assert again.use_noise(laws) == 2
    assert again.measured_noise() == first.measured_noise()
    assert [again.noise_params(k) for k in range(len(again))] == measured
