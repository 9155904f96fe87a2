"""Reproduce the bundled default model (fixed seeds, CPU).

    pip install ".[sim]" && python Testing/scripts/make_default_model.py

Makes the training set first if it is not there (Testing/simulation/generate.py --set train:
PyMUST point-spread functions of five probe/frequency/depth conditions, 64 frames of 256² each,
about 5 minutes on 2 cores), then trains on the noisy envelopes only (the clean maps in the same
files are never read) and exports TorchScript with its model card and SHA-256 file.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Speckle2SelfExtension"))
sys.path.insert(0, str(ROOT / "Testing" / "simulation"))

from speckle2self.losses import LossWeights  # noqa: E402
from speckle2self.model_file import export_model  # noqa: E402
from speckle2self.network import PRESETS, Architecture  # noqa: E402
from speckle2self.training import TrainConfig, train  # noqa: E402


def training_frames(data: Path, frames: int) -> tuple[list[np.ndarray], str]:
    import generate
    from psf_bank import TRAIN_CONDITIONS
    generate.main(["--set", "train", "--out", str(data), "--frames", str(frames)])
    stack = []
    for i, name in enumerate(TRAIN_CONDITIONS):
        for seed in generate.frame_seeds("train", i, frames):
            with np.load(generate.frame_path(data, "train", name, seed)) as f:
                stack.append(f["envelope"])  # the noisy envelope only; "echogenicity" is never read
    description = (f"{len(stack)} field-simulated envelope frames of 256² (PyMUST point-spread functions, "
                   f"Testing/simulation, seeds {generate.SEED_BASE['train']}+): "
                   + "; ".join(TRAIN_CONDITIONS) + ". Clean maps never used.")
    return stack, description


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "Resources/Models/speckle2self_default.pt")
    ap.add_argument("--data", type=Path, default=Path("simulated"))
    ap.add_argument("--frames", type=int, default=64, help="training frames per condition")
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--scales", default="0.25,0.5,1.0")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--consistency", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=200, help="steps over which consistency ramps up")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    frames, description = training_frames(args.data, args.frames)
    arch = Architecture(widths=PRESETS[args.preset], scales=tuple(float(s) for s in args.scales.split(",")))
    config = TrainConfig(steps=args.steps, batch_size=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         weights=LossWeights(1.0, args.consistency), consistency_warmup=args.warmup,
                         lr_schedule="cosine", domain="envelope")
    started = time.monotonic()

    def report(rep):
        if rep.step % 100 == 0:
            print(f"step {rep.step}/{rep.total_steps} loss {rep.smoothed_loss:.5f} "
                  f"rec {rep.losses['reconstruction']:.5f} cons {rep.losses['consistency']:.5f} "
                  f"{rep.elapsed_s:.0f}s", flush=True)

    result = train(frames, config, arch=arch, device="cpu", progress=report)
    card = result.card(description + " Testing/scripts/make_default_model.py")
    card["training"]["wall_time_s"] = round(time.monotonic() - started)
    card["training"]["command"] = "python Testing/scripts/make_default_model.py " + " ".join(sys.argv[1:])
    digest = export_model(result.net.denoiser(), card, args.out)
    print(f"wrote {args.out} sha256 {digest} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
