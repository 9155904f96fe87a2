"""Denoising an archive on a Ray cluster: the same files, bytes, errors and reports as `denoise_files`.

Ray is optional (`pip install "speckle2self[ray]"`) and imported only when a run starts, so
`import speckle2self.cluster` works without it.

    reports = speckle2self.denoise_files_ray(["archive/"], "denoised/", address="auto")
"""
from __future__ import annotations

from .driver import denoise_files_ray
from .errors import ClusterError

__all__ = ["ClusterError", "denoise_files_ray"]
