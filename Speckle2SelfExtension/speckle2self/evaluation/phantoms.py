"""Simulated ultrasound speckle with a known echogenicity map.

Speckle is made the way a probe makes it: sub-resolution scatterers with random phase, their
reflectivity set by an echogenicity map, convolved with a point-spread function (a Gaussian-windowed
axial pulse and a Gaussian lateral beam), and the envelope taken as the magnitude of the complex
(analytic) echo. The grain is therefore spatially correlated, anisotropic (finer axially than
laterally) and tissue-dependent, unlike independent per-pixel noise.

This is the engine's own small, dependency-free simulator for tests and the bundled demo sample.
The default model is trained and benchmarked on PyMUST field simulations instead (Testing/simulation),
so these phantoms are also a check that it carries over to a speckle model it never saw.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Probe:
    """Point-spread function in pixels: resolution cell sizes and pulse carrier."""

    axial_sigma: float = 1.2
    lateral_sigma: float = 2.2
    cycles_per_sigma: float = 0.35


@dataclass(frozen=True)
class Phantom:
    """A clean echogenicity map (mean scatterer power, >= 0) and its simulated envelope."""

    echogenicity: np.ndarray
    envelope: np.ndarray


def echogenicity_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Layered tissue with a vessel, cysts of several contrasts and bright point targets."""
    rows, cols = shape
    z, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    echo = np.ones(shape)
    boundaries = np.sort(rng.uniform(0.15, 0.9, size=2)) * rows
    for level, b in zip(rng.uniform(0.4, 2.0, size=2), boundaries):
        wobble = 0.03 * rows * np.sin(2 * np.pi * x / cols * rng.uniform(0.5, 2) + rng.uniform(0, 6))
        echo[z > b + wobble] = level
    cz, cx = rng.uniform(0.3, 0.7) * rows, rng.uniform(0.3, 0.7) * cols
    radius = rng.uniform(0.08, 0.14) * min(shape)
    r = np.hypot(z - cz, x - cx)
    echo[(r > radius) & (r < radius * 1.25)] = 3.0
    echo[r <= radius] = 0.01
    for _ in range(rng.integers(2, 4)):
        pz, px = rng.uniform(0.1, 0.9) * rows, rng.uniform(0.1, 0.9) * cols
        rad = rng.uniform(0.04, 0.09) * min(shape)
        echo[np.hypot(z - pz, x - px) < rad] = rng.choice([0.05, 0.3, 2.5, 4.0])
    for _ in range(rng.integers(2, 6)):
        echo[int(rng.uniform(0.05, 0.95) * rows), int(rng.uniform(0.05, 0.95) * cols)] = 60.0
    return echo


def speckle_envelope(echogenicity: np.ndarray, rng: np.random.Generator,
                     probe: Probe = Probe(), density: float = 1.0) -> np.ndarray:
    """Envelope of the echo of random scatterers weighted by `echogenicity`, seen through `probe`.

    `density` is the fraction of pixels holding a scatterer: 1.0 gives fully developed speckle,
    lower values give fewer, stronger scatterers per resolution cell (same mean power).
    """
    rows, cols = echogenicity.shape
    amplitude = np.sqrt(np.maximum(echogenicity, 0.0))
    scatterers = amplitude * (rng.standard_normal((rows, cols)) + 1j * rng.standard_normal((rows, cols)))
    if density < 1.0:
        scatterers *= (rng.random((rows, cols)) < density) / np.sqrt(density)
    fz = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.fftfreq(cols)[None, :]
    carrier = probe.cycles_per_sigma / probe.axial_sigma
    psf_spectrum = (np.exp(-2 * (np.pi * probe.axial_sigma * (fz - carrier)) ** 2)
                    * np.exp(-2 * (np.pi * probe.lateral_sigma * fx) ** 2))
    echo = np.fft.ifft2(np.fft.fft2(scatterers) * psf_spectrum)
    return np.abs(echo)


def make_phantom(shape: tuple[int, int] = (256, 256), seed: int = 0, probe: Probe = Probe()) -> Phantom:
    """One reproducible phantom: clean map plus its speckled envelope."""
    rng = np.random.default_rng(seed)
    echo = echogenicity_map(shape, rng)
    return Phantom(echogenicity=echo, envelope=speckle_envelope(echo, rng, probe))


def make_cine(frames: int, shape: tuple[int, int] = (256, 256), seed: int = 0,
              probe: Probe = Probe(), density: float = 1.0) -> Phantom:
    """A cine of one anatomy with fresh speckle per frame (as with slight probe motion)."""
    rng = np.random.default_rng(seed)
    echo = echogenicity_map(shape, rng)
    stack = np.stack([speckle_envelope(echo, rng, probe, density) for _ in range(frames)])
    return Phantom(echogenicity=echo, envelope=stack)
