"""A stack of frames plus the geometry that places it in the patient."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Volume:
    """frames: (frames, rows, cols); spacing/origin in mm and direction (row-major 3×3) in ITK's
    (x = column, y = row, z = frame) order, as SimpleITK gives them; `single_frame` marks 2-D files.

    `metadata` holds the file's extra header fields (PLUS sequence timestamps and transforms, for
    example) so that writing the result keeps them; `notes` records conversions made on reading.
    """

    frames: np.ndarray
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
    origin: tuple[float, ...] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    single_frame: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    source: Path | None = None

    def with_frames(self, frames: np.ndarray) -> "Volume":
        """The same geometry and header with other frames of the same shape (e.g. the denoised ones)."""
        if frames.shape != self.frames.shape:
            raise ValueError(f"frames of shape {frames.shape} do not fit a volume of shape {self.frames.shape}")
        return replace(self, frames=frames)

    @property
    def data(self) -> np.ndarray:
        """What the user sees: a 2-D frame for a 2-D file, else the stack."""
        return self.frames[0] if self.single_frame else self.frames
