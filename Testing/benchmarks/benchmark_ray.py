"""Archive throughput: `speckle2self denoise` in one process against `--ray` with 1 and 2 model actors.

    python Testing/benchmarks/benchmark_ray.py [--files 24] [--frames 10] [--size 256] [--device cpu] [--repeats 2]

Writes --files NRRD cines of --frames 8-bit B-mode frames (--size² pixels, simulated speckle), then
times each command end to end as a user runs it (a fresh process each: Python, torch, Ray start-up,
model load included), with the bundled model in its automatic precision. The fixed start-up cost is
the same command on one 1-frame file; files/s and frames/s are given end to end and net of that
cost. The commands take turns, --repeats rounds, and each figure is its best round, so that other
work on the machine weighs on them alike. Figures only, no assertions.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_inference import bmode_cine  # noqa: E402


def make_archive(folder: Path, files: int, frames: int, size: int) -> int:
    """`files` B-mode NRRD cines in `folder`; returns the frame count."""
    from speckle2self.io import Volume, write_volume
    folder.mkdir(parents=True)
    cine = bmode_cine(frames, (size, size))
    for i in range(files):
        write_volume(folder / f"cine{i:03d}.nrrd", Volume(np.roll(cine, i * 7, axis=2), spacing=(0.1, 0.1, 1.0)))
    return files * frames


def timed(args: list[str], threads: int | None = None) -> float:
    """Wall seconds of one `speckle2self` command, which must succeed (`threads`: OMP_NUM_THREADS)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    res = subprocess.run(["speckle2self", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"speckle2self {' '.join(args)} failed:\n{res.stderr}")
    return seconds


RUNS = {"one process": ([], None), "one process, 1 thread": ([], 1),
        "--ray, 1 actor": (["--ray", "--workers", "1"], None), "--ray, 2 actors": (["--ray", "--workers", "2"], None)}
"""Name: (extra arguments, OMP_NUM_THREADS or None for the default)."""


def best_times(tmp: Path, device: str, repeats: int) -> dict[str, tuple[float, float]]:
    """Per run: the best (start-up, total) seconds over `repeats` rounds, the runs taking turns."""
    best: dict[str, tuple[float, float]] = {}
    for round_ in range(repeats):
        for i, (name, (extra, threads)) in enumerate(RUNS.items()):
            fixed = timed(["denoise", str(tmp / "one"), "-o", str(tmp / f"one-{round_}-{i}"), "--device", device,
                           *extra], threads)
            total = timed(["denoise", str(tmp / "archive"), "-o", str(tmp / f"out-{round_}-{i}"), "--device", device,
                           *extra], threads)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], fixed), min(old[1], total))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=24)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = make_archive(tmp / "archive", a.files, a.frames, a.size)
        make_archive(tmp / "one", 1, 1, a.size)
        print(f"{a.files} files × {a.frames} frames of {a.size}² 8-bit B-mode = {frames} frames; bundled model, "
              f"--device {a.device}, automatic precision; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} before")
        best = best_times(tmp, a.device, a.repeats)
    print(f"{'command':<22} {'start-up s':>10} {'total s':>8} {'files/s':>8} {'frames/s':>9} {'net frames/s':>13}")
    for name, (fixed, total) in best.items():
        net = f"{frames / (total - fixed):.1f}" if total > fixed else "-"  # too small an archive to tell
        print(f"{name:<22} {fixed:>10.1f} {total:>8.1f} {a.files / total:>8.2f} {frames / total:>9.1f} {net:>13}")
    print(f"load average {os.getloadavg()[0]:.1f} after")

if __name__ == "__main__":
    main()
