"""Where the extension's shipped files live, in each way the package can be laid out."""
from __future__ import annotations

from pathlib import Path


def resource_dirs(folder: str) -> list[Path]:
    """Candidate locations of `Resources/<folder>`: source checkout, Slicer install, installed wheel.

    In the wheel, pyproject.toml maps `Resources/<folder>` to the sub-package `<folder lower-cased>`.
    """
    here = Path(__file__).resolve().parent
    return [here.parent.parent / "Resources" / folder,  # source checkout
            here.parent / "Resources" / folder,  # Slicer's qt-scripted-modules layout
            here / folder.lower()]  # installed wheel
