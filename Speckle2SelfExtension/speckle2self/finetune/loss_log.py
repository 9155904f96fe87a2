"""The record of a training run next to its model: losses per step as CSV, and their curves as PNG."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

from ..atomic import atomic_path

COLUMNS = ("step", "total", "reconstruction", "consistency", "smoothed", "validation")


def write_csv(history: list[dict], path: str | Path) -> Path:
    """One row per step; 'validation' is filled on the steps where it was measured."""
    path = Path(path)
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
    return path


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def plot_png(history: list[dict], path: str | Path, title: str = "Speckle2Self training") -> Path | None:
    """Loss curves (training, smoothed, validation) on a log scale; None if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: the loss curve PNG was not written", RuntimeWarning, stacklevel=2)
        return None
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["total"] for h in history], color="0.75", linewidth=0.8, label="training loss")
    ax.plot(steps, [h["smoothed"] for h in history], color="C0", label="training (smoothed)")
    val = [(h["step"], h["validation"]) for h in history if "validation" in h]
    if val:
        ax.plot(*zip(*val), "o-", color="C3", markersize=3, label="validation (held-out frames)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
