"""The run report: one row per input (output, status, error, frames, seconds, worker) as CSV or JSONL.

Written atomically when the run ends, so a report file is always whole. The format follows the
name: `.csv`, or `.jsonl` (one JSON object per line).
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Sequence

from ..atomic import write_text_atomic
from ..errors import InputError

COLUMNS = ("input", "output", "status", "error", "frames", "seconds", "worker")
FORMATS = (".csv", ".jsonl")


def check_report_path(path: str | os.PathLike) -> Path:
    """`path` if its name says a format we write; checked before any work so a typo costs nothing."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"--report {path}: name a .csv or .jsonl file")
    if path.is_dir():
        raise InputError(f"--report {path} is a folder; name a .csv or .jsonl file")
    return path


def report_rows(reports: Sequence) -> list[dict]:
    """One dict per FileReport, with status ok, failed or skipped."""
    return [{"input": str(r.input), "output": str(r.output) if r.output else "",
             "status": "skipped" if r.skipped else ("ok" if r.ok else "failed"), "error": r.error or "",
             "frames": r.frames, "seconds": round(r.seconds, 3), "worker": r.worker or ""} for r in reports]


def write_report(path: str | os.PathLike, reports: Sequence) -> Path:
    """Write the report for `reports` to `path` (CSV or JSONL by its suffix)."""
    path = check_report_path(path)
    rows = report_rows(reports)
    if path.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    write_text_atomic(path, text)
    return path
