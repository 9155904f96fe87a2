"""Live despeckling: frames in from any thread, the newest frame wins, results out with their metadata.

A scanner or a tracking server delivers frames at its own rate. LiveDenoiser keeps one slot for
the next frame: a frame that arrives while another is being denoised replaces the one waiting (the
replaced frame is counted as dropped), so nothing queues up and the latency stays one frame time.
Results carry the input's metadata untouched (timestamp, image-to-world matrix, device name:
whatever the caller passes), and the newest result can be taken from any thread.

The scan region, grain and fill map are measured on the first frame of each frame size and type
and reused for every following frame of that geometry (speckle2self.inference.api.prepare); the
model, its device and precision are set up once.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..mapping.domains import DEFAULT_DYNAMIC_RANGE_DB

STATS_WINDOW = 30
"""Frames/s and latency are reported over this many recent results."""


@dataclass(frozen=True)
class LiveResult:
    """One denoised frame, the metadata it was submitted with, and when it went in and came out."""

    frame: np.ndarray
    meta: Any
    index: int
    submitted: float
    finished: float

    @property
    def latency(self) -> float:
        """Seconds from submit() to the result being ready (waiting included)."""
        return self.finished - self.submitted


@dataclass(frozen=True)
class LiveStats:
    """Counts since start, and rates over the last STATS_WINDOW results."""

    submitted: int
    denoised: int
    dropped: int
    failed: int
    frames_per_second: float
    median_latency_ms: float
    last_error: str | None

    @property
    def text(self) -> str:
        line = (f"{self.frames_per_second:.1f} frames/s, latency {self.median_latency_ms:.0f} ms, "
                f"{self.denoised} denoised, {self.dropped} dropped")
        return line + (f", {self.failed} failed ({self.last_error})" if self.failed else "")


class LiveDenoiser:
    """Denoises the newest submitted frame on a worker thread; see the module docstring.

    >>> with LiveDenoiser(device="cpu") as live:
    ...     live.submit(frame, meta={"timestamp": t})
    ...     result = live.latest(timeout=1.0)
    """

    def __init__(self, model=None, device: str = "auto", *, precision: str = "auto", domain: str = "auto",
                 dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB, region: np.ndarray | None = None,
                 grain_px: tuple[float, float] | None = None,
                 on_result: Callable[[LiveResult], None] | None = None) -> None:
        from ..mapping.domains import check_domain
        from ..inference.options import check_dynamic_range, check_grain
        check_domain(domain)  # here, not as a failure of every frame later
        check_dynamic_range(dynamic_range_db)
        check_grain(grain_px)
        self._runner = None
        self._options = dict(domain=domain, dynamic_range_db=dynamic_range_db, region=region, grain_px=grain_px)
        self._on_result = on_result
        self._pipeline = None
        self._lock = threading.Condition()
        self._pending: tuple[np.ndarray, Any, int, float] | None = None
        self._result: LiveResult | None = None
        self._recent: deque[LiveResult] = deque(maxlen=STATS_WINDOW)
        self._counts = {"submitted": 0, "denoised": 0, "dropped": 0, "failed": 0}
        self._last_error: str | None = None
        self._stopping = False
        self._ready = threading.Event()
        self._setup_error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, args=(model, device, precision),
                                        name="speckle2self-live", daemon=True)
        self._worker.start()
        self._ready.wait()
        if self._setup_error is not None:
            self._worker.join()
            raise self._setup_error

    @property
    def device(self):
        return self._runner.device

    @property
    def running(self) -> bool:
        return self._worker.is_alive()

    def submit(self, frame: np.ndarray, meta: Any = None) -> None:
        """Hand over a frame (2-D, or (1, rows, cols)); it is copied, so the caller may reuse its buffer.

        A frame still waiting from an earlier call is replaced and counted as dropped.
        """
        copy = np.array(frame, copy=True)
        with self._lock:
            if self._stopping:
                raise RuntimeError("this LiveDenoiser has been stopped")
            if self._pending is not None:
                self._counts["dropped"] += 1
            self._counts["submitted"] += 1
            self._pending = (copy, meta, self._counts["submitted"] - 1, time.monotonic())
            self._lock.notify_all()

    def latest(self, timeout: float | None = 0.0) -> LiveResult | None:
        """The newest result not taken yet, waiting up to `timeout` seconds (None: until one comes)."""
        with self._lock:
            self._lock.wait_for(lambda: self._result is not None or self._stopping, timeout)
            result, self._result = self._result, None
            return result

    def stats(self) -> LiveStats:
        with self._lock:
            recent = list(self._recent)
            counts, error = dict(self._counts), self._last_error
        fps = 0.0
        if len(recent) >= 2 and recent[-1].finished > recent[0].finished:
            fps = (len(recent) - 1) / (recent[-1].finished - recent[0].finished)
        latency = 1000 * statistics.median(r.latency for r in recent) if recent else 0.0
        return LiveStats(counts["submitted"], counts["denoised"], counts["dropped"], counts["failed"], fps, latency,
                         error)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking frames, let the frame in progress finish, and join the worker thread."""
        with self._lock:
            self._stopping = True
            self._pending = None
            self._lock.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    def __enter__(self) -> "LiveDenoiser":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _work(self, model, device: str, precision: str) -> None:
        """Loads the model here, so that every torch call of the stream runs on this one thread: a
        second thread's OpenMP team (the caller's) makes both throttle their spinning on a 2-core
        machine (measured: the network 27 -> 35 ms per 512² frame)."""
        try:
            from ..inference.api import get_model
            from ..inference.runner import ModelRunner
            self._runner = ModelRunner(get_model(model), device, precision)
        except BaseException as exc:  # handed to the constructor, which raises it
            self._setup_error = exc
            return
        finally:
            self._ready.set()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._stopping)
                if self._stopping:
                    return
                frame, meta, index, submitted = self._pending
                self._pending = None
            try:
                self._deliver(LiveResult(self._denoise(frame), meta, index, submitted, time.monotonic()))
            except Exception as exc:  # a bad frame (or a failing on_result) must not end the stream
                with self._lock:
                    self._counts["failed"] += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"

    def _denoise(self, frame: np.ndarray) -> np.ndarray:
        from ..mapping.frames import as_frame_stack
        from ..inference.api import prepare
        stack, single = as_frame_stack(frame)
        if self._pipeline is None or not self._pipeline.fits(stack):
            self._pipeline = prepare(stack, runner=self._runner, **self._options)
        out = self._pipeline.run(stack)
        return out[0] if single else out

    def _deliver(self, result: LiveResult) -> None:
        with self._lock:
            self._counts["denoised"] += 1
            self._recent.append(result)
            self._result = result
            self._lock.notify_all()
        if self._on_result is not None:
            self._on_result(result)

