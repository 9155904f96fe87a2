"""How many model actors a cluster gets, and what each one reserves."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ClusterError

GPU_DEVICES = ("auto", "cuda", "gpu")


@dataclass(frozen=True)
class Layout:
    """`actors` model actors, each reserving `num_cpus` CPUs and `num_gpus` GPUs; `threads` is
    torch's thread count in each (None: torch's default, for GPU actors)."""

    actors: int
    num_cpus: float
    num_gpus: int
    threads: int | None

    def describe(self) -> str:
        per = "1 GPU" if self.num_gpus else f"{self.threads} CPU thread{'s' if self.threads != 1 else ''}"
        return f"{self.actors} model actor{'s' if self.actors != 1 else ''}, {per} each"


def plan_layout(resources: dict, device: str, workers: int | None) -> Layout:
    """One actor per GPU where the cluster has GPUs and the device allows them; else one per CPU
    slot: the cluster's CPUs shared out among `workers` actors (default one per CPU)."""
    gpus = int(resources.get("GPU", 0))
    if gpus and device in GPU_DEVICES:
        return Layout(min(workers or gpus, gpus), num_cpus=1, num_gpus=1, threads=None)
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
