"""The driver's progress: files and frames done, frames/s and time left, on one line.

On a terminal the line is rewritten in place; in a log (not a terminal) a plain line is printed at
most every `every_s` seconds, and once at the end.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from ..inference.pipeline import FileReport


class ArchiveProgress:
    """Fed each finished file's report (`progress(report, total_files)`); prints where the run stands."""

    def __init__(self, total: int = 0, stream: TextIO | None = None, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.every_s, self.clock = total, stream or sys.stderr, every_s, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = clock()
        self.last_print = -float("inf")
        self.done = self.denoised = self.failed = self.skipped = self.frames = 0

    def __call__(self, report: FileReport, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        self.done += 1
        if report.skipped:
            self.skipped += 1
        elif report.ok:
            self.denoised += 1
            self.frames += report.frames
        else:
            self.failed += 1
        now = self.clock()
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\033[K")
            self.stream.flush()
        elif now - self.last_print >= self.every_s or self.done == self.total:
            print(self.line(now), file=self.stream, flush=True)
            self.last_print = now

    def line(self, now: float) -> str:
        """e.g. `120/4000 files (2 failed, 10 skipped), 9600 frames, 85.2 frames/s, ETA 41m`."""
        elapsed = max(now - self.started, 1e-9)
        extra = ", ".join(f"{n} {what}" for n, what in ((self.failed, "failed"), (self.skipped, "skipped")) if n)
        worked = self.done - self.skipped
        left = self.total - self.done
        eta = _duration(left * elapsed / worked) if worked and left else ("-" if left else "0s")
        return (f"{self.done}/{self.total} files{f' ({extra})' if extra else ''}, {self.frames} frames, "
                f"{self.frames / elapsed:.1f} frames/s, ETA {eta}")

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "ArchiveProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
