"""SimpleITK-backed reading and writing: NRRD, NIfTI, MHA/MHD (PLUS sequences), PNG, TIFF.

A 3-D file is a stack of frames along its third axis. Colour images become grey by the rule in
speckle2self.mapping.colour.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, remove_stale_temporaries
from ..mapping.colour import to_grey
from ..errors import InputError, OutputError
from ..failures import reason
from .footprint import check_own_data_files, check_plan, output_files
from .volume import Volume

SUPPORTED_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".png", ".tif", ".tiff")
_INTEGER_ONLY = (".png",)
_DROP_KEYS = ("ITK_", "NRRD_", "Modality")


def suffix_of(path: str | os.PathLike) -> str:
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def is_supported(path: str | os.PathLike) -> bool:
    return suffix_of(path) in SUPPORTED_SUFFIXES


def is_dicom(path: str | os.PathLike) -> bool:
    """A file ending in .dcm, or any file with the DICOM preamble ('DICM' at byte 128)."""
    path = Path(path)
    if not path.is_file():
        return False
    if suffix_of(path) == ".dcm":
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def check_readable(path: str | os.PathLike) -> Path:
    """The path, if it names an existing file of a format this module reads; else a clear InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(missing_message(path))
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass the files in it, or the folder where a batch is expected")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file (a FIFO, socket or device); reading it could wait forever: "
                         "save the image to a file first")
    if not is_supported(path):
        raise InputError(f"{path}: unsupported file type {suffix_of(path)!r}; "
                         f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    return path


def missing_message(path: Path) -> str:
    """Why a path that does not exist cannot be read: a symbolic link loop, a dangling link, or nothing there."""
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{path}: a symbolic link loop (the link leads back to itself)"
        return f"{path}: a symbolic link to {os.readlink(path)}, which does not exist"
    return f"{path}: no such file"


def check_output_name(path: Path) -> None:
    """Refuse, before any work, an output extension that the image writers would mishandle: ITK's
    NIfTI writer refuses '.NII'/'.NII.GZ' and its MetaImage writer renames '.MHA'/'.MHD' files."""
    suffix = suffix_of(path)
    if suffix in (".nii", ".nii.gz", ".mha", ".mhd") and not path.name.endswith(suffix):
        raise InputError(f"{path}: write the extension as {suffix!r} (lower case); ITK's writers do not "
                         f"handle {path.name[len(path.name) - len(suffix):]!r}")


def check_can_hold(path: Path, volume: Volume) -> None:
    """Refuse, before any work, a format that cannot hold this volume (PNG: one 8- or 16-bit frame)."""
    frames = volume.frames
    if suffix_of(path) in _INTEGER_ONLY and frames.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: PNG holds 8- or 16-bit unsigned integers, not {frames.dtype}; "
                         "write NRRD, NIfTI, MHA or TIFF instead")
    if suffix_of(path) in _INTEGER_ONLY and not volume.single_frame:
        raise InputError(f"{path}: PNG holds one frame and this has {frames.shape[0]}; write NRRD, MHA or TIFF")


def read_volume(path: str | os.PathLike) -> Volume:
    """Read an image file as a frame stack with spacing, origin, direction and header fields.

    DICOM files go to the DICOM reader (speckle2self.io.dicom_read); use it directly to keep the
    colour pixels and header needed to write a derived DICOM series.
    """
    import SimpleITK as sitk
    if is_dicom(path):
        from .dicom_read import read_dicom
        return read_dicom(path).volume
    path = check_readable(path)
    check_bit_depth(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read the image (unreadable or truncated file): {first}") from exc
    return _volume_from_image(image, path)


def check_bit_depth(path: Path) -> None:
    """Refuse grey PNGs of fewer than 8 bits: 2 to 16 levels hold no speckle to reduce, and the
    denoised grey levels could not be written back at that depth."""
    if suffix_of(path) != ".png":
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from exc
    grey, depth = len(head) == 26 and head[12:16] == b"IHDR" and head[25] == 0, head[24] if len(head) == 26 else 8
    if grey and depth < 8:
        raise InputError(f"{path}: a {depth}-bit PNG has only {2 ** depth} grey levels, so it holds no speckle "
                         "to reduce and cannot store a denoised image; save it with 8 or 16 bits per pixel")


def _volume_from_image(image, path: Path) -> Volume:
    import SimpleITK as sitk
    dim = image.GetDimension()
    if dim not in (2, 3):
        raise InputError(f"{path}: {dim}-D images are not supported (2-D frames or 3-D stacks only)")
    comps = image.GetNumberOfComponentsPerPixel()
    if comps == 2 and not np.issubdtype(sitk.GetArrayViewFromImage(image).dtype, np.integer):
        raise InputError(f"{path}: 2 floating-point components per pixel are complex (I/Q) or vector data, "
                         "not grey + alpha; store the envelope (magnitude) instead")
    arr = sitk.GetArrayFromImage(image)
    notes = []
    if comps > 1:
        arr, note = to_grey(arr)
        notes.append(note)
    if np.iscomplexobj(arr):
        raise InputError(f"{path}: complex pixels are not supported; store the envelope (magnitude)")
    spacing, origin, direction = _geometry(image)
    metadata = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys() if not k.startswith(_DROP_KEYS)}
    return Volume(frames=arr[None] if dim == 2 else arr, spacing=spacing, origin=origin, direction=direction,
                  single_frame=dim == 2, metadata=metadata, notes=tuple(notes), source=path)


def _geometry(image) -> tuple[tuple, tuple, tuple]:
    if image.GetDimension() == 3:
        return tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection())
    (sx, sy), (ox, oy), d = image.GetSpacing(), image.GetOrigin(), image.GetDirection()
    return (sx, sy, 1.0), (ox, oy, 0.0), (d[0], d[1], 0.0, d[2], d[3], 0.0, 0.0, 0.0, 1.0)


def write_volume(path: str | os.PathLike, volume: Volume, *, overwrite: bool = True) -> Path:
    """Write `volume` to `path` atomically (a complete new file or none); refuses its own source."""
    path = Path(path)
    if not is_supported(path):
        raise InputError(f"{path}: cannot write {suffix_of(path)!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    check_output_name(path)
    if volume.source is not None:
        check_plan([(Path(volume.source), path)])
    check_own_data_files(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; choose another output name")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path}: cannot write (the output folder {path.parent} is not writable)")
    image = _image_from_volume(volume, path)
    if suffix_of(path) in (".mhd", ".nhdr"):
        _write_detached(image, path)
    else:
        _write_single(image, path)
    return path


def _image_from_volume(volume: Volume, path: Path):
    import SimpleITK as sitk
    frames = volume.frames
    suffix = suffix_of(path)
    check_can_hold(path, volume)
    if volume.single_frame:
        image = sitk.GetImageFromArray(frames[0])
        d = volume.direction
        image.SetSpacing(volume.spacing[:2])
        image.SetOrigin(volume.origin[:2])
        image.SetDirection((d[0], d[1], d[3], d[4]))
    else:
        image = sitk.GetImageFromArray(frames)
        image.SetSpacing(volume.spacing)
        image.SetOrigin(volume.origin)
        image.SetDirection(volume.direction)
    if suffix in (".mha", ".mhd", ".nrrd", ".nhdr"):
        for key, value in volume.metadata.items():
            image.SetMetaData(key, value)
    return image


def _write_single(image, path: Path) -> None:
    import SimpleITK as sitk
    with atomic_path(path) as tmp:
        _sitk_write(sitk, image, tmp, path)


def _write_detached(image, path: Path) -> None:
    """Header + data files: write both under their final names in a private folder, then move them
    (data first, header last) so the header never points at missing data."""
    import SimpleITK as sitk
    remove_stale_temporaries(path.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".speckle2self-", dir=path.parent))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({reason(exc)})") from exc
    try:
        _sitk_write(sitk, image, staging / path.name, path)
        header = staging / path.name
        _check_staged(staging, path)
        for item in sorted(staging.iterdir(), key=lambda p: p == header):
            os.replace(item, path.parent / item.name)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({reason(exc)})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_staged(staging: Path, path: Path) -> None:
    """Move nothing unless the writer made exactly the files planned (and checked against the inputs)."""
    made = sorted(p.name for p in staging.iterdir())
    planned = sorted(p.name for p in output_files(path))
    if made != planned:
        raise OutputError(f"{path}: the writer made {', '.join(made)} instead of {', '.join(planned)}; "
                          "nothing was written")


def _sitk_write(sitk, image, target: Path, final: Path) -> None:
    try:
        sitk.WriteImage(image, str(target), useCompression=suffix_of(final) in (".nrrd", ".mha", ".nii.gz"))
    except RuntimeError as exc:
        raise OutputError(f"{final}: could not write: {str(exc).strip().splitlines()[-1]}") from exc
    _check_written(sitk, image, target, final)


def _check_written(sitk, image, target: Path, final: Path) -> None:
    """Read the written file back: some of ITK's writers (NIfTI) only print a failed write to the
    console, which would leave a truncated file reported as written."""
    try:
        back = sitk.GetArrayFromImage(sitk.ReadImage(str(target)))
        complete = np.array_equal(back, sitk.GetArrayViewFromImage(image), equal_nan=back.dtype.kind == "f")
    except RuntimeError:
        complete = False
    if not complete:
        raise OutputError(f"{final}: could not write: the file written does not read back complete "
                          "(is the disk full?); any previous file there is unchanged")
