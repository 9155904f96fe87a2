"""Distillation: a fast student network learns to give its teacher's output.

A teacher trained self-supervised at full resolution despeckles well but runs its thinnest
feature maps at every pixel, where a CPU is slowest. A student of another layout (for example
Architecture.space_to_depth = 2: no convolution at full resolution) is trained on the teacher's
own inputs, crops of the training frames in the network's domain, to reproduce the teacher's
output and its gradients (so edges stay as sharp as the teacher leaves them). No clean images are
involved: the teacher's outputs are the targets. The teacher runs as its card says: a card with
"passes" 2 gives the network applied twice, so a student can learn in one pass what its teacher
(or itself) gives in two.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelFileError
from ..networks.model_file import LoadedModel, make_card
from ..networks.network import Architecture, Speckle2SelfNet
from .augment import Augmentation, augment
from .loop import check_crop, cosine_lr, read_checkpoint, write_checkpoint
from .training_data import TrainingFrames

CHECKPOINT_FORMAT = "speckle2self-distil-checkpoint"


@dataclass(frozen=True)
class DistilConfig:
    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    gradient_weight: float = 1.0
    """Weight of the L1 difference of horizontal and vertical pixel differences, beside the L1
    difference of the outputs: a student that matches values on average can still soften edges."""
    seed: int = 0
    checkpoint_every: int = 200
    decay_from: int = 0
    """Step at which the cosine decay from `lr` starts: a run continued from a finished student's
    checkpoint (step `decay_from`) gets a decay of its own instead of the tail of the first one."""
    augmentation: Augmentation = field(default_factory=lambda: Augmentation(scale_range=(0.7, 1.6),
                                                                            affine_probability=0.7))


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, gradient_weight: float) -> torch.Tensor:
    loss = F.l1_loss(student, teacher)
    if gradient_weight > 0:
        for dim in (-1, -2):
            loss = loss + gradient_weight * F.l1_loss(student.diff(dim=dim), teacher.diff(dim=dim))
    return loss


def distil(teacher: LoadedModel, frames: TrainingFrames, arch: Architecture, config: DistilConfig = DistilConfig(),
           checkpoint: Path | None = None, progress: Callable[[int, float], None] | None = None) -> Speckle2SelfNet:
    """Train a student of `arch` on `frames` to reproduce `teacher`; resumes from `checkpoint` if it
    exists and writes it every config.checkpoint_every steps."""
    check_crop(config.crop, arch)
    torch.manual_seed(config.seed)
    net = Speckle2SelfNet(arch)
    opt = torch.optim.Adam(net.denoiser().parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    step = _resume(checkpoint, net, opt, rng) if checkpoint is not None and Path(checkpoint).exists() else 0
    model = teacher.module.eval()
    passes = teacher_passes(teacher)
    while step < config.steps:
        for group in opt.param_groups:
            group["lr"] = cosine_lr(config.lr, config.min_lr_ratio, step - config.decay_from,
                                    config.steps - config.decay_from)
        batch = torch.from_numpy(frames.sample_crops(rng, config.batch_size)).unsqueeze(1)
        batch = augment(batch, rng, config.augmentation)
        with torch.no_grad():
            target = model(batch)
            for _ in range(passes - 1):
                target = model(target.clamp(0.0, 1.0))
        loss = distillation_loss(net.full_resolution(batch), target, config.gradient_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if progress is not None:
            progress(step, float(loss.detach()))
        if checkpoint is not None and (step % config.checkpoint_every == 0 or step == config.steps):
            _save(checkpoint, net, opt, rng, step)
    return net.eval()


def teacher_passes(teacher: LoadedModel) -> int:
    """How many times the teacher's card runs its network (at inference and as a distillation target)."""
    return int(teacher.card["input"].get("passes", 1))


def student_card(net: Speckle2SelfNet, teacher: LoadedModel, config: DistilConfig, data: str,
                 local_mean_radius: int | None = None) -> dict:
    """The student's model card: the teacher's input description, its own architecture, and how it was made.
    `local_mean_radius` replaces the teacher's inference-time local-mean radius (a student can need
    another: it is measured on the student's own output)."""
    network_input = dict(teacher.card["input"])
    if local_mean_radius is not None:
        network_input["local_mean_radius"] = int(local_mean_radius)
    return make_card(net.arch, {
        "data": data,
        "distilled_from": {"sha256": teacher.sha256, "passes": teacher_passes(teacher),
                           "training": teacher.card.get("training", {})},
        "steps": config.steps,
        "config": {**asdict(config), "augmentation": asdict(config.augmentation)},
        "clean_references_used": False,
    }, network_input=network_input)


def _save(path: Path, net: Speckle2SelfNet, opt, rng: np.random.Generator, step: int) -> None:
    write_checkpoint(path, {"format": CHECKPOINT_FORMAT, "architecture": net.arch.to_dict(), "model": net.state_dict(),
                            "optimizer": opt.state_dict(), "rng": rng.bit_generator.state, "step": step})


def _resume(path: Path, net: Speckle2SelfNet, opt, rng: np.random.Generator) -> int:
    state = read_checkpoint(path, CHECKPOINT_FORMAT, "distillation")
    if Architecture.from_dict(state["architecture"]) != net.arch:
        raise ModelFileError(f"{path} holds a student of another architecture than the one asked for")
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    return int(state["step"])
