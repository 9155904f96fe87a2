"""Reading and writing images as frame stacks with their geometry.

`read_volume` / `write_volume` use SimpleITK for NRRD, NIfTI, MetaImage, PNG and TIFF; DICOM files
(.dcm or any file with the DICOM preamble) go through pydicom (`read_dicom` / `write_dicom`).
"""
from .volume import Volume
from .files import SUPPORTED_SUFFIXES, is_supported, read_volume, write_volume
from .lazy import FrameCache, LazyVolume
from .dicom_read import DicomImage, read_dicom
from .dicom_write import write_dicom
from .files import is_dicom

__all__ = ["Volume", "read_volume", "write_volume", "is_supported", "SUPPORTED_SUFFIXES", "FrameCache",
           "LazyVolume", "DicomImage", "read_dicom", "write_dicom", "is_dicom"]
