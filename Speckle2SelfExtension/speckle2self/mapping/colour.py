"""Colour to grey, one rule for files and Slicer volumes alike.

ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B (the weights DICOM's YBR uses). A fourth
(alpha) channel is ignored; a 2-channel image is grey + alpha and keeps its first channel.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

LUMA = np.array([0.299, 0.587, 0.114])
RGB_NOTE = "converted RGB to grey (0.299 R + 0.587 G + 0.114 B)"


def to_grey(pixels: np.ndarray) -> tuple[np.ndarray, str]:
    """Grey image of `pixels` (components on the last axis) in the same dtype, and a note saying how."""
    comps = pixels.shape[-1]
    if comps in (3, 4):
        grey, note = pixels[..., :3].astype(np.float64) @ LUMA, RGB_NOTE
    elif comps == 2:
        grey, note = pixels[..., 0].astype(np.float64), "used the first channel of a 2-channel (grey + alpha) image"
    elif comps == 1:
        return pixels[..., 0], "used the single component"
    else:
        raise InputError(f"images with {comps} components per pixel are not supported")
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        grey = np.clip(np.rint(grey), info.min, info.max)
    return grey.astype(pixels.dtype), note
