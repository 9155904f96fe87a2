"""Bilinear resizing of frame stacks as a few weighted gathers per axis, prepared once per geometry.

The log-domain mapping resizes every frame twice (to the model's grain and back). torch's
interpolate does the same arithmetic, but on a busy 2-core machine its small multi-threaded calls
stalled for 10-15 ms per frame; here each axis is a fixed set of taps (indices and weights taken
from torch's own bilinear, antialiased-when-shrinking kernel, so the results agree to float
rounding) applied with numpy on one thread: about 1 ms per 512² frame.
"""
from __future__ import annotations

import numpy as np


def axis_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (taps, n_out): output j = Σ_k weights[k, j] · input[indices[k, j]].

    The kernel is read off torch's bilinear interpolation (align_corners=False, antialiased when
    shrinking) by resizing unit impulses.
    """
    import torch
    import torch.nn.functional as F
    impulses = torch.eye(n_in, dtype=torch.float64)[:, None, None, :]
    with torch.no_grad():
        matrix = F.interpolate(impulses, size=(1, n_out), mode="bilinear", align_corners=False,
                               antialias=n_out < n_in)[:, 0, 0, :].numpy()  # (n_in, n_out)
    taps = max(1, int((matrix != 0).sum(axis=0).max()))
    order = np.argsort(matrix == 0, axis=0, kind="stable")[:taps]  # each column's non-zero rows first
    weights = np.take_along_axis(matrix, order, axis=0)
    return order.astype(np.intp), weights.astype(np.float32)


class Resize:
    """Resizes (N, H, W) float32 stacks from one frame size to another; identity when equal."""

    def __init__(self, size_in: tuple[int, int], size_out: tuple[int, int]) -> None:
        self.size_in, self.size_out = tuple(size_in), tuple(size_out)
        self._rows = axis_taps(size_in[0], size_out[0]) if size_in[0] != size_out[0] else None
        self._cols = axis_taps(size_in[1], size_out[1]) if size_in[1] != size_out[1] else None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = np.asarray(frames, dtype=np.float32)
        if self._cols is not None:
            out = _apply(out, *self._cols, axis=2)
        if self._rows is not None:
            out = _apply(out, *self._rows, axis=1)
        return out


def _apply(x: np.ndarray, indices: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    shape = [1, 1, 1]
    shape[axis] = -1
    out = np.take(x, indices[0], axis=axis)
    out *= weights[0].reshape(shape)
    for idx, w in zip(indices[1:], weights[1:]):
        out += np.take(x, idx, axis=axis) * w.reshape(shape)
    return out
