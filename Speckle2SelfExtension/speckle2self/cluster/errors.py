"""The one error a cluster run raises before any file is denoised (no Ray, no cluster, no workers)."""
from __future__ import annotations

from ..errors import Speckle2SelfError

INSTALL_HINT = 'pip install "speckle2self[ray]"'


class ClusterError(Speckle2SelfError):
    """The run cannot start on the cluster as asked; nothing was processed (exit status 2)."""
