"""Reproduce the bundled starter model and the demo sample (fixed seeds, CPU, ~15 minutes).

    python Testing/scripts/make_starter_model.py --out Resources/Models/speckle2self_default.pt

Training data: 48 simulated envelope phantoms (speckle2self.phantoms: PSF-convolution speckle over
layered tissue, a vessel, cysts and point targets) with three probe resolutions, seeds 1000-1047.
Only the noisy envelopes are used; the clean maps are never seen. The demo sample uses seed 7,
which training never sees.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Speckle2SelfExtension"))

from speckle2self.network import Architecture  # noqa: E402
from speckle2self.model_file import export_model  # noqa: E402
from speckle2self.phantoms import Probe, make_cine, make_phantom  # noqa: E402
from speckle2self.training import TrainConfig, train  # noqa: E402

PROBES = (Probe(1.0, 1.8), Probe(1.2, 2.2), Probe(1.6, 3.0))


def training_frames(count: int) -> list[np.ndarray]:
    return [make_phantom((256, 256), seed=1000 + i, probe=PROBES[i % len(PROBES)]).envelope.astype(np.float32)
            for i in range(count)]


def write_sample(path: Path) -> None:
    """A 3-frame envelope cine stored as uint16 (small, lossless NRRD) with 0.2 mm pixels."""
    import SimpleITK as sitk
    cine = make_cine(3, (256, 256), seed=7).envelope
    img = sitk.GetImageFromArray(np.round(cine / cine.max() * 65535).astype(np.uint16))
    img.SetSpacing((0.2, 0.2, 1.0))
    sitk.WriteImage(img, str(path), useCompression=True)
    clean = sitk.GetImageFromArray(make_cine(1, (256, 256), seed=7).echogenicity[None].astype(np.float32))
    clean.SetSpacing((0.2, 0.2, 1.0))
    sitk.WriteImage(clean, str(path.with_name(path.name.replace(".nrrd", "_clean.nrrd"))), useCompression=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("Resources/Models/speckle2self_default.pt"))
    ap.add_argument("--sample", type=Path, default=Path("Resources/Samples/phantom_cine.nrrd"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
    write_sample(args.sample)
    frames = training_frames(48)
    config = TrainConfig(steps=args.steps, batch_size=8, crop=128, seed=0)
    t0 = time.monotonic()

    def report(rep):
        if rep.step % 50 == 0:
            print(f"step {rep.step}/{rep.total_steps} loss {rep.smoothed_loss:.5f} "
                  f"rec {rep.losses['reconstruction']:.5f} cons {rep.losses['consistency']:.5f} "
                  f"{rep.elapsed_s:.0f}s", flush=True)

    result = train(frames, config, arch=Architecture.preset(args.preset), device="cpu", progress=report)
    card = result.card("48 simulated envelope phantoms, 256x256 (speckle2self.phantoms, seeds 1000-1047, "
                       "3 probe resolutions); Testing/scripts/make_starter_model.py")
    card["training"]["wall_time_s"] = round(time.monotonic() - t0)
    digest = export_model(result.net.denoiser(), card, args.out)
    print(f"wrote {args.out} sha256 {digest} in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
