"""Reproduce the bundled demo sample, Resources/Samples/phantom_cine*.nrrd (fixed seed, seconds).

    python Testing/scripts/make_demo_sample.py

A 3-frame envelope cine (speckle2self.evaluation.phantoms, seed 7: a simulator and seed that no model
training used) stored as uint16 with 0.2 mm pixels, and its clean echogenicity map, which the demo
uses only to report SSIM/PSNR before and after; and the same cine as a Slicer sequence
(phantom_cine.seq.nrrd), which Slicer's Sample Data loads as a cine with a sequence browser.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Speckle2SelfExtension"))

from speckle2self.evaluation.phantoms import make_cine  # noqa: E402
from speckle2self.slicer.slicer_support import write_sequence_nrrd  # noqa: E402


def write_sample(path: Path) -> None:
    import SimpleITK as sitk
    cine = make_cine(3, (256, 256), seed=7).envelope
    img = sitk.GetImageFromArray(np.round(cine / cine.max() * 65535).astype(np.uint16))
    img.SetSpacing((0.2, 0.2, 1.0))
    sitk.WriteImage(img, str(path), useCompression=True)
    write_sequence_nrrd(path.with_name(path.name.replace(".nrrd", ".seq.nrrd")), sitk.GetArrayFromImage(img), (0.2, 0.2))
    clean = sitk.GetImageFromArray(make_cine(1, (256, 256), seed=7).echogenicity[None].astype(np.float32))
    clean.SetSpacing((0.2, 0.2, 1.0))
    sitk.WriteImage(clean, str(path.with_name(path.name.replace(".nrrd", "_clean.nrrd"))), useCompression=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=Path, default=ROOT / "Resources/Samples/phantom_cine.nrrd")
    write_sample(ap.parse_args().sample)


if __name__ == "__main__":
    main()
