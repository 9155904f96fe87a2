"""Choosing the compute device: CUDA, then Apple MPS, then CPU, unless the caller says otherwise."""
from __future__ import annotations

import torch

from ..errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "gpu", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A torch.device for 'auto', 'cpu', 'cuda' / 'gpu' (or 'cuda:N') and 'mps'; clear error if absent."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "gpu":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        raise InputError("a GPU was requested but none is usable by this PyTorch build; use device='cpu' or 'auto'")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but this PyTorch build sees no CUDA GPU "
                             "(torch.cuda.is_available() is False); use device='cpu' or 'auto'")
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise InputError("MPS was requested but is not available on this machine; use 'cpu' or 'auto'")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def device_description(device: torch.device) -> str:
    """Human-readable name, e.g. 'CUDA: NVIDIA H100 80GB HBM3' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX, Arm BF16).

    Only then is bfloat16 faster than float32; elsewhere it is emulated and slower.
    """
    cpu = getattr(torch, "cpu", None)
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(cpu, check, None)
        if probe is not None and probe():
            return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = {word for line in info if line.lower().startswith(("flags", "features")) for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
