"""Watching a worker process from a host that must stay responsive (Slicer's fine-tuning panel).

The worker (speckle2self.finetune.finetune_worker) prints events and log text on stdout. A thread reads
that output as bytes and decodes each line itself, so bytes that are not UTF-8 become U+FFFD
instead of an exception that would end the thread; it keeps the last log lines for the message
shown if the worker fails, and queues the events for the host to poll on its own thread. Stopping
is cooperative first (the worker's stop file) and forced after a grace period: a worker that has
not exited by then is killed, and so is the launcher that started it (PythonSlicer is a launcher
whose child is the real Python process, so killing the launcher alone would leave the worker
running). Nothing here imports Slicer, Qt or torch.
"""
from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from ..finetune.finetune_worker import parse_event

TAIL_LINES = 20
STOP_GRACE_SECONDS = 30.0
"""After Stop, the worker finishes its step and saves the best model; this is how long it gets."""


def decode_line(raw: bytes | str) -> str:
    """One output line as text without its line end; bytes that are not UTF-8 become U+FFFD."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text.rstrip("\r\n")


class OutputTail:
    """The last `size` log lines of a process, for the message shown when it fails."""

    def __init__(self, size: int = TAIL_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=size)

    def add(self, line: str) -> None:
        self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)


def read_output(stream: Iterable[bytes | str], on_event: Callable[[dict], None],
                on_log: Callable[[str], None] | None = None, tail: OutputTail | None = None) -> None:
    """Read a process's output to its end: events go to `on_event`, other lines to `tail` and `on_log`."""
    for raw in stream:
        line = decode_line(raw)
        event = parse_event(line)
        if event is not None:
            on_event(event)
            continue
        if tail is not None:
            tail.add(line)
        if on_log is not None:
            on_log(line)


def exit_message(event: dict, grace_seconds: float = STOP_GRACE_SECONDS) -> str:
    """What to tell the user when the worker exited without sending 'finished' or 'error'."""
    if event.get("killed"):
        return (f"fine-tuning did not stop within {grace_seconds:.0f} s of Stop, so the process was ended; "
                "no model was saved")
    head = f"the fine-tuning process ended unexpectedly (exit code {event.get('code')})"
    output = event.get("output") or []
    return head + (". Its last output:\n" + "\n".join(output) if output else ", without any output")


class WorkerProcess:
    """A launched worker: output read on a thread, events polled by the host, stop forced if it hangs.

    `process` is a subprocess.Popen with stdout piped (text or binary; slicer.util.launchConsoleProcess
    gives text mode, whose underlying byte stream is read). The last event is always
    {"event": "exited", "code": …, "killed": bool, "output": [last log lines]}.
    """

    def __init__(self, process: subprocess.Popen, stop_file: str | Path, *,
                 grace_seconds: float = STOP_GRACE_SECONDS, clock: Callable[[], float] = time.monotonic,
                 on_log: Callable[[str], None] | None = None) -> None:
        self.process = process
        self.stop_file = Path(stop_file)
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.on_log = on_log
        self.tail = OutputTail()
        self.killed = False
        self._events: queue.Queue = queue.Queue()
        self._stop_requested_at: float | None = None
        self._worker_pid: int | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = getattr(self.process.stdout, "buffer", self.process.stdout)
        try:
            read_output(stream, self._on_event, self.on_log, self.tail)
        finally:
            code = self.process.wait()
            self._events.put({"event": "exited", "code": code, "killed": self.killed, "output": self.tail.lines})

    def _on_event(self, event: dict) -> None:
        if event.get("event") == "started" and isinstance(event.get("pid"), int):
            self._worker_pid = event["pid"]
        self._events.put(event)

    def poll(self) -> list[dict]:
        """The events that have arrived, oldest first; a worker overdue after Stop is killed first."""
        if self.stop_overdue():
            self.kill()
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def request_stop(self) -> None:
        """Ask the worker to stop after its current step (it keeps the best model so far)."""
        self.stop_file.write_text("stop", encoding="utf-8")
        if self._stop_requested_at is None:
            self._stop_requested_at = self.clock()

    def stop_overdue(self) -> bool:
        """True once the worker is still running `grace_seconds` after a stop request."""
        return (self._stop_requested_at is not None and self.process.poll() is None
                and self.clock() - self._stop_requested_at > self.grace_seconds)

    def kill(self) -> None:
        """End the worker and its launcher now."""
        if self.process.poll() is not None:
            return
        self.killed = True
        if self._worker_pid is not None and self._worker_pid != self.process.pid:
            try:
                os.kill(self._worker_pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            except OSError:
                pass  # already gone
        self.process.kill()
