"""Fast training frames from PyMUST's own point-spread functions.

A full `simus` frame costs one to two CPU minutes, too slow for the hundreds of frames training
wants. Speckle is linear in the scatterers, so a frame can be composed from the system's response
to single points: `simus` + DAS image one scatterer at a time on a grid of depths and lateral
positions (the bank); scatterers drawn exactly as for a full simulation are binned to pixels with
the phase of their sub-pixel depth offset, convolved with every kernel of the bank, and the results
blended with bilinear weights between the bank's grid points (a spatially varying convolution).
The bank carries the probe's real diffraction, apodisation, attenuation and frequency content at
each depth; what it leaves out is the variation of the PSF within one grid cell.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anatomy import add_texture, random_anatomy
from field import MARGIN, SOUND_SPEED, Condition, Scanner, clean_map, scatterers

TEXTURED = True
"""Training frames carry a random tissue texture (anatomy.add_texture); its own seed stream, so the
layouts and speckle of each seed are those of the untextured set."""
TEXTURE_SEED_OFFSET = 7_000_000

BANK_DEPTHS = 7
BANK_LATERAL = 5
KERNEL_HALF = (255, 255)
FFT_SIZE = 864

TRAIN_CONDITIONS = {
    "L11-5v 7.6MHz 4-30mm": Condition("L11-5v", 7.6, 4.0, 0.10),
    "L12-3v 5.0MHz 10-41mm": Condition("L12-3v", 5.0, 10.0, 0.12),
    "C5-2v 3.6MHz 30-81mm": Condition("C5-2v", 3.6, 30.0, 0.20),
    "L12-3v 9.0MHz 3-21mm": Condition("L12-3v", 9.0, 3.0, 0.07),
    "P4-2v 2.7MHz 20-76mm": Condition("P4-2v", 2.7, 20.0, 0.22),
}
"""The evaluation set's three conditions plus two more, so the model sees more grain sizes."""


@dataclass
class Bank:
    condition: Condition
    spectra: np.ndarray
    """FFTs (FFT_SIZE²) of the kernels, one per (depth, lateral) grid point."""
    weights: np.ndarray
    """(kernels, pixels) tent weights over the grid extended by the margin; they sum to one."""
    power: np.ndarray
    """Mean |image|² per pixel for one unit scatterer per pixel: the gain to divide out."""


def grid_positions(size: int, count: int) -> np.ndarray:
    return np.rint(np.linspace(0.04, 0.96, count) * (size - 1)).astype(int)


def build_bank(condition: Condition) -> Bank:
    scanner = Scanner(condition)
    rows, cols = grid_positions(condition.size, BANK_DEPTHS), grid_positions(condition.size, BANK_LATERAL)
    x, z = condition.grid()
    # A silent scatterer at the far corner of the margin gives simus the same frequency step (and
    # so the same RF time window) as a full frame; a lone point alone would get a coarser one.
    x0 = condition.width_m * (0.5 + MARGIN)
    z0 = condition.top_mm * 1e-3 + condition.width_m * (1 + MARGIN)
    kernels = []
    for r in rows:
        for c in cols:
            image = scanner.envelope_iq(np.array([x[r, c], x0]), np.array([z[r, c], z0]), np.array([1.0, 0.0]))
            kernels.append(_kernel(image, r, c))
    kernels = np.stack(kernels)
    spectra = np.fft.fft2(np.fft.ifftshift(_pad(kernels), axes=(1, 2)), axes=(1, 2)).astype(np.complex64)
    extra = _extra(condition)
    weights = tent_weights(rows + extra, cols + extra, condition.size + 2 * extra)
    power_spectra = np.fft.fft2(np.fft.ifftshift(_pad(np.abs(kernels) ** 2), axes=(1, 2)), axes=(1, 2))
    power = _convolve_sum(weights, power_spectra, condition.size, extra).real
    return Bank(condition, spectra, weights, power)


def _extra(condition: Condition) -> int:
    return int(round(condition.size * MARGIN))


def _kernel(image: np.ndarray, r: int, c: int) -> np.ndarray:
    """The point's image re-centred on (KERNEL_HALF), zero where the grid had no pixel."""
    hr, hc = KERNEL_HALF
    out = np.zeros((2 * hr + 1, 2 * hc + 1), np.complex128)
    r0, c0 = max(0, r - hr), max(0, c - hc)
    r1, c1 = min(image.shape[0], r + hr + 1), min(image.shape[1], c + hc + 1)
    out[r0 - r + hr:r1 - r + hr, c0 - c + hc:c1 - c + hc] = image[r0:r1, c0:c1]
    return out


def _pad(kernels: np.ndarray) -> np.ndarray:
    k, h, w = kernels.shape
    out = np.zeros((k, FFT_SIZE, FFT_SIZE), kernels.dtype)
    top, left = FFT_SIZE // 2 - h // 2, FFT_SIZE // 2 - w // 2
    out[:, top:top + h, left:left + w] = kernels
    return out


def tent_weights(rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (tent) weights of every grid point at every pixel, constant beyond the outer points."""
    def tents(points):
        pos = np.arange(size, dtype=np.float64)
        w = np.zeros((len(points), size))
        for i, p in enumerate(points):
            left = points[i - 1] if i > 0 else None
            right = points[i + 1] if i + 1 < len(points) else None
            w[i] = np.where(pos <= p, 1.0 if left is None else np.clip((pos - left) / (p - left), 0, 1),
                            1.0 if right is None else np.clip((right - pos) / (right - p), 0, 1))
        return w
    wr, wc = tents(rows), tents(cols)
    return np.einsum("ir,jc->ijrc", wr, wc).reshape(len(rows) * len(cols), size * size)


def _convolve_sum(fields: np.ndarray, spectra: np.ndarray, size: int, extra: int) -> np.ndarray:
    """Σ_k fields[k] ⊛ kernel_k, cropped from the extended grid back to the image."""
    n = size + 2 * extra
    total = np.zeros((FFT_SIZE, FFT_SIZE), np.complex128)
    for k in range(len(spectra)):
        total += np.fft.fft2(fields[k].reshape(n, n), s=(FFT_SIZE, FFT_SIZE)) * spectra[k]
    return np.fft.ifft2(total)[extra:extra + size, extra:extra + size]


def synthesise(bank: Bank, anatomy, rng: np.random.Generator, density_scale: float = 1.0) -> np.ndarray:
    """Gain-compensated envelope of a new scatterer draw over `anatomy`.

    Each scatterer is imaged with one kernel of the bank, drawn with the tent weights of its
    position, so its whole response (side lobes and edge waves included) keeps its energy; blending
    kernels per pixel instead would let their side lobes cancel.
    """
    cond = bank.condition
    x, z, rc = scatterers(cond, anatomy, rng, density_scale)
    index, values = _binned(cond, x, z, rc)
    cumulative = np.cumsum(bank.weights[:, index], axis=0)
    choice = np.minimum((cumulative < rng.random(index.size)).sum(axis=0), len(bank.spectra) - 1)
    fields = np.zeros(bank.weights.shape, np.complex128)
    np.add.at(fields, (choice, index), values)
    image = _convolve_sum(fields, bank.spectra, cond.size, _extra(cond))
    return np.abs(image) / np.sqrt(bank.power * density_scale * _scatterers_per_pixel(cond))


def _scatterers_per_pixel(cond: Condition) -> float:
    return cond.scatterer_count() / (cond.size * (1 + 2 * MARGIN)) ** 2


def _binned(cond: Condition, x: np.ndarray, z: np.ndarray, rc: np.ndarray):
    """Flat pixel index (grid extended by the margin) and complex value of every scatterer: its
    reflection coefficient with the phase of its sub-pixel depth offset (two-way, centre frequency)."""
    pixel = cond.pixel_mm * 1e-3
    extra = _extra(cond)
    n = cond.size + 2 * extra
    fx = (x + cond.width_m / 2) / pixel - 0.5 + extra
    fz = (z - cond.top_mm * 1e-3) / pixel - 0.5 + extra
    ix, iz = np.rint(fx).astype(int), np.rint(fz).astype(int)
    keep = (ix >= 0) & (ix < n) & (iz >= 0) & (iz < n)
    k = 2 * np.pi * cond.fc_mhz * 1e6 / SOUND_SPEED
    values = rc * np.exp(-2j * k * (fz - iz) * pixel)
    return (iz * n + ix)[keep], values[keep]


def _train_frames(out: Path, name: str, seeds: list[int]) -> str:
    from generate import frame_path, write_frame
    started = time.monotonic()
    missing = [s for s in seeds if not frame_path(out, "train", name, s).exists()]
    if not missing:
        return f"{name}: all {len(seeds)} frames already there"
    bank = build_bank(TRAIN_CONDITIONS[name])
    for seed in missing:
        rng = np.random.default_rng(seed)
        anatomy = random_anatomy(rng)
        density = float(rng.choice([0.5, 1.0, 2.0]))
        if TEXTURED:
            anatomy = add_texture(anatomy, np.random.default_rng(seed + TEXTURE_SEED_OFFSET))
        envelope = synthesise(bank, anatomy, rng, density)
        write_frame(frame_path(out, "train", name, seed), envelope,
                    clean_map(bank.condition, anatomy), bank.condition.pixel_mm, seed)
    return f"{name}: {len(missing)} frames in {time.monotonic() - started:.0f} s"


def synthesise_set(pool, out: Path, frames: int) -> None:
    """Training frames for every training condition, one worker per condition."""
    from generate import frame_seeds
    jobs = [pool.submit(_train_frames, out, name, frame_seeds("train", i, frames))
            for i, name in enumerate(TRAIN_CONDITIONS)]
    for job in jobs:
        print(job.result(), flush=True)
