"""Fine-tuning on a user's own files: read the study, train, export a verified model file.

Training sees only the noisy frames of the given files; the card records the parent model's
checksum and a summary of the data (counts and frame sizes, never names or patient fields).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import InputError
from .io import read_volume
from .model_file import bundled_model_path, export_model
from .network import Architecture
from .pipeline import expand_inputs
from .training import StepReport, TrainConfig, train
from .training_data import TrainingFrames


@dataclass(frozen=True)
class FinetuneOutcome:
    model_path: Path
    checkpoint_path: Path
    sha256: str
    steps: int
    best_loss: float
    stopped: bool


def checkpoint_for(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".ckpt")


def finetune_files(data: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   init: str | os.PathLike | None = None, scratch_preset: str | None = None,
                   steps: int = 500, crop: int = 128, batch_size: int = 8, lr: float | None = None,
                   seed: int = 0, domain: str = "auto", resume: str | os.PathLike | None = None,
                   device: str = "auto", progress: Callable[[StepReport], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> FinetuneOutcome:
    """Train on the frames of `data` (files/folders) and write the best model to `output`."""
    output = Path(output)
    if output.suffix != ".pt":
        raise InputError(f"{output}: the model file name must end in .pt")
    parent = None if scratch_preset else Path(init) if init else bundled_model_path()
    if parent is not None and output.exists() and output.resolve() == parent.resolve():
        raise InputError(f"{output} is the model being fine-tuned; write the result to a new file")
    frames = _read_frames(data, crop, domain)
    config = TrainConfig(steps=steps, batch_size=batch_size, crop=crop, seed=seed, domain=domain,
                         lr=lr if lr is not None else (1e-3 if parent is None else 2e-4))
    arch = Architecture.preset(scratch_preset) if scratch_preset else None
    ckpt = checkpoint_for(output)
    result = train(frames, config, arch=arch, init=parent, device=device, checkpoint=ckpt,
                   resume=resume, progress=progress, should_stop=should_stop)
    if result.steps_done == 0:
        raise InputError("training stopped before its first step; no model was written")
    summary = frames.summary()
    card = result.card(f"self-supervised fine-tuning on {summary['frames']} frames from "
                       f"{summary['arrays']} files")
    digest = export_model(result.net.denoiser(), card, output)
    return FinetuneOutcome(output, ckpt, digest, result.steps_done, result.best_loss, result.stopped)


def _read_frames(data: Sequence[str | os.PathLike], crop: int, domain: str) -> TrainingFrames:
    files = expand_inputs(data)
    arrays = [read_volume(src).frames for src, _ in files]
    return TrainingFrames(arrays, crop, domain, names=[str(rel) for _, rel in files])
