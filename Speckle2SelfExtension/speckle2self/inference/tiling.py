"""Overlapping tiles with linear blending, for frames too large to run in one piece.

The network has no normalisation layers, so a tile's output depends only on its neighbourhood;
with an overlap wider than the network's effective receptive field the blended result equals
whole-frame inference away from the frame border (see Testing/test_inference.py).
"""
from __future__ import annotations

from typing import Callable

import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length) with at least `overlap` shared pixels."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(length: int, start: int, size: int, overlap: int, device, dtype) -> torch.Tensor:
    w = torch.ones(size, device=device, dtype=dtype)
    ramp = torch.linspace(0.0, 1.0, overlap + 2, device=device, dtype=dtype)[1:-1]
    if start > 0 and overlap > 0:
        w[:overlap] = ramp
    if start + size < length and overlap > 0:
        w[-overlap:] = ramp.flip(0)
    return w


def run_tiled(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int,
              overlap: int, on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Apply `run` to (N, 1, H, W) `x` tile by tile and blend the tiles' outputs; `on_tile(done, total)`
    follows the tiles (a large frame can take minutes)."""
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return run(x)
    overlap = min(overlap, tile // 2)
    out = torch.zeros_like(x, dtype=torch.float32)
    weight = torch.zeros((1, 1, h, w), device=x.device, dtype=torch.float32)
    rows, cols = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    done = 0
    for r in rows:
        th = min(tile, h)
        wr = _ramp(h, r, th, overlap, x.device, torch.float32)
        for c in cols:
            tw = min(tile, w)
            wc = _ramp(w, c, tw, overlap, x.device, torch.float32)
            wgt = (wr[:, None] * wc[None, :])[None, None]
            out[..., r:r + th, c:c + tw] += run(x[..., r:r + th, c:c + tw]).float() * wgt
            weight[..., r:r + th, c:c + tw] += wgt
            done += 1
            if on_tile is not None:
                on_tile(done, len(rows) * len(cols))
    return out / weight
