"""Pure helpers for the Slicer module, so that the module file stays an adapter.

Everything with logic in it lives here and is tested with pytest: turning a volume's voxel array
(K, J, I) or (K, J, I, C) into grey frames, blending input and result, streaming a cine frame by
frame through the engine with progress and cancel, progress figures and run-time estimates for the
panel, the view orientation that shows a frame face-on, the fine-tuned model's file name and the
Sample Data entry. Nothing here imports Slicer, Qt, VTK or (until it denoises) torch.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .colour import to_grey
from .errors import InputError
from .frames import cast_like

SEQUENCE_CHUNK = 16


SINGLE_COMPONENT_NOTE = "used the single component"


def frames_from_volume_array(array: np.ndarray, is_vector: bool) -> tuple[np.ndarray, list[str]]:
    """Grey (frames, rows, cols) from a volume's numpy array: (K, J, I) scalar or (K, J, I, C) vector.

    A scalar array is returned as is (a view: nothing is copied or modified); colour is converted
    by the rule in speckle2self.colour. Slicer gives a 1-component vector volume as (K, J, I)
    (arrayFromVolume drops the component axis), which is used as it is.
    """
    arr = np.asarray(array)
    if is_vector and arr.ndim == 3:
        return arr, [SINGLE_COMPONENT_NOTE]
    if is_vector:
        if arr.ndim != 4:
            raise InputError(f"a vector volume should give a (K, J, I, C) or, with one component, (K, J, I) "
                             f"array, got shape {arr.shape}")
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
                         should_stop: Callable[[], bool] | None = None, scratch_dir: str | Path | None = None,
                         **engine_options) -> list[str]:
    """Denoise a cine `count` frames long, reading and writing one frame at a time.

    `read_frame(i)` gives frame i's voxel array ((1, J, I) or (J, I), with C on the last axis for
    colour); `write_frame(i, grey)` receives the denoised (J, I) frame. The grey frames are staged
    in a memory-mapped scratch file and go through the engine in one call, so the cine is denoised
    as one input, exactly like the same frames as one volume: one grey range for non-8-bit B-mode
    (no brightness step between chunks), one scan region and grain. Memory holds one batch and
    `chunk` frames being written, not the cine. Raises Cancelled on a stop request, checked before every batch;
    nothing is written before every frame is denoised.
    """
    from .inference import denoise
    if count < 1:
        raise InputError("the sequence has no frames")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="speckle2self-cine-", dir=scratch_dir) as scratch:
        stack = _stage_frames(read_frame, count, is_vector, Path(scratch) / "input.raw", notes)
        out = np.memmap(Path(scratch) / "output.raw", dtype=stack.dtype, mode="w+", shape=stack.shape)
        relay = ProgressRelay(count, progress)
        denoise(stack, out=out, progress=relay.at_offset(0), should_stop=should_stop, **engine_options)
        for start, stop in chunks(count, chunk):
            for offset, frame in enumerate(blend(stack[start:stop], out[start:stop], strength)):
                write_frame(start + offset, np.array(frame))
        del stack, out  # unmap before the scratch folder is removed
    return notes


def _stage_frames(read_frame: Callable[[int], np.ndarray], count: int, is_vector: bool, path: Path,
                  notes: list[str]) -> np.memmap:
    """All grey frames of a cine in a memory-mapped (count, J, I) file, read one frame at a time."""
    stack = None
    for i in range(count):
        grey = _single_frame(read_frame(i), is_vector, notes)
        if stack is None:
            stack = np.memmap(path, dtype=grey.dtype, mode="w+", shape=(count,) + grey.shape)
        if grey.shape != stack.shape[1:]:
            raise InputError(f"frame {i} is {grey.shape[0]}×{grey.shape[1]} pixels and the first frame "
                             f"{stack.shape[1]}×{stack.shape[2]}: every frame of a cine must be the same size")
        stack[i] = grey
    return stack


def collect_frames(read_frame: Callable[[int], np.ndarray], count: int, is_vector: bool) -> np.ndarray:
    """All frames of a cine as one grey (count, J, I) stack (e.g. to export it for fine-tuning)."""
    if count < 1:
        raise InputError("the sequence has no frames")
    notes: list[str] = []
    return np.stack([_single_frame(read_frame(i), is_vector, notes) for i in range(count)])


def _single_frame(voxels: np.ndarray, is_vector: bool, notes: list[str]) -> np.ndarray:
    arr = np.asarray(voxels)
    if is_vector and arr.ndim == 3 and arr.shape[0] == 1:  # a 1-component vector item: (1, J, I)
        is_vector = False
        if SINGLE_COMPONENT_NOTE not in notes:
            notes.append(SINGLE_COMPONENT_NOTE)
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


# Asking before a long run

ESTIMATE_ABOVE_FRAMES = 16
"""Inputs with more frames than this are timed on one batch before they are denoised."""
CONFIRM_ABOVE_SECONDS = 20.0
"""Runs expected to take longer than this are announced and need a confirmation in the panel."""


@dataclass(frozen=True)
class RunEstimate:
    """How many frames a run has and about how long it will take."""

    frames: int
    seconds: float

    @property
    def needs_confirmation(self) -> bool:
        return self.seconds > CONFIRM_ABOVE_SECONDS

    @property
    def question(self) -> str:
        return (f"This cine has {self.frames} frames; denoising them takes {duration_text(self.seconds)} "
                "(measured on the first frames). Denoise all frames now?")


def duration_text(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1 h 20 min': rounded the way a person would say it."""
    if seconds < 90:
        return f"about {max(5, int(round(seconds / 5.0)) * 5)} s"
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


def estimate_run(read_frame: Callable[[int], np.ndarray], count: int, is_vector: bool, *,
                 clock: Callable[[], float] = time.monotonic, **engine_options) -> RunEstimate:
    """Time one batch of the first frames through the engine and scale it to `count` frames.

    `read_frame` is as for denoise_frame_stream; `engine_options` are those of the run itself
    (model, device, domain, batch_size), so the batch is the one the run will use. The model is
    loaded before the clock starts, so loading time does not inflate the estimate.
    """
    from .devices import resolve_device
    from .inference import default_batch_size, denoise, get_model
    if count < 1:
        raise InputError("the sequence has no frames")
    options = dict(engine_options, model=get_model(engine_options.get("model")))
    notes: list[str] = []
    first = _single_frame(read_frame(0), is_vector, notes)
    batch = options.get("batch_size") or default_batch_size(resolve_device(options.get("device", "auto")), *first.shape)
    sample = np.stack([first] + [_single_frame(read_frame(i), is_vector, notes) for i in range(1, min(count, batch))])
    start = clock()
    denoise(sample, **options)
    return RunEstimate(count, (clock() - start) * count / len(sample))


# Views

ORIENTATION_BY_AXIS = ("Sagittal", "Coronal", "Axial")
"""The slice orientation whose normal is the R, A or S axis."""


def frame_plane_orientation(ijk_to_ras: np.ndarray, to_world: np.ndarray | None = None) -> str:
    """The standard slice orientation ('Axial', 'Coronal', 'Sagittal') closest to a volume's frames.

    A frame is an IJ plane; its normal is the K direction of the IJK-to-RAS matrix (3×3 or 4×4),
    taken through `to_world` (the parent transform's 4×4, e.g. a tracked probe's) when given.
    Both side-by-side views are set to this orientation and then rotated onto the volume's exact
    plane, so that each shows the frames face on, in the same orientation as the other.
    """
    k_direction = np.asarray(ijk_to_ras, dtype=np.float64)[:3, 2]
    if to_world is not None:
        k_direction = np.asarray(to_world, dtype=np.float64)[:3, :3] @ k_direction
    if not np.any(k_direction):
        raise InputError("the volume's IJK-to-RAS matrix has no K direction")
    return ORIENTATION_BY_AXIS[int(np.argmax(np.abs(k_direction)))]


# Fine-tuned model files

def free_model_path(folder: str | Path, name: str, default: str = "speckle2self_finetuned") -> Path:
    """`folder/<name>.pt`, or `<name>_2.pt`, `<name>_3.pt`, … if taken: never an existing model.

    Only the name's last component counts, so a typed path cannot write outside `folder`.
    """
    stem = Path(str(name).strip()).stem or default
    candidate = Path(folder) / f"{stem}.pt"
    number = 2
    while candidate.exists():
        candidate = Path(folder) / f"{stem}_{number}.pt"
        number += 1
    return candidate


# Sample Data

SAMPLE_CATEGORY = "Ultrasound"
SAMPLE_FILE = "Samples/phantom_cine.nrrd"


def sample_data_source(resources: str | Path, thumbnail: str | Path | None = None) -> dict:
    """Keyword arguments for SampleData.SampleDataLogic.registerCustomSampleDataSource.

    The bundled phantom cine is offered under 'Ultrasound'; Sample Data copies it into its cache
    from a file:// address and checks it against its SHA-256, so a newer bundled file replaces an
    older cached copy.
    """
    path = Path(resources) / SAMPLE_FILE
    if not path.is_file():
        raise InputError(f"the bundled sample {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"category": SAMPLE_CATEGORY, "sampleName": "Speckle2SelfPhantomCine", "uris": path.resolve().as_uri(),
            "fileNames": "Speckle2SelfPhantomCine.nrrd", "nodeNames": "Speckle2SelfPhantomCine",
            "checksums": f"SHA256:{digest}", "loadFileType": "VolumeFile",
            "thumbnailFileName": None if thumbnail is None else str(thumbnail)}
