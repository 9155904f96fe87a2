"""Speckle2Self: self-supervised ultrasound speckle reduction (Li, Navab, Jiang, MedIA 2025).

The engine imports no Slicer, Qt or VTK. `import speckle2self` is light (no torch until used), so a
host application can load it before PyTorch is installed.

    import speckle2self
    clean = speckle2self.denoise(frames)                  # bundled model, auto device and domain
    result = speckle2self.train(frames_list, speckle2self.TrainConfig(steps=500))
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "denoise": ("inference", "denoise"),
    "load_model": ("model_file", "load_model"),
    "export_model": ("model_file", "export_model"),
    "bundled_model_path": ("model_file", "bundled_model_path"),
    "LoadedModel": ("model_file", "LoadedModel"),
    "train": ("training", "train"),
    "TrainConfig": ("training", "TrainConfig"),
    "StepReport": ("training", "StepReport"),
    "Architecture": ("network", "Architecture"),
    "read_volume": ("io", "read_volume"),
    "write_volume": ("io", "write_volume"),
    "Volume": ("io", "Volume"),
    "denoise_file": ("pipeline", "denoise_file"),
    "denoise_files": ("pipeline", "denoise_files"),
    "denoise_files_ray": ("cluster", "denoise_files_ray"),
}

from .errors import Cancelled, InputError, ModelFileError, OutputError, Speckle2SelfError  # noqa: E402  (no torch)

__all__ = sorted(_LAZY) + ["Cancelled", "InputError", "ModelFileError", "OutputError", "Speckle2SelfError",
                           "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'speckle2self' has no attribute {name!r}")
