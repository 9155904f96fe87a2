"""Fine-tuning in a separate process, for hosts (Slicer) that must stay responsive.

    python -m speckle2self.finetune.finetune_worker SPEC.json        (PythonSlicer -m … inside Slicer)

SPEC.json: {"data": [paths], "output": "model.pt", "init": null or "parent.pt", "steps": 500,
"lr": null, "crop": 128, "batch_size": 8, "device": "auto", "stop_file": "path"}.
The worker prints one event per line on stdout, each `speckle2self-event {json}`:
  {"event": "started", "data": N, "steps": S, "pid": worker process id}
  {"event": "step", "step": k, "steps": S, "loss": smoothed, "reconstruction": r, "consistency": c,
   "validation": v or null}
  {"event": "finished", "model": path, "sha256": hex, "steps": k, "stopped": bool}
  {"event": "error", "message": text}
Creating `stop_file` asks it to stop after the current step and keep the best model so far.
Any other output line is log text. Exit code 0 on success, 1 on error.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, TextIO

PREFIX = "speckle2self-event "
STEP_EVERY = 5


def encode_event(event: str, **fields) -> str:
    return PREFIX + json.dumps({"event": event, **fields}, sort_keys=True)


def parse_event(line: str) -> dict | None:
    """The event carried by an output line, or None for a log line."""
    line = line.strip()
    if not line.startswith(PREFIX):
        return None
    try:
        event = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def write_spec(path: str | Path, data: list[str], output: str, *, init: str | None = None, steps: int = 500,
               lr: float | None = None, crop: int = 128, batch_size: int = 8, device: str = "auto") -> Path:
    """Write a SPEC.json (the stop file goes beside it) and return its path."""
    path = Path(path)
    spec = {"data": list(map(str, data)), "output": str(output), "init": init, "steps": int(steps), "lr": lr,
            "crop": int(crop), "batch_size": int(batch_size), "device": device,
            "stop_file": str(path.with_suffix(".stop"))}
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


def run(spec_path: str | Path, out: TextIO = sys.stdout) -> int:
    from ..errors import Speckle2SelfError
    from .files import finetune_files

    def emit(event: str, **fields) -> None:
        print(encode_event(event, **fields), file=out, flush=True)

    try:
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        stop_file = Path(spec["stop_file"])
        emit("started", steps=spec["steps"], data=len(spec["data"]), pid=os.getpid())
        outcome = finetune_files(spec["data"], spec["output"], init=spec.get("init"), steps=spec["steps"],
                                 crop=spec.get("crop", 128), batch_size=spec.get("batch_size", 8),
                                 lr=spec.get("lr"), device=spec.get("device", "auto"),
                                 progress=_step_reporter(emit, spec["steps"]), should_stop=stop_file.exists)
    except (Speckle2SelfError, OSError, KeyError, ValueError) as exc:
        emit("error", message=str(exc) or type(exc).__name__)
        return 1
    emit("finished", model=str(outcome.model_path), sha256=outcome.sha256, steps=outcome.steps,
         stopped=outcome.stopped, reason=outcome.stop_reason, best_loss=outcome.best_loss)
    return 0


def _step_reporter(emit: Callable, steps: int) -> Callable:
    def report(rep) -> None:
        if rep.step % STEP_EVERY == 0 or rep.step == rep.total_steps:
            emit("step", step=rep.step, steps=rep.total_steps, loss=rep.smoothed_loss,
                 reconstruction=rep.losses["reconstruction"], consistency=rep.losses["consistency"],
                 validation=rep.val_loss)
    return report


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(run(sys.argv[1]))
