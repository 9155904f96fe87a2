"""Fine-tuning on a user's own files: read the study, train, export a verified model file.

Training sees only the noisy frames of the given files; the card records the parent model's
checksum and a summary of the data (counts and frame sizes, never names or patient fields).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..io import FrameCache, LazyVolume
from .loss_log import plot_png, write_csv
from ..training.losses import LossWeights
from ..networks.model_file import LoadedModel, bundled_model_path, export_model, load_model
from ..networks.network import Architecture
from ..inference.pipeline import expand_inputs
from ..mapping.log_mapping import DEFAULT_GRAIN_PX, LOG_DOMAIN
from ..training.loop import StepReport, TrainConfig, check_crop, check_resume_steps, checkpoint_progress, train
from ..training.training_data import TrainingFrames


@dataclass(frozen=True)
class FinetuneOutcome:
    model_path: Path
    checkpoint_path: Path
    sha256: str
    steps: int
    best_loss: float
    stopped: bool
    stop_reason: str = "finished"
    best_val_loss: float | None = None
    log_csv: Path | None = None
    log_png: Path | None = None


def checkpoint_for(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".ckpt")


def finetune_files(data: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                   init: str | os.PathLike | None = None, scratch_preset: str | None = None,
                   steps: int | None = None, crop: int | None = None, batch_size: int | None = None,
                   lr: float | None = None, seed: int | None = None, domain: str = "auto",
                   resume: str | os.PathLike | None = None,
                   device: str = "auto", val_fraction: float = 0.1, val_every: int = 50, patience: int = 5,
                   checkpoint_every: int = 100, cache_bytes: int = 1 << 30,
                   progress: Callable[[StepReport], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> FinetuneOutcome:
    """Fine-tune on the frames of `data` (files/folders) and write the best model to `output`.

    Frames are read lazily (at most `cache_bytes` of decoded files in memory); `val_fraction` of
    them are held out for a validation loss that picks the best weights and stops early after
    `patience` checks without improvement. Writes `output`, `output.sha256`, `output.ckpt`
    (resumable), `output.log.csv` and `output.loss.png`. Under torchrun only rank 0 writes.
    Options left as None take their defaults (DEFAULTS), or when resuming the checkpoint's settings;
    a resumed run refuses a crop, batch size, learning rate, seed or domain that differs from its
    checkpoint's, and `steps` sets its new total (more than the steps already done).
    """
    output = Path(output)
    if output.suffix != ".pt":
        raise InputError(f"{output}: the model file name must end in .pt")
    parent = None if scratch_preset else Path(init) if init else bundled_model_path()
    if parent is not None and output.exists() and output.resolve() == parent.resolve():
        raise InputError(f"{output} is the model being fine-tuned; write the result to a new file")
    given = {"steps": steps, "crop": crop, "batch_size": batch_size, "lr": lr, "seed": seed, "domain": domain}
    settings = resumed_settings(resume, given) if resume is not None else {**DEFAULTS, **_set(given)}
    parent = load_model(parent) if parent is not None else None
    network_input = parent_network_input(parent)
    config = TrainConfig(steps=settings["steps"], batch_size=settings["batch_size"], crop=settings["crop"],
                         seed=settings["seed"], domain=settings["domain"],
                         weights=parent_loss_weights(parent), network_input=network_input,
                         lr=settings["lr"] if settings["lr"] is not None else (1e-3 if parent is None else 2e-4),
                         lr_schedule="cosine", val_every=val_every, patience=patience,
                         checkpoint_every=checkpoint_every)
    arch = Architecture.preset(scratch_preset) if scratch_preset else None
    check_crop(config.crop, arch if arch is not None else parent.architecture)
    frames = _study_frames(data, settings["crop"], settings["domain"], cache_bytes, network_input)
    train_frames, val_frames = frames.split(val_fraction, settings["seed"])
    ckpt = checkpoint_for(output)
    result = train(train_frames, config, arch=arch, init=parent, device=device, checkpoint=ckpt, resume=resume,
                   progress=progress, should_stop=should_stop, validation=val_frames)
    if result.steps_done == 0:
        raise InputError("training stopped before its first step; no model was written")
    return _write_outputs(result, frames, output, ckpt)


DEFAULTS = {"steps": 500, "crop": 128, "batch_size": 8, "lr": None, "seed": 0, "domain": "auto"}
"""Settings of a new fine-tuning run (lr None: 1e-3 from scratch, 2e-4 from a parent model)."""


def _set(given: dict) -> dict:
    return {k: v for k, v in given.items() if v is not None and not (k == "domain" and v == "auto")}


def resumed_settings(resume: str | os.PathLike, given: dict) -> dict:
    """A resumed run's settings: its checkpoint's, with `steps` as the new total if given.

    Any other setting given that differs from the checkpoint's is an InputError: training would
    otherwise go on with the checkpoint's value and silently ignore the one asked for.
    """
    saved, done = checkpoint_progress(resume)
    settings = {name: getattr(saved, name) for name in DEFAULTS}
    for name, value in _set(given).items():
        if name != "steps" and value != settings[name]:
            raise InputError(f"{name.replace('_', ' ')} {value} was asked for, but the checkpoint {resume} trains "
                             f"with {settings[name]}: a resumed run keeps its checkpoint's settings; leave the "
                             "option out, or start a new run")
    settings["steps"] = given["steps"] if given["steps"] is not None else saved.steps
    check_resume_steps(settings["steps"], done)
    return settings


def parent_loss_weights(parent: LoadedModel | None) -> LossWeights:
    """Fine-tuning keeps the loss weights its parent model was trained with (they set how strongly
    it smooths); a distilled student's are its teacher's, whose output it learned. A model from
    scratch, or a parent whose card has none, gets the defaults."""
    training = parent.card.get("training", {}) if parent is not None else {}
    saved = training.get("config", {}).get("weights")
    if saved is None:
        saved = training.get("distilled_from", {}).get("training", {}).get("config", {}).get("weights")
    return LossWeights(**saved) if isinstance(saved, dict) else LossWeights()


def parent_network_input(parent: LoadedModel | None) -> dict:
    """The parent's input description (its grain), which the fine-tuned model keeps; a new model
    from scratch gets the default grain."""
    card_input = parent.card["input"] if parent is not None else {}
    return {"domain": LOG_DOMAIN, "grain_px": list(card_input.get("grain_px", DEFAULT_GRAIN_PX))}


def _write_outputs(result, frames: TrainingFrames, output: Path, ckpt: Path) -> FinetuneOutcome:
    summary = frames.summary()
    card = result.card(f"self-supervised fine-tuning on {summary['frames']} frames from "
                       f"{summary['arrays']} files")
    if not _is_main_process():
        return FinetuneOutcome(output, ckpt, "", result.steps_done, result.best_loss, result.stopped,
                               result.stop_reason, result.best_val_loss)
    digest = export_model(result.net.denoiser(), card, output)
    csv_path = write_csv(result.history, output.with_name(output.name + ".log.csv"))
    png_path = plot_png(result.history, output.with_name(output.name + ".loss.png"), title=output.name)
    return FinetuneOutcome(output, ckpt, digest, result.steps_done, result.best_loss, result.stopped,
                           result.stop_reason, result.best_val_loss, csv_path, png_path)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _study_frames(data: Sequence[str | os.PathLike], crop: int, domain: str, cache_bytes: int,
                  network_input: dict) -> TrainingFrames:
    files = expand_inputs(data)
    cache = FrameCache(cache_bytes)
    return TrainingFrames([LazyVolume(src, cache) for src, _ in files], crop, domain,
                          names=[str(rel) for _, rel in files], network_input=network_input)
