"""denoise(): the one function behind the Denoise button, the console and the command line."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..mapping.domains import DEFAULT_DYNAMIC_RANGE_DB, grey_range, resolve_domain
from ..errors import Cancelled, InputError
from .frame_pipeline import FramePipeline
from ..mapping.frames import as_frame_stack, rescale_for
from ..mapping.log_mapping import LogMapping
from ..networks.model_file import LoadedModel, load_model
from .options import check_dynamic_range, check_run_options
from .output_checks import in_input_range, run_checked, value_range
from .runner import ModelRunner

ProgressCallback = Callable[[int, int], None]
"""Called as progress(frames_done, frames_total) after every batch; while a frame too large for one
piece runs tile by tile, frames_done also takes fractional values (tiles done / tiles)."""

_MODEL_CACHE: dict[tuple[str, float, int], LoadedModel] = {}


def get_model(model: LoadedModel | str | os.PathLike | None) -> LoadedModel:
    """A verified model; files are cached by path, size and modification time."""
    if isinstance(model, LoadedModel):
        return model
    from ..networks.model_file import bundled_model_path
    path = Path(model) if model is not None else bundled_model_path()
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime, st.st_size)
    except OSError:
        return load_model(path)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = load_model(path)
    return _MODEL_CACHE[key]


def default_batch_size(device: torch.device, rows: int, cols: int) -> int:
    """On a CPU one frame at a time is fastest (measured with the bundled model, 512² B-mode on 2
    cores: 27 frames/s at batch 1, 24 at 2, 17 at 8: a frame's feature maps stay in cache); a GPU
    gets about 16 megapixels per batch."""
    if device.type == "cpu":
        return 1
    return int(max(1, min(64, (16 * 2 ** 20) // (rows * cols))))


def denoise(frames: np.ndarray, model: LoadedModel | str | os.PathLike | None = None, device: str = "auto",
            batch_size: int | None = None, domain: str = "auto", progress: ProgressCallback | None = None,
            should_stop: Callable[[], bool] | None = None, *, precision: str = "auto",
            tile_size: int | None = None, dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB,
            out: np.ndarray | None = None, region: np.ndarray | None = None,
            keep: np.ndarray | None = None, grain_px: tuple[float, float] | None = None) -> np.ndarray:
    """Denoise a 2-D frame or a (frames, rows, cols) stack; same shape and dtype back.

    Values come back in the input's range (envelope: each frame's mean amplitude; B-mode: the grey
    range, mapped as documented in speckle2self.mapping.log_mapping). Frames are processed a batch at a time
    and written into the output, so peak memory stays near input + output + one batch; a
    np.memmap input is read a batch at a time. `should_stop()` is checked before every batch and
    raises Cancelled. The input is never modified. `out` may supply the output array (e.g. a
    memory map) of the same shape and dtype. `region` (rows × cols, bool) bounds the part of a
    B-mode image that is denoised (e.g. a DICOM file's ultrasound regions); pixels outside the scan
    region come back bit for bit. `keep` (frames × rows × cols or rows × cols, bool) marks pixels
    that come back unchanged and that the network does not see (colour Doppler, markers), so they do
    not bleed into the tissue around them. `grain_px` (axial, lateral speckle half widths in pixels)
    overrides the grain measured from the data (log-domain models only). Values that vary by less
    than half their magnitude (a large offset) or are all below 1e-30 are shifted and scaled to 0..1
    in float64 and mapped back after (speckle2self.mapping.frames.rescale_for): float32 would flatten them.
    """
    check_run_options(model=model, batch_size=batch_size, tile_size=tile_size, precision=precision, domain=domain,
                      device=device, dynamic_range_db=dynamic_range_db, grain_px=grain_px)
    stack, single = as_frame_stack(frames)
    result = _output_array(out, stack)
    bounds = value_range(stack)
    rescale = None if stack.dtype.itemsize == 1 else rescale_for(*bounds)
    if rescale is not None:  # an offset or tiny values: denoised as 0..1, mapped back in float64
        inner = denoise(rescale.forward(stack), model, device, batch_size, resolve_domain(domain, stack), progress,
                        should_stop, precision=precision, tile_size=tile_size, dynamic_range_db=dynamic_range_db,
                        region=region, keep=keep, grain_px=grain_px)
        result[...] = in_input_range(rescale.back(inner).reshape(stack.shape), stack.dtype, bounds)
        return result[0] if single else result
    pipeline = _prepare(stack, model, device, domain, precision, tile_size, dynamic_range_db, region, grain_px)
    n, rows, cols = stack.shape
    bs = int(batch_size) if batch_size is not None else default_batch_size(pipeline.device, rows, cols)
    if bs < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    done = 0
    if progress is not None:
        pipeline.runner.on_tile = lambda tiles_done, tiles: progress(done + len(chunk) * tiles_done / tiles, n)
    while done < n:
        if should_stop is not None and should_stop():
            raise Cancelled(f"denoising stopped by request after {done} of {n} frames")
        chunk = stack[done:done + bs]
        pipeline.run(chunk, _keep_for(keep, stack.shape, done, len(chunk)), out=result[done:done + len(chunk)],
                     bounds=bounds)
        done += len(chunk)
        if progress is not None:
            progress(done, n)
    return result[0] if single else result


def prepare(frames: np.ndarray, model: LoadedModel | str | os.PathLike | None = None, device: str = "auto",
            domain: str = "auto", *, precision: str = "auto", tile_size: int | None = None,
            dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB, region: np.ndarray | None = None,
            grain_px: tuple[float, float] | None = None, runner: ModelRunner | None = None) -> FramePipeline:
    """Everything denoise() works out once per cine, measured on `frames`, ready for batch after batch.

    A live stream calls this once per frame geometry and then `pipeline.run(batch)` per frame:
    the scan region, grain and fill map are not measured again, and a `runner` (model on its
    device, precision checked) can be shared between geometries. Options as for denoise().
    """
    stack, _single = as_frame_stack(frames)
    return _prepare(stack, runner.model if runner is not None else model, device, domain, precision, tile_size,
                    dynamic_range_db, region, grain_px, runner)


def _prepare(stack: np.ndarray, model, device: str, domain: str, precision: str, tile_size: int | None,
             dynamic_range_db: float, region: np.ndarray | None, grain_px: tuple[float, float] | None,
             runner: ModelRunner | None = None) -> FramePipeline:
    loaded = get_model(model)
    mapping = _mapping_for(stack, domain, dynamic_range_db, loaded, region, grain_px)
    eight_bit = stack.dtype.itemsize == 1  # uint8 or int8: as_frame_stack admits no other 1-byte type
    if runner is None:
        runner = ModelRunner(loaded, device, precision, tile_size, eight_bit)
    else:
        runner.suit(eight_bit)
    return FramePipeline(runner, mapping, stack.shape[1:], stack.dtype)


def _mapping_for(stack: np.ndarray, domain: str, dynamic_range_db: float, model: LoadedModel,
                 region: np.ndarray | None, grain_px: tuple[float, float] | None) -> LogMapping:
    chosen = resolve_domain(domain, stack)
    dynamic_range_db = check_dynamic_range(dynamic_range_db)
    grey = grey_range(stack) if chosen == "bmode" else (0.0, 1.0)
    return LogMapping(stack, chosen, model.card["input"], dynamic_range_db, grey, region, grain_px)


def _keep_for(keep: np.ndarray | None, shape: tuple, start: int, count: int) -> np.ndarray | None:
    if keep is None:
        return None
    keep = np.asarray(keep, dtype=bool)
    if keep.shape == tuple(shape[1:]):
        return np.broadcast_to(keep, (count,) + keep.shape)
    if keep.shape != tuple(shape):
        raise InputError(f"keep has shape {keep.shape}; expected {tuple(shape)} or {tuple(shape[1:])}")
    return keep[start:start + count]


def _output_array(out: object, stack: np.ndarray) -> np.ndarray:
    """Where the result goes: `out` if it is a writable array of the input's shape and dtype that
    does not overlap the input, else a new array; anything else is an InputError before any work."""
    if out is None:
        return np.empty(stack.shape, dtype=stack.dtype)
    if not isinstance(out, np.ndarray):
        raise InputError(f"out must be a NumPy array (or np.memmap) of shape {stack.shape} and dtype {stack.dtype}, "
                         f"not {type(out).__name__}")
    if not out.flags.writeable:
        raise InputError("out is read-only (a memory map opened with mode 'r'?); give a writable array, e.g. "
                         "np.memmap(..., mode='w+') or mode='r+'")
    view = out[None] if out.ndim == 2 else out
    if view.shape != stack.shape or view.dtype != stack.dtype:
        raise InputError(f"out has shape {out.shape} and dtype {out.dtype}; expected {stack.shape} {stack.dtype}")
    if np.shares_memory(view, stack):
        raise InputError("out must not share memory with the input: the input is never modified")
    return view
