"""Field-simulated ultrasound frames with PyMUST (Garcia's MUST toolbox, Python port).

Scatterers are drawn uniformly over the imaged field (plus a margin, so the edges get clutter
from outside like a real scan) with Gaussian reflection coefficients whose variance is the
anatomy's echogenicity; point targets are added as strong single scatterers. `simus` computes
the RF of every element for one unsteered plane wave (linear probes) or diverging wave (convex
probes), with frequency-dependent attenuation; the RF is I/Q-demodulated and delay-and-sum
beamformed onto the pixel grid, and the envelope is its magnitude. A gain map calibrated on a
homogeneous phantom of the same condition plays the part of a scanner's time-gain and lateral gain
compensation, so soft tissue has the same mean amplitude everywhere in the image.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from anatomy import Anatomy

SOUND_SPEED = 1540.0
ATTENUATION_DB_CM_MHZ = 0.5
SCATTERERS_PER_WAVELENGTH2 = 2.5
POINT_AMPLITUDE = 25.0
MARGIN = 0.08
"""Scatterers extend this fraction of the field beyond each side of the image."""


@dataclass(frozen=True)
class Condition:
    """One probe, transmit frequency, depth range and pixel size."""

    probe: str
    fc_mhz: float
    top_mm: float
    pixel_mm: float
    size: int = 256

    @property
    def width_m(self) -> float:
        return self.size * self.pixel_mm * 1e-3

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x lateral, z depth) in metres, rows = depth."""
        half = self.width_m / 2
        axis = (np.arange(self.size) + 0.5) / self.size
        x = -half + axis * self.width_m
        z = self.top_mm * 1e-3 + axis * self.width_m
        return np.meshgrid(x, z)

    def scatterer_count(self) -> int:
        wavelength = SOUND_SPEED / (self.fc_mhz * 1e6)
        area = (self.width_m * (1 + 2 * MARGIN)) ** 2
        return int(SCATTERERS_PER_WAVELENGTH2 * area / wavelength ** 2)


def clean_map(condition: Condition, anatomy: Anatomy) -> np.ndarray:
    """Echogenicity on the pixel grid, point targets included (the scoring reference)."""
    axis = (np.arange(condition.size) + 0.5) / condition.size
    u, v = np.meshgrid(axis, axis)
    e = anatomy.echogenicity(u, v)
    for pu, pv in anatomy.points:
        e[min(int(pv * condition.size), condition.size - 1), min(int(pu * condition.size), condition.size - 1)] = \
            POINT_AMPLITUDE ** 2
    return e


def scatterers(condition: Condition, anatomy: Anatomy, rng: np.random.Generator, density_scale: float = 1.0):
    """Positions (x, z in metres) and reflection coefficients of the scatterers."""
    n = int(condition.scatterer_count() * density_scale)
    u = rng.uniform(-MARGIN, 1 + MARGIN, n)
    v = rng.uniform(-MARGIN, 1 + MARGIN, n)
    rc = rng.standard_normal(n) * np.sqrt(anatomy.echogenicity(np.clip(u, 0, 1), np.clip(v, 0, 1)))
    pu, pv = np.array(anatomy.points, dtype=np.float64).reshape(-1, 2).T
    u, v = np.concatenate([u, pu]), np.concatenate([v, pv])
    rc = np.concatenate([rc, POINT_AMPLITUDE * rng.choice([-1.0, 1.0], size=pu.size)])
    x = -condition.width_m / 2 + u * condition.width_m
    z = condition.top_mm * 1e-3 + v * condition.width_m
    return x, z, rc


class Scanner:
    """PyMUST transmit, receive and beamforming for one condition (the DAS matrix is reused)."""

    def __init__(self, condition: Condition) -> None:
        import pymust
        logging.getLogger().setLevel(logging.ERROR)
        self.pymust, self.condition = pymust, condition
        self.param = pymust.getparam(condition.probe)
        self.param.fc = condition.fc_mhz * 1e6
        self.param.fs = 4 * self.param.fc
        self.param.c = SOUND_SPEED
        self.param.attenuation = ATTENUATION_DB_CM_MHZ
        self.tx = np.zeros((1, self.param.Nelements))
        self.param.TXdelay = self.tx
        self.options = pymust.utils.Options()
        self.options.dBThresh = -40
        self.options.ElementSplitting = 1
        self._das: dict[tuple[int, int], object] = {}
        self.x, self.z = condition.grid()
        self.samples = self._rf_length()

    def _rf_length(self) -> int:
        far = np.hypot(self.condition.width_m * (0.5 + MARGIN) + self.param.Nelements * self.param.pitch / 2,
                       self.condition.top_mm * 1e-3 + self.condition.width_m * (1 + MARGIN))
        return int(np.ceil(2.2 * far / SOUND_SPEED * self.param.fs / 64) * 64)

    def envelope(self, x: np.ndarray, z: np.ndarray, rc: np.ndarray) -> np.ndarray:
        """Beamformed envelope (rows = depth) of the given scatterers, before gain compensation."""
        return np.abs(self.envelope_iq(x, z, rc))

    def envelope_iq(self, x: np.ndarray, z: np.ndarray, rc: np.ndarray) -> np.ndarray:
        """Beamformed complex I/Q image (rows = depth) of the given scatterers."""
        rf, _ = self.pymust.simus(x, z, rc, self.tx, self.param, self.options)
        rf = _fixed_length(np.asarray(rf), self.samples)
        iq = self.pymust.rf2iq(rf, self.param)
        if iq.shape not in self._das:
            self._das[iq.shape] = self.pymust.dasmtx(iq, self.x, self.z, self.param)
        image = self._das[iq.shape] @ iq.flatten(order="F")
        return image.reshape(self.x.shape, order="F")


def _fixed_length(rf: np.ndarray, samples: int) -> np.ndarray:
    if rf.shape[0] >= samples:
        return rf[:samples]
    return np.pad(rf, ((0, samples - rf.shape[0]), (0, 0)))


def gain_map(scanner: Scanner, seeds: tuple[int, ...]) -> np.ndarray:
    """Mean intensity of homogeneous tissue over the image, smoothed: the gain to divide out."""
    from scipy.ndimage import gaussian_filter
    from anatomy import homogeneous_anatomy
    power = np.zeros(scanner.x.shape)
    for seed in seeds:
        env = scanner.envelope(*scatterers(scanner.condition, homogeneous_anatomy(), np.random.default_rng(seed)))
        power += env ** 2
    size = scanner.condition.size
    smooth = gaussian_filter(power / len(seeds), sigma=(size / 24, size / 10), mode="reflect")
    return smooth / np.median(smooth)


def log_compress(envelope: np.ndarray, dynamic_range_db: float = 60.0, reference: float | None = None) -> np.ndarray:
    """8-bit B-mode the way a scanner maps it: 0 dB at `reference` (default 6 dB above the 99th
    percentile, so soft tissue sits mid-grey and point targets saturate), 60 dB range."""
    ref = 2.0 * np.percentile(envelope, 99.0) if reference is None else reference
    db = 20 * np.log10(np.maximum(envelope, 1e-12) / ref)
    return np.clip(np.rint((db + dynamic_range_db) / dynamic_range_db * 255), 0, 255).astype(np.uint8)
