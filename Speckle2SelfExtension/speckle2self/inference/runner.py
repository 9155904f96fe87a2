"""Running a loaded model on batches on one device: precision, tiling, out-of-memory back-off.

This is the only place that touches the accelerator. On GPU out-of-memory it halves the batch and
retries; at batch 1 it tiles; if even that fails it falls back to the CPU with a warning.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch

from ..networks.devices import cpu_has_native_bfloat16, resolve_device
from .options import check_precision
from ..networks.model_file import LoadedModel, clone_module
from .tiling import run_tiled

HALF_TOLERANCE = 2.0 / 255.0
"""Largest absolute output difference (outputs in [0, 1]) accepted for half precision vs float32."""

CPU_TILE = 2048
GPU_TILE = 1024
TILE_OVERLAP = 96


_CLONES: dict[tuple[str, str, str], torch.jit.ScriptModule] = {}


def _clone(model: LoadedModel, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.jit.ScriptModule:
    """The model on `device` in `dtype`, copied once and kept for the next call (the next cine, a
    stream's next geometry): copying and casting a TorchScript module costs about 0.1 s."""
    key = (model.sha256, str(device), str(dtype))
    if key not in _CLONES:
        if len(_CLONES) >= 4:
            _CLONES.clear()
        _CLONES[key] = clone_module(model.module, device, dtype)
    return _CLONES[key]


def automatic_precision(device: torch.device, eight_bit_output: bool = True) -> str:
    """The reduced precision tried first (kept only if the first batch agrees with float32):
    float16 on CUDA, bfloat16 on CPUs that compute it natively, float32 elsewhere.

    bfloat16 only for 8-bit results: its 8 significant bits step by 1/256 of the grey range near
    white, as fine as 8-bit output but coarse for float or 16-bit frames, which would come back
    posterised (about 130 distinct levels where float32 gives thousands)."""
    if device.type == "cuda":
        return "float16"
    if device.type == "cpu" and eight_bit_output and cpu_has_native_bfloat16():
        return "bfloat16"
    return "float32"


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (bool(oom) and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


class ModelRunner:
    """Runs `model` on normalised (N, H, W) float32 batches and returns numpy results; a batch size
    that once ran out of memory is remembered for the following batches."""

    def __init__(self, model: LoadedModel, device: str | torch.device = "auto", precision: str = "auto",
                 tile: int | None = None, eight_bit_output: bool = True) -> None:
        """`eight_bit_output`: whether results end as 8-bit grey levels (what "auto" may use, above)."""
        check_precision(precision)
        self.eight_bit_output = eight_bit_output
        self.device = resolve_device(device)
        self.model = model
        self.requested_precision = precision
        self.tile = tile
        self.notes: list[str] = []
        self.on_tile: Callable[[int, int], None] | None = None
        """Called as on_tile(tiles_done, tiles) while a batch runs tile by tile."""
        self._setup(self.device)

    def _setup(self, device: torch.device) -> None:
        self.device = device
        shared_cpu = device.type == "cpu" and self.requested_precision in ("auto", "float32")
        self.module = self.model.module if shared_cpu else _clone(self.model, device)
        want = self.requested_precision
        if want == "auto":
            want = automatic_precision(device, self.eight_bit_output)
        self.dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[want]
        self._reduced_checked = self.dtype == torch.float32 or self.requested_precision != "auto"
        if self.dtype != torch.float32:
            self.full = self.module
            self.module = _clone(self.model, device, self.dtype)
        self.tile_size = self.tile or (GPU_TILE if device.type != "cpu" else CPU_TILE)
        self.batch_limit: int | None = None

    def suit(self, eight_bit_output: bool) -> None:
        """Pick the automatic precision again for results of another depth: a stream's runner is
        made before its first frame arrives, and its frames may be finer than 8 bits."""
        if self.requested_precision == "auto" and eight_bit_output != self.eight_bit_output:
            self.eight_bit_output = eight_bit_output
            self._setup(self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return run_tiled(lambda t: self.module(t.to(self.dtype)).float(), x, self.tile_size, TILE_OVERLAP,
                             self.on_tile)

    def _check_reduced_precision(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Once: compare reduced precision with float32; keep float32 if they disagree beyond tolerance."""
        self._reduced_checked = True
        with torch.inference_mode():
            ref = run_tiled(lambda t: self.full(t), x, self.tile_size, TILE_OVERLAP)
        diff = float((ref - y).abs().max())
        if diff > HALF_TOLERANCE:
            self.notes.append(f"{self.dtype} differed by {diff:.4f} from float32; using float32")
            self.module, self.dtype = self.full, torch.float32
            return ref
        return y

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Denoise a (N, H, W) float32 batch in [0, 1]; returns (N, H, W) float32 in [0, 1]."""
        try:
            return self._run_with_backoff(batch)
        except RuntimeError as exc:
            if self.device.type == "cpu" or not is_out_of_memory(exc):
                raise
            warnings.warn(f"{self.device.type} ran out of memory even for one tile; continuing on the CPU",
                          RuntimeWarning, stacklevel=2)
            self.notes.append("fell back to CPU after out-of-memory")
            self._setup(torch.device("cpu"))
            return self._run_with_backoff(batch)

    def _run_with_backoff(self, batch: np.ndarray) -> np.ndarray:
        out, self.batch_limit = run_halving(self._run_once, batch, self._shrink_tile, self.batch_limit)
        return out

    def _shrink_tile(self) -> bool:
        if self.tile_size <= 256:
            return False
        self.tile_size //= 2
        return True

    def _run_once(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).unsqueeze(1).to(self.device)
        y = self._forward(x)
        if not self._reduced_checked:
            y = self._check_reduced_precision(x, y)
        return y.squeeze(1).float().cpu().numpy()


def run_halving(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
                shrink_tile: Callable[[], bool], limit: int | None = None) -> tuple[np.ndarray, int]:
    """Run `run` over `batch` in parts of at most `limit` frames; on out-of-memory halve the part
    size (then shrink tiles, then re-raise). Returns the results in order and the size that worked."""
    size = min(limit or len(batch), len(batch))
    outputs, start = [], 0
    while start < len(batch):
        part = batch[start:start + size]
        try:
            outputs.append(run(part))
            start += len(part)
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            _free_cache()
            if size > 1:
                size //= 2
            elif not shrink_tile():
                raise
    return np.concatenate(outputs), size


def _free_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
