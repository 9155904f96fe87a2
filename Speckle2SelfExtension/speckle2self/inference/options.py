"""Checking denoise options before any work, so a wrong option is an InputError, never a silent default.

`denoise` checks them for each call; the file pipeline checks them once before the first file, so
an unusable option stops the command (exit 2) instead of failing every file.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import InputError

PRECISIONS = ("auto", "float32", "float16", "bfloat16")
MAX_SEED = 2 ** 32 - 1
"""Largest training seed: NumPy's and PyTorch's generators both take 0..2**32-1 on every platform."""
MIN_TILE_SIZE = 128
"""Smallest tile (network pixels) accepted. Tiles overlap by up to 96 pixels (runner.TILE_OVERLAP,
at most half a tile); from 128 pixels on, tiled and whole-frame results agree away from the frame
border (Testing/test_inference.py), while much smaller tiles change the result instead of only
bounding memory."""


def _whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_batch_size(batch_size: object) -> int | None:
    """None (choose by device) or a whole number ≥ 1; 0 is an error, not "the default"."""
    if batch_size is None:
        return None
    if not _whole(batch_size) or int(batch_size) < 1:
        raise InputError(f"batch_size must be at least 1 (a whole number, or None for the default), got {batch_size!r}")
    return int(batch_size)


def check_tile_size(tile_size: object) -> int | None:
    """None (choose by device) or a whole number of pixels ≥ MIN_TILE_SIZE."""
    if tile_size is None:
        return None
    if not _whole(tile_size) or int(tile_size) < MIN_TILE_SIZE:
        raise InputError(f"tile_size must be at least {MIN_TILE_SIZE} pixels (a whole number, or None for the "
                         f"default), got {tile_size!r}: smaller tiles would change the result")
    return int(tile_size)


def check_precision(precision: object) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return str(precision)


def check_model_argument(model: object) -> None:
    """A model is a LoadedModel, a path (str or os.PathLike), or None for the bundled model."""
    from ..networks.model_file import LoadedModel
    if model is None or isinstance(model, (LoadedModel, str, os.PathLike)):
        return
    raise InputError(f"model must be a model file path, a loaded model or None (the bundled model), "
                     f"not {type(model).__name__} {model!r}")


MIN_DYNAMIC_RANGE_DB, MAX_DYNAMIC_RANGE_DB = 10.0, 120.0
"""Display dynamic ranges accepted. Scanners' presets span about 30-100 dB; below 10 dB a log
compression leaves nearly every pixel black or white (a binary image), and beyond 120 dB (more than a
16-bit envelope holds) every speckle grain lands in one narrow band of grey levels (a flat image)."""


def check_dynamic_range(dynamic_range_db: object) -> float:
    """A number of dB from MIN_DYNAMIC_RANGE_DB to MAX_DYNAMIC_RANGE_DB; else an InputError."""
    try:
        value = float(dynamic_range_db)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"dynamic_range_db must be a positive number of dB, got {dynamic_range_db!r}")
    if not MIN_DYNAMIC_RANGE_DB <= value <= MAX_DYNAMIC_RANGE_DB:
        raise InputError(f"dynamic_range_db must be from {MIN_DYNAMIC_RANGE_DB:g} to {MAX_DYNAMIC_RANGE_DB:g} dB "
                         f"(a display dynamic range; scanners use about 30-100), got {dynamic_range_db!r}: outside "
                         "it the log compression makes the image binary or flat")
    return value


def check_grain(grain_px: object) -> tuple[float, float] | None:
    """None (measure it) or two positive, finite pixel widths (axial, lateral)."""
    if grain_px is None:
        return None
    try:
        axial, lateral = (float(v) for v in grain_px)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        axial = lateral = float("nan")
    if not all(math.isfinite(v) and v > 0 for v in (axial, lateral)):
        raise InputError(f"grain_px must be two positive pixel widths (axial, lateral), got {grain_px!r}")
    return axial, lateral


def check_strength(strength: object) -> float:
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength!r}")
    return value


def check_run_options(*, model: object = None, batch_size: object = None, tile_size: object = None,
                      precision: object = "auto", domain: object = "auto", device: object = "auto",
                      dynamic_range_db: object = 60.0, grain_px: object = None) -> None:
    """Every option of a denoising run at once: raises InputError for the first that cannot work
    (including a device this machine does not have)."""
    from ..networks.devices import resolve_device
    from ..mapping.domains import check_domain
    check_model_argument(model)
    check_batch_size(batch_size)
    check_tile_size(tile_size)
    check_precision(precision)
    check_domain(domain)  # type: ignore[arg-type]
    check_dynamic_range(dynamic_range_db)
    check_grain(grain_px)
    resolve_device(device)  # type: ignore[arg-type]
