"""Terminal progress bars for the command line (tqdm), fed by the engine's callbacks."""
from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm


class FileBars:
    """One bar per file, counting frames, with frames/s."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.current: Path | None = None

    def update(self, path: Path, done: int, total: int) -> None:
        if path != self.current:
            self.close()
            self.current = path
            self.bar = tqdm(total=total, desc=path.name, unit="frame", leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "FileBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingBar:
    """Step bar with the loss terms and time left."""

    def __init__(self, steps: int) -> None:
        self.bar = tqdm(total=steps, unit="step", desc="fine-tuning", disable=int(os.environ.get("RANK", "0")) != 0)
        self.val: float | None = None

    def update(self, report) -> None:
        self.bar.total = report.total_steps
        self.bar.update(report.step - self.bar.n)
        if report.val_loss is not None:
            self.val = report.val_loss
        self.bar.set_postfix(loss=f"{report.smoothed_loss:.4f}", rec=f"{report.losses['reconstruction']:.4f}",
                             cons=f"{report.losses['consistency']:.4f}",
                             val="-" if self.val is None else f"{self.val:.4f}", refresh=False)

    def __enter__(self) -> "TrainingBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
