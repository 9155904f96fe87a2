"""Model files: TorchScript export, embedded card, checksum, and refusal of anything else."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from speckle2self.errors import ModelFileError
from speckle2self.networks.model_file import CARD_FILE, checksum_path, export_model, load_model, make_card
from speckle2self.networks.network import Speckle2SelfNet

from conftest import TINY


def test_export_loads_with_torch_jit_alone_in_a_fresh_process(tmp_path):
    net = Speckle2SelfNet(TINY).eval()
    path = tmp_path / "m.pt"
    export_model(net.denoiser(), make_card(TINY, {"steps": 0}), path)
    x = torch.rand(2, 1, 40, 56)
    np.save(tmp_path / "x.npy", x.numpy())
    script = ("import sys, numpy as np, torch; m = torch.jit.load(sys.argv[1]); "
              "x = torch.from_numpy(np.load(sys.argv[2])); np.save(sys.argv[3], m(x).detach().numpy())")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   check=True, cwd=tmp_path)
    with torch.no_grad():
        eager = net.denoiser()(x).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - eager).max() < 1e-5


def test_card_round_trips_with_checksum(tiny_model):
    loaded = load_model(tiny_model)
    card = loaded.card
    assert card["format"] == "speckle2self-model" and card["format_version"] == 1
    assert tuple(card["architecture"]["widths"]) == TINY.widths
    assert tuple(card["architecture"]["scales"]) == TINY.scales
    assert card["input"]["domain"] == "log" and card["input"]["grain_px"] == [0.9, 0.9]
    assert "log-compressed grey levels" in card["input"]["normalisation"]
    assert card["training"]["steps"] == 6 and card["training"]["data"] == "test phantoms"
    assert card["created"].startswith("20")
    assert checksum_path(tiny_model).read_text().split() == [loaded.sha256, tiny_model.name]


def test_a_file_that_is_not_torchscript_is_refused(tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"\x80\x04 definitely not a model")
    with pytest.raises(ModelFileError, match="is not a Speckle2Self model: it is not a readable TorchScript"):
        load_model(bogus)


def test_torchscript_without_our_card_is_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 1, 3)), str(other))
    with pytest.raises(ModelFileError, match="a TorchScript file without a model card"):
        load_model(other)


def test_foreign_card_is_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 1, 3)), str(other),
                   _extra_files={CARD_FILE: json.dumps({"format": "something-else"})})
    with pytest.raises(ModelFileError, match="not a Speckle2Self model: its model card is missing or not ours"):
        load_model(other)


def test_modified_file_fails_its_checksum(tiny_model, tmp_path):
    copy = tmp_path / "copy.pt"
    data = bytearray(tiny_model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    checksum_path(copy).write_text(checksum_path(tiny_model).read_text())
    with pytest.raises(ModelFileError, match="does not match its checksum file .*refusing to use it"):
        load_model(copy)


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="model file .*nope.pt does not exist"):
        load_model(tmp_path / "nope.pt")


def test_export_replaces_an_existing_file_only_when_complete(tmp_path, tiny_model):
    target = tmp_path / "m.pt"
    target.write_bytes(b"previous model")
    net = Speckle2SelfNet(TINY)
    with pytest.raises(ModelFileError):
        export_model(net.denoiser(), {"format": "wrong"}, target)
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_bundled_model_is_present_and_verified():
    loaded = load_model(None)
    assert loaded.path.name == "speckle2self_default.pt"
    assert checksum_path(loaded.path).exists()
    assert loaded.card["training"]["clean_references_used"] is False
