"""The few pydicom calls whose names or results differ between pydicom 2.4 and 3.x, in one place.

Slicer 5.10 and 5.11 ship pydicom 2.4.4; Slicer 5.12 and a pip install ship 3.x. pydicom 3 moved
the pixel helpers from `pydicom.pixel_data_handlers.util` to `pydicom.pixels`, renamed
`save_as(write_like_original=False)` to `save_as(enforce_file_format=True)`, and gives colour as
RGB where 2.4 left YCbCr as it was stored. Every other function the engine calls is the same in both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

YBR_STORED = ("YBR_FULL", "YBR_FULL_422")
"""Photometric interpretations pydicom 3 converts to RGB and pydicom 2.4 returns as stored."""

MISSING_DECODER_HINT = ("install the JPEG decoders into Slicer's Python (Python console: "
                        "slicer.util.pip_install('pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle')) "
                        "or use Slicer 5.12 or later")
"""What to do when no pixel data handler can decode a compressed file (Slicer ships none of pylibjpeg)."""


def pydicom_major() -> int:
    """The installed pydicom's major version (2 or 3)."""
    import pydicom
    return int(str(pydicom.__version__).split(".")[0])


def _pixels_module():
    """Where the pixel helpers live: `pydicom.pixels` (3.x) or `pydicom.pixel_data_handlers.util` (2.x)."""
    if pydicom_major() >= 3:
        import pydicom.pixels as helpers
    else:
        import pydicom.pixel_data_handlers.util as helpers
    return helpers


def apply_color_lut(pixels: np.ndarray, ds) -> np.ndarray:
    """Palette indices through the dataset's (possibly segmented) colour lookup tables."""
    return _pixels_module().apply_color_lut(pixels, ds)


def convert_color_space(pixels: np.ndarray, current: str, desired: str) -> np.ndarray:
    """pydicom's colour conversion, e.g. ('YBR_FULL', 'RGB')."""
    return _pixels_module().convert_color_space(pixels, current, desired)


def expected_pixel_bytes(ds) -> int:
    """Bytes of uncompressed pixel data the header announces."""
    if pydicom_major() >= 3:
        from pydicom.pixels.utils import get_expected_length
    else:
        from pydicom.pixel_data_handlers.util import get_expected_length
    return int(get_expected_length(ds, unit="bytes"))


def save_as_dicom_file(ds, path: str | Path) -> None:
    """Write `ds` as a conformant DICOM file: preamble, 'DICM' and File Meta Information."""
    if pydicom_major() >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, write_like_original=False)


def decode_pixels(ds) -> np.ndarray:
    """The dataset's pixels as pydicom 3 gives them: colour as RGB, whatever pydicom is installed.

    pydicom 2.4 is steered to pylibjpeg where it can decode the file, as pydicom 3 is (its Pillow
    handler is both less exact and, with current Pillow, broken for RGB JPEG), and its YCbCr results
    are converted to RGB as pydicom 3 does.
    """
    if pydicom_major() >= 3:
        return ds.pixel_array
    pixels = _decode_with_pylibjpeg(ds)
    if pixels is None:
        pixels = ds.pixel_array
    if ds.get("PhotometricInterpretation") in YBR_STORED and pixels.ndim >= 3 and pixels.shape[-1] == 3:
        pixels = convert_color_space(pixels, "YBR_FULL", "RGB")
    return pixels


def _decode_with_pylibjpeg(ds) -> np.ndarray | None:
    """pydicom 2.4's pylibjpeg handler on a compressed dataset, or None where it does not apply.

    pylibjpeg-libjpeg, called the pydicom 2 way, applies a YCbCr-to-RGB transform to every JPEG
    labelled RGB, which breaks JPEGs that store RGB (pydicom 3 applies none); labelling the data
    YBR_FULL while it decodes asks for no transform, as pydicom 3 does.
    """
    from pydicom.pixel_data_handlers import pylibjpeg_handler
    from pydicom.uid import JPEGLSTransferSyntaxes, JPEGTransferSyntaxes
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if (syntax is None or not syntax.is_compressed or not pylibjpeg_handler.is_available()
            or not pylibjpeg_handler.supports_transfer_syntax(syntax)):
        return None
    photometric = ds.get("PhotometricInterpretation")
    relabel = photometric == "RGB" and syntax in list(JPEGTransferSyntaxes) + list(JPEGLSTransferSyntaxes)
    if relabel:
        ds.PhotometricInterpretation = "YBR_FULL"
    try:
        ds.convert_pixel_data("pylibjpeg")
        return ds.pixel_array
    except Exception:  # the decoder cannot do this one: let pydicom's other handlers try
        return None
    finally:
        if relabel:
            ds.PhotometricInterpretation = photometric
