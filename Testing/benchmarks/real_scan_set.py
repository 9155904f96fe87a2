"""The real scans of the real-scan benchmark, and the split of the real training frames.

`../shared/real-train/` (459 real B-mode frames from four public sources, see its manifest) is
split by acquisition, never by frame, so no held-out frame has a neighbour in training: a fetal
head of every tenth HC18 subject, one TimTrack subject and one TimTrack recording, two PLUS
sequences, and every sixth lung video. The benchmark reads a few frames of each held-out group
plus the real clinical files of pydicom and pydicom-data, which no model here is trained on.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REAL_TRAIN = ROOT.parent / "shared" / "real-train"


def group_of(file: str) -> str:
    """The acquisition a real-train frame belongs to (subject, recording, sequence or video)."""
    folder, name = file.split("/", 1)
    stem = re.sub(r"(_step)?_\d+\.png$", "", name)
    return f"{folder}/{stem}"


def is_held_out(file: str, all_groups: list[str] | None = None) -> bool:
    """Whether a real-train frame is kept out of training (see the module docstring)."""
    folder, name = file.split("/", 1)
    if folder == "hc18_fetal_head":
        return int(name.split("_")[0]) % 40 == 0
    if folder == "timtrack_msk":
        return "_S9_" in name or "jumping" in name
    if folder == "pluslib_phantoms":
        return name.startswith(("BkCurvilinear", "UltrasonixLinear"))
    if folder == "lung_pocus_ccby":
        videos = sorted({group_of(f) for f in (all_groups or []) if f.startswith(folder)}) or [group_of(file)]
        return videos.index(group_of(file)) % 6 == 0
    return False


def manifest(root: Path = REAL_TRAIN) -> list[dict]:
    return json.loads((root / "manifest.json").read_text())


def split(root: Path = REAL_TRAIN) -> tuple[list[dict], list[dict]]:
    """(training records, held-out records) of the real-train manifest."""
    records = manifest(root)
    files = [r["file"] for r in records]
    held = [r for r in records if is_held_out(r["file"], files)]
    return [r for r in records if not is_held_out(r["file"], files)], held


BENCHMARK_FRAMES = (
    "hc18_fetal_head/000_HC.png", "hc18_fetal_head/400_HC.png", "hc18_fetal_head/800_HC.png",
    "timtrack_msk/dataset_1_S9_S9_L20_step_075.png", "timtrack_msk/dataset_2_jumping_gastroc_jumping_050.png",
    "pluslib_phantoms/BkCurvilinearScanConvertedData_000.png",
    "pluslib_phantoms/UltrasonixLinearScanConvertedData_000.png",
)


def read_png(path: Path) -> np.ndarray:
    import SimpleITK as sitk
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return image if image.ndim == 2 else image[..., 0]


def held_out_lung_frames(root: Path = REAL_TRAIN, count: int = 3) -> list[str]:
    _train, held = split(root)
    firsts = sorted(r["file"] for r in held if r["file"].startswith("lung") and r["file"].endswith("_0.png")
                    and max(r["rows"], r["cols"]) <= 1024)
    return firsts[:count]


def benchmark_scans(root: Path = REAL_TRAIN) -> dict[str, dict]:
    """name -> {"frame": uint8 (rows, cols), "region": bool mask or None, "keep": bool mask or None}.

    pydicom/pydicom-data files (first frame, the DICOM's own region and colour masks) and held-out
    real-train frames (if ../shared is present)."""
    sys.path.insert(0, str(ROOT / "Testing"))
    import real_frames as rf
    from speckle2self.io.dicom_read import read_dicom
    scans: dict[str, dict] = {}
    for name, path in sorted(rf.real_files().items()):
        image = read_dicom(path)
        frame = np.asarray(image.volume.frames[0])
        if frame.dtype != np.uint8:
            continue
        keep = image.colour_mask[0] if image.colour_mask is not None and image.colour_mask.ndim == 3 else image.colour_mask
        scans[name] = {"frame": frame, "region": image.region, "keep": keep}
    if root.is_dir():
        _train, held = split(root)
        held_files = {r["file"] for r in held}
        for file in BENCHMARK_FRAMES + tuple(held_out_lung_frames(root)):
            assert file in held_files, f"{file} is not in the held-out split"
            scans[file.split("/")[0].split("_")[0] + ":" + Path(file).stem] = {
                "frame": read_png(root / file), "region": None, "keep": None}
    return scans
