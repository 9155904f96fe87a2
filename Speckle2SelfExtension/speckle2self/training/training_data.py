"""Training frames: noisy frames only, of any sizes, from any number of arrays or files.

Arrays are referenced, not copied, and files (speckle2self.io.LazyVolume) are decoded on demand,
so a large study is indexed, not loaded. Each sampled frame is put into the network's domain and
normalised exactly as inference does it. Frames are drawn uniformly over all frames, i.e. files
in proportion to their length.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..mapping.domains import grey_range, resolve_domain
from ..errors import InputError
from ..mapping.frames import MIN_SIDE, as_frame_stack
from ..mapping.log_mapping import DEFAULT_GRAIN_PX, LOG_DOMAIN

if TYPE_CHECKING:
    from .speckle_noise import SpeckleLaw


class TrainingFrames:
    """Index over every 2-D frame of `sources` ((rows, cols) or (frames, rows, cols) arrays, or LazyVolumes)."""

    def __init__(self, sources: Sequence, crop: int, domain: str = "auto", names: Sequence[str] | None = None,
                 network_input: dict | None = None) -> None:
        if len(sources) == 0:
            raise InputError("no training frames were given")
        self.names = list(names) if names is not None else [f"array {i}" for i in range(len(sources))]
        self.stacks: list = []
        self.domains: list[str] = []
        self._ranges: dict[int, tuple[float, float]] = {}
        self.index: list[tuple[int, int]] = []
        for i, (source, name) in enumerate(zip(sources, self.names)):
            stack = _checked_stack(source, name, crop)
            self.stacks.append(stack)
            self.domains.append(resolve_domain(domain, stack))
            self.index.extend((i, f) for f in range(stack.shape[0]))
        self.crop = crop
        self.network_input = dict(network_input or {"domain": LOG_DOMAIN, "grain_px": list(DEFAULT_GRAIN_PX)})
        if self.network_input.get("domain") != LOG_DOMAIN:
            raise InputError(f"network input domain must be {LOG_DOMAIN!r} (log-compressed grey levels), "
                             f"not {self.network_input.get('domain')!r}")
        self._log_maps: dict[int, object] = {}
        self._noise: dict[tuple[int, int], SpeckleLaw] = {}

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, positions: Sequence[int]) -> "TrainingFrames":
        """The same sources restricted to the frames at `positions` of this index."""
        view = copy.copy(self)
        view.index = [self.index[p] for p in positions]
        return view

    def split(self, fraction: float, seed: int) -> tuple["TrainingFrames", "TrainingFrames | None"]:
        """(training, held-out) frames; the held-out ones are chosen by `seed` and never trained on."""
        if not 0.0 <= fraction < 1.0:
            raise InputError(f"the validation fraction must be in [0, 1), got {fraction}")
        held = int(round(fraction * len(self)))
        if fraction > 0 and held == 0:
            held = 1
        if held == 0:
            return self, None
        if held >= len(self):
            raise InputError(f"{len(self)} frames are too few to hold out {fraction:.0%} for validation")
        order = np.random.default_rng(seed).permutation(len(self))
        return self.subset(sorted(order[held:])), self.subset(sorted(order[:held]))

    def frame(self, k: int) -> np.ndarray:
        """Frame k in the network's domain, normalised to [0, 1], float32."""
        s, f = self.index[k]
        x = self._finite_frame(s, f)
        return self._log_map(s).to_network(x[None])[0][0]

    def _finite_frame(self, s: int, f: int) -> np.ndarray:
        """Frame f of source s as float32, or an InputError naming the file and frame."""
        x = np.asarray(self.stacks[s][f], dtype=np.float32)
        if not np.isfinite(x).all():
            raise InputError(f"{self.names[s]}: frame {f} contains NaN or infinite values")
        return x

    def noise_params(self, k: int) -> SpeckleLaw:
        """Frame k's speckle strength, point-spread widths and display power on the network's grid (cached):
        what re-speckling (speckle2self.training.speckle_noise) must synthesise for it."""
        key = self.index[k]
        if key not in self._noise:
            from .speckle_noise import speckle_params
            self._noise[key] = speckle_params(self.frame(k), self._network_region(key[0]))
        return self._noise[key]

    def measured_noise(self) -> dict[tuple[int, int], SpeckleLaw]:
        """The speckle laws measured so far, keyed by (source, frame): what a caller may keep, so a
        resumed run does not measure them again (about a second a frame)."""
        return dict(self._noise)

    def use_noise(self, laws: dict[tuple[int, int], SpeckleLaw]) -> int:
        """Take speckle laws measured before for these sources; keys that are not frames of this
        set are ignored. Returns how many were taken."""
        known = set(self.index)
        taken = {tuple(key): law for key, law in laws.items() if tuple(key) in known}
        self._noise.update(taken)
        return len(taken)

    def _network_region(self, s: int) -> np.ndarray:
        mapping = self._log_map(s)
        from ..mapping.log_mapping import resize
        return resize(mapping.region[None].astype(np.float32), mapping.resampling.size)[0] > 0.5

    def _log_map(self, s: int):
        """Source s's mapping to a log-domain network: the same as inference uses (scan region, grain)."""
        if s not in self._log_maps:
            from ..mapping.domains import DEFAULT_DYNAMIC_RANGE_DB
            from ..mapping.log_mapping import LogMapping
            from ..mapping.scan_region import sampled_frames
            stack = self.stacks[s]
            sample = np.stack([self._finite_frame(s, int(i)) for i in sampled_frames(stack.shape[0], 8)])
            grey = self._grey_range(s) if self.domains[s] == "bmode" else (0.0, 1.0)
            self._log_maps[s] = LogMapping(sample, self.domains[s], self.network_input, DEFAULT_DYNAMIC_RANGE_DB, grey)
        return self._log_maps[s]

    def _grey_range(self, s: int) -> tuple[float, float]:
        if s not in self._ranges:
            self._ranges[s] = grey_range(np.asarray(self.stacks[s]))
        return self._ranges[s]

    def summary(self) -> dict:
        """Counts and frame sizes only: no names, paths or header fields (no patient identifiers)."""
        used = sorted({s for s, _ in self.index})
        shapes = sorted({tuple(self.stacks[s].shape[1:]) for s in used})
        return {"arrays": len(used), "frames": len(self), "frame_shapes": [list(s) for s in shapes[:20]],
                "domains": sorted({self.domains[s] for s in used})}

    def sample_crops(self, rng: np.random.Generator, batch: int, frames: list[int] | None = None) -> np.ndarray:
        """(batch, crop, crop) random crops of uniformly chosen frames (their indices appended to
        `frames` when a list is given)."""
        out = np.empty((batch, self.crop, self.crop), dtype=np.float32)
        for b in range(batch):
            k = int(rng.integers(len(self)))
            if frames is not None:
                frames.append(k)
            frame = _at_least(self.frame(k), self.crop)
            r = int(rng.integers(frame.shape[0] - self.crop + 1))
            c = int(rng.integers(frame.shape[1] - self.crop + 1))
            out[b] = frame[r:r + self.crop, c:c + self.crop]
        return out


def _at_least(frame: np.ndarray, side: int) -> np.ndarray:
    """Reflect-pad a frame that resampling for the network made smaller than the crop."""
    pad = [(0, max(0, side - n)) for n in frame.shape]
    return np.pad(frame, pad, mode="reflect") if any(p[1] for p in pad) else frame


def _checked_stack(source, name: str, crop: int):
    if isinstance(source, np.ndarray):
        try:
            stack, _ = as_frame_stack(source)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from exc
    else:
        stack = source
        if stack.shape[0] == 0 or min(stack.shape[1:]) < MIN_SIDE:
            raise InputError(f"{name}: no usable frames (shape {stack.shape})")
    if min(stack.shape[1:]) < crop:
        raise InputError(f"{name}: frames of {stack.shape[1]}×{stack.shape[2]} pixels are smaller "
                         f"than the {crop}-pixel training crop; choose a smaller crop")
    return stack
