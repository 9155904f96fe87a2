"""Reading ultrasound DICOM with pydicom: frames, colour, spacing and timing.

Pixels are decoded by pydicom's handlers (pylibjpeg with its libjpeg, openjpeg and RLE plugins
for compressed transfer syntaxes); pydicom 2.4 (Slicer 5.10) and 3.x give the same pixels (see
pydicom_compat). Colour comes out as RGB (pydicom converts YBR_FULL and
YBR_FULL_422, JPEG 2000 decoders undo YBR_RCT/ICT, palettes go through their lookup tables) and
becomes grey by the rule in speckle2self.mapping.colour; pixels whose channels differ (Doppler, coloured
annotations) are marked, so that the writer can keep them exactly as they were. MONOCHROME1 is
inverted so that bright means strong echo, as in every other input.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..mapping.colour import colour_pixels, display_tint, to_grey
from ..errors import InputError
from ..failures import reason
from .pydicom_compat import MISSING_DECODER_HINT, apply_color_lut, decode_pixels, expected_pixel_bytes
from .volume import Volume

COLOUR_TOLERANCE = 24
"""Largest channel spread (0-255) still counted as grey: lossy JPEG chroma blurs grey by a few levels."""


@dataclass
class DicomImage:
    """One DICOM file as frames: the grey volume, the original colour pixels, and its header."""

    volume: Volume
    header: object  # pydicom Dataset without pixel data
    rgb: np.ndarray | None = None  # (frames, rows, cols, 3) uint8 as displayed, for colour inputs
    colour_mask: np.ndarray | None = None  # (frames, rows, cols) True where a pixel carries colour
    frame_time_ms: float | None = None
    warnings: list[str] = field(default_factory=list)
    region: np.ndarray | None = None  # (rows, cols) True inside the file's 2-D tissue ultrasound regions
    tint: np.ndarray | None = None  # (256, 3) colour of each grey level on a tinted display, else None


def read_dicom(path: str | Path) -> DicomImage:
    """Read one DICOM image file (single frame or cine) with its geometry."""
    import pydicom
    path = Path(path)
    from pydicom.errors import InvalidDicomError
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise InputError(f"{path}: not a DICOM file (it has no DICOM file header)") from exc
    except Exception as exc:  # pydicom raises many types for corrupt files
        raise InputError(f"{path}: not a readable DICOM file ({reason(exc)})") from exc
    if "PixelData" not in ds:
        raise InputError(_no_pixels_message(ds, path))
    pixels = _decode(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    pixels = _as_frames(pixels, ds, frames)
    if pixels.dtype.byteorder not in ("=", "|"):
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))  # big-endian files: native values
    rgb, mask, tint, notes = None, None, None, []
    if pixels.ndim == 4:
        rgb = _to_uint8(pixels)
        grey, note = to_grey(rgb)
        tint = display_tint(rgb, grey, COLOUR_TOLERANCE)
        mask = colour_pixels(rgb, grey, COLOUR_TOLERANCE, tint)
        notes.append(note)
        if tint is not None:
            notes.append("the display's grey map is tinted: the output keeps its tint")
        if mask.any():
            notes.append(f"{int(mask.sum())} colour pixels (Doppler or annotations) are kept unchanged")
    else:
        grey = pixels
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            grey = (grey.max() + grey.min() - grey.astype(np.int64)).astype(pixels.dtype) if np.issubdtype(
                pixels.dtype, np.integer) else grey.max() + grey.min() - grey
            notes.append("inverted MONOCHROME1 so that bright means strong echo")
    spacing, spacing_warnings = pixel_spacing(ds)
    header = ds.copy()
    del header.PixelData
    volume = Volume(frames=np.ascontiguousarray(grey), spacing=(spacing[1], spacing[0], 1.0), single_frame=frames == 1,
                    notes=tuple(notes), source=path)
    spacing_warnings += rescale_warnings(ds) + per_frame_spacing_warnings(ds, spacing)
    return DicomImage(volume, header, rgb, mask, frame_time(ds), spacing_warnings,
                      ultrasound_regions(ds, grey.shape[-2], grey.shape[-1]), tint)


TISSUE_DATA_TYPE = 1
SPATIAL_2D = 1


def ultrasound_regions(ds, rows: int, cols: int) -> np.ndarray | None:
    """Union of the 2-D tissue regions of the Sequence of Ultrasound Regions, or None.

    Regions that do not fit the image (a header left over from another acquisition size: pydicom's
    echo cine lists a 596×415 region on a 320×240 image) are not trusted, nor is a file without any.
    """
    mask = np.zeros((rows, cols), dtype=bool)
    for item in ds.get("SequenceOfUltrasoundRegions", []):
        if item.get("RegionSpatialFormat") != SPATIAL_2D or item.get("RegionDataType") != TISSUE_DATA_TYPE:
            continue
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            return None
        if not (0 <= x0 < x1 < cols and 0 <= y0 < y1 < rows):
            return None
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask if mask.any() else None


def _sop_name(ds) -> str:
    uid = ds.get("SOPClassUID")
    return getattr(uid, "name", str(uid)) if uid else "no SOP class"


def _no_pixels_message(ds, path: Path) -> str:
    """Why a DICOM file has no pixels: cut short, or a non-image object such as a report or plan."""
    if "SOPClassUID" not in ds:
        return (f"{path}: DICOM file without image pixels or SOP class: it ends early, so it is probably "
                "truncated")
    name = _sop_name(ds)
    if "Image" in name:
        return f"{path}: DICOM file without image pixels ({name}): an image file without them is probably truncated"
    return f"{path}: DICOM file without image pixels ({name})"


def _expected_bytes(ds) -> int | None:
    """Bytes of uncompressed pixel data the header announces (None for compressed transfer syntaxes)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        return None
    try:
        return expected_pixel_bytes(ds)
    except Exception:  # an incomplete header: the decoder will say what is missing
        return None


def _decode(ds, path: Path) -> np.ndarray:
    expected, present = _expected_bytes(ds), len(ds.PixelData or b"")
    if expected is not None and present < expected:
        raise InputError(f"{path}: the pixel data is incomplete ({present} of {expected} bytes): the file is truncated")
    try:
        pixels = decode_pixels(ds)
    except Exception as exc:
        raise InputError(_undecodable_message(ds, path, exc)) from exc
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    return pixels


def _undecodable_message(ds, path: Path, exc: Exception) -> str:
    """Why the pixels cannot be decoded; for a compressed file, also which decoders to install."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    message = f"{path}: cannot decode the pixels ({getattr(syntax, 'name', syntax)}): {reason(exc)}"
    if syntax is not None and getattr(syntax, "is_compressed", False):
        message += f". If no decoder for this compression is installed, {MISSING_DECODER_HINT}"
    return message


def _as_frames(pixels: np.ndarray, ds, frames: int) -> np.ndarray:
    colour = pixels.ndim >= 3 and pixels.shape[-1] == 3 and (ds.get("SamplesPerPixel", 1) == 3
                                                            or ds.get("PhotometricInterpretation") == "PALETTE COLOR")
    per_frame = 3 if colour else 2
    return pixels.reshape((frames,) + pixels.shape[-per_frame:])


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb
    top = float(rgb.max()) or 1.0
    return np.clip(np.rint(rgb.astype(np.float64) * (255.0 / (65535.0 if top > 255 else 255.0))), 0, 255).astype(np.uint8)


def pixel_spacing(ds) -> tuple[tuple[float, float], list[str]]:
    """(row spacing, column spacing) in mm and warnings: Pixel Spacing, else the 2-D tissue region
    of the Sequence of Ultrasound Regions (cm → mm), else 1 mm with a warning."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in ds and ds[keyword].value:
            row, col = (float(v) for v in ds[keyword].value)
            return (row, col), []
    notes = []
    regions = [r for r in ds.get("SequenceOfUltrasoundRegions", [])
               if r.get("RegionSpatialFormat") == 1 and r.get("PhysicalUnitsXDirection") == 3
               and r.get("PhysicalUnitsYDirection") == 3]
    if not regions:
        return (1.0, 1.0), ["no pixel spacing and no calibrated 2-D ultrasound region: spacing set to 1 mm"]
    region = max(regions, key=lambda r: (r.RegionLocationMaxX1 - r.RegionLocationMinX0)
                 * (r.RegionLocationMaxY1 - r.RegionLocationMinY0))
    if region.RegionLocationMaxX1 >= ds.Columns or region.RegionLocationMaxY1 >= ds.Rows:
        notes.append(f"the ultrasound region ({region.RegionLocationMaxX1 + 1}×{region.RegionLocationMaxY1 + 1} "
                     f"pixels) does not fit the {ds.Columns}×{ds.Rows} image: the image was probably resized "
                     "without updating its calibration, so the spacing may be wrong")
    return (abs(float(region.PhysicalDeltaY)) * 10.0, abs(float(region.PhysicalDeltaX)) * 10.0), notes


def rescale_warnings(ds) -> list[str]:
    """A note when Rescale Slope/Intercept map the stored values to others: the frames are denoised
    as stored (a derived DICOM keeps the rescale in its header; other formats get stored values)."""
    slope = float(ds.RescaleSlope) if ds.get("RescaleSlope") not in (None, "") else 1.0
    intercept = float(ds.RescaleIntercept) if ds.get("RescaleIntercept") not in (None, "") else 0.0
    if (slope, intercept) == (1.0, 0.0):
        return []
    return [f"Rescale Slope {slope:g} and Intercept {intercept:g} are not applied: the frames hold the stored "
            "values (a DICOM output keeps the rescale in its header; NRRD, NIfTI, MHA and TIFF outputs do not)"]


def per_frame_spacing_warnings(ds, used: tuple[float, float]) -> list[str]:
    """A note when an enhanced multi-frame file gives frames different pixel spacings: one spacing
    (the one used) is written for the whole stack."""
    found = set()
    for group in ds.get("PerFrameFunctionalGroupsSequence", []):
        for measures in group.get("PixelMeasuresSequence", []):
            if measures.get("PixelSpacing"):
                found.add(tuple(round(float(v), 6) for v in measures.PixelSpacing))
    if not found or found == {tuple(round(v, 6) for v in used)}:
        return []
    values = sorted(v for pair in found for v in pair)
    return [f"the frames' pixel spacings vary from {values[0]:g} to {values[-1]:g} mm; "
            f"{used[0]:g} × {used[1]:g} mm is used for every frame"]


def frame_time(ds) -> float | None:
    """Milliseconds between frames (Frame Time, else the mean of Frame Time Vector)."""
    if ds.get("FrameTime") not in (None, ""):
        return float(ds.FrameTime)
    vector = ds.get("FrameTimeVector")
    if vector:
        values = [float(v) for v in vector][1:] or [float(v) for v in vector]
        return float(np.mean(values))
    return None


def warn_all(image: DicomImage) -> None:
    for message in image.warnings:
        warnings.warn(f"{image.volume.source}: {message}", RuntimeWarning, stacklevel=2)


__all__ = ["DicomImage", "read_dicom", "pixel_spacing", "frame_time"]
