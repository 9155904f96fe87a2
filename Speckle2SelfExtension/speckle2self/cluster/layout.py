"""How many model actors a cluster gets, and what each one reserves."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ClusterError

GPU_DEVICES = ("auto", "cuda", "gpu")


@dataclass(frozen=True)
class Layout:
    """`actors` model actors, each reserving `num_cpus` CPUs and `num_gpus` GPUs (a fraction when
    several share one) and running torch on `threads` CPU threads (the CPU work beside a GPU is one thread)."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int


def plan_layout(resources: dict, device: str, workers: int | None) -> Layout:
    """One actor per GPU where the cluster has GPUs and the device allows them (`workers` above the
    GPU count share GPUs, so that one actor's decoding and writing overlap another's network); else
    one per CPU slot: the cluster's CPUs shared out among `workers` actors (default one per CPU)."""
    gpus = int(resources.get("GPU", 0))
    if gpus and device in GPU_DEVICES:
        actors = workers or gpus
        return Layout(actors, num_cpus=1, num_gpus=min(1.0, gpus / actors), threads=1)
    if device in ("cuda", "gpu"):
        raise ClusterError(f"--device {device} asks for GPUs, but the Ray cluster has none (its resources: "
                           f"{_listing(resources)})")
    cpus = max(1, int(resources.get("CPU", 1)))
    actors = workers or cpus
    share = cpus / actors
    threads = max(1, int(share))
    return Layout(actors, num_cpus=min(share, threads), num_gpus=0, threads=threads)


def _listing(resources: dict) -> str:
    shown = {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")}
    return ", ".join(f"{k} {v:g}" for k, v in sorted(shown.items())) or "none"
