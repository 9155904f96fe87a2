"""Input domains: envelope (linear amplitude) and B-mode (log-compressed grey levels).

8-bit data is what clinical scanners export after log compression, so it is taken as B-mode unless
the caller says otherwise; anything else is taken as envelope. How each domain reaches the network
and comes back is speckle2self.mapping.log_mapping's job.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

DOMAINS = ("envelope", "bmode")
DEFAULT_DYNAMIC_RANGE_DB = 60.0


def check_domain(domain: str) -> str:
    if domain not in ("auto",) + DOMAINS:
        raise InputError(f"domain must be 'auto', 'envelope' or 'bmode', not {domain!r}")
    return domain


def detect_domain(frames: np.ndarray) -> str:
    """8-bit data is what clinical scanners export after log compression; anything else is envelope."""
    return "bmode" if frames.dtype in (np.uint8, np.int8) else "envelope"


def resolve_domain(domain: str, frames: np.ndarray) -> str:
    return detect_domain(frames) if check_domain(domain) == "auto" else domain


def grey_range(frames: np.ndarray) -> tuple[float, float]:
    """The value range that spans black..white for B-mode input."""
    if frames.dtype == np.uint8:
        return 0.0, 255.0
    if frames.dtype == np.int8:
        return -128.0, 127.0
    return float(np.min(frames)), float(np.max(frames))
