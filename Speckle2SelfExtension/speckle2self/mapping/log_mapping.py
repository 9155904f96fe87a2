"""How an input reaches a log-domain model and comes back: grey levels, scan region, grain size.

A log-domain model (card input domain "log") despeckles log-compressed grey levels in [0, 1], the
form in which clinicians see ultrasound. In that domain speckle is close to additive and of one
strength whatever the echo level, and a filter that keeps the local mean keeps the tissue's
brightness and its contrast to dark regions in dB; averaging in the linear amplitude domain and
compressing afterwards loses 4-5 dB of cyst contrast (the log-Rayleigh bias).

- B-mode input goes in as its own grey levels (0..255 for 8-bit, else the whole input's range).
  Only the scan region (speckle2self.mapping.scan_region) is denoised, every pixel of it; pixels outside
  it come back bit for bit. Saturated pixels inside it that are graphics (calipers, markers, white
  text drawn over the image: speckle2self.mapping.saturation) keep their values and are replaced by
  the nearest tissue before the network sees the frame, so they do not bleed into the tissue
  around them; clipped speckle grains of bright tissue are denoised with it. So are graphics drawn in
  one flat grey below white (text, depth dots: speckle2self.mapping.palette_graphics).
- Envelope input is log-compressed per frame over `dynamic_range_db` (0 dB at 6 dB above the
  frame's 99th percentile, as a scanner's display map puts it), denoised, expanded back, and
  scaled so that each frame's mean amplitude is the input's. Echoes above 0 dB (a wire target, a
  specular wall: fully developed speckle exceeds it with a probability near 1e-8) keep their
  values, as saturated B-mode pixels do, and do not set the scale.
- Grain: the frame is resampled so that its speckle grain (speckle2self.mapping.grain) is the size the
  model was trained at, denoised, and resampled back; a finer grain than the model's is left as
  it is. `grain_px` overrides the measurement.
- Passes: a card's input "passes" (default 1) runs the network that many times, each on its own
  output, before the mapping back: a self-supervised network stops short of the smoothing a clean
  target would ask for, and a second pass takes what the first left (speckle2self.inference.frame_pipeline).
- Edges: the frame's strongest edges are moved towards the input's 7×7 median, which keeps a step
  where it is (speckle2self.mapping.edge_restore); a card's input "edge_quantile" of 1 turns it off.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .edge_restore import EDGE_QUANTILE, restore_edges
from .grain import grain_size
from .local_mean import LOCAL_MEAN_RADIUS, keep_local_mean
from .palette_graphics import palette_graphics, palette_of
from .resample import Resize
from .saturation import burned_in
from .scan_region import nearest_inside, nearest_inside_without, sampled_frames, scan_region

LOG_DOMAIN = "log"
DEFAULT_GRAIN_PX = (0.9, 0.9)
"""The speckle half width (pixels, speckle2self.mapping.grain) of a model trained without one: the finest
of the field-simulated training conditions. (The bundled model's card says 8 px: it works on every
frame at the frame's own resolution.)"""
ENVELOPE_HEADROOM_DB = 6.0
MIN_RESAMPLE = 0.25
"""The most a frame is shrunk for the network (a grain four times the model's)."""
NO_RESAMPLE_ABOVE = 0.9
"""Factors closer to 1 than this are not worth a resampling blur: the frame goes in as it is."""
MIN_NETWORK_SIDE = 16
MAX_PASSES = 4
"""A card's "passes" (how many times the network runs, each time on its own output) is at most this."""
GRAIN_FRAMES = 4
"""Frames the grain is measured on (spread over the cine): enough for a stable estimate."""
MAX_ANISOTROPY = 3.0
"""Axial and lateral grain widths are each held within this factor of the other: a measured
width beyond it comes from structure (a vessel wall, a Doppler box), not from speckle."""


def drawn_graphics(grey: np.ndarray, region: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(N, H, W) mask of the graphics drawn over B-mode `grey` frames in [0, 1] inside `region`: saturated
    pixels that are marks rather than clipped speckle grains, and strokes of a `palette` grey
    (palette_graphics.palette_of). They keep their values and are hidden from the network."""
    return burned_in((grey >= 1.0) & region, grey) | palette_graphics(grey, region, palette)


@dataclass(frozen=True)
class Resampling:
    """Per-axis factors from the frame's grid to the network's, and the network's frame size."""

    factors: tuple[float, float]
    size: tuple[int, int]

    @property
    def identity(self) -> bool:
        return self.factors == (1.0, 1.0)


def resampling_for(grain: tuple[float, float], target: tuple[float, float], shape: tuple[int, int]) -> Resampling:
    """Shrink each axis so the measured grain becomes the model's; never enlarge."""
    axial, lateral = (max(float(g), 1e-3) for g in grain)
    axial, lateral = min(axial, MAX_ANISOTROPY * lateral), min(lateral, MAX_ANISOTROPY * axial)
    factors = []
    for measured, wanted, side in zip((axial, lateral), target, shape):
        f = min(1.0, max(MIN_RESAMPLE, float(wanted) / measured, MIN_NETWORK_SIDE / side))
        factors.append(1.0 if f >= NO_RESAMPLE_ABOVE else f)
    size = tuple(max(MIN_NETWORK_SIDE, int(round(s * f))) if f < 1.0 else s for s, f in zip(shape, factors))
    return Resampling((factors[0], factors[1]), (size[0], size[1]))


def resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) float32 resized to `size` (bilinear, antialiased when shrinking)."""
    import torch
    import torch.nn.functional as F
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[:, None]
    shrink = size[0] < frames.shape[-2] or size[1] < frames.shape[-1]
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return y[:, 0].numpy()


def envelope_to_log(envelope: np.ndarray, dynamic_range_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame log compression to [0, 1]; returns the grey levels and each frame's 0 dB level."""
    ref = np.percentile(envelope, 99.0, axis=(1, 2), keepdims=True) * 10 ** (ENVELOPE_HEADROOM_DB / 20)
    ref = np.where(ref > 0, ref, np.maximum(envelope.max(axis=(1, 2), keepdims=True), 1e-30)).astype(np.float32)
    floor = ref * 10 ** (-dynamic_range_db / 20)
    grey = 1.0 + 20.0 * np.log10(np.maximum(envelope, floor) / ref) / dynamic_range_db
    return np.clip(grey, 0.0, 1.0).astype(np.float32), ref


def log_to_envelope(grey: np.ndarray, ref: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    return (ref * np.power(10.0, (grey - 1.0) * dynamic_range_db / 20.0)).astype(np.float32)


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-frame mean over `mask` (N, 1, 1); the whole frame's where the mask is empty."""
    count = mask.sum(axis=(1, 2), keepdims=True)
    total = np.where(mask, x, 0).sum(axis=(1, 2), keepdims=True, dtype=np.float64)
    return np.where(count > 0, total / np.maximum(count, 1), x.mean(axis=(1, 2), keepdims=True, dtype=np.float64))


class LogMapping:
    """Prepared once per input (region, fill, grain); maps each chunk to the network and back."""

    def __init__(self, stack: np.ndarray, domain: str, card_input: dict, dynamic_range_db: float,
                 grey_range: tuple[float, float] = (0.0, 1.0), region: np.ndarray | None = None,
                 grain_px: tuple[float, float] | None = None) -> None:
        self.domain = domain
        self._lut = None
        self.dynamic_range_db = float(dynamic_range_db)
        self.lo, self.hi = grey_range
        shape = tuple(stack.shape[1:])
        if region is not None and tuple(np.shape(region)) != shape:
            raise InputError(f"region has shape {np.shape(region)}; the frames are {shape[0]}×{shape[1]}")
        frames = np.asarray(stack[sampled_frames(stack.shape[0])])  # B-mode: straight to grey, no float copy
        if domain == "envelope":
            frames = frames.astype(np.float32, copy=False)
        # Envelope values below zero are an offset, not physics: shifted up before compression.
        self.offset = min(float(frames.min()), 0.0) if domain == "envelope" else 0.0
        self._lut = self._grey_table(stack.dtype)
        sample = self._grey(frames)[0]
        del frames
        bounds = None if region is None else np.asarray(region, dtype=bool)
        if domain == "bmode":
            self.region = scan_region(sample, bounds)
        else:
            self.region = np.ones(shape, dtype=bool) if bounds is None else bounds
        no_palette = np.zeros(0, np.float32)
        self.palette = palette_of(sample[:GRAIN_FRAMES], self.region) if domain == "bmode" else no_palette
        self.fill = nearest_inside(self.region)
        self._fill_flat = _flat_index(self.fill)
        self._fill_identity = bool(self.region.all())
        target = tuple(float(v) for v in card_input.get("grain_px", DEFAULT_GRAIN_PX))
        measured = grain_px if grain_px is not None else grain_size(sample[:GRAIN_FRAMES], self.region)
        self.grain = (float(measured[0]), float(measured[1]))
        self.resampling = resampling_for(self.grain, target, shape)
        self._to_network_size = Resize(shape, self.resampling.size)
        self._to_frame_size = Resize(self.resampling.size, shape)
        self.local_mean_radius = int(card_input.get("local_mean_radius", LOCAL_MEAN_RADIUS))
        self.edge_quantile = float(card_input.get("edge_quantile", EDGE_QUANTILE))
        self.passes = int(card_input.get("passes", 1))
        if not 1 <= self.passes <= MAX_PASSES:
            raise InputError(f"the model card's passes is {self.passes}; it must be 1 to {MAX_PASSES}")
        if not 0.0 <= self.edge_quantile <= 1.0:
            raise InputError(f"the model card's edge_quantile is {self.edge_quantile}; it must be within 0..1 "
                             "(1 turns edge restoration off)")
        self.network_grain = tuple(g * n / f for g, n, f in zip(self.grain, self.resampling.size, shape))

    def _grey(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Grey levels in [0, 1] (and, for envelope, each frame's 0 dB level)."""
        if self.domain == "bmode":
            if self._lut is not None and x.dtype == np.uint8:
                return self._lut[x], None  # fancy indexing: no int64 copy of the indices (np.take makes one)
            grey = np.subtract(x, np.float32(self.lo), dtype=np.float32)
            grey /= np.float32(max(self.hi - self.lo, 1e-12))
            return np.clip(grey, 0.0, 1.0, out=grey), None
        return envelope_to_log(np.asarray(x, dtype=np.float32) - self.offset, self.dynamic_range_db)

    def _grey_table(self, dtype: np.dtype) -> np.ndarray | None:
        """For 8-bit B-mode, the grey level of each of the 256 values: one lookup per pixel."""
        if self.domain != "bmode" or dtype != np.uint8:
            return None
        return self._grey(np.arange(256, dtype=np.float32))[0]

    def to_network(self, chunk: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
        """The network's input (N, h, w) in [0, 1] and what from_network needs to map back.

        `keep` marks pixels to return unchanged and to hide from the network (colour, markers).
        """
        grey, ref = self._grey(chunk)
        if self.domain == "bmode":
            kept = drawn_graphics(grey, self.region, self.palette)
        else:
            kept = (grey >= 1.0) & self.region  # echoes above 0 dB (wires, specular walls)
        blank = grey.max(axis=(1, 2)) == grey.min(axis=(1, 2))
        kept[blank] = True  # a blank frame in a cine passes through
        if keep is not None:
            kept = kept | (keep & self.region)
        filled = self._filled(grey, kept)
        net = self._to_network_size(filled)
        saved = {"grey": grey, "ref": ref, "kept": kept, "filled": filled, "network_input": net}
        if self.domain == "envelope":
            saved["input"] = np.asarray(chunk, dtype=np.float32)
        return net, saved

    def _filled(self, grey: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """Grey frames with everything outside the region and every kept pixel replaced by the
        nearest tissue (one gather per frame)."""
        hidden = kept.reshape(len(kept), -1).any(axis=1)
        if self._fill_identity and not hidden.any():
            return grey
        flat = grey.reshape(len(grey), -1)
        filled = np.take(flat, self._fill_flat, axis=1)
        for i in np.nonzero(hidden)[0]:
            fill = nearest_inside_without(self.region, self.fill, kept[i])
            filled[i] = np.take(flat[i], _flat_index(fill))
        return filled.reshape(grey.shape)

    def unchanged(self, saved: dict) -> np.ndarray:
        """(N, H, W) mask of the pixels that must come back exactly as they went in."""
        return saved["kept"] | ~self.region

    def from_network(self, y: np.ndarray, saved: dict) -> np.ndarray:
        """Network output back to the input's units, full size."""
        y = keep_local_mean(np.asarray(y, dtype=np.float32), saved["network_input"], self.local_mean_radius,
                            self.network_grain)
        grey, kept = saved["grey"], saved["kept"]
        out = restore_edges(self._to_frame_size(np.clip(y, 0.0, 1.0)), saved["filled"], self.region & ~kept,
                            self.edge_quantile)
        if self.domain == "bmode":
            return self._bmode_back(out, grey, kept)
        env = log_to_envelope(out, saved["ref"], self.dynamic_range_db)
        source = saved["input"] - self.offset
        tissue = ~kept
        gain = (_masked_mean(source, tissue) / np.maximum(_masked_mean(env, tissue), 1e-30)).astype(np.float32)
        low, high = source.min(axis=(1, 2), keepdims=True), source.max(axis=(1, 2), keepdims=True)
        return np.clip(env * gain, low, high) + self.offset

    def _bmode_back(self, out: np.ndarray, grey: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """Each frame's tissue mean matched to the input's; everything else is the input's grey."""
        tissue = self.region & ~kept
        count = tissue.sum(axis=(1, 2))
        shift = (_masked_sum(grey, tissue) - _masked_sum(out, tissue)) / np.maximum(count, 1)
        out += shift.astype(np.float32)[:, None, None]
        np.clip(out, 0.0, 1.0, out=out)
        result = np.where(tissue, out, grey)
        result *= np.float32(self.hi - self.lo)
        result += np.float32(self.lo)
        return result


def _masked_sum(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-frame sum of `values` where `mask` is set, accumulated in float64."""
    return np.einsum("nij,nij->n", values, mask, dtype=np.float64)


def _flat_index(fill: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(rows, cols) index maps as one index into the flattened frame."""
    rows, cols = fill
    return (rows.astype(np.intp) * rows.shape[1] + cols).ravel()
