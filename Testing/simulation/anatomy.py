"""Echogenicity maps of simulated anatomy: the ground truth that field-simulated scans are made of.

An `Anatomy` is a set of analytic shapes in normalised field coordinates (u across, v down, both
in [0, 1]), so the same anatomy can be sampled at random scatterer positions (to simulate) and on
the image grid (to score). Echogenicity is mean backscattered power relative to soft tissue (1.0):
layered tissue, a vessel with anechoic lumen, wall layers and sometimes plaque, cysts and
inclusions of several contrasts, specular lines, and bright point targets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ANECHOIC = 1e-3
CONTRASTS = (ANECHOIC, 0.1, 0.25, 4.0, 10.0)
"""Cyst and inclusion levels: anechoic, −10 dB, −6 dB, +6 dB, +10 dB."""


@dataclass
class Anatomy:
    layers: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    """(depth v, wobble amplitude, wobble cycles, phase, level) of each boundary, shallow first."""
    blobs: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)
    """(u, v, radius u, radius v, angle, level) ellipses, painted in order."""
    vessels: list[tuple[float, float, float, float | None, float]] = field(default_factory=list)
    """(u, v, lumen radius, plaque level or None, plaque angle)."""
    lines: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    """(u0, v0, u1, v1, thickness) bright specular segments."""
    points: list[tuple[float, float]] = field(default_factory=list)
    texture: np.ndarray | None = None
    """Optional (n, n) field in dB over [0, 1]², multiplied into the echogenicity: real tissue's
    backscatter varies at every scale (fibres, lobules, vessels below the resolution), and a model
    that only ever saw piecewise-constant maps flattens real tissue into blobs."""

    def echogenicity(self, u: np.ndarray, v: np.ndarray, aspect: float = 1.0) -> np.ndarray:
        """Mean backscattered power at normalised positions; `aspect` = field height / width."""
        e = np.ones(np.broadcast(u, v).shape)
        for depth, amp, cycles, phase, level in self.layers:
            e[v > depth + amp * np.sin(2 * np.pi * cycles * u + phase)] = level
        for cu, cv, ru, rv, angle, level in self.blobs:
            du, dv = u - cu, (v - cv) * aspect
            a, b = du * np.cos(angle) + dv * np.sin(angle), -du * np.sin(angle) + dv * np.cos(angle)
            e[(a / ru) ** 2 + (b / rv) ** 2 <= 1.0] = level
        for cu, cv, radius, plaque, plaque_angle in self.vessels:
            r = np.hypot(u - cu, (v - cv) * aspect)
            e[(r > radius) & (r <= 1.12 * radius)] = 0.3
            e[(r > 1.12 * radius) & (r <= 1.3 * radius)] = 6.0
            e[r <= radius] = ANECHOIC
            if plaque is not None:
                centre_u = cu + 0.8 * radius * np.cos(plaque_angle)
                centre_v = cv + 0.8 * radius * np.sin(plaque_angle) / aspect
                e[(r <= radius) & (np.hypot(u - centre_u, (v - centre_v) * aspect) < 0.45 * radius)] = plaque
        for u0, v0, u1, v1, thickness in self.lines:
            e[_distance_to_segment(u, v * aspect, u0, v0 * aspect, u1, v1 * aspect) < thickness / 2] = 12.0
        if self.texture is not None:
            e = e * 10 ** (_bilinear(self.texture, u, v) / 10)
        return e


def _bilinear(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    n = grid.shape[0] - 1
    fu, fv = np.clip(u, 0, 1) * n, np.clip(v, 0, 1) * n
    iu, iv = np.minimum(fu.astype(int), n - 1), np.minimum(fv.astype(int), n - 1)
    du, dv = fu - iu, fv - iv
    return ((1 - dv) * ((1 - du) * grid[iv, iu] + du * grid[iv, iu + 1])
            + dv * ((1 - du) * grid[iv + 1, iu] + du * grid[iv + 1, iu + 1]))


TEXTURE_GRID = 96
TEXTURE_DB = (0.0, 4.0)
TEXTURE_CORRELATION = (1.0, 6.0)


def add_texture(anatomy: Anatomy, rng: np.random.Generator) -> Anatomy:
    """The same anatomy with a random tissue texture: a smooth Gaussian field in dB, of random
    strength (std 0-4 dB) and random, possibly anisotropic, correlation length (1-6 % of the field)."""
    from scipy.ndimage import gaussian_filter
    corr = rng.uniform(*TEXTURE_CORRELATION, size=2) * TEXTURE_GRID / 100
    noise = gaussian_filter(rng.standard_normal((TEXTURE_GRID + 1, TEXTURE_GRID + 1)), corr, mode="wrap")
    noise *= rng.uniform(*TEXTURE_DB) / max(float(noise.std()), 1e-12)
    return Anatomy(anatomy.layers, anatomy.blobs, anatomy.vessels, anatomy.lines, anatomy.points, noise)


def _distance_to_segment(u, v, u0, v0, u1, v1):
    du, dv = u1 - u0, v1 - v0
    t = np.clip(((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.hypot(u - (u0 + t * du), v - (v0 + t * dv))


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    """A new layout: tissue layers under a homogeneous top layer, a vessel (most of the time),
    two to four cysts or inclusions, one or two specular lines and a few point targets."""
    a = Anatomy()
    for depth in np.sort(rng.uniform(0.35, 0.9, size=rng.integers(1, 3))):
        a.layers.append((float(depth), float(rng.uniform(0.0, 0.04)), float(rng.uniform(0.5, 2.0)),
                         float(rng.uniform(0, 2 * np.pi)), float(rng.choice([0.3, 0.5, 2.0, 3.0]))))
    if rng.random() < 0.75:
        radius = float(rng.uniform(0.07, 0.14))
        plaque = float(rng.choice([0.5, 3.0])) if rng.random() < 0.5 else None
        a.vessels.append((float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.35, 0.7)), radius, plaque,
                          float(rng.uniform(0, 2 * np.pi))))
    for _ in range(rng.integers(2, 5)):
        radius = float(rng.uniform(0.03, 0.09))
        a.blobs.append((float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.15, 0.9)), radius,
                        radius * float(rng.uniform(0.7, 1.3)), float(rng.uniform(0, np.pi)),
                        float(rng.choice(CONTRASTS))))
    for _ in range(rng.integers(1, 3)):
        u0, v0 = rng.uniform(0.05, 0.6), rng.uniform(0.1, 0.95)
        length, angle = rng.uniform(0.2, 0.5), rng.uniform(-0.3, 0.3)
        a.lines.append((float(u0), float(v0), float(u0 + length * np.cos(angle)),
                        float(v0 + length * np.sin(angle)), float(rng.uniform(0.004, 0.01))))
    a.points = [(float(rng.uniform(0.05, 0.95)), float(rng.uniform(0.05, 0.95))) for _ in range(rng.integers(3, 7))]
    return a


def homogeneous_anatomy() -> Anatomy:
    """Soft tissue only: what the system's gain map is calibrated on."""
    return Anatomy()
