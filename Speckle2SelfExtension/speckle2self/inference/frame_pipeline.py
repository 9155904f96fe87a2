"""Batches of frames through a prepared mapping and model: the per-frame work of denoise() and of
the live path (speckle2self.live.denoiser), so both run the same code."""
from __future__ import annotations

from typing import Any

import numpy as np

from .output_checks import in_input_range, run_checked, value_range
from .runner import ModelRunner


class FramePipeline:
    """What denoise() prepares once per cine, and a live stream once per frame geometry.

    It holds the model on its device with its precision chosen (a ModelRunner) and the mapping
    prepared for one input (scan region, grain, fill map: speckle2self.mapping.log_mapping). Each call to
    `run` then costs the network plus a few milliseconds of mapping per frame.
    """

    def __init__(self, runner: ModelRunner, mapping: Any, frame_shape: tuple[int, int], dtype: np.dtype) -> None:
        self.runner = runner
        self.mapping = mapping
        self.frame_shape = tuple(frame_shape)
        self.dtype = np.dtype(dtype)

    @property
    def device(self):
        return self.runner.device

    def fits(self, stack: np.ndarray) -> bool:
        """Whether frames of this stack's size and type can reuse this preparation."""
        return tuple(stack.shape[-2:]) == self.frame_shape and stack.dtype == self.dtype

    def run(self, chunk: np.ndarray, keep: np.ndarray | None = None, out: np.ndarray | None = None,
            bounds: tuple | None = None) -> np.ndarray:
        """Denoise a (N, rows, cols) batch of the prepared geometry into `out` (or a new array).

        `keep` ((N, rows, cols) bool) marks pixels that come back unchanged and that the network
        does not see; pixels outside the scan region come back bit for bit. The network's output
        is checked (speckle2self.inference.output_checks) and the result kept inside `bounds`, the input's
        value range (default: this batch's).
        """
        norm, saved = self.mapping.to_network(chunk, keep)
        out = np.empty(chunk.shape, dtype=chunk.dtype) if out is None else out
        y = run_checked(self.runner.run, norm, self.runner.model.path)
        for _ in range(self.mapping.passes - 1):  # the card's passes: the network again on its own output
            y = run_checked(self.runner.run, np.ascontiguousarray(np.clip(y, 0.0, 1.0), dtype=np.float32),
                            self.runner.model.path)
        bounds = value_range(chunk) if bounds is None else bounds
        out[...] = in_input_range(self.mapping.from_network(y, saved), chunk.dtype, bounds)
        unchanged = self.mapping.unchanged(saved)
        if unchanged is not None:
            np.copyto(out, chunk, where=unchanged)
        return out
