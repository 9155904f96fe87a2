"""No wrong result reported as success: negative data stay negative, a model's output is checked
batch by batch, and a model file carries the checksum of its own weights."""
import json
import os
import struct
import subprocess
import zipfile

import numpy as np
import pytest
import torch

from speckle2self.errors import ModelFileError
from speckle2self.inference.api import denoise
from speckle2self.io import Volume, read_volume, write_volume
from speckle2self.networks.model_file import (CARD_FILE, WEIGHTS_KEY, checksum_path, export_model, load_model, make_card,
                                              weights_sha256)
from speckle2self.networks.network import Speckle2SelfNet

from conftest import TINY

LOG_INPUT = {"domain": "log", "grain_px": [0.9, 0.9]}


def _negative_frame(seed=0):
    return -np.random.default_rng(seed).rayleigh(1.0, (64, 64)) * 1000 - 5000


@pytest.mark.parametrize("which", ["bundled", "envelope"])
def test_negative_input_comes_back_negative_inside_its_range(which, tiny_model):
    frame = _negative_frame()
    out = denoise(frame, model=None if which == "bundled" else tiny_model, device="cpu")
    assert out.dtype == np.float64 and out.shape == frame.shape
    assert frame.min() <= out.min() and out.max() <= frame.max()


def test_negative_float64_nrrd_through_the_command_line(tmp_path):
    src, dst = tmp_path / "neg.nrrd", tmp_path / "out.nrrd"
    write_volume(src, Volume(_negative_frame()[None]))
    res = subprocess.run(["speckle2self", "denoise", str(src), "-o", str(dst), "--device", "cpu"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stderr
    frames, original = read_volume(dst).frames, read_volume(src).frames
    assert frames.dtype == np.float64 and original.min() <= frames.min() and frames.max() <= original.max() < 0


class _NaNs(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class _OutOfRange(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1000.0 - 500.0


class _HalfSize(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::2, ::2]


def _carded_model(module: torch.nn.Module, path, network_input=LOG_INPUT):
    """A TorchScript file with a valid Speckle2Self card whose network computes `module`."""
    card = make_card(TINY, {"data": "none"}, network_input=network_input)
    torch.jit.save(torch.jit.script(module), str(path), _extra_files={CARD_FILE: json.dumps(card)})
    return path


@pytest.mark.parametrize("module, message", [
    (_NaNs(), "returned NaN or infinite values"),
    (_OutOfRange(), r"returned values in \[-[\d.]+, [\d.]+\], outside the \[0, 1\]"),
    (_HalfSize(), r"returned an output of shape \(1, 32, 32\) for a batch of shape \(1, 64, 64\)"),
])
def test_an_unusable_model_output_is_refused_naming_the_model(tmp_path, module, message):
    path = _carded_model(module, tmp_path / "faulty.pt")
    frame = np.random.default_rng(1).rayleigh(1.0, (64, 64)).astype(np.float32)
    with pytest.raises(ModelFileError, match=f"model {tmp_path / 'faulty.pt'} {message}"):
        denoise(frame, model=path, device="cpu", grain_px=(0.9, 0.9))


def test_the_command_line_writes_nothing_with_a_model_giving_nan(tmp_path):
    model = _carded_model(_NaNs(), tmp_path / "nan.pt")
    src = tmp_path / "in.nrrd"
    write_volume(src, Volume(np.random.default_rng(2).rayleigh(1.0, (1, 64, 64)).astype(np.float32)))
    res = subprocess.run(["speckle2self", "denoise", str(src), "-o", str(tmp_path / "out.nrrd"), "--model", str(model),
                          "--device", "cpu"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 2 and "nan.pt returned NaN or infinite values" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out.nrrd").exists()


def _flip_a_weight_byte(src, dst):
    """Copy `src` to `dst` with one bit changed inside the largest weight tensor's stored bytes."""
    with zipfile.ZipFile(src) as archive:
        tensor = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    assert tensor.compress_type == zipfile.ZIP_STORED
    raw = bytearray(src.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[tensor.header_offset + 26:tensor.header_offset + 30])
    raw[tensor.header_offset + 30 + name_len + extra_len + 5] ^= 0x01
    dst.write_bytes(bytes(raw))


def test_export_puts_the_weights_checksum_in_the_card(tmp_path):
    net = Speckle2SelfNet(TINY).eval()
    export_model(net.denoiser(), make_card(TINY, {"steps": 0}), tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.card[WEIGHTS_KEY] == weights_sha256(net.denoiser()) == weights_sha256(loaded.module)


def test_a_flipped_weight_byte_is_refused_without_a_checksum_file(tiny_model, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    _flip_a_weight_byte(tiny_model, corrupt)
    assert not checksum_path(corrupt).exists()
    with pytest.raises(ModelFileError, match="corrupt.pt: its weights do not match the checksum in its model card"):
        load_model(corrupt)


def test_an_early_model_made_for_the_envelope_mapping_is_refused_with_what_to_use_instead(tmp_path):
    card = make_card(TINY, {"steps": 0})
    card["input"] = {"domain": "envelope", "normalisation": "per-frame minimum..99.9th percentile to [0, 1], clipped"}
    early = tmp_path / "early.pt"
    torch.jit.save(torch.jit.script(Speckle2SelfNet(TINY).denoiser().eval()), str(early),
                   _extra_files={CARD_FILE: json.dumps(card)})
    with pytest.raises(ModelFileError, match=r"early.pt is an early Speckle2Self model \(input domain 'envelope'\).*"
                                             r"Use the bundled model, or fine-tune"):
        load_model(early)


def test_an_older_file_without_the_embedded_checksum_still_loads(tmp_path):
    module = torch.jit.script(Speckle2SelfNet(TINY).denoiser().eval())
    older = tmp_path / "older.pt"
    torch.jit.save(module, str(older), _extra_files={CARD_FILE: json.dumps(make_card(TINY, {"steps": 0}))})
    loaded = load_model(older)
    assert WEIGHTS_KEY not in loaded.card and loaded.path == older


def _speckle_0_255():
    from speckle2self.evaluation.phantoms import make_phantom
    envelope = make_phantom((96, 96), seed=3).envelope.astype(np.float64)
    return np.rint(envelope / envelope.max() * 255)


def _agreement(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("dtype, offset", [(np.float64, 1e9), (np.float32, 1e5)])
def test_a_large_offset_is_denoised_not_flattened(dtype, offset):
    x = _speckle_0_255()
    out = denoise((offset + x).astype(dtype), device="cpu")
    assert out.dtype == dtype and len(np.unique(out)) > 1000
    assert _agreement(out.astype(np.float64) - offset, denoise(x, device="cpu")) > 0.95


def test_subnormal_values_are_denoised_not_flattened():
    x = _speckle_0_255()
    out = denoise(x * 5e-324, device="cpu")  # 0..255 times the smallest subnormal float64
    # at most 256 values are representable here; the denoised frame spans about 100 of them
    assert len(np.unique(out)) > 50 and out.min() >= 0 and out.max() <= 255 * 5e-324
    assert _agreement(out / 5e-324, denoise(x, device="cpu")) > 0.95


def test_a_range_of_two_parts_in_ten_trillion_is_not_binarised():
    x = _speckle_0_255()
    out = denoise(1.0 + x / 255 * 2e-13, device="cpu")
    assert len(np.unique(out)) > 100 and _agreement(out, x) > 0.3


@pytest.mark.parametrize("db", [1e-9, 5, 121, 1e6])
def test_a_dynamic_range_outside_10_to_120_db_is_refused_without_a_warning(db):
    import warnings
    from speckle2self.errors import InputError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=f"dynamic_range_db must be from 10 to 120 dB .* got {db!r}"):
            denoise(_speckle_0_255(), device="cpu", dynamic_range_db=db)
