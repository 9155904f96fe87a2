"""Live despeckling: LiveDenoiser (the newest frame wins) and the OpenIGTLink relay."""
from .. import _reexport

# What `speckle2self.live` held before the engine was grouped by job (denoiser.py), importable as before.
__all__ = ("LiveDenoiser", "LiveResult", "LiveStats", "STATS_WINDOW")
__getattr__ = _reexport(__name__, "denoiser", __all__)
