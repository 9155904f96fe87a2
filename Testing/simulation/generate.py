"""Generate the field-simulated data sets: one command, fixed seeds, resumable.

    pip install ".[sim]"
    python Testing/simulation/generate.py --set eval  --out simulated   # full PyMUST simus, ~20 min on 2 cores
    python Testing/simulation/generate.py --set train --out simulated   # PyMUST point-spread functions, ~5 min

Each frame is written as `<out>/<set>/<condition>/frame_<seed>.npz` holding `envelope` (float32,
gain-compensated amplitude), `bmode` (uint8, 60 dB log compression), `echogenicity` (float32, the
clean map: used for scoring only, never for training), `pixel_mm` and `seed`. Existing frames are
kept, so an interrupted run continues where it stopped. Evaluation and training use different
seeds, so their anatomical layouts and speckle differ.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from anatomy import random_anatomy  # noqa: E402
from field import Condition, Scanner, clean_map, gain_map, log_compress, scatterers  # noqa: E402

CONDITIONS = {
    "L11-5v 7.6MHz 4-30mm": Condition("L11-5v", 7.6, 4.0, 0.10),
    "L12-3v 5.0MHz 10-41mm": Condition("L12-3v", 5.0, 10.0, 0.12),
    "C5-2v 3.6MHz 30-81mm": Condition("C5-2v", 3.6, 30.0, 0.20),
}
SEED_BASE = {"train": 10_000, "eval": 50_000, "test": 90_000}
CALIBRATION_SEED = 777


def slug(name: str) -> str:
    return name.replace(" ", "_")


def condition_dir(out: Path, set_name: str, name: str) -> Path:
    return out / set_name / slug(name)


def frame_seeds(set_name: str, index: int, frames: int) -> list[int]:
    return [SEED_BASE[set_name] + 1000 * index + i for i in range(frames)]


def frame_path(out: Path, set_name: str, name: str, seed: int) -> Path:
    return condition_dir(out, set_name, name) / f"frame_{seed}.npz"


def set_conditions(set_name: str) -> dict[str, Condition]:
    """The conditions a set is made of: the PSF bank's for training, the full simulation's otherwise."""
    if set_name == "train":
        from psf_bank import TRAIN_CONDITIONS
        return TRAIN_CONDITIONS
    return CONDITIONS


def load_frames(out: Path, set_name: str, frames: int, keys: tuple[str, ...] | None = None):
    """Make the set where frames are missing, then yield (condition, {key: array}) for each frame, in
    seed order; only `keys` are read (training reads the noisy images and never the clean maps)."""
    main(["--set", set_name, "--out", str(out), "--frames", str(frames)])
    for i, name in enumerate(set_conditions(set_name)):
        for seed in frame_seeds(set_name, i, frames):
            with np.load(frame_path(out, set_name, name, seed)) as f:
                yield name, {k: f[k] for k in (keys if keys is not None else f.files)}


_scanners: dict[str, Scanner] = {}


def _scanner(name: str) -> Scanner:
    if name not in _scanners:
        _scanners[name] = Scanner(CONDITIONS[name])
    return _scanners[name]


def calibrate(out: Path, name: str) -> Path:
    """The condition's gain map (homogeneous tissue), shared by both sets."""
    path = out / "calibration" / f"{slug(name)}_gain.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_atomic(path, lambda f: np.save(f, gain_map(_scanner(name), (CALIBRATION_SEED,))))
    return path


def simulate_frame(out: Path, set_name: str, name: str, seed: int) -> str:
    """One full `simus` frame of a new anatomy."""
    path = frame_path(out, set_name, name, seed)
    if path.exists():
        return f"kept {path}"
    started = time.monotonic()
    cond, rng = CONDITIONS[name], np.random.default_rng(seed)
    anatomy = random_anatomy(rng)
    gain = np.load(calibrate(out, name))
    envelope = _scanner(name).envelope(*scatterers(cond, anatomy, rng)) / np.sqrt(gain)
    write_frame(path, envelope, clean_map(cond, anatomy), cond.pixel_mm, seed)
    return f"wrote {path} in {time.monotonic() - started:.0f} s"


def write_frame(path: Path, envelope: np.ndarray, echogenicity: np.ndarray, pixel_mm: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    envelope = envelope / np.median(envelope)
    _save_atomic(path, lambda f: np.savez_compressed(
        f, envelope=envelope.astype(np.float32), bmode=log_compress(envelope),
        echogenicity=echogenicity.astype(np.float32), pixel_mm=pixel_mm, seed=seed))


def _save_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def _run(pool, jobs) -> None:
    for future in [pool.submit(*job) for job in jobs]:
        print(future.result(), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=sorted(SEED_BASE), required=True,
                    help="train: PSF-bank frames; eval, test: full simus frames (test: the frame shipped "
                         "under Testing/data for the quality tests)")
    ap.add_argument("--out", type=Path, default=Path("simulated"))
    ap.add_argument("--frames", type=int, default=None, help="frames per condition (eval 8, train 64)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--condition", action="append", choices=sorted(CONDITIONS), default=None,
                    help="only this full-simulation condition (repeatable; default: all)")
    args = ap.parse_args(argv)
    frames = args.frames or {"eval": 8, "test": 1, "train": 64}[args.set]
    with ProcessPoolExecutor(args.workers) as pool:
        if args.set != "train":
            chosen = [name for name in CONDITIONS if args.condition is None or name in args.condition]
            _run(pool, [(calibrate, args.out, name) for name in chosen])
            _run(pool, [(simulate_frame, args.out, args.set, name, seed) for i, name in enumerate(CONDITIONS)
                        if name in chosen for seed in frame_seeds(args.set, i, frames)])
        else:
            from psf_bank import synthesise_set
            synthesise_set(pool, args.out, frames)


if __name__ == "__main__":
    main()
