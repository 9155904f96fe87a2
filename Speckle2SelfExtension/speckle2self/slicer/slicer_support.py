"""Pure helpers for the Slicer module, so that the module file stays an adapter.

Everything with logic in it lives here and is tested with pytest: turning a volume's voxel array
(K, J, I) or (K, J, I, C) into grey frames, blending input and result, streaming a cine frame by
frame through the engine with progress and cancel, progress figures and run-time estimates for the
panel, the view orientation that shows a frame face-on, the fine-tuned model's file name and the
Sample Data entry. Nothing here imports Slicer, Qt, VTK or (until it denoises) torch.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..mapping.colour import to_grey
from ..errors import Cancelled, InputError
from ..mapping.frames import cast_like

SEQUENCE_CHUNK = 16


SINGLE_COMPONENT_NOTE = "used the single component"


def frames_from_volume_array(array: np.ndarray, is_vector: bool) -> tuple[np.ndarray, list[str]]:
    """Grey (frames, rows, cols) from a volume's numpy array: (K, J, I) scalar or (K, J, I, C) vector.

    A scalar array is returned as is (a view: nothing is copied or modified); colour is converted
    by the rule in speckle2self.mapping.colour. Slicer gives a 1-component vector volume as (K, J, I)
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


MULTIVOLUME_CLASS = "vtkMRMLMultiVolumeNode"


def live_frames(array: np.ndarray | None, is_vector: bool, class_name: str = "vtkMRMLScalarVolumeNode") -> np.ndarray:
    """Grey frames of a live input's current voxels, or an InputError saying why it cannot be used.

    Live mode reads the input before it makes anything, so a bad input leaves nothing behind:
    `array` is None for a volume without image data (a stream not started yet), a MultiVolume
    holds one 3-D volume per component, and a vector volume is an image only up to 4 components.
    """
    if array is None:
        raise InputError("the input volume has no image data yet: start the stream (or load an image) first")
    if class_name == MULTIVOLUME_CLASS:
        raise InputError("a MultiVolume (4-D series) is not a live image: choose the volume the stream updates")
    if is_vector and np.ndim(array) == 4 and array.shape[-1] > 4:
        raise InputError(f"a vector volume of {array.shape[-1]} components is not a colour image (at most 4)")
    frames, _notes = frames_from_volume_array(array, is_vector)
    return frames


def blend(original: np.ndarray, denoised: np.ndarray, strength: float) -> np.ndarray:
    """(1 - strength) · original + strength · denoised, in the original's dtype (strength in [0, 1])."""
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    if strength == 1.0:
        return denoised
    mixed = (1.0 - strength) * original.astype(np.float64) + strength * denoised.astype(np.float64)
    return cast_like(mixed, original.dtype)


STAGE_SPANS = {"reading": (0.0, 0.1), "denoising": (0.1, 0.85), "writing": (0.85, 1.0)}
"""The part of a cine run each stage fills on the progress bar: staging the frames into the scratch
file and writing them back into the sequence are copies, denoising is the network."""
WHOLE_JOB = (0.0, 1.0)


@dataclass(frozen=True)
class ProgressInfo:
    """What the panel shows: frames done of total in the current stage, the rate so far, and where
    that stage sits in the whole job (`span`, fractions of the progress bar)."""

    done: int
    total: int
    frames_per_second: float
    stage: str = "denoising"
    span: tuple[float, float] = WHOLE_JOB

    @property
    def percent(self) -> int:
        fraction = self.done / self.total if self.total else 1.0
        return int(round(100 * (self.span[0] + (self.span[1] - self.span[0]) * fraction)))

    @property
    def text(self) -> str:
        return f"{self.stage.capitalize()}: {self.done} / {self.total} frames, {self.frames_per_second:.1f} frames/s"


class StageProgress:
    """Reports frames done in one stage of a job ('reading', 'denoising', 'writing') as ProgressInfo,
    with the rate since the stage began; `span` defaults to the stage's part of a cine run."""

    def __init__(self, stage: str, total: int, report: Callable[[ProgressInfo], None] | None,
                 span: tuple[float, float] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stage = stage
        self.total = total
        self.report_to = report
        self.span = STAGE_SPANS[stage] if span is None else span
        self.clock = clock
        self.start = clock()

    def report(self, done: int) -> None:
        if self.report_to is not None:
            elapsed = self.clock() - self.start
            self.report_to(ProgressInfo(done, self.total, done / elapsed if elapsed > 0 else 0.0, self.stage,
                                        self.span))

    def callback(self) -> Callable[[int, int], None]:
        """The engine's progress(done, total) for this stage."""
        return lambda done, _total: self.report(done)


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
    from ..inference.api import denoise
    frames, notes = frames_from_volume_array(array, is_vector)
    denoising = StageProgress("denoising", frames.shape[0], progress, span=WHOLE_JOB)
    out = denoise(frames, progress=denoising.callback(), should_stop=should_stop, **engine_options)
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
    `chunk` frames being written, not the cine. Progress is reported, and a stop request checked
    (raising Cancelled), in all three stages: reading into the scratch file, denoising, writing back.

    No view of the scratch files outlives the call, so that Windows can delete them; if the scratch
    folder still cannot be removed, the finished result stands and a note says where the folder is.
    """
    if count < 1:
        raise InputError("the sequence has no frames")
    notes: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="speckle2self-cine-", dir=scratch_dir))
    try:
        _denoise_through_scratch(scratch, read_frame, write_frame, count, is_vector, notes, strength=strength,
                                 chunk=chunk, progress=progress, should_stop=should_stop, **engine_options)
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)  # the failed frames' locals would keep the scratch files mapped
        raise
    finally:
        _remove_scratch(scratch, notes)
    return notes


def _denoise_through_scratch(scratch: Path, read_frame: Callable[[int], np.ndarray],
                             write_frame: Callable[[int, np.ndarray], None], count: int, is_vector: bool,
                             notes: list[str], *, strength: float, chunk: int,
                             progress: Callable[[ProgressInfo], None] | None,
                             should_stop: Callable[[], bool] | None, **engine_options) -> None:
    """The three stages of denoise_frame_stream; every array viewing the scratch files is local here."""
    from ..inference.api import denoise
    stack = _stage_frames(read_frame, count, is_vector, scratch / "input.raw", notes,
                          StageProgress("reading", count, progress), should_stop)
    out = np.memmap(scratch / "output.raw", dtype=stack.dtype, mode="w+", shape=stack.shape)
    denoise(stack, out=out, progress=StageProgress("denoising", count, progress).callback(),
            should_stop=should_stop, **engine_options)
    writing = StageProgress("writing", count, progress)
    for start, stop in chunks(count, chunk):
        _check_stop(should_stop, "writing back")
        for offset, frame in enumerate(blend(stack[start:stop], out[start:stop], strength)):
            write_frame(start + offset, np.array(frame))  # a copy: the writer may keep it
        writing.report(stop)


def _remove_scratch(scratch: Path, notes: list[str]) -> None:
    """Delete the scratch folder; a failure (a file still open on Windows) is a note, not an error."""
    try:
        shutil.rmtree(scratch)
    except OSError as exc:
        notes.append(f"the scratch folder {scratch} could not be removed ({exc.strerror or exc}); "
                     "delete it by hand")


def _check_stop(should_stop: Callable[[], bool] | None, stage: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"stopped by request while {stage} the cine")


def _stage_frames(read_frame: Callable[[int], np.ndarray], count: int, is_vector: bool, path: Path,
                  notes: list[str], staging: "StageProgress | None" = None,
                  should_stop: Callable[[], bool] | None = None) -> np.memmap:
    """All grey frames of a cine in a memory-mapped (count, J, I) file, read one frame at a time."""
    stack = None
    for i in range(count):
        if i % SEQUENCE_CHUNK == 0:
            _check_stop(should_stop, "reading")
        grey = _single_frame(read_frame(i), is_vector, notes)
        if stack is None:
            stack = np.memmap(path, dtype=grey.dtype, mode="w+", shape=(count,) + grey.shape)
        if grey.shape != stack.shape[1:]:
            raise InputError(f"frame {i} is {grey.shape[0]}×{grey.shape[1]} pixels and the first frame "
                             f"{stack.shape[1]}×{stack.shape[2]}: every frame of a cine must be the same size")
        stack[i] = grey
        if staging is not None and ((i + 1) % SEQUENCE_CHUNK == 0 or i + 1 == count):
            staging.report(i + 1)
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
    fold = int(arch.get("space_to_depth", 1))
    lines = [f"widths {'-'.join(str(w) for w in arch.get('widths', []))}, scales "
             f"{', '.join(str(s) for s in arch.get('scales', []))}"
             + (f", {fold}×{fold} pixels folded into channels" if fold > 1 else ""),
             f"input: {card.get('input', {}).get('domain', '?')}",
             f"trained {training.get('steps', '?')} steps on {training.get('data', 'unknown data')}"]
    if training.get("parent_sha256"):
        lines.append(f"fine-tuned from {training['parent_sha256'][:12]}…")
    teacher = training.get("distilled_from")
    if isinstance(teacher, dict) and teacher.get("sha256"):
        lines.append(f"distilled from {teacher['sha256'][:12]}…")
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
    stage_seconds: tuple[float, ...] = ()
    """Reading, denoising and writing back, when measured: they add up to `seconds`."""

    @property
    def needs_confirmation(self) -> bool:
        return self.seconds > CONFIRM_ABOVE_SECONDS

    @property
    def question(self) -> str:
        return (f"This cine has {self.frames} frames; denoising them takes {duration_text(self.seconds)}, "
                "reading and writing back the frames included (measured on the first frames). "
                "Denoise all frames now?")


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
                 write_frame: Callable[[int, np.ndarray], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, **engine_options) -> RunEstimate:
    """Time one batch of the first frames through the whole run and scale it to `count` frames.

    The three stages of denoise_frame_stream are timed: reading the frames (`read_frame` as there),
    denoising them, and, when given, `write_frame(i, grey)` on the results (the caller's way of
    writing a frame back, e.g. into a throwaway sequence). `engine_options` are those of the run
    itself (model, device, domain, batch_size), so the batch is the one the run will use. The
    model is loaded before the clock starts, so loading time does not inflate the estimate.
    """
    from ..networks.devices import resolve_device
    from ..inference.api import default_batch_size, denoise, get_model
    if count < 1:
        raise InputError("the sequence has no frames")
    options = dict(engine_options, model=get_model(engine_options.get("model")))
    notes: list[str] = []
    start = clock()
    first = _single_frame(read_frame(0), is_vector, notes)
    batch = options.get("batch_size") or default_batch_size(resolve_device(options.get("device", "auto")), *first.shape)
    sample = np.stack([first] + [_single_frame(read_frame(i), is_vector, notes) for i in range(1, min(count, batch))])
    read = clock()
    result = denoise(sample, **options)
    denoised = clock()
    for i, frame in enumerate(result if write_frame is not None else []):
        write_frame(i, np.array(frame))
    written = clock()
    return RunEstimate(count, (written - start) * count / len(sample),
                       stage_seconds=tuple(t * count / len(sample) for t in (read - start, denoised - read,
                                                                              written - denoised)))


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
SAMPLE_FILE = "Samples/phantom_cine.seq.nrrd"
"""A short cine that loads as a sequence (a browser, a proxy volume, the cine path of the module)."""

_NRRD_TYPES = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "unsigned short", np.dtype(np.int16): "short",
               np.dtype(np.float32): "float"}


def write_sequence_nrrd(path: str | Path, frames: np.ndarray, spacing: tuple[float, float],
                        index_values: list[str] | None = None, index_name: str = "frame") -> Path:
    """Write (frames, rows, cols) as a Slicer volume sequence file (.seq.nrrd): one single-slice
    volume per frame, frames on the 4th (list) axis, as Slicer's Sequences module writes them,
    so that Slicer loads it as a sequence with a browser. Spacing is (column, row) in mm."""
    import gzip
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 3 or frames.dtype not in _NRRD_TYPES:
        raise InputError(f"a sequence needs (frames, rows, cols) of {sorted(map(str, _NRRD_TYPES))}, "
                         f"got {frames.shape} {frames.dtype}")
    count, rows, cols = frames.shape
    values = index_values or [str(i) for i in range(count)]
    header = "\n".join([
        "NRRD0004", f"type: {_NRRD_TYPES[frames.dtype]}", "dimension: 4", "space: left-posterior-superior",
        f"sizes: {cols} {rows} 1 {count}",
        f"space directions: ({spacing[0]!r},0,0) (0,{spacing[1]!r},0) (0,0,1) none",
        "kinds: domain domain domain list", f'labels: "" "" "" "{index_name}"', "endian: little",
        "encoding: gzip", "space origin: (0,0,0)", "axis 3 index type:=numeric",
        f"axis 3 index values:={' '.join(values)}", "DataNodeClassName:=vtkMRMLScalarVolumeNode", "", ""])
    data = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
    path = Path(path)
    path.write_bytes(header.encode("ascii") + gzip.compress(data, mtime=0))
    return path


def sample_data_source(resources: str | Path, thumbnail: str | Path | None = None) -> dict:
    """Keyword arguments for SampleData.SampleDataLogic.registerCustomSampleDataSource.

    The bundled phantom cine is offered under 'Ultrasound' and loads as a sequence (SequenceFile:
    a browser with the cine's proxy volume); Sample Data copies it into its cache
    from a file:// address and checks it against its SHA-256, so a newer bundled file replaces an
    older cached copy.
    """
    path = Path(resources) / SAMPLE_FILE
    if not path.is_file():
        raise InputError(f"the bundled sample {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"category": SAMPLE_CATEGORY, "sampleName": "Speckle2SelfPhantomCine", "uris": path.resolve().as_uri(),
            "fileNames": "Speckle2SelfPhantomCine.seq.nrrd", "nodeNames": "Speckle2SelfPhantomCine",
            "checksums": f"SHA256:{digest}", "loadFileType": "SequenceFile",
            "thumbnailFileName": None if thumbnail is None else str(thumbnail)}


# Dependencies (one check, one dialog: what is missing, outdated or broken, and what it is for)

TORCH_MINIMUM = "2.1"


@dataclass(frozen=True)
class Requirement:
    """A Python package the module needs in Slicer's Python; optional ones only for some inputs."""

    name: str
    minimum: str
    purpose: str
    optional: bool = False

    @property
    def pip(self) -> str:
        return f"{self.name}>={self.minimum}"


SLICER_REQUIREMENTS = (
    Requirement("numpy", "1.24", "arrays"),
    Requirement("SimpleITK", "2.2", "image files"),
    Requirement("tqdm", "4.60", "fine-tuning progress"),
    Requirement("pydicom", "2.4", "DICOM files"),
    Requirement("pylibjpeg", "2.0", "compressed DICOM files", optional=True),
    Requirement("pylibjpeg-libjpeg", "2.1", "JPEG, JPEG-LS and lossless JPEG DICOM files", optional=True),
    Requirement("pylibjpeg-openjpeg", "2.3", "JPEG 2000 DICOM files", optional=True),
    Requirement("pylibjpeg-rle", "2.0", "RLE DICOM files, decoded faster", optional=True),
)
"""What the module needs besides PyTorch (which comes from the PyTorch extension). Slicer ships
numpy, SimpleITK and pydicom; the pylibjpeg decoders it does not ship."""


@dataclass(frozen=True)
class Problem:
    """A requirement that is not met: `installed` is None when it is missing."""

    name: str
    minimum: str
    installed: str | None
    purpose: str
    pip: str
    detail: str = ""
    optional: bool = False

    @property
    def line(self) -> str:
        state = "not installed" if self.installed is None else f"{self.installed} installed"
        if self.detail:
            state = self.detail
        return f"{self.name} ≥ {self.minimum}: {state} (for {self.purpose})"


def version_tuple(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a version string such as '2.13.0+cu128' or '2.4.4'."""
    import re
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def package_problems(requirements=SLICER_REQUIREMENTS, *, include_optional: bool = True,
                     installed_version: Callable[[str], str | None] = _installed_version) -> list[Problem]:
    """The requirements that are missing or older than their minimum."""
    problems = []
    for req in requirements:
        if req.optional and not include_optional:
            continue
        found = installed_version(req.name)
        if found is None or version_tuple(found) < version_tuple(req.minimum):
            problems.append(Problem(req.name, req.minimum, found, req.purpose, req.pip, optional=req.optional))
    return problems


def _import_torch():
    import torch
    return torch


def torch_problem(installed_version: Callable[[str], str | None] = _installed_version,
                  import_torch: Callable[[], object] = _import_torch) -> Problem | None:
    """None if PyTorch ≥ 2.1 imports; else what is wrong with it. A PyTorch that is installed
    but fails to import (on Windows a DLL that cannot be loaded) is reported with what to do,
    instead of breaking the panel."""
    purpose = "the network"
    found = installed_version("torch")
    if found is None:
        return Problem("PyTorch", TORCH_MINIMUM, None, purpose, "torch")
    if version_tuple(found) < version_tuple(TORCH_MINIMUM):
        return Problem("PyTorch", TORCH_MINIMUM, found, purpose, "torch")
    try:
        import_torch()
    except Exception as exc:
        from ..failures import reason
        return Problem("PyTorch", TORCH_MINIMUM, found, purpose, "torch",
                       detail=f"{found} installed but it cannot be loaded ({type(exc).__name__}: {reason(exc)}); "
                              "reinstall it with the PyTorch Utils module (on Windows also install the latest "
                              "Microsoft Visual C++ Redistributable), then restart Slicer")
    return None


def dependency_question(problems: list[Problem]) -> str:
    """One message listing every unmet requirement, for one confirmation dialog."""
    lines = "\n".join(f"• {p.line}" for p in problems)
    return f"Speckle2Self needs these Python packages:\n{lines}\n\nInstall or upgrade them now?"
