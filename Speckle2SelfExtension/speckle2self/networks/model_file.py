"""Model files: TorchScript of the inference path, a JSON model card inside, a SHA-256 beside.

The `.pt` file loads with `torch.jit.load` alone. The card travels inside the archive
(`_extra_files`), so it cannot be separated from the weights it describes; the checksum file
(`MODEL.pt.sha256`, `sha256sum` format) lets anyone verify the file before use. The card also
holds the SHA-256 of the weights themselves (`weights_sha256`, see `weights_sha256`), so a model
file that travels without its checksum file is still verified when loaded. Files written before
that key existed are verified by their checksum file alone.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_path, write_text_atomic
from ..errors import ModelFileError, OutputError
from ..mapping.log_mapping import DEFAULT_GRAIN_PX, LOG_DOMAIN
from .network import Architecture, Denoiser
from ..resources import resource_dirs

CARD_FILE = "speckle2self/card.json"
FORMAT = "speckle2self-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "speckle2self_default.pt"
WEIGHTS_KEY = "weights_sha256"


@dataclass(frozen=True)
class LoadedModel:
    """A verified model: the TorchScript module (on CPU), its card, checksum and origin."""

    module: torch.jit.ScriptModule
    card: dict
    sha256: str
    path: Path

    @property
    def architecture(self) -> Architecture:
        return Architecture.from_dict(self.card["architecture"])


@contextmanager
def _torchscript_quietly():
    """TorchScript is the shipped format (loadable with torch.jit.load alone); PyTorch ≥ 2.13 warns
    that it is deprecated in favour of torch.export, which users need not see on every load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def clone_module(module: torch.jit.ScriptModule, device: torch.device | str,
                 dtype: torch.dtype = torch.float32) -> torch.jit.ScriptModule:
    """An independent copy of a TorchScript module on `device` in `dtype` (the original is untouched)."""
    buffer = io.BytesIO()
    with _torchscript_quietly():
        torch.jit.save(module, buffer)
        buffer.seek(0)
        copy = torch.jit.load(buffer, map_location=device)
    return copy.to(dtype).eval()


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".sha256")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _engine_version() -> str:
    from .. import __version__
    return __version__


def make_card(arch: Architecture, training: dict, network_input: dict | None = None) -> dict:
    """The model card: what the model is, what it expects, and how it was made.

    `network_input` (from TrainConfig.network_input) describes the model's input:
    {"domain": "log", "grain_px": [axial, lateral]} (see speckle2self.mapping.log_mapping);
    without it, the default grain.
    """
    network_input = network_input or {}
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": arch.to_dict(),
        "input": {
            "domain": LOG_DOMAIN,
            "grain_px": [float(v) for v in network_input.get("grain_px", DEFAULT_GRAIN_PX)],
            "normalisation": "log-compressed grey levels in [0, 1] (B-mode as it is; envelope compressed over "
                             "60 dB, 0 dB at 6 dB above the 99th percentile), resampled to the model's speckle grain",
            "layout": f"(N, 1, H, W) float32; any H, W (padded internally to a multiple of {arch.multiple})",
            "output": "(N, 1, H, W) in [0, 1]",
        },
        "training": training,
        "created": now_iso(),
        "software": {"speckle2self": _engine_version(), "torch": torch.__version__},
    }
    if "local_mean_radius" in network_input:
        card["input"]["local_mean_radius"] = int(network_input["local_mean_radius"])
    return card


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's weights: every parameter and buffer in name order, each as its name,
    dtype, shape and raw bytes. The same for the eager network, its TorchScript and a loaded file."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_model(denoiser: Denoiser, card: dict, path: str | os.PathLike) -> str:
    """Script `denoiser`, embed `card` with the weights' SHA-256, write `path` and `path.sha256`
    atomically; return the file's SHA-256."""
    validate_card(card, source=str(path))
    path = Path(path)
    try:
        with atomic_path(path) as tmp, _torchscript_quietly():
            module = torch.jit.script(_cpu_copy(denoiser).eval())
            extra = {CARD_FILE: json.dumps({**card, WEIGHTS_KEY: weights_sha256(module)}, indent=2, sort_keys=True)}
            torch.jit.save(module, str(tmp), _extra_files=extra)
            digest = sha256_of(tmp)
        write_text_atomic(checksum_path(path), f"{digest}  {path.name}\n")
    except OutputError:
        raise
    except (OSError, RuntimeError) as exc:
        raise ModelFileError(f"could not write the model {path} ({exc}); any previous file there is unchanged") from exc
    return digest


def _cpu_copy(denoiser: Denoiser) -> Denoiser:
    import copy
    clone = copy.deepcopy(denoiser)
    return clone.to(device="cpu", dtype=torch.float32)


def validate_card(card: object, source: str) -> dict:
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFileError(f"{source} is not a Speckle2Self model: its model card is missing or not ours")
    version = card.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{source} uses model format version {version!r}; this Speckle2Self reads "
                             f"up to {FORMAT_VERSION}. Update Speckle2Self")
    try:
        Architecture.from_dict(card["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source} has an invalid architecture in its model card: {exc}") from exc
    card_input = card.get("input")
    domain = card_input.get("domain") if isinstance(card_input, dict) else None
    if domain != LOG_DOMAIN:
        raise ModelFileError(f"{source} is an early Speckle2Self model (input domain {domain!r}): it was made for "
                             "the linear-envelope mapping this version no longer has, and would not be run as it was "
                             "trained. Use the bundled model, or fine-tune it on your data (speckle2self finetune)")
    return card


def read_checksum_file(path: Path) -> str | None:
    side = checksum_path(path)
    if not side.exists():
        return None
    text = side.read_text(encoding="utf-8", errors="replace").split()
    return text[0].lower() if text else ""


def verify_checksum(path: Path) -> tuple[str, bool]:
    """(actual SHA-256, whether a checksum file vouches for it); raises if the file disagrees with it."""
    actual = sha256_of(path)
    expected = read_checksum_file(path)
    if expected is not None and expected != actual:
        raise ModelFileError(f"{path} does not match its checksum file {checksum_path(path).name} "
                             f"(expected {expected[:12]}…, file is {actual[:12]}…): the file is corrupt "
                             "or was modified; refusing to use it")
    return actual, expected is not None


def load_model(path: str | os.PathLike | None = None) -> LoadedModel:
    """Load and verify a Speckle2Self model file; None means the bundled default model."""
    path = Path(path) if path is not None else bundled_model_path()
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist" if not path.exists()
                             else f"model path {path} is not a file")
    digest, _ = verify_checksum(path)
    extra = {CARD_FILE: ""}
    try:
        with _torchscript_quietly():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a Speckle2Self model: it is not a readable TorchScript "
                             f"archive ({type(exc).__name__})") from exc
    raw = extra[CARD_FILE]
    if not raw:
        raise ModelFileError(f"{path} is not a Speckle2Self model: a TorchScript file without a model card")
    try:
        card = json.loads(raw)
    except ValueError as exc:
        raise ModelFileError(f"{path} has a model card that is not valid JSON: {exc}") from exc
    card = validate_card(card, str(path))
    verify_weights(module, card, path)
    return LoadedModel(module=module.eval(), card=card, sha256=digest, path=path)


def verify_weights(module: torch.nn.Module, card: dict, path: Path) -> bool:
    """Check the weights against the SHA-256 in the card; False for a file without one (older files)."""
    expected = card.get(WEIGHTS_KEY)
    if expected is None:
        return False
    if not isinstance(expected, str) or weights_sha256(module) != expected.lower():
        raise ModelFileError(f"{path}: its weights do not match the checksum in its model card: the file is "
                             "corrupt or was modified; refusing to use it")
    return True


def model_search_dirs() -> list[Path]:
    """Where the bundled model may live: env override, source checkout, Slicer install, wheel."""
    env = os.environ.get("SPECKLE2SELF_MODEL_DIR")
    return ([Path(env)] if env else []) + resource_dirs("Models")


def bundled_model_path() -> Path:
    for folder in model_search_dirs():
        candidate = folder / DEFAULT_MODEL_NAME
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"the bundled model {DEFAULT_MODEL_NAME} was not found in "
                         + ", ".join(str(d) for d in model_search_dirs())
                         + "; reinstall Speckle2Self or pass model=PATH")
