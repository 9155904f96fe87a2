"""Denoising: denoise() and prepare() (api), batches through the model (frame_pipeline, runner,
tiling), checks on options and outputs, and files in, files out (pipeline)."""
from .. import _reexport

# What `speckle2self.inference` held before the engine was grouped by job (api.py), importable as before.
__all__ = ("ProgressCallback", "default_batch_size", "denoise", "get_model", "prepare")
__getattr__ = _reexport(__name__, "api", __all__)
