"""Pure helpers for the Slicer module, so that the module file stays an adapter.

Everything with logic in it lives here and is tested with pytest: turning a volume's voxel array
(K, J, I) or (K, J, I, C) into grey frames, blending input and result, streaming a cine frame by
frame through the engine with progress and cancel, and progress figures for the panel. Nothing
here imports Slicer, Qt, VTK or (until it denoises) torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .colour import to_grey
from .errors import Cancelled, InputError
from .frames import cast_like

SEQUENCE_CHUNK = 16


def frames_from_volume_array(array: np.ndarray, is_vector: bool) -> tuple[np.ndarray, list[str]]:
    """Grey (frames, rows, cols) from a volume's numpy array: (K, J, I) scalar or (K, J, I, C) vector.

    A scalar array is returned as is (a view: nothing is copied or modified); colour is converted
    by the rule in speckle2self.colour.
    """
    arr = np.asarray(array)
    if is_vector:
        if arr.ndim != 4:
            raise InputError(f"a vector volume should give a (K, J, I, C) array, got shape {arr.shape}")
        grey, note = to_grey(arr)
        return grey, [note]
    if arr.ndim != 3:
        raise InputError(f"a scalar volume should give a (K, J, I) array, got shape {arr.shape}")
    return arr, []


def blend(original: np.ndarray, denoised: np.ndarray, strength: float) -> np.ndarray:
    """(1 - strength) · original + strength · denoised, in the original's dtype (strength in [0, 1])."""
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    if strength == 1.0:
        return denoised
    mixed = (1.0 - strength) * original.astype(np.float64) + strength * denoised.astype(np.float64)
    return cast_like(mixed, original.dtype)


@dataclass(frozen=True)
class ProgressInfo:
    """What the panel shows: frames done of total, and the rate so far."""

    done: int
    total: int
    frames_per_second: float

    @property
    def percent(self) -> int:
        return int(round(100 * self.done / self.total)) if self.total else 100

    @property
    def text(self) -> str:
        return f"{self.done} / {self.total} frames, {self.frames_per_second:.1f} frames/s"


class ProgressRelay:
    """Turns the engine's per-call progress(done, total) into whole-job ProgressInfo reports."""

    def __init__(self, total: int, report: Callable[[ProgressInfo], None] | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.report = report
        self.clock = clock
        self.start = clock()

    def at_offset(self, offset: int) -> Callable[[int, int], None]:
        """A progress callback for frames offset .. offset + n of the whole job."""
        def relay(done: int, _total: int) -> None:
            if self.report is not None:
                elapsed = self.clock() - self.start
                frames = offset + done
                self.report(ProgressInfo(frames, self.total, frames / elapsed if elapsed > 0 else 0.0))
        return relay


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering 0..total in steps of `size`."""
    for start in range(0, total, size):
        yield start, min(total, start + size)


def denoise_volume_array(array: np.ndarray, is_vector: bool, *, strength: float = 1.0,
                         progress: Callable[[ProgressInfo], None] | None = None,
                         should_stop: Callable[[], bool] | None = None, **engine_options) -> tuple[np.ndarray, list[str]]:
    """Denoised grey frames for one volume's array (K, J, I[, C]), blended by `strength`.

    `engine_options` go to speckle2self.denoise (model, device, domain, batch_size). The input
    array is not modified.
    """
    from .inference import denoise
    frames, notes = frames_from_volume_array(array, is_vector)
    relay = ProgressRelay(frames.shape[0], progress)
    out = denoise(frames, progress=relay.at_offset(0), should_stop=should_stop, **engine_options)
    return blend(frames, out, strength), notes


def denoise_frame_stream(read_frame: Callable[[int], np.ndarray], write_frame: Callable[[int, np.ndarray], None],
                         count: int, is_vector: bool, *, strength: float = 1.0, chunk: int = SEQUENCE_CHUNK,
                         progress: Callable[[ProgressInfo], None] | None = None,
                         should_stop: Callable[[], bool] | None = None, **engine_options) -> list[str]:
    """Denoise a cine `count` frames long, reading and writing one frame at a time.

    `read_frame(i)` gives frame i's voxel array ((1, J, I) or (J, I), with C on the last axis for
    colour); `write_frame(i, grey)` receives the denoised (J, I) frame. Frames go through the engine
    `chunk` at a time, so memory holds one chunk, not the cine. Raises Cancelled on a stop request
    (frames already written stay written: the caller discards its partial output).
    """
    from .inference import denoise
    if count < 1:
        raise InputError("the sequence has no frames")
    relay = ProgressRelay(count, progress)
    notes: list[str] = []
    for start, stop in chunks(count, chunk):
        if should_stop is not None and should_stop():
            raise Cancelled(f"denoising stopped by request after {start} of {count} frames")
        grey = [_single_frame(read_frame(i), is_vector, notes) for i in range(start, stop)]
        stack = np.stack(grey)
        try:
            result = denoise(stack, progress=relay.at_offset(start), should_stop=should_stop, **engine_options)
        except Cancelled:
            raise Cancelled(f"denoising stopped by request within frames {start}-{stop - 1} of {count}") from None
        out = blend(stack, result, strength)
        for offset, frame in enumerate(out):
            write_frame(start + offset, frame)
    return notes


def collect_frames(read_frame: Callable[[int], np.ndarray], count: int, is_vector: bool) -> np.ndarray:
    """All frames of a cine as one grey (count, J, I) stack (e.g. to export it for fine-tuning)."""
    if count < 1:
        raise InputError("the sequence has no frames")
    notes: list[str] = []
    return np.stack([_single_frame(read_frame(i), is_vector, notes) for i in range(count)])


def _single_frame(voxels: np.ndarray, is_vector: bool, notes: list[str]) -> np.ndarray:
    arr = np.asarray(voxels)
    if arr.ndim == (4 if is_vector else 3):
        if arr.shape[0] != 1:
            raise InputError(f"each sequence item must be one frame; got {arr.shape[0]} slices")
        arr = arr[0]
    grey, frame_notes = frames_from_volume_array(arr[None], is_vector)
    for note in frame_notes:
        if note not in notes:
            notes.append(note)
    return grey[0]


def display_window(frames: np.ndarray) -> tuple[float, float]:
    """Window and level spanning the 1st..99th percentile of a sample of the result."""
    sample = frames[:: max(1, frames.shape[0] // 8)]
    lo, hi = np.percentile(sample, [1.0, 99.0])
    if hi <= lo:
        lo, hi = float(np.min(sample)), float(np.max(sample)) + 1.0
    return float(hi - lo), float((hi + lo) / 2)


def card_summary(card: dict, sha256: str) -> str:
    """A few lines describing a model for the panel: what it is, what it expects, how it was made."""
    arch, training = card.get("architecture", {}), card.get("training", {})
    lines = [f"widths {'-'.join(str(w) for w in arch.get('widths', []))}, scales "
             f"{', '.join(str(s) for s in arch.get('scales', []))}",
             f"input: {card.get('input', {}).get('domain', '?')}",
             f"trained {training.get('steps', '?')} steps on {training.get('data', 'unknown data')}"]
    if training.get("parent_sha256"):
        lines.append(f"fine-tuned from {training['parent_sha256'][:12]}…")
    lines.append(f"created {card.get('created', '?')}, sha256 {sha256[:12]}…")
    return "\n".join(lines)


def loss_curve_rows(events: list[dict]) -> np.ndarray:
    """(step, smoothed loss, reconstruction, consistency) rows from the fine-tuning worker's step events."""
    rows = [(e["step"], e["loss"], e["reconstruction"], e["consistency"]) for e in events if e.get("event") == "step"]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)
