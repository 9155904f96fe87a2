"""Writing the denoised result as a new DICOM series in the same study.

Same patient and study, new Series and SOP Instance UIDs, Image Type DERIVED\\SECONDARY, a
Derivation Description naming Speckle2Self and the model's checksum, a Source Image Sequence
pointing to the original, the original's frame timing and ultrasound regions, and an uncompressed
(lossless) transfer syntax. Private (vendor) elements are not carried over: they describe the
original acquisition's pixels and encoding, not the derived ones. Colour pixels (Doppler, annotations) are written back exactly as they
were; only grey pixels carry the denoised values.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError
from .dicom_read import DicomImage
from .pydicom_compat import save_as_dicom_file

_PALETTE_KEYWORDS = ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                     "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                     "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
                     "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
                     "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID")


def derived_pixels(image: DicomImage, grey: np.ndarray) -> np.ndarray:
    """The output pixels: denoised grey, or for colour inputs RGB with colour pixels kept as they were
    (and the grey shown through the display's tint, where it has one)."""
    if image.rgb is None:
        return grey
    if image.tint is not None:
        out = image.tint[np.asarray(grey, dtype=np.uint8)].astype(np.uint8)
    else:
        out = np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8)
    out[image.colour_mask] = image.rgb[image.colour_mask]
    return out


def new_uid() -> str:
    """A fresh, random DICOM UID (pydicom's generator: never derived from the originals)."""
    from pydicom.uid import generate_uid
    return str(generate_uid())


def derived_uid(original: str, recipe: str) -> str:
    """The UID of what `recipe` (the model's checksum and the settings) makes from UID `original`.

    The same original and recipe give the same UID on any machine, so files of one original series
    that different processes or cluster workers denoise land in one new series without a coordinator,
    and a rerun rewrites the same instances instead of adding copies. A different model or setting
    gives different UIDs. (pydicom's generator: a SHA-512 of the sources under its UID root.)
    """
    from pydicom.uid import generate_uid
    return str(generate_uid(entropy_srcs=[original, recipe]))


def derivation_recipe(model_sha256: str, **settings) -> str:
    """What decides a derived file's pixels: the model's checksum and the settings, as one string."""
    return ";".join([model_sha256] + [f"{key}={settings[key]!r}" for key in sorted(settings)])


def write_dicom(path: str | Path, image: DicomImage, grey: np.ndarray, model_sha256: str,
                series_uid: str | None = None, instance_uid: str | None = None) -> Path:
    """Write the derived series' file for `image` with denoised `grey` frames (same shape and dtype).

    `series_uid` puts several files in one new series; by default each call starts a new series.
    `instance_uid` (default: a fresh random UID) is the new SOP Instance UID.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    path = Path(path)
    if grey.shape != image.volume.frames.shape:
        raise InputError(f"denoised frames {grey.shape} do not match the DICOM image {image.volume.frames.shape}")
    src = image.header
    ds = copy.deepcopy(src)  # a shallow copy would share (and so change) the original's elements
    ds.remove_private_tags()  # vendor data describes the original pixels and encoding, not ours
    for keyword in _PALETTE_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    _set_pixels(ds, derived_pixels(image, grey))
    _mark_derived(ds, src, model_sha256, series_uid or new_uid(), instance_uid or new_uid())
    meta = FileMetaDataset(getattr(src, "file_meta", FileMetaDataset()))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    with atomic_path(path, suffix=".dcm") as tmp:
        save_as_dicom_file(ds, tmp)
    return path


def _set_pixels(ds, pixels: np.ndarray) -> None:
    frames = pixels.shape[0]
    colour = pixels.ndim == 4
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 1 if np.issubdtype(pixels.dtype, np.signedinteger) else 0
    ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[2]
    if frames > 1 or "NumberOfFrames" in ds:
        ds.NumberOfFrames = frames
    data = pixels if frames > 1 or "NumberOfFrames" in ds else pixels[0]
    ds.PixelData = np.ascontiguousarray(data.astype(data.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"


def _mark_derived(ds, src, model_sha256: str, series_uid: str, instance_uid: str) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = instance_uid
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = f"Speckle2Self self-supervised speckle reduction; model sha256 {model_sha256}"
    description = str(src.get("SeriesDescription", "")).strip()
    ds.SeriesDescription = (f"{description} " if description else "")[:51] + "Speckle2Self"
    source = Dataset()
    source.ReferencedSOPClassUID = src.SOPClassUID
    source.ReferencedSOPInstanceUID = src.SOPInstanceUID
    ds.SourceImageSequence = Sequence([source])
