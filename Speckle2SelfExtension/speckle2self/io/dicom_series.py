"""Many DICOM files as series: grouped by Series Instance UID, frames in acquisition order."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .dicom_read import DicomImage, read_dicom


def series_groups(paths: Sequence[Path]) -> dict[str, list[Path]]:
    """Files by Series Instance UID, each list ordered by Instance Number, then acquisition time."""
    import pydicom
    groups: dict[str, list[tuple[tuple, Path]]] = defaultdict(list)
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:
            raise InputError(f"{path}: not a readable DICOM file ({type(exc).__name__})") from exc
        key = (int(ds.get("InstanceNumber", 0) or 0), str(ds.get("AcquisitionTime", "") or ds.get("ContentTime", "")),
               str(path))
        groups[str(ds.get("SeriesInstanceUID", ""))].append((key, Path(path)))
    return {uid: [p for _, p in sorted(items)] for uid, items in groups.items()}


def read_dicom_series(paths: Sequence[Path]) -> DicomImage:
    """The frames of one series' files, in order, as one image (geometry and header of the first)."""
    images = [read_dicom(p) for p in paths]
    shapes = {im.volume.frames.shape[1:] for im in images}
    if len(shapes) > 1:
        raise InputError(f"the series' files have different frame sizes {sorted(shapes)}; write them to a folder")
    first = images[0]
    frames = np.concatenate([im.volume.frames for im in images])
    colour = all(im.rgb is not None for im in images)
    volume = type(first.volume)(frames=frames, spacing=first.volume.spacing, origin=first.volume.origin,
                                direction=first.volume.direction, single_frame=False,
                                notes=first.volume.notes + (f"assembled {len(images)} files of one series in "
                                                            "instance order",), source=None)
    return DicomImage(volume, first.header, np.concatenate([im.rgb for im in images]) if colour else None,
                      np.concatenate([im.colour_mask for im in images]) if colour else None,
                      first.frame_time_ms, sorted({w for im in images for w in im.warnings}), first.region,
                      first.tint if colour else None)
