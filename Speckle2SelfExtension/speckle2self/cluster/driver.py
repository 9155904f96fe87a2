"""The driver: plan the files, start one model actor per GPU or CPU slot, stream the files through
them, retry a file once when its worker dies, and return one report per input in input order."""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

from ..inference.api import get_model
from ..errors import ModelFileError
from ..networks.model_file import bundled_model_path
from ..inference.options import check_run_options, check_strength
from ..inference.pipeline import FileReport
from .connect import connect
from .errors import ClusterError
from .layout import Layout, plan_layout
from .plan import Job, plan_jobs

IN_FLIGHT_PER_ACTOR = 2
"""Files queued on each actor: the next file is already there when one finishes."""
MAX_RESTARTS = 3
"""Ray restarts a dead actor (reloading the model) this often; one that keeps dying is dropped."""

OnFile = Callable[[FileReport, int], None]
"""Called on the driver as on_file(report, total_files) as each file finishes."""


def denoise_files_ray(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                      address: str | None = None, workers: int | None = None, model=None, device: str = "auto",
                      batch_size: int | None = None, domain: str = "auto",
                      grain_px: tuple[float, float] | None = None, precision: str = "auto",
                      tile_size: int | None = None, strength: float = 1.0, skip_existing: bool = False,
                      on_file: OnFile | None = None, init_options: dict | None = None) -> list[FileReport]:
    """`denoise_files` on a Ray cluster: same outputs (bit for bit), reports and failures.

    `address`: None or "local" starts Ray on this machine, "auto" or HOST:PORT joins a running
    cluster; a process already connected to Ray uses that connection. `workers` caps the model
    actors (default one per GPU, else one per CPU). Inputs, outputs and the model must be on storage
    every node shares. `on_file(report, total_files)` is called on the driver as each file
    finishes (skipped and refused files first). Raises ClusterError (no Ray, no cluster, a worker cannot load the
    model) and the errors `denoise_files` raises for bad options, models and output plans.
    """
    check_run_options(model=model, batch_size=batch_size, tile_size=tile_size, precision=precision,
                      domain=domain, device=device, grain_px=grain_px)
    options = dict(device=device, batch_size=batch_size, domain=domain, grain_px=grain_px, precision=precision,
                   tile_size=tile_size, strength=check_strength(strength))
    loaded = get_model(model)
    jobs, known = plan_jobs(inputs, output, skip_existing)
    total = len(jobs) + len(known)
    tell = (lambda report: on_file(report, total)) if on_file is not None else _ignore
    for report in known.values():
        tell(report)
    if not jobs:
        return [known[i] for i in sorted(known)]
    session = connect(address, init_options)
    try:
        ray = session.ray
        layout = plan_layout(ray.cluster_resources(), device, workers)
        actors = start_actors(ray, layout, len(jobs), loaded, model is None, options)
        done = run_jobs(ray, actors, jobs, tell)
    finally:
        session.close()
    return [known.get(i) or done[i] for i in sorted({*known, *done})]


def _ignore(report: FileReport) -> None:
    pass


def start_actors(ray, layout: Layout, jobs: int, model, bundled: bool, options: dict) -> list:
    """Start the model actors (no more than there are jobs) and wait until each has loaded and
    verified the model; a ClusterError says why one could not."""
    from .worker import DenoiseWorker
    actor_class = ray.remote(DenoiseWorker).options(
        num_cpus=layout.num_cpus, num_gpus=layout.num_gpus, max_restarts=MAX_RESTARTS, max_task_retries=0,
        scheduling_strategy="SPREAD")
    path = str(Path(model.path).resolve())
    bundled = bundled or _is_bundled(Path(path))
    actors = [actor_class.remote(path, model.sha256, bundled, options, layout.threads, os.getcwd())
              for _ in range(min(layout.actors, jobs))]
    problems = [p for p in ray.get([a.ready.remote() for a in actors]) if p]
    if problems:
        raise ClusterError(problems[0])
    return actors


def _is_bundled(path: Path) -> bool:
    """Whether `path` is the bundled model, which each node may find in its own install instead."""
    try:
        return path == bundled_model_path().resolve()
    except ModelFileError:
        return False


def run_jobs(ray, actors: list, jobs: list[Job], on_file: Callable[[FileReport], None]) -> dict[int, FileReport]:
    """Stream `jobs` through `actors`, IN_FLIGHT_PER_ACTOR at a time each; reports by job index."""
    from ray.exceptions import RayActorError
    queue, pool, done = deque(jobs), _Pool(actors), {}
    first_worker_died: set[int] = set()
    inflight: dict = {}
    while queue or inflight:
        _dispatch(queue, pool, inflight)
        if not inflight:
            for job in queue:
                done[job.index] = FileReport(job.src, None, False, f"{job.src}: no worker left: every model actor "
                                             "died repeatedly (see the Ray logs)")
            break
        [ref], _ = ray.wait(list(inflight), num_returns=1)
        slot, job = inflight.pop(ref)
        pool.finished(slot)
        try:
            report = ray.get(ref)
        except RayActorError as exc:
            pool.died(slot)
            if job.index not in first_worker_died:  # once more, on another actor where there is one
                first_worker_died.add(job.index)
                queue.appendleft(job)
                pool.avoid[job.index] = slot
                continue
            report = FileReport(job.src, None, False, f"{job.src}: its worker died twice while denoising it "
                                f"({_first_line(exc)})")
        done[job.index] = _as_planned(report, job, job.index in first_worker_died)
        on_file(done[job.index])
    return done


def _dispatch(queue: deque, pool: "_Pool", inflight: dict) -> None:
    """Hand queued jobs, in order, to actors with room (a retried job not to the actor it died on)."""
    while queue:
        job = queue[0]
        slot = pool.free_slot(avoid=pool.avoid.get(job.index))
        if slot is None:
            return
        queue.popleft()
        actor = pool.actors[slot]
        call = actor.denoise_series if job.series else actor.denoise
        inflight[call.remote(str(job.src), str(job.dst))] = (slot, job)
        pool.started(slot)


class _Pool:
    """Which actor has room for another file; actors that keep dying are left out."""

    def __init__(self, actors: list) -> None:
        self.actors = actors
        self.load = [0] * len(actors)
        self.deaths = [0] * len(actors)
        self.avoid: dict[int, int] = {}

    def usable(self, slot: int) -> bool:
        # a death fails every file queued on the actor, so deaths are counted per queued file
        return self.deaths[slot] <= MAX_RESTARTS * IN_FLIGHT_PER_ACTOR

    def free_slot(self, avoid: int | None) -> int | None:
        slots = [s for s in range(len(self.actors)) if self.usable(s) and self.load[s] < IN_FLIGHT_PER_ACTOR]
        others = [s for s in slots if s != avoid]
        if avoid is not None and not others and any(self.usable(s) and s != avoid for s in range(len(self.actors))):
            return None  # wait for another actor to have room rather than retry on the same one
        slots = others or slots
        return min(slots, key=lambda s: self.load[s]) if slots else None

    def started(self, slot: int) -> None:
        self.load[slot] += 1

    def finished(self, slot: int) -> None:
        self.load[slot] -= 1

    def died(self, slot: int) -> None:
        self.deaths[slot] += 1


def _as_planned(report: FileReport, job: Job, retried: bool) -> FileReport:
    """The worker's report under the paths as planned (as the user named them), with a note if retried."""
    report.input = job.src
    if report.ok:
        report.output = job.dst
    if retried:
        report.notes = list(report.notes) + ["its first worker died; denoised again on another worker"]
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
