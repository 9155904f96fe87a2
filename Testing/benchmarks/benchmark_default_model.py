"""The bundled model against classical despeckling, side by side on field-simulated scans.

    pip install ".[bench]" && python Testing/benchmarks/benchmark_default_model.py

The evaluation set is made first (Testing/simulation/generate.py --set eval: full PyMUST `simus`
scans of three probes, frequencies and depths, 8 frames of 256² each, seeds and layouts no
training used; about 20 minutes on 2 cores, kept under --data and reused). Clean echogenicity maps
are used for scoring only. For each condition and method it prints PSNR and SSIM against the
clean amplitude, GLCM homogeneity (Hom) and speckle SNR in a homogeneous tissue patch, CNR and gCNR
between anechoic lumens/cysts and tissue, time per frame and the time as a ratio to Speckle2Self
measured in the same run; then the same for the 8-bit B-mode frames; then the time per 512×512
frame; and writes PNG grids (rows: conditions; columns: clean, noisy, each method) and a JSON of
every figure.

Scoring details, the same for every method:
- PSNR and SSIM are computed on images min-max normalised after clipping at their own 0.1th and
  99.9th percentiles: a point target 28 dB above the tissue would otherwise make min-max put all
  of the tissue near zero, and a few black speckle nulls would decide where zero is.
- Hom is computed on the image's own 8-bit scale (B-mode: 0-255; envelope: minimum to 99.9th
  percentile of the whole output), not on the patch stretched to 8 bits by itself, which would
  score a nearly flat patch as rough.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "simulation"))

from classical import BOX_METHODS, METHODS  # noqa: E402
from speckle2self.inference.api import denoise, get_model  # noqa: E402
from speckle2self.evaluation.metrics import clip_extremes, cnr, gcnr, glcm_homogeneity, psnr, speckle_snr, ssim  # noqa: E402

KEYS = ["PSNR", "SSIM", "Hom", "CNR", "gCNR", "sSNR", "dB"]
DOMAINS = ("envelope", "bmode40", "bmode60", "bmode80")
"""Envelope, and 8-bit B-mode at three display dynamic ranges (dB)."""
REFERENCE = "supervised (reference)"


def load_set(data: Path, frames: int) -> dict[str, list[dict]]:
    import generate
    out: dict[str, list[dict]] = {}
    for name, frame in generate.load_frames(data, "eval", frames):
        out.setdefault(name, []).append(frame)
    return out


def regions(echo: np.ndarray):
    """Anechoic pixels (eroded), tissue pixels (eroded) and a 32×32 homogeneous tissue patch."""
    from scipy.ndimage import binary_erosion
    tissue = binary_erosion(echo == 1.0, iterations=3)
    lesion = binary_erosion(echo <= 0.011, iterations=2)
    patch = None
    for r in range(4, echo.shape[0] - 36, 4):
        for c in range(4, echo.shape[1] - 36, 4):
            if tissue[r:r + 32, c:c + 32].all():
                patch = (slice(r, r + 32), slice(c, c + 32))
                break
        if patch is not None:
            break
    return lesion, tissue, patch


def figures(clean: np.ndarray, out: np.ndarray, areas: tuple, bmode: bool,
            dynamic_range_db: float = 60.0) -> dict[str, float]:
    """Every figure of one output; `areas` is regions() of the frame's clean map. dB is the mean
    tissue-to-lesion contrast: grey-level difference on the display map for B-mode, amplitude ratio
    for envelope."""
    lesion, tissue, patch = areas
    ref, test = clip_extremes(clean), clip_extremes(out)
    f = {"PSNR": psnr(ref, test), "SSIM": ssim(ref, test)}
    if patch is not None:
        scale = (0.0, 1.0) if bmode else (float(out.min()), float(np.percentile(out, 99.9)))
        f["Hom"], f["sSNR"] = glcm_homogeneity(out[patch], scale), speckle_snr(out[patch])
    if lesion.sum() >= 20:
        f["CNR"], f["gCNR"] = cnr(out[lesion], out[tissue]), gcnr(out[lesion], out[tissue])
        if bmode:
            f["dB"] = float(out[tissue].mean() - out[lesion].mean()) * dynamic_range_db
        else:
            f["dB"] = float(20 * np.log10(max(out[tissue].mean(), 1e-12) / max(out[lesion].mean(), 1e-12)))
    return f


def dynamic_range(domain: str) -> float | None:
    """The display dynamic range of a B-mode domain name ("bmode60" -> 60), None for envelope."""
    return float(domain[len("bmode"):]) if domain.startswith("bmode") else None


def inputs(frame: dict, dynamic_range_db: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean reference, input for classical filters in [0, 1]-ish floats, input for Speckle2Self).

    B-mode is the noisy envelope log-compressed to 8 bits over `dynamic_range_db` (0 dB 6 dB above
    the 99th percentile, as the simulator's B-mode), the reference the clean amplitude under the same
    map (scaled so that tissue has the noisy image's median).
    """
    from field import log_compress
    env = frame["envelope"].astype(np.float64)
    amp = np.sqrt(frame["echogenicity"].astype(np.float64))
    if dynamic_range_db is not None:
        ref = 2.0 * np.percentile(env, 99.0)
        grey = log_compress(env, dynamic_range_db, ref)
        clean = log_compress(amp, dynamic_range_db, ref * np.median(amp) / np.median(env))
        return clean / 255.0, grey / 255.0, grey
    x = env / np.percentile(env, 99.9)
    return amp, x, x.astype(np.float32)


def speckle2self_method(model, bmode: bool):
    if bmode:
        return lambda x8: denoise(x8, model=model, device="cpu", domain="bmode") / 255.0
    return lambda x: denoise(x, model=model, device="cpu", domain="envelope")


MODEL_ROWS = ("noisy", "Speckle2Self", REFERENCE)


def _run_or_reuse(method, x: np.ndarray, box, cache: Path | None, name: str, domain: str,
                  seed: int) -> tuple[np.ndarray, float]:
    """A method's output and its seconds; classical outputs are kept in `cache` (they do not depend
    on the model), so benchmarking a new model repeats only its own rows and reports the stored time."""
    path = None
    if cache is not None and name not in MODEL_ROWS:
        path = cache / f"{domain}_{seed}_{''.join(c if c.isalnum() else '_' for c in name)}.npz"
        if path.exists():
            with np.load(path) as f:
                return f["out"], float(f["seconds"])
    start = time.perf_counter()
    out = np.asarray(method(x, box), dtype=np.float64)
    spent = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, out=out, seconds=spent)
    return out, spent


def run_condition(frames: list[dict], domain: str, model, methods: dict,
                  reference=None, cache: Path | None = None) -> tuple[dict, dict, dict]:
    """Mean figures and seconds per frame for every method; plus first-frame outputs for the grid."""
    scores: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    shown: dict[str, np.ndarray] = {}
    dr = dynamic_range(domain)
    bmode = dr is not None
    s2s = speckle2self_method(model, bmode)
    ref_method = speckle2self_method(reference, bmode) if reference is not None else None
    for frame in frames:
        clean, x, x_s2s = inputs(frame, dr)
        areas = regions(frame["echogenicity"])
        shown.setdefault("clean", clean)
        runs = {"noisy": lambda v, _: v, **{k: (lambda v, _, m=m: m(v)) for k, m in methods.items()},
                **{k: m for k, m in BOX_METHODS.items() if k.split(" ")[0] in methods or not methods},
                "Speckle2Self": lambda _, __: s2s(x_s2s)}
        if ref_method is not None:
            runs[REFERENCE] = lambda _, __: ref_method(x_s2s)
        for name, method in runs.items():
            out, spent = _run_or_reuse(method, x, areas[2], cache, name, domain, int(frame["seed"]))
            seconds[name] = seconds.get(name, 0.0) + spent
            scores.setdefault(name, []).append(figures(clean, out, areas, bmode, dr or 60.0))
            shown.setdefault(name, out)
    mean = {n: {k: float(np.mean(vals)) for k in KEYS if (vals := [s[k] for s in v if k in s])}
            for n, v in scores.items()}
    return mean, {n: s / len(frames) for n, s in seconds.items()}, shown


def targets(mean: dict) -> dict[str, bool | float]:
    """The quality issue's targets for one table (classical = every method but noisy, ours, reference)."""
    ours, noisy = mean["Speckle2Self"], mean["noisy"]
    classical = {k: v for k, v in mean.items() if k not in ("noisy", "Speckle2Self", REFERENCE)}
    best = {k: max(v.get(k, -np.inf) for v in classical.values()) for k in ("SSIM", "Hom", "gCNR")}
    result = {"SSIM highest": ours["SSIM"] > best["SSIM"], "Hom highest": ours["Hom"] > best["Hom"],
              "gCNR >= best - 0.01": ours.get("gCNR", 0) >= best["gCNR"] - 0.01,
              "dB >= noisy - 1": ours.get("dB", 0) >= noisy.get("dB", 0) - 1.0}
    if REFERENCE in mean:
        gain = mean[REFERENCE]["SSIM"] - noisy["SSIM"]
        result["share of supervised SSIM gain"] = float((ours["SSIM"] - noisy["SSIM"]) / gain) if gain > 0 else float("nan")
    return result


def print_table(title: str, mean: dict, per_frame: dict) -> None:
    print(f"\n{title}")
    print(f"{'method':22s}" + "".join(f"{k:>8s}" for k in KEYS) + f"{'ms/frame':>10s}{'x S2S':>8s}")
    for name, f in mean.items():
        ratio = per_frame[name] / per_frame["Speckle2Self"]
        print(f"{name:22s}" + "".join(f"{f.get(k, float('nan')):8.3f}" for k in KEYS)
              + f"{1000 * per_frame[name]:10.1f}{ratio:8.1f}", flush=True)
    print("targets: " + "; ".join(f"{k} {'yes' if v is True else 'NO' if v is False else f'{v:.2f}'}"
                                  for k, v in targets(mean).items()), flush=True)


def time_512(frames: list[dict], model, methods: dict, repeats: int) -> dict[str, float]:
    """Seconds per 512×512 frame (four 256² envelope frames tiled), each method on the same input."""
    tiles = [inputs(f, None)[1] for f in frames[:4]]
    x = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
    s2s = speckle2self_method(model, False)
    s2s(x.astype(np.float32))  # warm-up: first call loads the model and builds kernels
    timed = {}
    for name, method in {**methods, "Speckle2Self": None}.items():
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            s2s(x.astype(np.float32)) if method is None else method(x)
            runs.append(time.perf_counter() - start)
        timed[name] = float(np.median(runs))
    return timed


def write_grid(rows: list[dict], path: Path, bmode: bool) -> None:
    import SimpleITK as sitk
    from field import log_compress
    last = [k for k in ("Speckle2Self", REFERENCE) if k in rows[0]]
    order = ["clean", "noisy", *[k for k in rows[0] if k not in ("clean", "noisy", *last)], *last]

    def view(img):
        return (np.clip(img, 0, 1) * 255).astype(np.uint8) if bmode else log_compress(np.maximum(img, 1e-6))
    sheet = np.vstack([np.hstack([view(r[name]) for name in order]) for r in rows])
    sitk.WriteImage(sitk.GetImageFromArray(sheet), str(path))
    print(f"wrote {path} (columns: {', '.join(order)})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8, help="frames per condition")
    ap.add_argument("--data", type=Path, default=Path("simulated"), help="where the evaluation set is kept")
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--methods", default=",".join(METHODS), help="classical methods to run (comma-separated)")
    ap.add_argument("--domains", default=",".join(DOMAINS), help="envelope and/or bmodeDR (DR in dB)")
    ap.add_argument("--reference", default=None,
                    help="supervised reference model (Testing/benchmarks/supervised_reference.py), a row of its own")
    ap.add_argument("--repeats", type=int, default=3, help="timing runs per method at 512×512")
    ap.add_argument("--out", type=Path, default=Path("benchmark_default_model"))
    ap.add_argument("--no-cache", action="store_true",
                    help="recompute the classical methods (by default their outputs and times are kept under "
                         "OUT/classical_cache and reused: they do not depend on the model)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    methods = {k: METHODS[k] for k in args.methods.split(",") if k}
    data = load_set(args.data, args.frames)
    model = get_model(args.model)
    speckle2self_method(model, False)(np.random.default_rng(0).random((256, 256), dtype=np.float32))  # warm-up
    print(f"model {model.path.name} sha256 {model.sha256[:12]}…; {args.frames} frames of 256² per condition")
    report: dict = {"model": model.path.name, "sha256": model.sha256, "frames": args.frames, "tables": {}}
    reference = get_model(args.reference) if args.reference else None
    for domain in args.domains.split(","):
        rows = []
        for name, frames in data.items():
            mean, per_frame, shown = run_condition(frames, domain, model, methods, reference,
                                                   None if args.no_cache else args.out / "classical_cache")
            print_table(f"{domain} — {name}", mean, per_frame)
            report["tables"][f"{domain} — {name}"] = {"figures": mean, "seconds_per_frame": per_frame,
                                                      "targets": targets(mean)}
            rows.append(shown)
        write_grid(rows, args.out / f"grid_{domain}.png", dynamic_range(domain) is not None)
    timed = time_512(next(iter(data.values())), model, methods, args.repeats)
    print("\n512×512 envelope frame, median of", args.repeats, "runs")
    for name, sec in timed.items():
        print(f"{name:14s}{1000 * sec:10.1f} ms{sec / timed['Speckle2Self']:8.1f}x Speckle2Self")
    report["seconds_512"] = timed
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
