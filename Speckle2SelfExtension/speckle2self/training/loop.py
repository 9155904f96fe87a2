"""Self-supervised training and fine-tuning from noisy frames only.

The loop samples random crops, augments them, builds the multi-scale views, and minimises
reconstruction + consistency. It is seeded (same seed, same data, same device: same weights),
checkpoints atomically and resumes exactly, reports every step, and on a stop request returns the
best weights seen so far (by an exponential moving average of the loss).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..atomic import atomic_path
from .augment import Augmentation, augment
from ..networks.devices import resolve_device
from .distributed import DistContext
from ..errors import InputError, ModelFileError, OutputError, TrainingDiverged
from ..failures import reason
from .losses import LossWeights, speckle2self_loss
from ..mapping.log_mapping import DEFAULT_GRAIN_PX, LOG_DOMAIN
from ..networks.model_file import LoadedModel, load_model, make_card
from ..inference.options import MAX_SEED
from ..networks.network import Architecture, Speckle2SelfNet
from .perturb import multiscale_views
from .speckle_noise import CLIP_LEVEL, log_speckle
from .training_data import TrainingFrames

CHECKPOINT_FORMAT = "speckle2self-checkpoint"


def _whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


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
    lr_schedule: str = "constant"
    """'constant', or 'cosine': decay from lr to lr × min_lr_ratio over the run."""
    min_lr_ratio: float = 0.1
    network_input: dict = field(default_factory=lambda: {"domain": LOG_DOMAIN, "grain_px": list(DEFAULT_GRAIN_PX)})
    """What the network takes: log-compressed grey levels at a speckle grain, {"domain": "log",
    "grain_px": [axial, lateral]} (speckle2self.mapping.log_mapping). Fine-tuning takes its parent's."""
    val_every: int = 50
    patience: int = 0
    """Early stopping: stop after this many validations without improvement (0 = never)."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "best_every", "val_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not _whole(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        if not _whole(self.patience) or self.patience < 0:
            raise InputError(f"patience must be a whole number of validations, 0 (never stop early) or more, "
                             f"got {self.patience!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"learning rate must be a positive, finite number, got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise InputError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
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
    val_loss: float | None = None
    lr: float = 0.0


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
    best_val_loss: float | None = None
    stop_reason: str = "finished"

    def card(self, data_description: str) -> dict:
        """Model card for exporting the result."""
        return make_card(self.net.arch, {
            "data": data_description,
            "data_summary": self.data_summary,
            "steps": self.steps_done,
            "stopped_early": self.stopped,
            "final_losses": self.final_losses,
            "best_smoothed_loss": self.best_loss,
            "best_validation_loss": self.best_val_loss,
            "stop_reason": self.stop_reason,
            "config": self.config.to_dict(),
            "parent_sha256": self.parent_sha256,
            "clean_references_used": False,
        }, network_input=self.config.network_input)


def train(frames: Sequence[np.ndarray] | TrainingFrames, config: TrainConfig = TrainConfig(),
          arch: Architecture | None = None, init: LoadedModel | str | Path | None = None,
          device: str | torch.device = "auto", checkpoint: str | Path | None = None,
          resume: str | Path | None = None,
          progress: Callable[[StepReport], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          validation: TrainingFrames | None = None) -> TrainResult:
    """Train Speckle2Self on noisy frames; returns the network holding the best weights seen.

    `init` starts from an existing model (fine-tuning): its architecture wins over `arch`.
    `resume` continues a checkpoint exactly where it stopped (its config and weights win).
    `validation` frames are never trained on: their loss picks the best weights and drives early
    stopping (without them, a moving average of the training loss picks the best weights).
    Under torchrun the work is shared by all processes; only rank 0 writes the checkpoint.
    """
    dev = resolve_device(device)
    ctx = DistContext.from_env(dev)
    dev = ctx.local_device(dev)
    state = read_checkpoint(resume) if resume is not None else None
    if state is not None:
        config = _resumed_config(state, config)
    net, parent, parent_input = _build_net(arch, init, state, config.seed)
    check_crop(config.crop, net.arch)
    if parent_input is not None:
        config = replace(config, network_input=_inherited_input(parent_input, config.network_input))
    data = frames if isinstance(frames, TrainingFrames) else TrainingFrames(frames, config.crop, config.domain,
                                                                            network_input=config.network_input)
    trainer = _Trainer(net.to(dev), data, validation, config, dev, ctx, parent)
    if state is not None:
        trainer.restore(state)
    return trainer.run(checkpoint, progress, should_stop)


class _Trainer:
    """One training run: the loop, validation, best weights, checkpoints."""

    def __init__(self, net: Speckle2SelfNet, data: TrainingFrames, validation: TrainingFrames | None,
                 config: TrainConfig, dev: torch.device, ctx: DistContext, parent: str | None) -> None:
        self.net, self.data, self.config, self.dev, self.ctx, self.parent = net, data, config, dev, ctx, parent
        self.model = ctx.wrap(net, dev)
        self.opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas)
        self.rng = np.random.default_rng(config.seed)
        self.loop = _LoopState(best_state=_state_copy(net))
        self.scaler = torch.amp.GradScaler("cuda") if dev.type == "cuda" else None
        self.val_batch = _validation_batch(validation, config) if validation is not None else None

    def restore(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.loop = _LoopState.from_checkpoint(state)

    def run(self, checkpoint, progress, should_stop) -> TrainResult:
        started, cfg, loop = time.monotonic(), self.config, self.loop
        reason = "finished"
        while loop.step < cfg.steps:
            if self.ctx.any(should_stop is not None and should_stop()):
                reason = "stopped by request"
                break
            lr = _lr_at(cfg, loop.step)
            for group in self.opt.param_groups:
                group["lr"] = lr
            terms = _train_step(self.model, self.net.arch, self.opt, self.data, self.rng, cfg,
                                _weights_at(cfg, loop.step), self.dev, self.scaler, self.ctx)
            loop.record(terms, cfg)
            val = self._evaluate_if_due()
            if progress is not None:
                progress(StepReport(loop.step, cfg.steps, terms, loop.ema, time.monotonic() - started, val, lr))
            if checkpoint is not None and loop.step % cfg.checkpoint_every == 0:
                self.save(checkpoint)
            if cfg.patience and self.val_batch is not None and loop.evals_since_best >= cfg.patience:
                reason = f"early stopping: no validation improvement in {cfg.patience} checks"
                break
        if checkpoint is not None and loop.step > 0:
            self.save(checkpoint)
        if loop.step > 0 and loop.best_state is not None and loop.best_loss < float("inf"):
            self.net.load_state_dict(loop.best_state)
        self.net.eval()
        return TrainResult(net=self.net, config=cfg, steps_done=loop.step, best_loss=loop.best_loss,
                           final_losses=loop.last, history=loop.history, stopped=reason != "finished",
                           data_summary=self.data.summary(), parent_sha256=self.parent,
                           best_val_loss=loop.best_loss if self.val_batch is not None else None,
                           stop_reason=reason)

    def _evaluate_if_due(self) -> float | None:
        cfg, loop = self.config, self.loop
        last = loop.step == cfg.steps
        if self.val_batch is None:
            if loop.step % cfg.best_every == 0 or last:
                loop.maybe_keep_best(self.net, loop.ema)
            return None
        if loop.step % cfg.val_every != 0 and not last:
            return None
        val = validation_loss(self.net, self.val_batch, cfg, self.dev)
        loop.history[-1]["validation"] = val
        loop.maybe_keep_best(self.net, val)
        return val

    def save(self, path) -> None:
        if self.ctx.is_main:
            save_checkpoint(path, self.net, self.opt, self.rng, self.config, self.loop, self.parent)


def _lr_at(config: TrainConfig, step: int) -> float:
    if config.lr_schedule == "constant":
        return config.lr
    return cosine_lr(config.lr, config.min_lr_ratio, step, config.steps)


def cosine_lr(lr: float, min_lr_ratio: float, step: int, steps: int) -> float:
    """Cosine decay from lr at step 0 to lr × min_lr_ratio at `steps`, held there after."""
    progress = min(1.0, step / max(1, steps))
    floor = lr * min_lr_ratio
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * progress))


def _validation_batch(validation: TrainingFrames, config: TrainConfig) -> torch.Tensor:
    """Fixed crops of the held-out frames (two per frame, at most 64), the same at every check;
    with re-speckling, a second channel holds each crop's fixed synthetic speckle."""
    rng = np.random.default_rng(config.seed + 1)
    count = min(64, 2 * len(validation))
    frames: list[int] = []
    batch = torch.from_numpy(validation.sample_crops(rng, count, frames)).unsqueeze(1)
    if config.weights.respeckle > 0:
        batch = torch.cat([batch, respeckle_noise(validation, frames, batch, rng)], dim=1)
    return batch


def validation_loss(net: Speckle2SelfNet, batch: torch.Tensor, config: TrainConfig, dev: torch.device) -> float:
    """The training loss (full weights, no augmentation) on held-out crops."""
    net.eval()
    total, count = 0.0, 0
    alpha = config.weights.respeckle
    with torch.no_grad():
        for part in batch.split(8):
            views, inputs = _views(part.to(dev), net.arch, alpha)
            loss, _ = speckle2self_loss(net(inputs or views), views, config.weights, inputs,
                                        net.arch.scales, net.arch.interpolation)
            total += float(loss) * len(part)
            count += len(part)
    net.train()
    return total / count


def _resumed_config(state: dict, requested: TrainConfig | None) -> TrainConfig:
    """The checkpoint's settings with the requested step budget (the checkpoint's own without one),
    which must exceed the steps already done: a budget is never silently raised or ignored."""
    saved = TrainConfig.from_dict(state["config"])
    steps = requested.steps if requested is not None else saved.steps
    check_resume_steps(steps, int(state["step"]))
    return TrainConfig.from_dict({**saved.to_dict(), "steps": steps})


def check_resume_steps(steps: int, done: int) -> None:
    if steps <= done:
        raise InputError(f"the checkpoint has already trained {done} steps; to continue, ask for more than "
                         f"{done} steps in total (got {steps})")


def check_crop(crop: int, arch: Architecture) -> None:
    """Training crops go through the network whole: their side must be a multiple of its multiple
    (16 for every preset), or the decoder's sizes do not meet the encoder's."""
    multiple = arch.multiple
    if int(crop) % multiple:
        lower = max(multiple, int(crop) // multiple * multiple)
        raise InputError(f"crop must be a multiple of {multiple} pixels for this network, got {crop} "
                         f"(use {lower} or {lower + multiple})")


def checkpoint_progress(path: str | Path) -> tuple[TrainConfig, int]:
    """A checkpoint's settings and the steps it has done (to plan or report a resumed run)."""
    state = read_checkpoint(path)
    return TrainConfig.from_dict(state["config"]), int(state["step"])


def continued_checkpoint(source: str | Path, checkpoint: str | Path, config: TrainConfig) -> None:
    """Copy a checkpoint with `config`'s loss weights, step budget, crop and batch size, so resuming
    it trains on with them: a new objective, crop or batch refined from a finished run without
    starting from its export.
    The best weights so far are forgotten: their loss was another objective's, which the new
    one's cannot be compared with (an L1 loss never beats an MSE one, and the export would be
    the source run's weights)."""
    state = read_checkpoint(source)
    check_resume_steps(config.steps, int(state["step"]))
    saved = {**state["config"], "weights": asdict(config.weights), "steps": config.steps, "crop": config.crop,
             "batch_size": config.batch_size}
    blank = _LoopState()
    fresh = {"best_loss": blank.best_loss, "best_state": blank.best_state, "ema": blank.ema,
             "evals_since_best": blank.evals_since_best}
    write_checkpoint(checkpoint, {**state, "config": saved, **fresh})


def _build_net(arch: Architecture | None, init, state: dict | None,
               seed: int) -> tuple[Speckle2SelfNet, str | None, dict | None]:
    """The network, its parent's checksum, and the parent's input description (fine-tuning keeps it)."""
    if state is not None:
        net = Speckle2SelfNet(Architecture.from_dict(state["architecture"]))
        net.load_state_dict(state["model"])
        return net, state.get("parent_sha256"), None
    loaded = load_model(init) if isinstance(init, (str, Path)) else init
    if loaded is not None:
        arch = loaded.architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Speckle2SelfNet(arch or Architecture())
    if loaded is not None:
        net.load_denoiser_weights(loaded.module.state_dict())
        return net, loaded.sha256, dict(loaded.card["input"])
    return net, None, None


def _inherited_input(parent: dict, requested: dict) -> dict:
    """A fine-tuned model reads its input as its parent does; only the inference-time local-mean
    radius, which training never uses, may be set anew."""
    if "local_mean_radius" in requested:
        return {**parent, "local_mean_radius": int(requested["local_mean_radius"])}
    return dict(parent)


def _weights_at(config: TrainConfig, step: int) -> LossWeights:
    if config.consistency_warmup <= 0 or step >= config.consistency_warmup:
        return config.weights
    ramp = step / config.consistency_warmup
    return replace(config.weights, consistency=config.weights.consistency * ramp)


def _train_step(model, arch: Architecture, opt, data: TrainingFrames, rng, config: TrainConfig,
                weights: LossWeights, dev, scaler, ctx: DistContext) -> dict[str, float]:
    frames: list[int] = []
    batch = torch.from_numpy(data.sample_crops(rng, config.batch_size, frames)).unsqueeze(1)
    alpha = weights.respeckle
    if alpha > 0:
        batch = torch.cat([batch, respeckle_noise(data, frames, batch, rng)], dim=1)
    batch = ctx.shard(augment(batch, rng, config.augmentation)).to(dev)
    views, inputs = _views(batch, arch, alpha)
    with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=scaler is not None):
        outputs = model(inputs or views)
    loss, terms = speckle2self_loss([o.float() for o in outputs], views, weights, inputs, arch.scales,
                                    arch.interpolation)
    if not np.isfinite(terms["total"]):
        raise TrainingDiverged(f"training diverged (loss {terms['total']}); lower the learning rate")
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return ctx.mean(terms)


def _views(batch: torch.Tensor, arch: Architecture,
           alpha: float) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """The multi-scale views of a batch's noisy crops (channel 0), and with re-speckling (alpha > 0)
    the views of the crops plus alpha times their synthetic speckle (channel 1), which the network sees."""
    views = multiscale_views(batch[:, :1], arch.scales, arch.interpolation)
    if alpha <= 0:
        return views, None
    return views, multiscale_views(batch[:, :1] + alpha * batch[:, 1:], arch.scales, arch.interpolation)


def respeckle_noise(data: TrainingFrames, frames: list[int], crops: torch.Tensor,
                    rng: np.random.Generator) -> torch.Tensor:
    """(B, 1, H, W) synthetic log speckle for (B, 1, H, W) crops, each at its own frame's strength
    and grain; none where a crop sits on the display's floor (clipped: no speckle left to mimic,
    and inference meets such pixels flat)."""
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    out = torch.zeros_like(crops)
    for i, k in enumerate(frames):
        law = data.noise_params(k)
        if law.strength > 0:
            out[i, 0] = law.strength * log_speckle(tuple(crops.shape[-2:]), law.psf, gen, law.power)
    return out * (crops > CLIP_LEVEL)


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
    evals_since_best: int = 0

    def record(self, terms: dict[str, float], config: TrainConfig) -> None:
        self.step += 1
        self.last = terms
        total = terms["total"]
        self.ema = total if np.isnan(self.ema) else config.ema_decay * self.ema + (1 - config.ema_decay) * total
        self.history.append({"step": self.step, **terms, "smoothed": self.ema})

    def maybe_keep_best(self, net: torch.nn.Module, score: float) -> None:
        if score < self.best_loss:
            self.best_loss, self.evals_since_best = score, 0
            self.best_state = _state_copy(net)
        else:
            self.evals_since_best += 1

    @classmethod
    def from_checkpoint(cls, state: dict) -> "_LoopState":
        return cls(step=state["step"], ema=state["ema"], best_loss=state["best_loss"],
                   best_state=state["best_state"], last=state["last"], history=state["history"],
                   evals_since_best=state.get("evals_since_best", 0))


def save_checkpoint(path: str | Path, net, opt, rng, config: TrainConfig, loop: _LoopState,
                    parent: str | None) -> None:
    """Everything needed to continue exactly: weights, optimiser, RNG, loop state (atomic write)."""
    payload = {
        "format": CHECKPOINT_FORMAT, "format_version": 1,
        "architecture": net.arch.to_dict(), "config": config.to_dict(),
        "model": net.state_dict(), "optimizer": opt.state_dict(), "rng": rng.bit_generator.state,
        "step": loop.step, "ema": loop.ema, "best_loss": loop.best_loss, "best_state": loop.best_state,
        "last": loop.last, "history": loop.history, "parent_sha256": parent,
        "evals_since_best": loop.evals_since_best,
    }
    write_checkpoint(path, payload)


def write_checkpoint(path: str | Path, payload: dict) -> None:
    """Write a checkpoint atomically: a failed write leaves the previous one as it was."""
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        raise OutputError(f"could not write the checkpoint {path} ({reason(exc)}); "
                          "the previous checkpoint is unchanged") from exc


def read_checkpoint(path: str | Path, fmt: str = CHECKPOINT_FORMAT, kind: str = "training") -> dict:
    """A checkpoint of format `fmt`, or a ModelFileError that says what the file is not."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # only tensors and plain settings are ever unpickled (weights_only)
        raise ModelFileError(f"{path} is not a Speckle2Self {kind} checkpoint: it cannot be read as one "
                             f"({type(exc).__name__}); pass the MODEL.pt.ckpt file an interrupted run wrote") from exc
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ModelFileError(f"{path} is not a Speckle2Self {kind} checkpoint")
    return state
