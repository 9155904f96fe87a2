"""Self-supervised training from noisy frames: the loop, its data, augmentation, multi-scale views,
losses, re-speckling noise, data-parallel runs."""
from .. import _reexport

# What `speckle2self.training` held before the engine was grouped by job (loop.py), importable as before.
__all__ = ("CHECKPOINT_FORMAT", "StepReport", "TrainConfig", "TrainResult", "check_crop",
           "check_resume_steps", "checkpoint_progress", "respeckle_noise", "save_checkpoint", "train",
           "validation_loss")
__getattr__ = _reexport(__name__, "loop", __all__)
