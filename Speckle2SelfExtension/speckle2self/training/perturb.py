"""Multi-scale perturbation (MSP): the views Speckle2Self trains on.

Down-sampling a speckle image and resizing it back to its grid mixes the contributions of
neighbouring scatterers differently at each scale: the speckle pattern changes from view to view
while anatomy larger than the resolution cell stays where it is.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def perturb(x: torch.Tensor, scale: float, mode: str = "bilinear") -> torch.Tensor:
    """up(down(x)) for a (N, C, H, W) batch; scale 1.0 returns x itself."""
    if scale == 1.0:
        return x
    h, w = x.shape[-2:]
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    smooth = mode in ("bilinear", "bicubic")
    down = F.interpolate(x, size=small, mode=mode, antialias=smooth,
                         **({"align_corners": False} if smooth else {}))
    return F.interpolate(down, size=(h, w), mode=mode, **({"align_corners": False} if smooth else {}))


def multiscale_views(x: torch.Tensor, scales: tuple[float, ...], mode: str = "bilinear") -> list[torch.Tensor]:
    """One perturbed view per scale, in the order of `scales`."""
    return [perturb(x, s, mode) for s in scales]
