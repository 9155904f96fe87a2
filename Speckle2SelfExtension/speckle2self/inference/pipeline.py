"""Denoising files: one file to one file, or many inputs into a folder, with a report per file.

The command line and the Slicer module's `denoiseFiles` both call `denoise_files`; a failing file is
reported and the others go on.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import Cancelled, InputError, ModelFileError, Speckle2SelfError
from ..failures import reason
from ..slicer.slicer_support import blend
from .api import denoise, get_model
from ..io import is_dicom, is_supported, read_dicom, read_volume, write_dicom, write_volume
from ..io.dicom_write import derivation_recipe, derived_uid
from ..io.files import SUPPORTED_SUFFIXES, check_can_hold, check_output_name, suffix_of
from ..io.footprint import check_plan
from .options import check_run_options, check_strength


@dataclass
class FileReport:
    input: Path
    output: Path | None
    ok: bool
    error: str | None = None
    frames: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    skipped: bool = False
    """The output was already there, complete, and was left as it was (skip_existing)."""
    worker: str | None = None
    """Where the file was denoised (host:pid), for runs on a Ray cluster."""


FileProgress = Callable[[Path, int, int], None]
"""Called as progress(input_path, frames_done, frames_total) during each file."""


def expand_inputs(inputs: Sequence[str | os.PathLike],
                  output_folder: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """(file, name relative to its input root) for every supported file in files and folders.

    A folder's files inside `output_folder` are left out: writing `study/` into `study/denoised`
    a second time must not denoise the first run's results again.
    """
    found: list[tuple[Path, Path]] = []
    skip = Path(output_folder).resolve() if output_folder is not None else None
    for item in map(Path, inputs):
        if item.is_file() and item.name.upper() == "DICOMDIR":
            found.extend(_dicomdir_images(item))
        elif item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and _is_image_file(p)
                           and not any(part.startswith(".") for part in p.relative_to(item).parts)
                           and not (skip is not None and p.resolve().is_relative_to(skip)))
            if not files:
                where = f" outside the output folder {output_folder}" if skip is not None else ""
                raise InputError(f"{item}: folder contains no supported image files (NRRD, NIfTI, MHA/MHD, "
                                 f"PNG, TIFF, DICOM){where}")
            found.extend((p, p.relative_to(item)) for p in files)
        else:
            found.append((item, Path(item.name)))
    return found


def _dicomdirs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The DICOMDIR files among the inputs: read too, so no output may replace them."""
    return [Path(i) for i in inputs if Path(i).is_file() and Path(i).name.upper() == "DICOMDIR"]


def _dicomdir_images(dicomdir: Path) -> list[tuple[Path, Path]]:
    """The image files a DICOMDIR references, named relative to its folder."""
    import pydicom
    from pydicom.fileset import FileSet
    try:
        instances = [Path(i.path) for i in FileSet(pydicom.dcmread(dicomdir)) if i.DirectoryRecordType == "IMAGE"]
    except Exception as exc:
        raise InputError(f"{dicomdir}: not a readable DICOMDIR ({type(exc).__name__}: {exc})") from exc
    if not instances:
        raise InputError(f"{dicomdir}: the DICOMDIR lists no images")
    return [(p, p.relative_to(dicomdir.parent)) for p in instances]


def _is_image_file(path: Path) -> bool:
    return is_supported(path) or (path.name.upper() != "DICOMDIR" and is_dicom(path))


def _is_file_name(path: Path) -> bool:
    return is_supported(path) or path.suffix.lower() == ".dcm"


def plan_outputs(inputs: Sequence[str | os.PathLike], output: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pair each input file with its output path.

    One input file and an output with an image suffix: that file. Otherwise the output is a folder
    and each result keeps its input's name (and sub-folder, for folder inputs). An output name with
    an extension is a file name: unless that folder already exists, it is refused where a folder is
    needed, and an unknown extension is refused, rather than creating a folder of that name. Files
    already inside the output folder are not inputs (expand_inputs).
    """
    output = Path(output)
    pairs = expand_inputs(inputs, output)
    single = len(inputs) == 1 and not Path(inputs[0]).is_dir()
    if single and _is_file_name(output):
        return [(pairs[0][0], output)]
    if output.exists() and not output.is_dir():
        raise InputError(f"{output} is a file; with several inputs or a folder, -o must be a folder")
    if not output.is_dir() and output.suffix:
        raise InputError(_file_like_output_message(output, single))
    return [(src, output / rel) for src, rel in pairs]


def _file_like_output_message(output: Path, single: bool) -> str:
    if single:
        return (f"{output}: unknown output file type {suffix_of(output)!r}; use one of "
                f"{', '.join(SUPPORTED_SUFFIXES + ('.dcm',))} (or a folder name without an extension)")
    return (f"{output} names a file, but several inputs or a folder need an output folder; give a folder "
            "name without an extension (or create the folder first)")


def _is_series_to_one_file(inputs: Sequence, output) -> bool:
    """One folder or DICOMDIR in, one NRRD/NIfTI/MHA/TIFF file out: the input must be one DICOM series."""
    if len(inputs) != 1 or not is_supported(Path(output)):
        return False
    item = Path(inputs[0])
    return item.is_dir() or (item.is_file() and item.name.upper() == "DICOMDIR")


def _denoise_series_to_file(item: Path, output: Path, **options) -> FileReport:
    from ..io.dicom_series import read_dicom_series, series_groups
    start = time.monotonic()
    files = [p for p, _ in expand_inputs([item])]
    check_plan([(files[0], output)], files[1:] + _dicomdirs([item]))
    check_output_name(output)
    try:
        if not all(is_dicom(p) for p in files):
            raise InputError(f"{item}: writing one file from a folder needs one DICOM series; this folder holds "
                             "other files too, so write to a folder (-o FOLDER) instead")
        groups = series_groups(files)
        if len(groups) != 1:
            raise InputError(f"{item} holds {len(groups)} DICOM series; write to a folder (-o FOLDER) instead")
        image = read_dicom_series(next(iter(groups.values())))
        strength = options.pop("strength", 1.0)
        result = denoise(image.volume.frames, **options, **dicom_hints(image))
        write_volume(output, image.volume.with_frames(blend(image.volume.frames, result, strength)))
    except (Speckle2SelfError, OSError) as exc:
        return FileReport(item, None, False, str(exc))
    return FileReport(item, output, True, frames=len(result), seconds=time.monotonic() - start,
                      notes=list(image.volume.notes) + image.warnings)


def checked_plan(inputs: Sequence[str | os.PathLike], output: str | os.PathLike) -> list[tuple[Path, Path]]:
    """plan_outputs, refused (InputError) when an output, or the data file it writes, is a file of an
    input (a header's data file, a DICOMDIR), when two outputs would share a file, or when an output
    cannot be written from its input (check_output_type)."""
    pairs = plan_outputs(inputs, output)
    check_plan(pairs, _dicomdirs(inputs))
    for src, dst in pairs:
        check_output_type(src, dst)
    return pairs


def check_output_type(src: Path, dst: Path) -> None:
    """Refuse, before any work, an output that this input cannot be written to: a DICOM (or unknown)
    extension for a non-DICOM input, or an extension in a case the writers mishandle."""
    if is_supported(dst):
        check_output_name(dst)
    elif not is_dicom(src):
        raise InputError(f"{dst}: {suffix_of(dst) or 'a name without an extension'} is written as DICOM, which "
                         f"needs a DICOM input; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def dicom_hints(image) -> dict:
    """What a DICOM file tells denoise(): where its ultrasound image is, and which pixels carry
    colour (Doppler, coloured markers), which are kept and hidden from the network."""
    return {"region": image.region, "keep": image.colour_mask}


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, *, model=None, device: str = "auto",
                 batch_size: int | None = None, domain: str = "auto",
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 series_uids: dict[str, str] | None = None,
                 grain_px: tuple[float, float] | None = None, precision: str = "auto",
                 tile_size: int | None = None, strength: float = 1.0) -> FileReport:
    """Read `src`, denoise every frame, write `dst` with `src`'s geometry and header. Raises on failure.

    A DICOM input gives a derived DICOM series file unless `dst` names another format. Its new
    Series and SOP Instance UIDs derive from the originals, the model's checksum and the settings,
    so all files of one original series land in one new series whichever process writes them;
    `series_uids` (original to new) may override the series UIDs. `strength` blends input (0) and
    result (1).
    """
    src, dst = Path(src), Path(dst)
    check_plan([(src, dst)])
    check_output_type(src, dst)
    start = time.monotonic()
    model = get_model(model)
    dicom = read_dicom(src) if is_dicom(src) else None
    volume = dicom.volume if dicom is not None else read_volume(src)
    if is_supported(dst):
        check_can_hold(dst, volume)
    result = denoise(volume.frames, model=model, device=device, batch_size=batch_size, domain=domain,
                     progress=progress, should_stop=should_stop, grain_px=grain_px, precision=precision,
                     tile_size=tile_size, **(dicom_hints(dicom) if dicom is not None else {}))
    result = blend(volume.frames, result, check_strength(strength))
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dicom is not None and not is_supported(dst):
        recipe = derivation_recipe(model.sha256, domain=domain, grain_px=grain_px, precision=precision,
                                   tile_size=tile_size, strength=float(strength))
        series_uids = {} if series_uids is None else series_uids
        original = str(dicom.header.get("SeriesInstanceUID", ""))
        instance = str(dicom.header.get("SOPInstanceUID", "")) or str(src)
        write_dicom(dst, dicom, result, model.sha256, series_uid=series_uids.setdefault(original, derived_uid(
            original, recipe)), instance_uid=derived_uid(instance, recipe))
    else:
        write_volume(dst, volume.with_frames(result))
    notes = list(volume.notes) + (dicom.warnings if dicom is not None else [])
    return FileReport(src, dst, True, frames=volume.frames.shape[0], seconds=time.monotonic() - start, notes=notes)


def planned_report(src: Path, dst: Path, skip_existing: bool) -> FileReport | None:
    """The report of an input that is not to be denoised (its output is complete already and
    `skip_existing`), else None. Outputs that clash are refused earlier, by checked_plan."""
    if skip_existing and dst.is_file():  # atomic writes: a file under its final name is complete
        return FileReport(src, dst, True, skipped=True)
    return None


def denoise_files(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *, model=None,
                  device: str = "auto", batch_size: int | None = None, domain: str = "auto",
                  progress: FileProgress | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  grain_px: tuple[float, float] | None = None, precision: str = "auto",
                  tile_size: int | None = None, strength: float = 1.0,
                  skip_existing: bool = False) -> list[FileReport]:
    """Denoise files and folders into `output`; one report per input file, failures included.

    `skip_existing` leaves outputs that already exist (complete: every write is atomic) as they are.

    Options, the model and the output plan are checked before the first file: a problem with them
    raises (InputError, ModelFileError) instead of failing every file (see checked_plan). A stop
    request ends the batch: the file in progress is not written and the rest are skipped.
    """
    check_run_options(model=model, batch_size=batch_size, tile_size=tile_size, precision=precision,
                      domain=domain, device=device, grain_px=grain_px)
    check_strength(strength)
    model = get_model(model)
    options = dict(model=model, device=device, batch_size=batch_size, domain=domain, should_stop=should_stop,
                   grain_px=grain_px, precision=precision, tile_size=tile_size)
    if _is_series_to_one_file(inputs, output):
        return [_denoise_series_to_file(Path(inputs[0]), Path(output), strength=strength, **options)]
    reports: list[FileReport] = []
    series_uids: dict[str, str] = {}
    for src, dst in checked_plan(inputs, output):
        planned = planned_report(src, dst, skip_existing)
        if planned is not None:
            reports.append(planned)
            continue
        per_file = (lambda d, t, s=src: progress(s, d, t)) if progress is not None else None
        try:
            reports.append(denoise_file(src, dst, progress=per_file, series_uids=series_uids, strength=strength,
                                        **options))
        except Cancelled as exc:
            reports.append(FileReport(src, None, False, str(exc)))
            break
        except ModelFileError:  # the model, not this file: every file would fail the same way
            raise
        except (Speckle2SelfError, OSError) as exc:
            reports.append(FileReport(src, None, False, str(exc)))
        except Exception as exc:  # a library's own failure on this file (a decoder, a writer): the others go on
            reports.append(FileReport(src, None, False, f"{src}: {type(exc).__name__}: {reason(exc)}"))
    return reports
