"""The supervised upper bound for the default-model benchmark: the same architecture, trained on
noisy/clean pairs of the same simulator. A reference row only: it needs clean images, which no
clinic has, so it is never shipped.

    pip install ".[bench]" && python Testing/benchmarks/supervised_reference.py --out supervised_reference.pt

Training pairs are the PSF-bank training frames (Testing/simulation/generate.py --set train) as
8-bit B-mode at a random 40-80 dB display map, with the clean amplitude under the same map as the
target; both go through the mapping inference uses (speckle2self.mapping.log_mapping: scan region, grain
resampling), so the benchmark runs this model through `denoise` exactly as the bundled one. Its
card sets local_mean_radius 0: a supervised model has no contrast shrinkage to undo.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Testing" / "simulation"))

from speckle2self.mapping.log_mapping import DEFAULT_GRAIN_PX, LogMapping, resize  # noqa: E402
from speckle2self.networks.model_file import export_model, make_card  # noqa: E402
from speckle2self.networks.network import PRESETS, Architecture, Speckle2SelfNet  # noqa: E402

CARD_INPUT = {"domain": "log", "grain_px": list(DEFAULT_GRAIN_PX), "local_mean_radius": 0}


def pairs(data: Path, frames: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(network input, clean target) pairs on the network's grid."""
    import generate
    from field import log_compress
    rng = np.random.default_rng(seed)
    out = []
    for _, frame in generate.load_frames(data, "train", frames, keys=("envelope", "echogenicity")):
        env, amp = frame["envelope"].astype(np.float64), np.sqrt(frame["echogenicity"].astype(np.float64))
        dr = float(rng.uniform(40, 80))
        ref = 2.0 * np.percentile(env, 99.0)
        noisy = log_compress(env, dr, ref)
        db = 20 * np.log10(np.maximum(amp * np.median(env) / np.median(amp), 1e-12) / ref)
        clean = np.clip((db + dr) / dr, 0, 1).astype(np.float32)
        mapping = LogMapping(noisy[None], "bmode", CARD_INPUT, 60.0, (0.0, 255.0))
        x, _ = mapping.to_network(noisy[None])
        out.append((x[0], resize(clean[None], mapping.resampling.size)[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("supervised_reference.pt"))
    ap.add_argument("--data", type=Path, default=Path("simulated"))
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="widths (the bundled model's: tiny)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = pairs(args.data, args.frames, args.seed)
    arch = Architecture(widths=PRESETS[args.preset], scales=(1.0,))
    net = Speckle2SelfNet(arch).denoiser()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=1e-4)
    started = time.monotonic()
    for step in range(1, args.steps + 1):
        xs, ys = [], []
        for _ in range(args.batch):
            x, y = data[int(rng.integers(len(data)))]
            r, c = (int(rng.integers(max(1, n - args.crop + 1))) for n in x.shape)
            xs.append(x[r:r + args.crop, c:c + args.crop])
            ys.append(y[r:r + args.crop, c:c + args.crop])
        side = min(min(a.shape) for a in xs)
        xb = torch.from_numpy(np.stack([a[:side, :side] for a in xs]))[:, None]
        yb = torch.from_numpy(np.stack([a[:side, :side] for a in ys]))[:, None]
        if rng.random() < 0.5:
            xb, yb = xb.flip(-1), yb.flip(-1)
        loss = F.mse_loss(net.decoder(net.encoder(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step}/{args.steps} mse {float(loss):.5f} {time.monotonic() - started:.0f}s", flush=True)
    card = make_card(arch, {"data": f"{len(data)} noisy/clean pairs of PyMUST PSF-bank frames (supervised reference)",
                            "steps": args.steps, "clean_references_used": True}, network_input=CARD_INPUT)
    card["input"]["local_mean_radius"] = 0
    print(f"wrote {args.out} sha256 {export_model(net.eval(), card, args.out)}")


if __name__ == "__main__":
    main()
