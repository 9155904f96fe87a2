"""The command line as a user runs it: the installed `speckle2self` command, real files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from interrupts import default_sigint

from speckle2self.io import Volume, read_volume, write_volume
from speckle2self.networks.model_file import load_model
from speckle2self.evaluation.phantoms import make_cine, make_phantom


def run(*args, cwd=None):
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _to_uint8(envelope):
    return np.round(envelope / envelope.max() * 255).astype(np.uint8)


@pytest.fixture()
def study(tmp_path):
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    write_volume(folder / "a.nrrd", Volume(make_cine(3, (64, 64), seed=1).envelope.astype(np.float32),
                                           spacing=(0.1, 0.2, 1.0), origin=(1.0, 2.0, 3.0)))
    write_volume(folder / "sub" / "b.png", Volume(_to_uint8(make_cine(1, (64, 80), seed=2).envelope),
                                                   single_frame=True))
    return folder


def test_one_file_to_one_file_keeps_geometry(tiny_model, study, tmp_path):
    out = tmp_path / "result.nii.gz"
    res = run("denoise", study / "a.nrrd", "-o", out, "--model", tiny_model, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    vol, src = read_volume(out), read_volume(study / "a.nrrd")
    assert vol.frames.shape == src.frames.shape and vol.frames.dtype == np.float32
    assert np.allclose(vol.spacing, src.spacing) and np.allclose(vol.origin, src.origin)
    assert "1 of 1 files denoised" in res.stdout


def test_folder_into_folder_keeps_names_and_sub_folders(tiny_model, study, tmp_path):
    res = run("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--batch-size", "2")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "a.nrrd").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()


def test_a_failing_file_is_reported_and_the_rest_continue(tiny_model, study, tmp_path):
    bad = study / "broken.mha"
    bad.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 9 9\n")
    res = run("denoise", bad, study / "a.nrrd", "-o", tmp_path / "out", "--model", tiny_model)
    assert res.returncode == 1
    assert "FAILED" in res.stderr and "broken.mha" in res.stderr
    assert (tmp_path / "out" / "a.nrrd").is_file() and not (tmp_path / "out" / "broken.mha").exists()
    assert "1 of 2 files denoised" in res.stdout


def test_output_equal_to_input_is_refused_and_input_kept(tiny_model, study):
    before = (study / "a.nrrd").read_bytes()
    res = run("denoise", study / "a.nrrd", "-o", study / "a.nrrd", "--model", tiny_model)
    assert res.returncode == 2 and "refusing to overwrite the input" in res.stderr
    assert (study / "a.nrrd").read_bytes() == before


def test_corrupt_model_is_refused_before_any_work(study, tmp_path):
    model = tmp_path / "bad.pt"
    model.write_bytes(b"junk")
    res = run("denoise", study / "a.nrrd", "-o", tmp_path / "o.nrrd", "--model", model)
    assert res.returncode == 2 and "is not a Speckle2Self model" in res.stderr
    assert not (tmp_path / "o.nrrd").exists()


def test_info_prints_the_card_and_checksum_status(tiny_model):
    res = run("info", tiny_model)
    assert res.returncode == 0, res.stderr
    card = json.loads(res.stdout[:res.stdout.rindex("}") + 1])
    assert card["format"] == "speckle2self-model"
    assert "checksum OK" in res.stdout and load_model(tiny_model).sha256 in res.stdout


def test_finetune_writes_a_loadable_model_with_its_parent(tiny_model, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for s in range(2):
        write_volume(data / f"f{s}.nrrd", Volume(make_phantom((80, 80), seed=s).envelope.astype(np.float32)[None]))
    out = tmp_path / "mine.pt"
    res = run("finetune", data, "-o", out, "--from", tiny_model, "--steps", "3", "--crop", "48",
              "--batch-size", "2", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    loaded = load_model(out)
    assert loaded.card["training"]["parent_sha256"] == load_model(tiny_model).sha256
    assert loaded.card["training"]["steps"] == 3
    assert (tmp_path / "mine.pt.ckpt").is_file()


def test_finetune_refuses_crops_larger_than_the_frames(tiny_model, tmp_path):
    write_volume(tmp_path / "small.nrrd", Volume(np.random.rand(1, 40, 40).astype(np.float32)))
    res = run("finetune", tmp_path / "small.nrrd", "-o", tmp_path / "m.pt", "--from", tiny_model, "--crop", "64")
    assert res.returncode == 2 and "smaller than the 64-pixel training crop" in res.stderr
    assert not (tmp_path / "m.pt").exists()


def test_demo_writes_the_picture_and_the_result(tmp_path):
    res = run("demo", "-o", tmp_path / "demo", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    png = read_volume(tmp_path / "demo" / "before_after.png")
    assert png.data.shape == (256, 2 * 256 + 8) and png.frames.dtype == np.uint8
    assert "frames/s" in res.stdout and "SSIM" in res.stdout


def test_python_dash_m_works_too():
    res = subprocess.run([sys.executable, "-m", "speckle2self", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("speckle2self ")


def test_ctrl_c_during_finetune_saves_the_best_model_so_far(tiny_model, tmp_path):
    import signal
    import time
    data = tmp_path / "data"
    data.mkdir()
    write_volume(data / "f.nrrd", Volume(make_cine(4, (80, 80), seed=3).envelope.astype(np.float32)))
    out = tmp_path / "interrupted.pt"
    proc = subprocess.Popen(["speckle2self", "finetune", str(data), "-o", str(out), "--from", str(tiny_model),
                             "--steps", "100000", "--crop", "48", "--batch-size", "2", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, preexec_fn=default_sigint)
    ckpt = tmp_path / "interrupted.pt.ckpt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:  # first checkpoint: training is under way
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert "stopped by request" in stdout and "kept the best weights" in stdout
    card = load_model(out).card["training"]
    assert card["stopped_early"] is True and 100 <= card["steps"] < 100000


def test_grain_option_sets_the_resampling(tiny_model, study, tmp_path):
    measured = run("denoise", study / "sub" / "b.png", "-o", tmp_path / "m.png", "--model", tiny_model,
                   "--device", "cpu")
    coarse = run("denoise", study / "sub" / "b.png", "-o", tmp_path / "c.png", "--model", tiny_model,
                 "--device", "cpu", "--grain", "3.6,3.6")
    assert measured.returncode == 0 and coarse.returncode == 0, coarse.stderr
    assert not np.array_equal(read_volume(tmp_path / "m.png").frames, read_volume(tmp_path / "c.png").frames)


def test_a_bad_grain_is_a_usage_error(study, tmp_path):
    res = run("denoise", study / "a.nrrd", "-o", tmp_path / "x.nrrd", "--grain", "wide")
    assert res.returncode == 2 and "pixel widths" in res.stderr
