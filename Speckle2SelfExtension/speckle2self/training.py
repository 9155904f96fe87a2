"""Self-supervised training and fine-tuning from noisy frames only.

The loop samples random crops, augments them, builds the multi-scale views, and minimises
reconstruction + consistency. It is seeded (same seed, same data, same device: same weights),
checkpoints atomically and resumes exactly, reports every step, and on a stop request returns the
best weights seen so far (by an exponential moving average of the loss).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .atomic import atomic_path
from .augment import Augmentation, augment
from .devices import resolve_device
from .errors import InputError, ModelFileError
from .losses import LossWeights, speckle2self_loss
from .model_file import LoadedModel, load_model, make_card
from .network import Architecture, Speckle2SelfNet
from .perturb import multiscale_views
from .training_data import TrainingFrames

CHECKPOINT_FORMAT = "speckle2self-checkpoint"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    weights: LossWeights = LossWeights()
    augmentation: Augmentation = Augmentation()
    seed: int = 0
    domain: str = "auto"
    checkpoint_every: int = 200
    best_every: int = 10
    ema_decay: float = 0.95
    consistency_warmup: int = 0
    """Steps over which the consistency weight ramps up from 0: the network first learns to
    reconstruct, so agreement between scales cannot be reached by ignoring the input."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "best_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"learning rate must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["weights"] = LossWeights(**d["weights"])
        aug = dict(d["augmentation"])
        aug["scale_range"] = tuple(aug["scale_range"])
        d["augmentation"] = Augmentation(**aug)
        d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass(frozen=True)
class StepReport:
    """What the progress callback receives after every step."""

    step: int
    total_steps: int
    losses: dict[str, float]
    smoothed_loss: float
    elapsed_s: float


@dataclass
class TrainResult:
    net: Speckle2SelfNet
    config: TrainConfig
    steps_done: int
    best_loss: float
    final_losses: dict[str, float]
    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    data_summary: dict = field(default_factory=dict)
    parent_sha256: str | None = None

    def card(self, data_description: str) -> dict:
        """Model card for exporting the result."""
        return make_card(self.net.arch, {
            "data": data_description,
            "data_summary": self.data_summary,
            "steps": self.steps_done,
            "stopped_early": self.stopped,
            "final_losses": self.final_losses,
            "best_smoothed_loss": self.best_loss,
            "config": self.config.to_dict(),
            "parent_sha256": self.parent_sha256,
            "clean_references_used": False,
        })


def train(frames: Sequence[np.ndarray] | TrainingFrames, config: TrainConfig = TrainConfig(),
          arch: Architecture | None = None, init: LoadedModel | str | Path | None = None,
          device: str | torch.device = "auto", checkpoint: str | Path | None = None,
          resume: str | Path | None = None,
          progress: Callable[[StepReport], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train Speckle2Self on noisy frames; returns the network holding the best weights seen.

    `init` starts from an existing model (fine-tuning): its architecture wins over `arch`.
    `resume` continues a checkpoint exactly where it stopped (its config and weights win).
    """
    dev = resolve_device(device)
    state = _load_checkpoint(resume) if resume is not None else None
    if state is not None:
        config = TrainConfig.from_dict(state["config"]) if config is None else _resumed_config(state, config)
    data = frames if isinstance(frames, TrainingFrames) else TrainingFrames(frames, config.crop, config.domain)
    net, parent = _build_net(arch, init, state, config.seed)
    net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas)
    rng = np.random.default_rng(config.seed)
    loop = _LoopState(best_state=_state_copy(net))
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        loop = _LoopState.from_checkpoint(state)
    scaler = torch.amp.GradScaler("cuda") if dev.type == "cuda" else None
    started = time.monotonic()
    stopped = False
    while loop.step < config.steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        terms = _train_step(net, opt, data, rng, config, _weights_at(config, loop.step), dev, scaler)
        loop.record(terms, config)
        if loop.step % config.best_every == 0 or loop.step == config.steps:
            loop.maybe_keep_best(net)
        if progress is not None:
            progress(StepReport(loop.step, config.steps, terms, loop.ema, time.monotonic() - started))
        if checkpoint is not None and loop.step % config.checkpoint_every == 0:
            save_checkpoint(checkpoint, net, opt, rng, config, loop, parent)
    if loop.step > 0 and loop.best_state is not None and loop.best_loss < float("inf"):
        net.load_state_dict(loop.best_state)
    if checkpoint is not None and loop.step > 0:
        save_checkpoint(checkpoint, net, opt, rng, config, loop, parent)
    net.eval()
    return TrainResult(net=net, config=config, steps_done=loop.step, best_loss=loop.best_loss,
                       final_losses=loop.last, history=loop.history, stopped=stopped,
                       data_summary=data.summary(), parent_sha256=parent)


def _resumed_config(state: dict, requested: TrainConfig) -> TrainConfig:
    """Keep the checkpoint's settings; only the step budget may be extended."""
    saved = TrainConfig.from_dict(state["config"])
    return TrainConfig.from_dict({**saved.to_dict(), "steps": max(requested.steps, saved.steps)})


def _build_net(arch: Architecture | None, init, state: dict | None, seed: int) -> tuple[Speckle2SelfNet, str | None]:
    if state is not None:
        net = Speckle2SelfNet(Architecture.from_dict(state["architecture"]))
        net.load_state_dict(state["model"])
        return net, state.get("parent_sha256")
    loaded = load_model(init) if isinstance(init, (str, Path)) else init
    if loaded is not None:
        arch = loaded.architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Speckle2SelfNet(arch or Architecture())
    if loaded is not None:
        net.load_denoiser_weights(loaded.module.state_dict())
        return net, loaded.sha256
    return net, None


def _weights_at(config: TrainConfig, step: int) -> LossWeights:
    if config.consistency_warmup <= 0 or step >= config.consistency_warmup:
        return config.weights
    ramp = step / config.consistency_warmup
    return LossWeights(config.weights.reconstruction, config.weights.consistency * ramp)


def _train_step(net, opt, data: TrainingFrames, rng, config: TrainConfig, weights: LossWeights, dev,
                scaler) -> dict[str, float]:
    batch = torch.from_numpy(data.sample_crops(rng, config.batch_size)).unsqueeze(1).to(dev)
    batch = augment(batch, rng, config.augmentation)
    views = multiscale_views(batch, net.arch.scales, net.arch.interpolation)
    with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=scaler is not None):
        outputs = net(views)
    loss, terms = speckle2self_loss([o.float() for o in outputs], views, weights)
    if not np.isfinite(terms["total"]):
        raise FloatingPointError(f"training diverged (loss {terms['total']}); lower the learning rate")
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return terms


def _state_copy(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@dataclass
class _LoopState:
    step: int = 0
    ema: float = float("nan")
    best_loss: float = float("inf")
    best_state: dict | None = None
    last: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def record(self, terms: dict[str, float], config: TrainConfig) -> None:
        self.step += 1
        self.last = terms
        total = terms["total"]
        self.ema = total if np.isnan(self.ema) else config.ema_decay * self.ema + (1 - config.ema_decay) * total
        self.history.append({"step": self.step, **terms, "smoothed": self.ema})

    def maybe_keep_best(self, net: torch.nn.Module) -> None:
        if self.ema < self.best_loss:
            self.best_loss = self.ema
            self.best_state = _state_copy(net)

    @classmethod
    def from_checkpoint(cls, state: dict) -> "_LoopState":
        return cls(step=state["step"], ema=state["ema"], best_loss=state["best_loss"],
                   best_state=state["best_state"], last=state["last"], history=state["history"])


def save_checkpoint(path: str | Path, net, opt, rng, config: TrainConfig, loop: _LoopState,
                    parent: str | None) -> None:
    """Everything needed to continue exactly: weights, optimiser, RNG, loop state (atomic write)."""
    payload = {
        "format": CHECKPOINT_FORMAT, "format_version": 1,
        "architecture": net.arch.to_dict(), "config": config.to_dict(),
        "model": net.state_dict(), "optimizer": opt.state_dict(), "rng": rng.bit_generator.state,
        "step": loop.step, "ema": loop.ema, "best_loss": loop.best_loss, "best_state": loop.best_state,
        "last": loop.last, "history": loop.history, "parent_sha256": parent,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable Speckle2Self checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path} is not a Speckle2Self training checkpoint")
    return state
