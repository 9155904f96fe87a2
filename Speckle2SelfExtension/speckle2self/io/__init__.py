"""Reading and writing images as frame stacks with their geometry.

`read_volume` / `write_volume` pick the reader by what the path is: SimpleITK formats here, DICOM
(files ending in .dcm, DICOM folders) through the DICOM reader once it exists.
"""
from .volume import Volume
from .files import SUPPORTED_SUFFIXES, is_supported, read_volume, write_volume
from .lazy import FrameCache, LazyVolume

__all__ = ["Volume", "read_volume", "write_volume", "is_supported", "SUPPORTED_SUFFIXES", "FrameCache",
           "LazyVolume"]
