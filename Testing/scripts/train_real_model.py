"""Train the native-resolution model on real unlabelled frames and field simulations (CPU, resumable).

    pip install ".[sim]" && python Testing/scripts/train_real_model.py --out OUT.pt [--steps N]

Data: the training split of ../shared/real-train (Testing/benchmarks/real_scan_set.py: 388 real
B-mode frames of four public sources; the held-out acquisitions are never read) and field-simulated
frames (Testing/simulation, made first if missing), noisy frames only. Frames go in at their own
resolution: the card's grain is the coarsest the model is trained for, so inference resamples only
frames whose speckle is coarser still. Scale augmentation (0.7-1.6×) spreads the speckle grain of
the real frames (1.4-2.3 px) and of the simulations (0.9 px) over about 0.6-3.7 px.

Objective: Speckle2Self (multi-scale views, one encoder per scale, shared decoder, cross-scale
consistency) with re-speckling reconstruction (Noisier2Noise, speckle2self.training.speckle_noise) and the
local-mean fidelity term; the network has a full-resolution skip (speckle2self.networks.network). It starts
from the bundled model's weights (--init) and writes a checkpoint every 200 steps: running the same
command again continues it.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for sub in ("Speckle2SelfExtension", "Testing/simulation", "Testing/benchmarks", "Testing/scripts"):
    sys.path.insert(0, str(ROOT / sub))

from speckle2self.training.augment import Augmentation  # noqa: E402
from speckle2self.training.losses import LossWeights  # noqa: E402
from speckle2self.networks.model_file import LoadedModel, export_model, load_model  # noqa: E402
from speckle2self.training.loop import TrainConfig, continued_checkpoint, train  # noqa: E402
from speckle2self.training.speckle_noise import SpeckleLaw  # noqa: E402
from speckle2self.training.training_data import TrainingFrames  # noqa: E402

NATIVE_GRAIN_PX = 8.0
"""The card's grain: frames are resampled only where their measured speckle is coarser than this,
which no frame of the real-scan benchmark is (the grain measure itself saturates near 2 px on
synthetic speckle), so the model works on every frame at its own resolution."""


ATTRIBUTION = {
    "hc18_fetal_head": "HC18 grand challenge fetal heads, GE Voluson E8/730 (van den Heuvel et al. 2018, "
                       "Zenodo 1327317; CC BY 4.0)",
    "timtrack_msk": "TimTrack skeletal muscle, GE LOGIQ E9 (van der Zee & Kuo; CC0-1.0)",
    "pluslib_phantoms": "PlusLibData phantom sequences, Ultrasonix and BK (PLUS toolkit; BSD-3-Clause)",
    "lung_pocus_ccby": "COVID-19 lung point-of-care videos, mixed devices, lossy (Born et al.; CC BY 4.0 / 2.0 "
                       "files only)",
}
"""Who made the real frames (CC BY asks for attribution): written into the model card."""


def real_frames(root: Path) -> tuple[list[np.ndarray], list[str], str]:
    import real_scan_set as rss
    records, held = rss.split(root)
    frames = [rss.read_png(root / r["file"]) for r in records]
    counts = {folder: sum(r["file"].startswith(folder + "/") for r in records) for folder in ATTRIBUTION}
    description = (f"{len(frames)} real B-mode frames, the training split of ../shared/real-train ({len(held)} "
                   "frames of held-out acquisitions never read): "
                   + "; ".join(f"{counts[f]} {text}" for f, text in ATTRIBUTION.items() if counts[f]))
    return frames, [r["file"] for r in records], description


def simulated_frames(data: Path, per_condition: int, seed: int) -> tuple[list[np.ndarray], str]:
    import make_default_model as mdm
    if not (data / "train").is_dir():
        import generate
        generate.main(["--set", "train", "--out", str(data)])
    return mdm.training_frames(data, per_condition, 1, seed, (40.0, 110.0))


def cached_noise_params(data: TrainingFrames, path: Path) -> None:
    """Measure every frame's speckle strength and grain once (the re-speckling noise's parameters,
    about a second a frame) and keep them in `path`, so a resumed run does not measure them again."""
    import json
    cache = {}
    if path.exists():
        cache = {tuple(json.loads(k)): SpeckleLaw(v[0], tuple(v[1]), *v[2:])
                 for k, v in json.loads(path.read_text()).items()}
    data.use_noise(cache)
    for k in range(len(data)):
        data.noise_params(k)
        if k % 50 == 0:
            print(f"speckle measured on {k}/{len(data)} frames", flush=True)
    path.write_text(json.dumps({json.dumps(list(key)): [v.strength, list(v.psf), v.power]
                                for key, v in data.measured_noise().items()}))


def parent_for_native(path: Path | None, radius: int) -> LoadedModel:
    """The parent model read as the native-resolution architecture: a full-resolution skip that
    starts at zero, the native grain and the inference-time local-mean radius."""
    parent = load_model(path)
    card = copy.deepcopy(parent.card)
    card["architecture"]["full_res_skip"] = True
    card["input"]["grain_px"] = [NATIVE_GRAIN_PX, NATIVE_GRAIN_PX]
    card["input"]["local_mean_radius"] = radius
    return LoadedModel(module=parent.module, card=card, sha256=parent.sha256, path=parent.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-train")
    ap.add_argument("--sim", type=Path, default=Path("simulated"))
    ap.add_argument("--sim-frames", type=int, default=32, help="simulated frames per condition")
    ap.add_argument("--init", type=Path, default=None, help="parent model (default: the bundled one)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--respeckle", type=float, default=1.0)
    ap.add_argument("--consistency", type=float, default=0.1)
    ap.add_argument("--local-mean", type=float, default=10.0)
    ap.add_argument("--reconstruction-norm", choices=("mse", "l1"), default="mse")
    ap.add_argument("--consistency-band", choices=("full", "matched"), default="full",
                    help="'matched': scales' outputs agree in the band both views carry (see LossWeights)")
    ap.add_argument("--local-mean-radius", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--continue-from", type=Path, default=None,
                    help="a finished run's checkpoint to train on from, with this run's loss weights, --crop, "
                         "--batch and --steps as the new total (its optimiser state and step count carry over)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared machine OpenMP teams of 2 stall each other)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    real, names, real_text = real_frames(args.real)
    sim, sim_text = simulated_frames(args.sim, args.sim_frames, args.seed) if args.sim_frames else ([], "")
    parent = parent_for_native(args.init, args.local_mean_radius)
    network_input = dict(parent.card["input"])
    data = TrainingFrames(real + sim, args.crop, "bmode", names + [f"simulated {i}" for i in range(len(sim))],
                          network_input=network_input)
    cached_noise_params(data, args.out.with_name(args.out.name + ".noise.json"))
    train_set, val_set = data.split(0.05, args.seed)
    config = TrainConfig(steps=args.steps, batch_size=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         weights=LossWeights(1.0, args.consistency, args.local_mean, 8, args.respeckle,
                                             reconstruction_norm=args.reconstruction_norm,
                                             consistency_band=args.consistency_band),
                         augmentation=Augmentation(scale_range=(0.7, 1.6), affine_probability=0.7),
                         lr_schedule="cosine", domain="bmode", network_input=network_input, val_every=200)
    checkpoint = args.out.with_name(args.out.name + ".ckpt")
    started = time.monotonic()

    def report(rep):
        if rep.step % 50 == 0:
            val = "" if rep.val_loss is None else f" val {rep.val_loss:.5f}"
            print(f"step {rep.step}/{rep.total_steps} loss {rep.smoothed_loss:.5f} "
                  f"rec {rep.losses['reconstruction']:.5f} cons {rep.losses['consistency']:.5f}{val} "
                  f"{rep.elapsed_s:.0f}s", flush=True)

    if args.continue_from is not None and not checkpoint.exists():
        continued_checkpoint(args.continue_from, checkpoint, config)
    resume = checkpoint if checkpoint.exists() else None
    result = train(train_set, config, init=None if resume else parent, device="cpu", progress=report,
                   checkpoint=checkpoint, resume=resume, validation=val_set)
    card = result.card("Self-supervised, noisy frames only. " + real_text + ". "
                       + sim_text.replace("no real scans used", "the real frames above"))
    write_model(result.net.denoiser(), card, args.out, started)


def write_model(denoiser, card: dict, out: Path, started: float) -> None:
    """Export with the wall time, the command that made it and where the held-out split is defined."""
    card["training"]["wall_time_s"] = round(time.monotonic() - started)
    card["training"]["command"] = f"python Testing/scripts/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])
    card["training"]["held_out"] = "Testing/benchmarks/real_scan_set.py: is_held_out"
    print(f"wrote {out} sha256 {export_model(denoiser, card, out)}")


if __name__ == "__main__":
    main()
