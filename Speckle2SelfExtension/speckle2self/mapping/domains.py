"""Input domains: envelope (linear amplitude, the network's own) and B-mode (log-compressed).

B-mode mapping (documented in README):
  grey level g in [0, 1] = (b - lo) / (hi - lo), with lo..hi = 0..255 for 8-bit data, else the
  input's own global minimum..maximum (one range for the whole stack, so dark frames stay dark);
  envelope e = 10 ** ((g - 1) * DR / 20), DR = 60 dB by default (a display dynamic range typical of
  clinical presets): g = 1 is 0 dB, g = 0 is -DR dB.
The denoised envelope e' comes back through g' = 1 + 20 log10(e') / DR; each frame's mean grey level
is then restored to the input's (averaging speckle in the linear domain raises the log-domain mean,
the well-known log-Rayleigh bias), and g' is clipped to [0, 1] and scaled back to lo..hi.
Only the image itself is denoised (image_region): background pixels darker than 5 % grey, such as
the black outside a sector, and annotations (small bright islands on that black: burned-in text,
toolbars, markers) keep their input values and are left out of the brightness match.
Envelope data are scaled per frame from their minimum to their 99.9th percentile
(speckle2self.mapping.frames.normalise); B-mode frames are scaled so that the 90th percentile of their image
region sits where that of speckle sits in training (BMODE_SCALE_LEVEL); strong reflectors above the
scale keep their brightness (inference.REFLECTOR_HEADROOM) and saturated (pure white) pixels their
input values.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

DOMAINS = ("envelope", "bmode")
DEFAULT_DYNAMIC_RANGE_DB = 60.0


def check_domain(domain: str) -> str:
    if domain not in ("auto",) + DOMAINS:
        raise InputError(f"domain must be 'auto', 'envelope' or 'bmode', not {domain!r}")
    return domain


def detect_domain(frames: np.ndarray) -> str:
    """8-bit data is what clinical scanners export after log compression; anything else is envelope."""
    return "bmode" if frames.dtype in (np.uint8, np.int8) else "envelope"


def resolve_domain(domain: str, frames: np.ndarray) -> str:
    return detect_domain(frames) if check_domain(domain) == "auto" else domain


def grey_range(frames: np.ndarray) -> tuple[float, float]:
    """The value range that spans black..white for B-mode input."""
    if frames.dtype == np.uint8:
        return 0.0, 255.0
    if frames.dtype == np.int8:
        return -128.0, 127.0
    return float(np.min(frames)), float(np.max(frames))


def bmode_to_envelope(grey: np.ndarray, dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB) -> np.ndarray:
    """Grey levels in [0, 1] to linear amplitude in [10^(-DR/20), 1]."""
    return np.power(10.0, (np.clip(grey, 0.0, 1.0) - 1.0) * dynamic_range_db / 20.0).astype(np.float32)


def envelope_to_bmode(envelope: np.ndarray, dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB) -> np.ndarray:
    """Inverse of bmode_to_envelope, not yet clipped."""
    floor = 10.0 ** (-dynamic_range_db / 20.0) * 1e-3
    return (1.0 + 20.0 * np.log10(np.maximum(envelope, floor)) / dynamic_range_db).astype(np.float32)


BACKGROUND_GREY = 0.05
"""Grey level (fraction of black..white) below which B-mode pixels count as background: the black
outside the sector, with the few levels of noise lossy JPEG leaves in it."""

BMODE_SCALE_PERCENTILE = 90.0
BMODE_SCALE_LEVEL = 0.58
"""B-mode frames are scaled for the network so that the 90th percentile of their image region
lands at 0.58, where the 90th percentile of fully developed (Rayleigh) speckle lands under the
envelope scaling the network was trained with (minimum..99.9th percentile). A frame's maximum or
99.5th percentile would let burned-in text, saturated reflectors or a few bright specular echoes
set the scale: on pydicom's echo cine, whose tissue is 30 dB below its brightest echoes, the
tissue then reached the network as near-black and came back as a flat grey haze."""


MIN_REGION_FRACTION = 0.1
"""Apart from the largest one, connected regions of non-background pixels smaller than this
fraction of the frame are annotations (burned-in text, toolbars, calibration marks and ECG labels
on the black around the image): they keep their input values."""


def image_region(grey: np.ndarray) -> np.ndarray:
    """(N, H, W) mask of the pixels that belong to the ultrasound image itself.

    Non-background pixels are grown by 2 pixels (so dark speckle grains do not split the image) and
    labelled; the largest region and any region of at least MIN_REGION_FRACTION of the frame are
    image. Within them, the non-background pixels and the dark grains a 2-pixel closing fills are
    denoised; the black around a sector and large anechoic areas are not.
    """
    import SimpleITK as sitk
    mask = np.zeros(grey.shape, dtype=bool)
    for i, g in enumerate(grey):
        content = g > BACKGROUND_GREY
        grown = sitk.BinaryDilate(sitk.GetImageFromArray(content.astype(np.uint8)), [2, 2])
        closed = sitk.GetArrayFromImage(sitk.BinaryErode(grown, [2, 2])).astype(bool) | content
        labels = sitk.GetArrayFromImage(sitk.ConnectedComponent(grown, True))
        sizes = np.bincount(labels[content], minlength=int(labels.max()) + 1)
        sizes[0] = 0
        keep = (sizes >= MIN_REGION_FRACTION * g.size) | (np.arange(sizes.size) == np.argmax(sizes))
        keep[0] = False
        mask[i] = keep[labels] & closed
    return mask


def bmode_scale(envelope: np.ndarray, grey: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (low, high) envelope levels for the network's [0, 1] range, shape (N, 1, 1) each."""
    lo = envelope.min(axis=(1, 2), keepdims=True)
    hi = np.empty_like(lo)
    for i, (e, g, m) in enumerate(zip(envelope, grey, image)):
        content = e[m & (g < 1.0)]
        hi[i] = (lo[i] + (np.percentile(content, BMODE_SCALE_PERCENTILE) - lo[i]) / BMODE_SCALE_LEVEL
                 if content.size else e.max())
    return lo, np.where(hi > lo, hi, lo + np.float32(1.0))  # constant frames: any span, they pass through


def restore_brightness(grey_out: np.ndarray, grey_in: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Match each frame's mean grey level over the image to the input's; keep the rest.

    `image` is image_region(grey_in). The background outside an ultrasound sector keeps its input
    values (denoising would otherwise bleed tissue into it) and does not drag the brightness match,
    which would shift the tissue of a mostly-background frame; annotations keep theirs too.
    """
    out = np.empty_like(grey_out)
    for i, (o, g, content) in enumerate(zip(grey_out, grey_in, image)):
        shift = float(g[content].mean() - o[content].mean()) if content.any() else 0.0
        out[i] = np.where(content, np.clip(o + shift, 0.0, 1.0), g)
    return out
