"""Fine-tuning on a user's own files, in this process or in a worker process, with the loss record beside the model."""
from .. import _reexport

# What `speckle2self.finetune` held before the engine was grouped by job (files.py), importable as before.
__all__ = ("DEFAULTS", "FinetuneOutcome", "checkpoint_for", "finetune_files", "parent_loss_weights",
           "parent_network_input", "resumed_settings")
__getattr__ = _reexport(__name__, "files", __all__)
