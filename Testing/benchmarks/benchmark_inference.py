"""Inference speed and peak memory of the bundled model (figures, not assertions).

    python Testing/benchmarks/benchmark_inference.py [--frames 300] [--device cpu]

Prints: frames/s at 512×512 (median of --repeats runs) for the bundled model and, measured in the
same run on the same frames, for the paper's full-width network (random weights: speed does not
depend on them) as the baseline ratio; float32 vs bfloat16 on CPU; and the peak resident memory of
denoising a --frames × 512 × 512 cine in a fresh process, next to the input + output size.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def frames_per_second(model, frames: np.ndarray, device: str, repeats: int, **kw) -> float:
    from speckle2self.inference import denoise
    denoise(frames[:1], model=model, device=device, **kw)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        denoise(frames, model=model, device=device, **kw)
        times.append(time.perf_counter() - start)
    return len(frames) / statistics.median(times)


def paper_width_model(folder: Path) -> Path:
    from speckle2self.model_file import export_model, make_card
    from speckle2self.network import Architecture, Speckle2SelfNet
    arch = Architecture.preset("paper")
    path = folder / "paper_width.pt"
    export_model(Speckle2SelfNet(arch).denoiser(), make_card(arch, {"note": "random weights, timing only"}), path)
    return path


PEAK_SCRIPT = r"""
import json, resource, sys, numpy as np
import speckle2self
from speckle2self.inference import denoise, get_model
n, device = int(sys.argv[1]), sys.argv[2]
model = get_model(None)
denoise(np.random.rand(1, 64, 64).astype(np.float32), model=model, device=device)
cine = np.lib.format.open_memmap(sys.argv[3], mode="r")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = denoise(cine, model=model, device=device)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline_mib": base / 1024, "peak_mib": peak / 1024, "out_mib": out.nbytes / 2**20}))
"""


def peak_memory(n_frames: int, device: str, folder: Path) -> dict:
    from speckle2self.phantoms import make_cine
    path = folder / "cine.npy"
    cine = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_frames, 512, 512))
    block = make_cine(10, (512, 512), seed=5).envelope.astype(np.float32)
    for i in range(0, n_frames, 10):
        cine[i:i + 10] = block[:min(10, n_frames - i)]
    cine.flush()
    del cine
    res = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n_frames), device, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bmode_frames(envelope: np.ndarray) -> np.ndarray:
    """8-bit B-mode of envelope frames: 60 dB, 0 dB at 6 dB above the 99th percentile."""
    ref = 2.0 * np.percentile(envelope, 99.0)
    db = 20 * np.log10(np.maximum(envelope, 1e-12) / ref)
    return np.clip(np.rint((db + 60.0) / 60.0 * 255), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="cine length for the memory figure")
    ap.add_argument("--timing-frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch
    from speckle2self.inference import get_model
    from speckle2self.phantoms import make_cine
    model = get_model(None)
    params = sum(p.numel() for p in model.module.parameters())
    frames = make_cine(args.timing_frames, (512, 512), seed=3).envelope.astype(np.float32)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"bundled model: widths {model.architecture.widths}, {params:,} parameters, "
          f"{model.path.stat().st_size / 2**20:.2f} MiB file")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ours = frames_per_second(model, frames, args.device, args.repeats)
        paper = frames_per_second(paper_width_model(tmp), frames, args.device, args.repeats)
        print(f"512x512 float32: bundled {ours:.2f} frames/s ({1000 / ours:.0f} ms/frame); paper width "
              f"{paper:.2f} frames/s; bundled is {ours / paper:.1f}x the paper width")
        bmode = bmode_frames(frames)
        ours_bmode = frames_per_second(model, bmode, args.device, args.repeats, domain="bmode")
        print(f"512x512 8-bit B-mode: bundled {ours_bmode:.2f} frames/s ({1000 / ours_bmode:.0f} ms/frame, "
              "end to end: scan region, grain, mapping, network)")
        if args.device == "cpu":
            bf16 = frames_per_second(model, frames, "cpu", args.repeats, precision="bfloat16")
            print(f"512x512 bfloat16: bundled {bf16:.2f} frames/s ({bf16 / ours:.2f}x float32)")
        mem = peak_memory(args.frames, args.device, tmp)
        print(f"{args.frames}-frame 512x512 float32 cine (memory-mapped input): peak RSS "
              f"{mem['peak_mib']:.0f} MiB, of which {mem['baseline_mib']:.0f} MiB before denoising; "
              f"output array {mem['out_mib']:.0f} MiB; input on disk {mem['out_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
