"""Train a Speckle2Self model on the field-simulated training set (fixed seeds, CPU): one stage of
the bundled model's recipe, Testing/scripts/make_default_model.sh.

    pip install ".[sim]" && bash Testing/scripts/make_default_model.sh   # the bundled model

Makes the training set first if it is not there (Testing/simulation/generate.py --set train:
PyMUST point-spread functions of five probe/frequency/depth conditions, 64 frames of 256² each,
about 5 minutes on 2 cores), then trains on the noisy images only (the clean maps in the same
files are never read) and exports TorchScript with its model card and SHA-256 file.

The model is log-domain (speckle2self.mapping.log_mapping): each noisy envelope becomes 8-bit B-mode, as
a scanner would display it, at a dynamic range drawn from 40-80 dB (--dynamic-range) and a display reference drawn
within ±6 dB, so the model meets the spread of clinical presets; training frames then go through
the same mapping as inference (scan region, grain resampling to --grain pixels).
A checkpoint is written every 200 steps (--checkpoint); running the same command again resumes it.

The bundled model is made in three stages by Testing/scripts/make_default_model.sh (each a call
of this script; the later ones start from the earlier with --init). `--recard` rewrites a model's
card with another inference-time local-mean radius (and, with --passes, how many times the network
runs on its own output); `--export-checkpoint` exports a run midway.
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

from speckle2self.training.losses import LossWeights  # noqa: E402
from speckle2self.networks.model_file import export_model  # noqa: E402
from speckle2self.networks.network import PRESETS, Architecture  # noqa: E402
from speckle2self.training.loop import TrainConfig, train  # noqa: E402


DYNAMIC_RANGES_DB = (40.0, 80.0)
REFERENCE_SPREAD_DB = 6.0


def displayed(envelope: np.ndarray, rng: np.random.Generator,
              dynamic_ranges: tuple[float, float] = DYNAMIC_RANGES_DB) -> np.ndarray:
    """8-bit B-mode of a noisy envelope at a random display dynamic range and reference level."""
    from field import log_compress
    dr = float(rng.uniform(*dynamic_ranges))
    ref = 2.0 * np.percentile(envelope, 99.0) * 10 ** (rng.uniform(-1, 1) * REFERENCE_SPREAD_DB / 20)
    return log_compress(envelope, dynamic_range_db=dr, reference=ref)


def training_frames(data: Path, frames: int, views: int, seed: int,
                    dynamic_ranges: tuple[float, float] = DYNAMIC_RANGES_DB) -> tuple[list[np.ndarray], str]:
    import generate
    from psf_bank import TRAIN_CONDITIONS
    rng = np.random.default_rng(seed)
    stack = []
    for _, frame in generate.load_frames(data, "train", frames, keys=("envelope",)):  # never the clean map
        stack.extend(displayed(frame["envelope"], rng, dynamic_ranges) for _ in range(views))
    description = (f"{len(stack)} 8-bit B-mode frames of 256² ({views} display maps, {dynamic_ranges[0]:.0f}-"
                   f"{dynamic_ranges[1]:.0f} dB, of each of {len(stack) // views} field-simulated envelopes: "
                   f"PyMUST point-spread functions, Testing/simulation, seeds {generate.SEED_BASE['train']}+): "
                   + "; ".join(TRAIN_CONDITIONS) + ". Clean maps never used; no real scans used.")
    return stack, description


def export_checkpoint(checkpoint: Path, out: Path) -> None:
    import torch
    from speckle2self.networks.model_file import make_card
    from speckle2self.networks.network import Speckle2SelfNet
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = Speckle2SelfNet(Architecture.from_dict(state["architecture"]))
    net.load_state_dict(state["model"])
    config = TrainConfig.from_dict(state["config"])
    card = make_card(net.arch, {"data": f"checkpoint {checkpoint.name} at step {state['step']}",
                                "steps": state["step"], "config": config.to_dict(), "clean_references_used": False},
                     network_input=config.network_input)
    print(f"wrote {out} (step {state['step']}) sha256 {export_model(net.eval().denoiser(), card, out)}")


def recard(source: Path, out: Path, radius: int, passes: int | None = None, edge_quantile: float | None = None) -> None:
    """Write `source`'s weights to `out` with the card's inference-time local-mean radius set (and its
    network passes and edge-restoration quantile, when given)."""
    import copy
    from speckle2self.networks.model_file import load_model
    model = load_model(source)
    card = copy.deepcopy(model.card)
    card["input"]["local_mean_radius"] = int(radius)
    if passes is not None:
        card["input"]["passes"] = int(passes)
    if edge_quantile is not None:
        card["input"]["edge_quantile"] = float(edge_quantile)
    trained_for = card.get("training", {}).get("config", {}).get("network_input")
    if trained_for is not None:  # a distilled student's card has no training config of its own
        trained_for["local_mean_radius"] = int(radius)
    print(f"wrote {out} sha256 {export_model(model.module, card, out)}")


def reshaped_parent(path: Path, upsample: str):
    """The model at `path`, to start from, with its decoder's resize read as `upsample` (same weights)."""
    import copy
    from speckle2self.networks.model_file import LoadedModel, load_model
    parent = load_model(path)
    card = copy.deepcopy(parent.card)
    card["architecture"]["upsample"] = upsample
    return LoadedModel(module=parent.module, card=card, sha256=parent.sha256, path=parent.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "Resources/Models/speckle2self_default.pt")
    ap.add_argument("--data", type=Path, default=Path("simulated"))
    ap.add_argument("--frames", type=int, default=64, help="training frames per condition")
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--scales", default="0.25,0.5,1.0")
    ap.add_argument("--upsample", default="bilinear", choices=("bilinear", "nearest"),
                    help="decoder resize (nearest: as models before bilinear became the default)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this model's weights (its widths; --upsample applies) instead of random ones")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--consistency", type=float, default=1.0)
    ap.add_argument("--local-mean", type=float, default=10.0, help="weight of the local-mean fidelity term")
    ap.add_argument("--local-mean-window", type=int, default=8)
    ap.add_argument("--respeckle", type=float, default=0.0,
                    help="re-speckling strength alpha (speckle2self.training.speckle_noise; 0 = the paper's reconstruction)")
    ap.add_argument("--warmup", type=int, default=200, help="steps over which consistency ramps up")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dynamic-range", default="40,80",
                    help="display dynamic ranges (dB) drawn from, low,high: real scanners' weaker displayed speckle "
                         "is that of a wider range")
    ap.add_argument("--views", type=int, default=2, help="B-mode display maps per simulated envelope")
    ap.add_argument("--grain", type=float, default=0.9, help="speckle half width (px) the model works at")
    ap.add_argument("--checkpoint", type=Path, default=None, help="resumable checkpoint (default: OUT.ckpt)")
    ap.add_argument("--local-mean-radius", type=int, default=None,
                    help="box radius (network pixels) of the input's local mean put back at inference (0: none). "
                         "3 re-adds visible coarse speckle; without it real frames lose contrast to dark regions")
    ap.add_argument("--recard", type=Path, default=None,
                    help="only copy this exported model to --out with --local-mean-radius in its card")
    ap.add_argument("--passes", type=int, default=None,
                    help="with --recard: how many times the network runs, each time on its own output (card default 1)")
    ap.add_argument("--edge-quantile", type=float, default=None,
                    help="with --recard: the share of each frame's tissue the edge restoration leaves alone (1: off)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; 1 on a busy machine)")
    ap.add_argument("--export-checkpoint", type=Path, default=None,
                    help="only export the latest weights of this checkpoint to --out (to look at a run midway)")
    args = ap.parse_args()
    from speckle2self.mapping.log_mapping import MAX_PASSES
    if args.passes is not None and not 1 <= args.passes <= MAX_PASSES:
        ap.error(f"--passes must be 1 to {MAX_PASSES}, got {args.passes}")
    if args.edge_quantile is not None and not 0.0 <= args.edge_quantile <= 1.0:
        ap.error(f"--edge-quantile must be within 0..1, got {args.edge_quantile}")
    if args.recard is not None:
        recard(args.recard, args.out, 3 if args.local_mean_radius is None else args.local_mean_radius, args.passes,
               args.edge_quantile)
        return
    if args.export_checkpoint is not None:
        export_checkpoint(args.export_checkpoint, args.out)
        return
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    frames, description = training_frames(args.data, args.frames, args.views, args.seed,
                                          tuple(float(v) for v in args.dynamic_range.split(",")))
    arch = Architecture(widths=PRESETS[args.preset], scales=tuple(float(s) for s in args.scales.split(",")),
                        upsample=args.upsample)
    config = TrainConfig(steps=args.steps, batch_size=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         weights=LossWeights(1.0, args.consistency, args.local_mean, args.local_mean_window, args.respeckle), consistency_warmup=args.warmup,
                         lr_schedule="cosine", domain="bmode",
                         network_input={"domain": "log", "grain_px": [args.grain, args.grain],
                                        **({} if args.local_mean_radius is None else
                                           {"local_mean_radius": args.local_mean_radius})})
    checkpoint = args.checkpoint or args.out.with_name(args.out.name + ".ckpt")
    started = time.monotonic()

    def report(rep):
        if rep.step % 25 == 0:
            print(f"step {rep.step}/{rep.total_steps} loss {rep.smoothed_loss:.5f} "
                  f"rec {rep.losses['reconstruction']:.5f} cons {rep.losses['consistency']:.5f} "
                  f"{rep.elapsed_s:.0f}s", flush=True)

    resume = checkpoint if checkpoint.exists() else None
    init = None if args.init is None or resume else reshaped_parent(args.init, args.upsample)
    result = train(frames, config, arch=arch, init=init, device="cpu", progress=report, checkpoint=checkpoint,
                   resume=resume)
    card = result.card(description + " Testing/scripts/make_default_model.py")
    card["training"]["wall_time_s"] = round(time.monotonic() - started)
    card["training"]["command"] = "python Testing/scripts/make_default_model.py " + " ".join(sys.argv[1:])
    digest = export_model(result.net.denoiser(), card, args.out)
    print(f"wrote {args.out} sha256 {digest} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
