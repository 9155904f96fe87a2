"""Checks on what comes back: the network's output for every batch, and the values written out.

A model file can carry a valid card and still compute anything (a corrupt or foreign network, a
bug in an export). Its output is accepted only when it has the shape of the batch it was given,
is finite, and lies in [0, 1] (where every Speckle2Self network clamps it and every mapping expects
it); otherwise the model is refused by name and nothing is written.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InputError, ModelFileError, Speckle2SelfError
from ..failures import reason
from ..mapping.frames import cast_like

OUTPUT_TOLERANCE = 1e-3
"""How far outside [0, 1] a network output may stray (reduced-precision rounding) and still count."""


def run_checked(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, model_name: object) -> np.ndarray:
    """`run(batch)`, refused unless it is a usable output for `batch` (see the module docstring)."""
    try:
        y = np.asarray(run(batch))
    except Speckle2SelfError:
        raise
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"model {model_name} failed on a batch of shape {batch.shape}: {reason(exc)}") from exc
    if y.shape != batch.shape:
        raise ModelFileError(f"model {model_name} returned an output of shape {y.shape} for a batch of shape "
                             f"{batch.shape}; refusing its result")
    if not np.isfinite(y).all():
        raise ModelFileError(f"model {model_name} returned NaN or infinite values; refusing its result")
    lo, hi = float(y.min()), float(y.max())
    if lo < -OUTPUT_TOLERANCE or hi > 1.0 + OUTPUT_TOLERANCE:
        raise ModelFileError(f"model {model_name} returned values in [{lo:.4g}, {hi:.4g}], outside the [0, 1] "
                             "a Speckle2Self network gives; refusing its result")
    return y


def value_range(stack: np.ndarray) -> tuple[np.generic, np.generic]:
    """The input's smallest and largest value, in its own dtype."""
    return np.min(stack), np.max(stack)


def in_input_range(values: np.ndarray, dtype: np.dtype, bounds: tuple[np.generic, np.generic]) -> np.ndarray:
    """Results as `dtype`, inside the input's value range `bounds` (float32 arithmetic can round a
    value just past the input's extremes); non-finite results are refused."""
    if not np.isfinite(values).all():
        raise InputError("the result has NaN or infinite values: the input's values are too extreme for the "
                         "network's float32 arithmetic; rescale them (e.g. to 0..1) first")
    return np.clip(cast_like(values, dtype), bounds[0], bounds[1])
