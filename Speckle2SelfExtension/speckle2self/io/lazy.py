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
from .files import check_readable, read_volume

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
