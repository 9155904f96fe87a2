"""Distil the bundled model's fast student from a native-resolution teacher (CPU, resumable).

    pip install ".[sim]" && python Testing/scripts/distil_student.py --teacher TEACHER.pt --out OUT.pt [--steps N]

The teacher (Testing/scripts/train_real_model.py) runs thin feature maps at every pixel; the
student folds each 2 × 2 block of pixels into channels (Architecture.space_to_depth = 2), so no
convolution runs at full resolution, and learns the teacher's output on the same frames the
teacher learned from (the training split of ../shared/real-train and the field simulations; the
held-out acquisitions are never read). It writes OUT.pt.ckpt every 200 steps: running the same
command again continues it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for sub in ("Speckle2SelfExtension", "Testing/simulation", "Testing/benchmarks", "Testing/scripts"):
    sys.path.insert(0, str(ROOT / sub))

from speckle2self.networks.model_file import load_model  # noqa: E402
from speckle2self.networks.network import Architecture  # noqa: E402
from speckle2self.training.distil import DistilConfig, distil, student_card  # noqa: E402
from speckle2self.training.training_data import TrainingFrames  # noqa: E402
from train_real_model import real_frames, simulated_frames, write_model  # noqa: E402

STUDENT_WIDTHS = (8, 16, 32, 64)
"""The teacher's widths, folded: measured on 512² frames, the network alone runs in 13 ms against
the teacher's 58 (two threads), and 18 ms with widths 12-96 (which learned the teacher no better
on the real-scan benchmark)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-train")
    ap.add_argument("--sim", type=Path, default=Path("simulated"))
    ap.add_argument("--sim-frames", type=int, default=32, help="simulated frames per condition")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gradient-weight", type=float, default=DistilConfig.gradient_weight,
                    help="weight of the pixel-difference term beside the output term (DistilConfig.gradient_weight)")
    ap.add_argument("--local-mean-radius", type=int, default=None,
                    help="the inference-time local-mean radius written in the student's card (0: none; default: the "
                         "teacher's)")
    ap.add_argument("--widths", default=",".join(map(str, STUDENT_WIDTHS)), help="the student's encoder widths")
    ap.add_argument("--lr", type=float, default=DistilConfig.lr, help="learning rate at the start of the cosine decay")
    ap.add_argument("--decay-from", type=int, default=0,
                    help="step at which the cosine decay starts (a continued run: the step it continues from)")
    args = ap.parse_args()
    if not 0 <= args.decay_from < args.steps:
        ap.error(f"--decay-from must be 0 or more and below --steps ({args.steps}), got {args.decay_from}")
    if args.lr <= 0:
        ap.error(f"--lr must be more than 0, got {args.lr}")
    if args.gradient_weight < 0:
        ap.error(f"--gradient-weight must be 0 or more, got {args.gradient_weight}")
    if args.local_mean_radius is not None and args.local_mean_radius < 0:
        ap.error(f"--local-mean-radius must be 0 or more, got {args.local_mean_radius}")
    import torch
    torch.set_num_threads(args.threads)
    teacher = load_model(args.teacher)
    real, names, real_text = real_frames(args.real)
    sim, sim_text = simulated_frames(args.sim, args.sim_frames, 0) if args.sim_frames else ([], "")
    config = DistilConfig(steps=args.steps, gradient_weight=args.gradient_weight, lr=args.lr, decay_from=args.decay_from)
    data = TrainingFrames(real + sim, config.crop, "bmode", names + [f"simulated {i}" for i in range(len(sim))],
                          network_input=dict(teacher.card["input"]))
    arch = Architecture(widths=tuple(int(w) for w in args.widths.split(",")), scales=teacher.architecture.scales, full_res_skip=True,
                        space_to_depth=2)
    started = time.monotonic()

    def report(step: int, loss: float) -> None:
        if step % 50 == 0:
            print(f"step {step}/{config.steps} loss {loss:.5f} {time.monotonic() - started:.0f}s", flush=True)

    net = distil(teacher, data, arch, config, checkpoint=args.out.with_name(args.out.name + ".ckpt"), progress=report)
    card = student_card(net, teacher, config, "Distilled from the teacher's outputs on the teacher's own training "
                        "frames (no clean images): " + real_text + ". " + sim_text,
                        args.local_mean_radius)
    write_model(net.denoiser(), card, args.out, started)


if __name__ == "__main__":
    main()
