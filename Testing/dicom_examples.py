"""pydicom's ultrasound example files, under pydicom 3 and under pydicom 2.4 (Slicer 5.10's).

pydicom 3 ships them (`pydicom.examples`); pydicom 2.4 does not, so CI copies them aside before it
installs pydicom 2.4 and names the folder in SPECKLE2SELF_PYDICOM_EXAMPLES (see .ci/run).
"""
from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest

EXAMPLES_FOLDER_VARIABLE = "SPECKLE2SELF_PYDICOM_EXAMPLES"
EXAMPLE_FILES = {"ybr_color": "examples_ybr_color.dcm", "rgb_color": "examples_rgb_color.dcm",
                 "palette_color": "examples_palette.dcm", "jpeg2k": "examples_jpeg2k.dcm"}


def pydicom_file(name: str) -> Path | None:
    """A file of pydicom's test data, pydicom-data's or the examples folder's, never downloaded; None if absent."""
    from pydicom.data import get_testdata_file
    folder = os.environ.get(EXAMPLES_FOLDER_VARIABLE)
    if folder and (Path(folder) / name).is_file():
        return Path(folder) / name
    path = get_testdata_file(name, download=False)
    return Path(path) if path else None


def example_path(name: str) -> Path:
    """The file of pydicom's example `name` ('ybr_color', …); skips the test where there is none."""
    file_name = EXAMPLE_FILES[name]
    path = pydicom_file(file_name)
    if path is None:
        pytest.skip(f"{file_name} is shipped by pydicom 3 only; set {EXAMPLES_FOLDER_VARIABLE} to a copy")
    return path


def example(name: str) -> pydicom.Dataset:
    """A fresh dataset of pydicom's example `name`, as `pydicom.examples.<name>` gives it."""
    return pydicom.dcmread(example_path(name))
