"""Inference speed and peak memory of the bundled model (figures, not assertions).

    python Testing/benchmarks/benchmark_inference.py [--timing-frames 32] [--frames 300] [--device cpu]

Prints, for 512×512 8-bit B-mode through `speckle2self.denoise` (end to end: scan region, grain,
mapping, network), measured in one run on the same frames:
- frames/s in float32 and in the automatic precision (bfloat16 on CPUs with native bf16 when its
  first batch agrees with float32), the median of --repeats runs over a --timing-frames cine;
- how the time per frame splits into the network and everything around it (prepared pipeline);
- BM3D on one of the same frames (the `bm3d` package, `pip install ".[bench]"`), and the ratio;
- the peak resident memory of denoising a --frames × 512 × 512 8-bit cine in a fresh process,
  next to its input + output size;
- with a CUDA GPU: frames/s at 512² and 1024² and the peak GPU memory;
- with --paper-width: the paper's full-width network (random weights) for comparison.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bmode_frames(envelope: np.ndarray) -> np.ndarray:
    """8-bit B-mode of envelope frames: 60 dB, 0 dB at 6 dB above the 99th percentile."""
    ref = 2.0 * np.percentile(envelope, 99.0)
    db = 20 * np.log10(np.maximum(envelope, 1e-12) / ref)
    return np.clip(np.rint((db + 60.0) / 60.0 * 255), 0, 255).astype(np.uint8)


def bmode_cine(count: int, size: tuple[int, int], seed: int = 3) -> np.ndarray:
    from speckle2self.evaluation.phantoms import make_cine
    return bmode_frames(make_cine(count, size, seed=seed).envelope.astype(np.float32))


def frames_per_second(model, frames: np.ndarray, device: str, repeats: int, **kw) -> float:
    """End to end through denoise(), per-cine work (scan region, grain, precision check) included."""
    from speckle2self.inference.api import denoise
    denoise(frames[:2], model=model, device=device, **kw)  # warm-up: model load, first-call allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        denoise(frames, model=model, device=device, **kw)
        times.append(time.perf_counter() - start)
    return len(frames) / statistics.median(times)


def split_per_frame(model, frames: np.ndarray, device: str, precision: str) -> tuple[float, float, str]:
    """Median ms per frame of the network and of the mapping around it, one frame at a time, the
    steps of FramePipeline.run timed in sequence (so the two parts add up to the whole)."""
    from speckle2self.mapping.frames import cast_like
    from speckle2self.inference.api import prepare
    pipeline = prepare(frames, model=model, device=device, precision=precision)
    pipeline.run(frames[:1])  # the automatic precision's one-batch check happens here
    network, mapping = [], []
    for i in range(len(frames)):
        chunk = frames[i:i + 1]
        t0 = time.perf_counter()
        norm, saved = pipeline.mapping.to_network(chunk)
        t1 = time.perf_counter()
        y = pipeline.runner.run(norm)
        t2 = time.perf_counter()
        out = cast_like(pipeline.mapping.from_network(y, saved), chunk.dtype)
        np.copyto(out, chunk, where=pipeline.mapping.unchanged(saved))
        t3 = time.perf_counter()
        network.append(t2 - t1)
        mapping.append(t1 - t0 + t3 - t2)
    return 1000 * statistics.median(network), 1000 * statistics.median(mapping), str(pipeline.runner.dtype)[6:]


def bm3d_seconds(frame: np.ndarray) -> float | None:
    try:
        from classical import bm3d
    except ImportError:
        return None
    start = time.perf_counter()
    try:
        bm3d(frame.astype(np.float64) / 255.0)
    except ImportError:
        return None
    return time.perf_counter() - start


PEAK_SCRIPT = r"""
import json, resource, sys, numpy as np
from speckle2self.inference.api import denoise, get_model
n = int(sys.argv[1]); device = sys.argv[2]
model = get_model(None)
warm = np.load(sys.argv[3], mmap_mode="r")
denoise(np.array(warm[:2]), model=model, device=device)  # warm-up on two frames: allocator and kernels ready

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

before = rss_mib()
cine = np.empty((n,) + warm.shape[1:], np.uint8)
for i in range(0, n, len(warm)):
    cine[i:i + len(warm)] = warm[:min(len(warm), n - i)]
with_input = rss_mib()
out = denoise(cine, model=model, device=device)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"before_mib": before, "with_input_mib": with_input, "peak_mib": peak,
                  "input_mib": cine.nbytes / 2**20, "output_mib": out.nbytes / 2**20}))
"""


def peak_memory(n_frames: int, device: str, folder: Path) -> dict:
    """Peak RSS (ru_maxrss, kernel-tracked high-water mark) of denoising an in-memory 8-bit cine in a
    fresh process, against the RSS just before the cine existed: extra = peak - before, which
    counts input, output and working set (torch's and numpy's allocations alike)."""
    path = folder / "block.npy"
    np.save(path, bmode_cine(10, (512, 512), seed=5))
    res = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n_frames), device, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def paper_width_model(folder: Path) -> Path:
    from speckle2self.networks.model_file import export_model, make_card
    from speckle2self.networks.network import Architecture, Speckle2SelfNet
    arch = Architecture.preset("paper")
    path = folder / "paper_width.pt"
    export_model(Speckle2SelfNet(arch).denoiser(), make_card(arch, {"note": "random weights, timing only"}), path)
    return path


def gpu_figures(model, repeats: int) -> None:
    import torch
    for side in (512, 1024):
        frames = bmode_cine(16, (side, side), seed=7)
        torch.cuda.reset_peak_memory_stats()
        fps = frames_per_second(model, frames, "cuda", repeats)
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"GPU {torch.cuda.get_device_name()}: {side}x{side} 8-bit B-mode end to end {fps:.1f} frames/s "
              f"(16-frame cine, automatic precision); peak GPU memory {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="cine length for the memory figure")
    ap.add_argument("--timing-frames", type=int, default=32, help="cine length for frames/s")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--paper-width", action="store_true", help="also time the paper's full-width network")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another model file timed in the same run on the same frames (e.g. the teacher the "
                         "bundled student was distilled from), with the ratio")
    args = ap.parse_args()
    import torch
    from speckle2self.networks.devices import cpu_has_native_bfloat16
    from speckle2self.inference.api import get_model
    model = get_model(None)
    params = sum(p.numel() for p in model.module.parameters())
    frames = bmode_cine(args.timing_frames, (512, 512))
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bfloat16: {cpu_has_native_bfloat16()}")
    print(f"bundled model: widths {model.architecture.widths}, {params:,} parameters, "
          f"{model.path.stat().st_size / 2**20:.2f} MiB file")
    fps = {p: frames_per_second(model, frames, args.device, args.repeats, precision=p) for p in ("float32", "auto")}
    for precision in ("float32", "auto"):
        net, around, dtype = split_per_frame(model, frames[:8], args.device, precision)
        print(f"512x512 8-bit B-mode end to end, {precision} ({dtype}): {fps[precision]:.2f} frames/s "
              f"({1000 / fps[precision]:.0f} ms/frame over a {len(frames)}-frame cine); per frame: network "
              f"{net:.1f} ms, mapping around it {around:.1f} ms")
    if args.baseline is not None:
        from speckle2self.networks.model_file import load_model
        baseline = load_model(args.baseline)
        for precision in ("float32", "auto"):
            base = frames_per_second(baseline, frames, args.device, args.repeats, precision=precision)
            print(f"baseline {args.baseline.name} (widths {baseline.architecture.widths}), same frames, {precision}: "
                  f"{base:.2f} frames/s; bundled is {fps[precision] / base:.2f}x as fast")
    seconds = bm3d_seconds(frames[0])
    if seconds is None:
        print("BM3D: not measured (pip install \".[bench]\")")
    else:
        best = max(fps.values())
        print(f"BM3D (same frame, same run): {seconds:.2f} s/frame; Speckle2Self is {seconds * best:.0f}x faster")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.paper_width:
            paper = frames_per_second(paper_width_model(tmp), frames[:8], args.device, args.repeats, precision="float32")
            print(f"paper-width network (random weights), float32: {paper:.2f} frames/s; bundled is "
                  f"{fps['float32'] / paper:.1f}x faster")
        mem = peak_memory(args.frames, args.device, tmp)
        extra = mem["peak_mib"] - mem["before_mib"]
        print(f"{args.frames}-frame 512x512 8-bit cine in memory: peak RSS {mem['peak_mib']:.0f} MiB, "
              f"{mem['before_mib']:.0f} MiB before the cine existed (torch, model); extra {extra:.0f} MiB = input "
              f"{mem['input_mib']:.0f} + output {mem['output_mib']:.0f} + "
              f"{extra - mem['input_mib'] - mem['output_mib']:.0f} MiB working set")
    if torch.cuda.is_available():
        gpu_figures(model, args.repeats)


if __name__ == "__main__":
    main()
