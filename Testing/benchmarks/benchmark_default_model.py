"""The bundled model against classical despeckling, side by side on identical simulated inputs.

    pip install ".[bench]" && python Testing/benchmarks/benchmark_default_model.py [--frames 8] [--size 256]

Three conditions (probe resolution and scatterer density), fresh seeds (9000+) that no training
used; clean echogenicity maps are used for scoring only. For each condition and method it prints
PSNR and SSIM against the clean amplitude, GLCM homogeneity and speckle SNR in homogeneous tissue,
CNR and gCNR between cysts and tissue, time per frame and the time as a ratio to Speckle2Self
measured in the same run; then the same table for log-compressed B-mode inputs; and writes a PNG
grid (rows: conditions; columns: clean, noisy, each method).

Status: the phantoms come from speckle2self.phantoms (PSF convolution of random scatterers), not
yet from a field simulator such as PyMUST; see the default-model issue.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classical import METHODS  # noqa: E402
from speckle2self.demo import display_bmode  # noqa: E402
from speckle2self.inference import denoise, get_model  # noqa: E402
from speckle2self.metrics import cnr, gcnr, glcm_homogeneity, minmax, psnr, speckle_snr, ssim  # noqa: E402
from speckle2self.phantoms import Probe  # noqa: E402

CONDITIONS = {
    "fine probe": (Probe(0.9, 1.6), 1.0),
    "standard probe": (Probe(1.2, 2.2), 1.0),
    "coarse, sparse": (Probe(1.8, 3.2), 0.3),
}


def phantoms(probe: Probe, density: float, frames: int, size: int, seed: int) -> list:
    from speckle2self.phantoms import echogenicity_map, speckle_envelope, Phantom
    out = []
    for i in range(frames):
        rng = np.random.default_rng(seed + i)
        echo = echogenicity_map((size, size), rng)
        out.append(Phantom(echo, speckle_envelope(echo, rng, probe, density)))
    return out


def regions(echo: np.ndarray):
    values, counts = np.unique(echo, return_counts=True)
    tissue = echo == values[np.argmax(counts)]
    for r in range(8, echo.shape[0] - 40, 8):
        for c in range(8, echo.shape[1] - 40, 8):
            if tissue[r - 4:r + 36, c - 4:c + 36].all():
                return echo <= 0.011, tissue, (slice(r, r + 32), slice(c, c + 32))
    return echo <= 0.011, tissue, None


def figures(clean: np.ndarray, out: np.ndarray, echo: np.ndarray) -> dict[str, float]:
    cyst, tissue, patch = regions(echo)
    f = {"PSNR": psnr(clean, out), "SSIM": ssim(clean, out)}
    if patch is not None:
        f["Hom"], f["sSNR"] = glcm_homogeneity(out[patch]), speckle_snr(out[patch])
    if cyst.any():
        f["CNR"], f["gCNR"] = cnr(out[cyst], out[tissue]), gcnr(out[cyst], out[tissue])
    return f


def run_condition(cases: list, bmode: bool, model) -> tuple[dict, dict, dict]:
    """Mean figures and seconds per frame for every method; plus first-frame outputs for the grid."""
    scores: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    shown: dict[str, np.ndarray] = {}
    for ph in cases:
        amp = np.sqrt(ph.echogenicity)
        clean = display_bmode(amp, 60.0) / 255.0 if bmode else amp
        noisy = display_bmode(ph.envelope, 60.0) / 255.0 if bmode else minmax(ph.envelope)
        methods = {"noisy": lambda x: x, **METHODS,
                   "Speckle2Self": lambda x: denoise((x * 255).round().astype(np.uint8), model=model, device="cpu",
                                                     domain="bmode") / 255.0 if bmode
                   else denoise(x, model=model, device="cpu", domain="envelope")}
        for name, method in methods.items():
            start = time.perf_counter()
            out = np.asarray(method(noisy), dtype=np.float64)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            scores.setdefault(name, []).append(figures(clean, out, ph.echogenicity))
            shown.setdefault(name, out)
        shown.setdefault("clean", clean)
    mean = {n: {k: float(np.mean([s[k] for s in v if k in s])) for k in v[0]} for n, v in scores.items()}
    per_frame = {n: s / len(cases) for n, s in seconds.items()}
    return mean, per_frame, shown


def print_table(title: str, mean: dict, per_frame: dict) -> None:
    keys = ["PSNR", "SSIM", "Hom", "CNR", "gCNR", "sSNR"]
    print(f"\n{title}")
    print(f"{'method':14s}" + "".join(f"{k:>8s}" for k in keys) + f"{'ms/frame':>10s}{'x S2S':>8s}")
    for name, f in mean.items():
        ratio = per_frame[name] / per_frame["Speckle2Self"]
        print(f"{name:14s}" + "".join(f"{f.get(k, float('nan')):8.3f}" for k in keys)
              + f"{1000 * per_frame[name]:10.1f}{ratio:8.1f}")


def write_grid(rows: list[dict], path: Path, bmode: bool) -> None:
    import SimpleITK as sitk
    order = ["clean", "noisy", *METHODS, "Speckle2Self"]
    def view(img):
        return (np.clip(img, 0, 1) * 255).astype(np.uint8) if bmode else display_bmode(np.maximum(img, 1e-6), 50.0)
    sheet = np.vstack([np.hstack([view(r[name]) for name in order]) for r in rows])
    sitk.WriteImage(sitk.GetImageFromArray(sheet), str(path))
    print(f"wrote {path} (columns: {', '.join(order)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("benchmark_default_model"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = get_model(None)
    print(f"model {model.path.name} sha256 {model.sha256[:12]}…; {args.frames} frames of {args.size}² per condition")
    for bmode in (False, True):
        rows = []
        for i, (name, (probe, density)) in enumerate(CONDITIONS.items()):
            cases = phantoms(probe, density, args.frames, args.size, seed=9000 + 100 * i)
            mean, per_frame, shown = run_condition(cases, bmode, model)
            print_table(f"{'B-mode' if bmode else 'envelope'} — {name} (probe {probe.axial_sigma}×"
                        f"{probe.lateral_sigma} px, density {density})", mean, per_frame)
            rows.append(shown)
        write_grid(rows, args.out / f"grid_{'bmode' if bmode else 'envelope'}.png", bmode)


if __name__ == "__main__":
    main()
