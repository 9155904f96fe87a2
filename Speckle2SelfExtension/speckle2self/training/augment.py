"""Training augmentation: lateral flips and small shift/scale/rotate.

Only left-right flips: an up-down flip would put the near field at the bottom, where real
attenuation and the point-spread function never put it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    enabled: bool = True
    max_shift: float = 0.05
    max_rotate_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    affine_probability: float = 0.5


def augment(batch: torch.Tensor, rng: np.random.Generator, aug: Augmentation) -> torch.Tensor:
    """Apply random flips and affine warps to a (B, 1, H, W) batch; parameters come from `rng`."""
    if not aug.enabled:
        return batch
    b = batch.shape[0]
    flips = rng.random(b) < 0.5
    warp = rng.random(b) < aug.affine_probability
    angle = np.deg2rad(rng.uniform(-aug.max_rotate_deg, aug.max_rotate_deg, b))
    scale = rng.uniform(*aug.scale_range, b)
    shift = rng.uniform(-aug.max_shift, aug.max_shift, (b, 2)) * 2
    if flips.any():
        idx = torch.from_numpy(np.flatnonzero(flips)).to(batch.device)
        batch = batch.clone()
        batch[idx] = batch[idx].flip(-1)
    if not warp.any():
        return batch
    theta = np.zeros((b, 2, 3), dtype=np.float32)
    for i in range(b):
        if warp[i]:
            c, s = math.cos(angle[i]) / scale[i], math.sin(angle[i]) / scale[i]
            theta[i] = [[c, -s, shift[i, 0]], [s, c, shift[i, 1]]]
        else:
            theta[i] = [[1, 0, 0], [0, 1, 0]]
    grid = F.affine_grid(torch.from_numpy(theta).to(batch), list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
