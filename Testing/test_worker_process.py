"""Watching the fine-tuning worker from Slicer's panel, tested with real processes and no Slicer:
undecodable output, the last lines of a crash, and a Stop that a hung worker does not obey."""
import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from speckle2self.finetune.finetune_worker import encode_event
from speckle2self.slicer.worker_process import (OutputTail, WorkerProcess, decode_line, exit_message, read_output)


def test_bytes_that_are_not_utf8_become_replacement_characters():
    assert decode_line(b"loss \xff\xfe ok\r\n") == "loss \ufffd\ufffd ok"
    assert decode_line("already text\n") == "already text"


def test_reading_output_survives_undecodable_bytes_and_keeps_going():
    stream = io.BytesIO(b"warning: \xe9t\xe9\n" + encode_event("step", step=5).encode() + b"\nlast line\n")
    events, tail = [], OutputTail()
    read_output(stream, events.append, tail=tail)
    assert events == [{"event": "step", "step": 5}]
    assert tail.lines == ["warning: \ufffdt\ufffd", "last line"]


def test_the_tail_keeps_only_the_last_lines():
    tail = OutputTail(size=3)
    for i in range(10):
        tail.add(f"line {i}")
    assert tail.lines == ["line 7", "line 8", "line 9"]


def test_a_crash_message_shows_the_exit_code_and_the_last_output():
    message = exit_message({"event": "exited", "code": 139, "killed": False, "output": ["Traceback", "MemoryError"]})
    assert message == "the fine-tuning process ended unexpectedly (exit code 139). Its last output:\nTraceback\nMemoryError"


def test_a_crash_without_output_says_so():
    assert exit_message({"event": "exited", "code": 1, "output": []}).endswith("(exit code 1), without any output")


def test_a_killed_worker_is_reported_as_ended_after_stop():
    assert "did not stop within 30 s of Stop" in exit_message({"event": "exited", "code": -9, "killed": True})


def _launch(script: str) -> subprocess.Popen:
    """A worker stand-in, started like slicer.util.launchConsoleProcess does (text mode, stderr merged)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)


def _events_until_exit(worker: WorkerProcess, timeout: float = 20.0) -> list[dict]:
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while not any(e["event"] == "exited" for e in events):
        assert time.monotonic() < deadline, f"no 'exited' event; got {events}"
        events += worker.poll()
        time.sleep(0.05)
    return events


def test_a_crashing_worker_delivers_its_events_then_its_exit_code_and_last_lines(tmp_path):
    process = _launch(f"""
        import sys
        print({encode_event("started", steps=10)!r}, flush=True)
        sys.stdout.buffer.write(b"bad byte \\xff\\n"); sys.stdout.flush()
        print("CUDA error: out of memory", flush=True)
        sys.exit(3)
    """)
    events = _events_until_exit(WorkerProcess(process, tmp_path / "job.stop"))
    assert [e["event"] for e in events] == ["started", "exited"]
    assert events[-1]["code"] == 3 and not events[-1]["killed"]
    assert events[-1]["output"] == ["bad byte \ufffd", "CUDA error: out of memory"]


def test_stop_writes_the_stop_file_and_a_worker_that_obeys_is_not_killed(tmp_path):
    stop_file = tmp_path / "job.stop"
    process = _launch(f"""
        import pathlib, time
        stop = pathlib.Path({str(stop_file)!r})
        while not stop.exists():
            time.sleep(0.02)
        print({encode_event("finished", model="m.pt")!r}, flush=True)
    """)
    worker = WorkerProcess(process, stop_file, grace_seconds=60)
    worker.request_stop()
    events = _events_until_exit(worker)
    assert [e["event"] for e in events] == ["finished", "exited"] and events[-1]["code"] == 0
    assert stop_file.read_text(encoding="utf-8") == "stop"


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="checks process state through /proc")
def test_a_hung_worker_and_its_launcher_are_killed_once_the_grace_period_after_stop_is_over(tmp_path):
    # A launcher (like PythonSlicer) whose child is the real worker; the worker announces its pid and hangs.
    worker_script = f"import os, time; print({encode_event('started', steps=1)[:-1]!r} + ', \"pid\": %d}}' % os.getpid(), flush=True); time.sleep(600)"
    process = _launch(f"""
        import subprocess, sys
        sys.exit(subprocess.call([sys.executable, "-c", {worker_script!r}]))
    """)
    now = [0.0]
    worker = WorkerProcess(process, tmp_path / "job.stop", grace_seconds=30, clock=lambda: now[0])
    deadline = time.monotonic() + 20
    started = []
    while not started:
        assert time.monotonic() < deadline, "the worker never started"
        started = [e for e in worker.poll() if e["event"] == "started"]
        time.sleep(0.05)
    worker_pid = started[0]["pid"]
    worker.request_stop()
    now[0] = 29.0
    assert worker.poll() == [] and process.poll() is None  # still within the grace period
    now[0] = 31.0
    events = _events_until_exit(worker)
    assert events[-1]["killed"] and events[-1]["code"] != 0
    deadline = time.monotonic() + 10
    while _alive(worker_pid):
        assert time.monotonic() < deadline, "the worker behind the launcher is still running"
        time.sleep(0.05)
