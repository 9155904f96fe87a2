"""Frames of image files decoded on demand, with a shared memory budget.

A study of thousands of frames is indexed from the files' headers alone; a file is decoded when
one of its frames is first needed and dropped again, least recently used first, when the decoded
files exceed the cache's budget. Peak memory is the budget plus one file, whatever the study size.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import InputError
from .files import check_readable, is_dicom, read_volume

class FrameCache:
    """Decoded frame stacks by file, evicted least-recently-used beyond `budget_bytes`."""

    def __init__(self, budget_bytes: int = 1 << 30) -> None:
        self.budget = budget_bytes
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        frames = read_volume(path).frames
        self.items[path] = frames
        while len(self.items) > 1 and sum(a.nbytes for a in self.items.values()) > self.budget:
            self.items.popitem(last=False)
        return frames


class LazyVolume:
    """(frames, rows, cols) view of an image file: shape and dtype from its header, pixels on demand."""

    def __init__(self, path: str | Path, cache: FrameCache) -> None:
        import SimpleITK as sitk
        self.path = Path(path)
        self.cache = cache
        self.ndim = 3
        if is_dicom(self.path):
            self.shape, self.dtype = _dicom_header_shape(self.path)
            return
        self.path = check_readable(path)
        self.cache = cache
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(self.path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            raise InputError(f"{self.path}: cannot read the image header (unreadable or truncated file)") from exc
        size = reader.GetSize()
        if len(size) not in (2, 3):
            raise InputError(f"{self.path}: {len(size)}-D images are not supported")
        self.shape = (size[2] if len(size) == 3 else 1, size[1], size[0])
        self.ndim = 3
        probe = sitk.Image([1] * len(size), reader.GetPixelID(), reader.GetNumberOfComponents())
        self.dtype = sitk.GetArrayViewFromImage(probe).dtype  # colour files become grey of this dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        return self.cache.get(self.path)[index]

    def __array__(self, dtype=None, copy=None):
        data = self.cache.get(self.path)
        return data.astype(dtype) if dtype is not None else data


def _dicom_header_shape(path: Path) -> tuple[tuple[int, int, int], np.dtype]:
    """(frames, rows, cols) and grey dtype of a DICOM image from its header, without decoding pixels."""
    import pydicom
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        shape = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.Rows), int(ds.Columns))
    except Exception as exc:
        raise InputError(f"{path}: not a readable DICOM image header ({type(exc).__name__})") from exc
    colour = ds.get("SamplesPerPixel", 1) == 3 or ds.get("PhotometricInterpretation") == "PALETTE COLOR"
    bits = int(ds.get("BitsAllocated", 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    dtype = np.uint8 if colour or bits <= 8 else (np.int16 if signed else np.uint16) if bits <= 16 else np.int32
    return shape, np.dtype(dtype)
