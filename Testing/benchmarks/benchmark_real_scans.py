"""Real-scan benchmark: speckle reduction and edge sharpness on held-out real frames, side by side.

    pip install ".[bench]" && python Testing/benchmarks/benchmark_real_scans.py [--model M.pt] [--grid PNG]

Scans (real_scan_set.py): the first frame of pydicom's and pydicom-data's real clinical files, and
held-out acquisitions of ../shared/real-train that no model here is trained on. Measures
(real_frames.py, as the quality issue defines them): speckle SNR gain in the three most
homogeneous 32×32 windows and edge sharpness on the top 1 % of the 7×7 median's gradient
(1.0 = as sharp as a 7×7 median); also the brightness change in those windows and the dark pepper
beyond a 7×7 median's. Classical outputs are cached (--cache), so a new model costs seconds.
The grid is 1:1 crops (no resampling) of the input, the model and the best classical methods.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import classical  # noqa: E402
import real_frames as rf  # noqa: E402
import real_scan_set as rss  # noqa: E402
from speckle2self.inference.api import denoise  # noqa: E402
from speckle2self.mapping.scan_region import scan_region  # noqa: E402

GAIN_TARGET, SHARPNESS_TARGET = 2.5, 0.9
CROP = 160
GRID_SCANS = ("aloka", "philips_echo", "sonosite_cine_120", "hc18:400_HC", "timtrack:dataset_1_S9_S9_L20_step_075",
              "pluslib:BkCurvilinearScanConvertedData_000", "lung:Cov_convex_volpecelli_sonographic_v2_0")
"""One frame of each system in the grid (all of them are measured)."""


def total_variation(x: np.ndarray) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle
    return denoise_tv_chambolle(x, weight=0.15)


def median7(x: np.ndarray) -> np.ndarray:
    return rf.median7(x)


def gaussian2(x: np.ndarray) -> np.ndarray:
    return classical.gaussian(x, 2.0)


CLASSICAL = {"median 7x7": median7, "gaussian σ=2": gaussian2, "NLM": classical.nlm, "OBNLM": classical.obnlm,
             "SRAD": classical.srad, "BM3D": classical.bm3d, "TV (Chambolle 0.15)": total_variation}


def measured_region(scan: dict) -> np.ndarray:
    """The engine's scan region of the frame, without colour pixels."""
    region = scan_region(scan["frame"][None].astype(np.float32) / 255.0, scan["region"])
    return region & ~scan["keep"] if scan["keep"] is not None else region


def model_output(scan: dict, model) -> np.ndarray:
    return denoise(scan["frame"], model=model, device="cpu", domain="bmode", region=scan["region"], keep=scan["keep"])


def classical_output(name: str, scan_name: str, frame: np.ndarray, cache: Path | None) -> np.ndarray:
    """A classical method on the frame's grey levels in [0, 1], as 0..255 float (cached)."""
    path = None if cache is None else cache / f"{scan_name.replace('/', '_').replace(':', '_')}__{name}.npy"
    if path is not None and path.exists():
        return np.load(path)
    out = np.clip(np.asarray(CLASSICAL[name](frame.astype(np.float64) / 255.0), np.float64), 0, 1) * 255.0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out.astype(np.float32))
    return out


def measure(frame: np.ndarray, out: np.ndarray, region: np.ndarray, windows, edges) -> dict:
    drawn = rf.drawn_graphics(frame, region)
    return {"gain": rf.speckle_snr_gain(frame, out, windows), "sharpness": rf.edge_sharpness(frame, out, edges),
            "brightness": rf.brightness_change(frame, out, windows),
            "pepper_excess": rf.pepper(np.asarray(out), region, drawn) - rf.pepper(rf.median7(frame), region, drawn)}


def passes(m: dict) -> bool:
    return m["gain"] >= GAIN_TARGET and m["sharpness"] >= SHARPNESS_TARGET


def summary_line(name: str, per_scan: dict[str, dict]) -> str:
    g = np.array([m["gain"] for m in per_scan.values()])
    s = np.array([m["sharpness"] for m in per_scan.values()])
    ok = sum(passes(m) for m in per_scan.values())
    return (f"| {name} | ×{np.median(g):.2f} ({g.min():.2f}–{g.max():.2f}) | {np.median(s):.2f} "
            f"({s.min():.2f}–{s.max():.2f}) | {ok} of {len(g)} |")


def crop_box(frame: np.ndarray, edges: np.ndarray, region: np.ndarray) -> tuple[slice, slice]:
    """A CROP² window inside the region holding the most strong-edge pixels (anatomy, not background)."""
    from scipy.ndimage import binary_erosion, uniform_filter
    size = min(CROP, *frame.shape)
    density = uniform_filter(edges.astype(np.float64), size)
    whole = uniform_filter(binary_erosion(region, iterations=2).astype(np.float64), size) > 0.95
    half = size // 2
    score = np.where(whole, density, -1.0) + 1e-3 * region  # a small field of view: the most region
    score[:half], score[-half:], score[:, :half], score[:, -half:] = -2, -2, -2, -2
    r, c = np.unravel_index(np.argmax(score), score.shape)
    r, c = min(max(r, half), frame.shape[0] - size + half), min(max(c, half), frame.shape[1] - size + half)
    return slice(r - half, r - half + size), slice(c - half, c - half + size)


def write_grid(rows: list[list[np.ndarray]], columns: list[str], path: Path) -> None:
    """1:1 crops, one scan a row, with column titles (matplotlib at one image pixel per screen pixel)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    gap, title = 4, 22
    h, w = rows[0][0].shape
    sheet = np.full((title + len(rows) * (h + gap), len(columns) * (w + gap)), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = title + i * (h + gap), j * (w + gap)
            sheet[y:y + h, x:x + w] = np.clip(img, 0, 255).astype(np.uint8)
    dpi = 100
    fig = plt.figure(figsize=(sheet.shape[1] / dpi, sheet.shape[0] / dpi), dpi=dpi)
    fig.figimage(sheet, cmap="gray", vmin=0, vmax=255)
    for j, name in enumerate(columns):
        fig.text((j * (w + gap) + w / 2) / sheet.shape[1], 1 - 14 / sheet.shape[0], name, ha="center",
                 fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None,
                    help="model file(s) to measure (default: the bundled model); NAME=PATH to label one")
    ap.add_argument("--classical", default=",".join(CLASSICAL), help="comma-separated classical methods")
    ap.add_argument("--cache", type=Path, default=Path("benchmark_real_scans"))
    ap.add_argument("--grid", type=Path, default=None, help="write the 1:1 crop grid here (PNG)")
    ap.add_argument("--grid-methods", default="median 7x7,TV (Chambolle 0.15),OBNLM,SRAD")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    models = {}
    for item in args.model or ["Speckle2Self=bundled"]:
        label, _, path = item.rpartition("=")
        models[label or Path(path).stem] = None if path == "bundled" else path
    methods = [m for m in args.classical.split(",") if m]
    results: dict[str, dict[str, dict]] = {}
    grid_rows = []
    for scan_name, scan in rss.benchmark_scans().items():
        frame = scan["frame"]
        region = measured_region(scan)
        windows = rf.homogeneous_windows(frame, rf.gain_region(frame, region))
        edges = rf.strongest_edges(frame, region)
        outputs = {label: model_output(scan, path) for label, path in models.items()}
        outputs.update({m: classical_output(m, scan_name, frame, args.cache) for m in methods})
        for name, out in outputs.items():
            results.setdefault(name, {})[scan_name] = measure(frame, out, region, windows, edges)
        line = "  ".join(f"{n}: ×{results[n][scan_name]['gain']:.2f}/{results[n][scan_name]['sharpness']:.2f}"
                         for n in outputs)
        print(f"{scan_name}: {line}", flush=True)
        if scan_name not in GRID_SCANS:
            continue
        box = crop_box(frame, edges, region)
        grid_rows.append([frame[box]] + [outputs[n][box] for n in list(models) + args.grid_methods.split(",")
                                         if n in outputs])
    print("\n| method | speckle SNR gain: median (min–max) | edge sharpness: median (min–max) "
          f"| scans with gain ≥ {GAIN_TARGET}× and sharpness ≥ {SHARPNESS_TARGET} |\n|---|---|---|---|")
    for name, per_scan in results.items():
        print(summary_line(name, per_scan))
    for label in models:
        worst_b = max(m["brightness"] for m in results[label].values())
        worst_p = max(m["pepper_excess"] for m in results[label].values())
        print(f"{label}: largest brightness change {worst_b:.1%}; most pepper beyond a 7×7 median {worst_p:.2e}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    if args.grid is not None:
        columns = ["input"] + list(models) + [m for m in args.grid_methods.split(",") if m in methods]
        write_grid(grid_rows, columns, args.grid)


if __name__ == "__main__":
    main()
