"""The bundled model on a real clinical B-mode cine: before/after picture and figures.

    python Testing/benchmarks/real_cine_figure.py [--out Resources/Screenshots/real_echo_before_after.png]

The cine is pydicom's own example echocardiogram (`pydicom.examples.ybr_color`: 30 frames of
320×240, YBR_FULL_422 JPEG, burned-in annotations). It goes through the same path as a user's
DICOM (speckle2self.io reader, B-mode domain, bundled model). Printed per cine (mean over frames):
speckle SNR (mean / std of grey levels) in a homogeneous patch of the posterior wall, and the
sharpness of the cavity-to-wall edge as the 10-90 % rise distance of its mean profile, plus the
edge contrast (wall minus cavity grey level), for the input, Speckle2Self and (with the bench
extra installed) the classical filters of the default-model benchmark, each applied frame by frame
to the grey levels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Speckle2SelfExtension"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speckle2self.inference.api import denoise, get_model  # noqa: E402
from speckle2self.io.dicom_read import read_dicom  # noqa: E402
from speckle2self.inference.pipeline import dicom_hints  # noqa: E402

WALL = (slice(178, 192), slice(160, 182))
"""A homogeneous patch of the posterior wall (rows, cols of the 240×320 frame)."""
EDGE_ROWS, EDGE_COLS = slice(150, 196), slice(160, 182)
"""A vertical profile from the left-ventricular cavity down into the posterior wall."""


def rise_distance(profile: np.ndarray) -> float:
    """Pixels between 10 % and 90 % of the way from the profile's dark start to its bright peak."""
    lo, hi = float(profile[:8].mean()), float(profile.max())
    peak = int(np.argmax(profile))
    rising = profile[:peak + 1]
    first = lambda level: float(np.argmax(rising >= lo + level * (hi - lo)))  # noqa: E731
    return first(0.9) - first(0.1)


def figures(frames: np.ndarray) -> dict[str, float]:
    x = frames.astype(np.float64)
    patch = x[:, WALL[0], WALL[1]]
    profiles = x[:, EDGE_ROWS, EDGE_COLS].mean(axis=2)
    return {
        "speckle SNR (wall)": float(np.mean(patch.mean(axis=(1, 2)) / patch.std(axis=(1, 2)))),
        "edge 10-90% rise (px)": float(np.mean([rise_distance(p) for p in profiles])),
        "edge contrast (grey)": float(np.mean(profiles[:, -10:].mean(axis=1) - profiles[:, :8].mean(axis=1))),
    }


def classical_figures(frames: np.ndarray) -> dict[str, dict[str, float]]:
    """The same figures for the classical filters of the default-model benchmark, if installed."""
    try:
        from classical import METHODS
        import skimage  # noqa: F401
    except ImportError:
        return {}
    return {name: figures(np.stack([method(f / 255.0) for f in frames]) * 255.0) for name, method in METHODS.items()}


def picture(before: np.ndarray, after: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk
    gap = np.full((before.shape[0], 6), 255, np.uint8)
    sheet = np.hstack([before, gap, after])
    sheet = np.kron(sheet, np.ones((2, 2), np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(sheet), str(path))


def main() -> None:
    from pydicom import examples
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("real_echo_before_after.png"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--frame", type=int, default=0, help="the frame shown in the picture")
    args = ap.parse_args()
    image = read_dicom(examples.ybr_color.filename)
    frames = image.volume.data
    out = denoise(frames, model=get_model(args.model), device="cpu", **dicom_hints(image))
    rows = {"input": figures(frames), "Speckle2Self": figures(out), **classical_figures(frames)}
    print(f"{'':14s}" + "".join(f"{key:>24s}" for key in rows["input"]))
    for name, row in rows.items():
        print(f"{name:14s}" + "".join(f"{value:24.2f}" for value in row.values()))
    picture(frames[args.frame], out[args.frame], args.out)
    print(f"wrote {args.out} (frame {args.frame}: input left, Speckle2Self right)")


if __name__ == "__main__":
    main()
