"""The quality issue's real-scan measures (real_frames.py) on frames made here with known answers."""
import numpy as np

import real_frames as rf


def _speckle_with_a_box_outline() -> tuple[np.ndarray, np.ndarray]:
    """Log-compressed Rayleigh speckle over banded tissue, except one homogeneous strip that a
    1-px white line (a Doppler box outline burned into the image) runs down."""
    rng = np.random.default_rng(5)
    env = np.abs(rng.standard_normal((192, 192)) + 1j * rng.standard_normal((192, 192)))
    rows, cols = np.mgrid[:192, :192]
    tissue = np.where(abs(cols - 96) < 24, 80.0, 80 + 40 * np.sin(rows / 6.0))
    frame = np.clip(tissue + 12 * np.log(env / env.mean()), 0, 254).astype(np.uint8)
    frame[:, 96] = 255
    return frame, np.ones(frame.shape, bool)


def test_gain_windows_avoid_burned_in_graphics():
    frame, region = _speckle_with_a_box_outline()
    windows = rf.homogeneous_windows(frame, rf.gain_region(frame, region))
    assert len(windows) == 3
    assert all((frame[w] < 255).all() for w in windows)


def test_a_method_that_keeps_the_graphic_is_credited_for_the_speckle_it_removes():
    frame, region = _speckle_with_a_box_outline()
    flat = np.where(frame == 255, 255.0, 80.0)
    flat = flat + np.random.default_rng(6).normal(0, 1.0, frame.shape)
    literal = rf.homogeneous_windows(frame, region)
    assert any((frame[w] == 255).any() for w in literal)
    assert rf.speckle_snr_gain(frame, flat, literal) < 1.5
    assert rf.speckle_snr_gain(frame, flat, rf.homogeneous_windows(frame, rf.gain_region(frame, region))) > 10
