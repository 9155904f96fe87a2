"""Which files a cluster run denoises: the single-process plan, less what needs no work."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..inference.pipeline import FileReport, _is_series_to_one_file, checked_plan, planned_report


@dataclass(frozen=True)
class Job:
    """One unit of work: an input file to its output, or (series) a DICOM folder to one volume file."""

    index: int
    src: Path
    dst: Path
    series: bool = False


def plan_jobs(inputs: Sequence[str | os.PathLike], output: str | os.PathLike,
              skip_existing: bool) -> tuple[list[Job], dict[int, FileReport]]:
    """The jobs to run and the reports already known (finished outputs), by input index.

    The pairs come from pipeline.checked_plan (which refuses clashing outputs) and the skips from
    pipeline.planned_report, so the cluster run plans, refuses and skips exactly as `denoise_files` does.
    """
    if _is_series_to_one_file(inputs, output):
        return [Job(0, Path(inputs[0]), Path(output), series=True)], {}
    jobs: list[Job] = []
    known: dict[int, FileReport] = {}
    for index, (src, dst) in enumerate(checked_plan(inputs, output)):
        report = planned_report(src, dst, skip_existing)
        if report is None:
            jobs.append(Job(index, src, dst))
        else:
            known[index] = report
    return jobs, known
