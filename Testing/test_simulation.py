"""The field simulation behind the default model's training and evaluation data (PyMUST)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "simulation"))
pytest.importorskip("pymust")

from anatomy import ANECHOIC, Anatomy, random_anatomy  # noqa: E402
from field import POINT_AMPLITUDE, Condition, Scanner, clean_map, log_compress, scatterers  # noqa: E402

SMALL = Condition("L11-5v", 7.6, 8.0, 0.10, size=64)


def lag1_correlation(image: np.ndarray, axis: int) -> float:
    a = image - image.mean()
    b = np.roll(a, 1, axis=axis)
    return float((a * b).mean() / (a * a).mean())


@pytest.fixture(scope="module")
def scanner():
    return Scanner(SMALL)


@pytest.fixture(scope="module")
def full_frames(scanner):
    """Two full simus frames of homogeneous tissue."""
    return [np.abs(scanner.envelope_iq(*scatterers(SMALL, Anatomy(), np.random.default_rng(s)))) for s in (1, 2)]


def test_anatomy_has_anechoic_lumen_bright_wall_and_homogeneous_tissue():
    a = random_anatomy(np.random.default_rng(5))
    a.vessels = [(0.5, 0.5, 0.1, None, 0.0)]
    u, v = np.meshgrid(np.linspace(0, 1, 200), np.linspace(0, 1, 200))
    e = a.echogenicity(u, v)
    assert e[100, 100] == ANECHOIC
    assert e[100, 100 + 24] == 6.0  # adventitia ring at 1.12-1.3 radii
    assert (e[:40] == 1.0).mean() > 0.5  # the top layer is soft tissue


def test_clean_map_marks_point_targets():
    a = Anatomy(points=[(0.5, 0.25)])
    e = clean_map(SMALL, a)
    assert e[16, 32] == POINT_AMPLITUDE ** 2 and np.median(e) == 1.0


def test_full_simulation_gives_correlated_rayleigh_like_speckle(full_frames):
    core = [f[8:-8, 8:-8] / np.sqrt(np.mean(f[8:-8, 8:-8] ** 2)) for f in full_frames]
    snr = np.mean([c.mean() / c.std() for c in core])
    assert 1.5 < snr < 2.3  # fully developed speckle: 1.91
    assert np.mean([lag1_correlation(c, 0) for c in core]) > 0.2  # not independent pixel noise
    assert np.mean([lag1_correlation(c, 1) for c in core]) > 0.2


def test_point_spread_bank_reproduces_full_simulation_statistics(full_frames):
    from psf_bank import build_bank, synthesise
    bank = build_bank(SMALL)
    fast = [synthesise(bank, Anatomy(), np.random.default_rng(s)) for s in (3, 4)]

    def stats(frames):
        core = [f[8:-8, 8:-8] for f in frames]
        return (np.mean([c.mean() / c.std() for c in core]),
                np.mean([lag1_correlation(c, 0) for c in core]), np.mean([lag1_correlation(c, 1) for c in core]))
    full_snr, full_ax, full_lat = stats(full_frames)
    fast_snr, fast_ax, fast_lat = stats(fast)
    assert abs(fast_snr - full_snr) < 0.2 * full_snr
    assert abs(fast_ax - full_ax) < 0.15 and abs(fast_lat - full_lat) < 0.15
    core = np.concatenate([f[8:-8, 8:-8].ravel() for f in fast])
    assert 0.8 < np.sqrt(np.mean(core ** 2)) < 1.25  # the gain map normalises tissue to unit power


def test_log_compression_puts_tissue_mid_grey_and_saturates_points():
    rng = np.random.default_rng(0)
    env = np.abs(rng.standard_normal((64, 64)) + 1j * rng.standard_normal((64, 64)))
    env[10, 10] = 200.0
    grey = log_compress(env)
    assert grey.dtype == np.uint8 and grey[10, 10] == 255
    assert 150 < np.median(grey) < 230


def test_generate_writes_frames_once_and_resumes(tmp_path, monkeypatch):
    import generate
    monkeypatch.setattr(generate, "CONDITIONS", {"small": SMALL})
    monkeypatch.setattr(generate, "_scanners", {})
    generate.main(["--set", "eval", "--out", str(tmp_path), "--frames", "1", "--workers", "1"])
    path = generate.frame_path(tmp_path, "eval", "small", generate.frame_seeds("eval", 0, 1)[0])
    with np.load(path) as f:
        assert f["envelope"].shape == (64, 64) and f["envelope"].dtype == np.float32
        assert f["bmode"].dtype == np.uint8 and f["echogenicity"].shape == (64, 64)
        assert float(f["pixel_mm"]) == 0.1
    stamp = path.stat().st_mtime_ns
    generate.main(["--set", "eval", "--out", str(tmp_path), "--frames", "1", "--workers", "1"])
    assert path.stat().st_mtime_ns == stamp
    assert not list(tmp_path.rglob("*.tmp"))
