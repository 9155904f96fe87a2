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
    "denoise": ("inference.api", "denoise"),
    "load_model": ("networks.model_file", "load_model"),
    "export_model": ("networks.model_file", "export_model"),
    "bundled_model_path": ("networks.model_file", "bundled_model_path"),
    "LoadedModel": ("networks.model_file", "LoadedModel"),
    "train": ("training.loop", "train"),
    "TrainConfig": ("training.loop", "TrainConfig"),
    "StepReport": ("training.loop", "StepReport"),
    "Architecture": ("networks.network", "Architecture"),
    "read_volume": ("io", "read_volume"),
    "write_volume": ("io", "write_volume"),
    "Volume": ("io", "Volume"),
    "denoise_file": ("inference.pipeline", "denoise_file"),
    "denoise_files": ("inference.pipeline", "denoise_files"),
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


def _reexport(package: str, module: str, names: tuple[str, ...]):
    """A subpackage's __getattr__: each of `names` imported from its submodule `module` on first use, so
    `speckle2self.live.LiveDenoiser` and the like still import (and nothing imports torch before it is used)."""
    def lazy_attribute(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(importlib.import_module(package), name, value)
        return value
    return lazy_attribute
