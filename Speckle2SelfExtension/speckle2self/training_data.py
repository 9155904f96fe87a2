"""Training frames: noisy frames only, of any sizes, from any number of arrays.

Arrays are referenced, not copied (a memory-mapped cine stays on disk); each sampled frame is put
into the network's domain and normalised the same way inference does it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .domains import bmode_to_envelope, grey_range, resolve_domain
from .errors import InputError
from .frames import as_frame_stack, normalise


class TrainingFrames:
    """Index over every 2-D frame of `arrays` ((rows, cols) or (frames, rows, cols) each)."""

    def __init__(self, arrays: Sequence[np.ndarray], crop: int, domain: str = "auto",
                 names: Sequence[str] | None = None) -> None:
        if len(arrays) == 0:
            raise InputError("no training frames were given")
        names = list(names) if names is not None else [f"array {i}" for i in range(len(arrays))]
        self.stacks: list[np.ndarray] = []
        self.domains: list[str] = []
        self.ranges: list[tuple[float, float]] = []
        self.index: list[tuple[int, int]] = []
        for i, (arr, name) in enumerate(zip(arrays, names)):
            try:
                stack, _ = as_frame_stack(arr)
            except InputError as exc:
                raise InputError(f"{name}: {exc}") from exc
            if min(stack.shape[1:]) < crop:
                raise InputError(f"{name}: frames of {stack.shape[1]}×{stack.shape[2]} pixels are smaller "
                                 f"than the {crop}-pixel training crop; choose a smaller crop")
            self.stacks.append(stack)
            self.domains.append(resolve_domain(domain, stack))
            self.ranges.append(grey_range(stack))
            self.index.extend((i, f) for f in range(stack.shape[0]))
        self.crop = crop

    def __len__(self) -> int:
        return len(self.index)

    def frame(self, k: int) -> np.ndarray:
        """Frame k in the network's domain, normalised to [0, 1], float32."""
        s, f = self.index[k]
        x = np.asarray(self.stacks[s][f], dtype=np.float32)
        if self.domains[s] == "bmode":
            lo, hi = self.ranges[s]
            x = bmode_to_envelope((x - lo) / max(hi - lo, 1e-12))
        return normalise(x[None])[0][0]

    def summary(self) -> dict:
        shapes = sorted({tuple(s.shape[1:]) for s in self.stacks})
        return {"arrays": len(self.stacks), "frames": len(self), "frame_shapes": [list(s) for s in shapes[:20]],
                "domains": sorted(set(self.domains))}

    def sample_crops(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """(batch, crop, crop) random crops of uniformly chosen frames."""
        out = np.empty((batch, self.crop, self.crop), dtype=np.float32)
        for b in range(batch):
            frame = self.frame(int(rng.integers(len(self))))
            r = int(rng.integers(frame.shape[0] - self.crop + 1))
            c = int(rng.integers(frame.shape[1] - self.crop + 1))
            out[b] = frame[r:r + self.crop, c:c + self.crop]
        return out
