"""Options are never silently reinterpreted: a bad one is an InputError (exit 2) or a printed decision."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import torch

from speckle2self.cli import _abort_message, build_parser
from speckle2self.errors import InputError
from speckle2self.finetune.files import finetune_files
from speckle2self.inference.api import denoise
from speckle2self.io import Volume, read_volume, write_volume
from speckle2self.evaluation.phantoms import make_cine, make_phantom
from speckle2self.training.loop import TrainConfig

FAST = dict(crop=48, batch_size=2, device="cpu")


def run(*args):
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture()
def frame_file(tmp_path):
    path = tmp_path / "a.nrrd"
    write_volume(path, Volume(make_cine(1, (64, 64), seed=1).envelope.astype(np.float32)))
    return path


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"batch_size": 2.5}, "batch_size must be at least 1"),
    ({"tile_size": -5}, "tile_size must be at least 128 pixels"),
    ({"tile_size": 0}, "tile_size must be at least 128 pixels"),
    ({"tile_size": 8}, "tile_size must be at least 128 pixels"),
    ({"model": 42}, "model must be a model file path, a loaded model or None .* not int 42"),
    ({"precision": "fp8"}, "precision must be one of auto, float32, float16, bfloat16, not 'fp8'"),
    ({"dynamic_range_db": float("inf")}, "dynamic_range_db must be a positive number"),
    ({"grain_px": (0.0, 1.0)}, "grain_px must be two positive pixel widths"),
])
def test_a_bad_option_is_an_input_error(tiny_model, phantom, kwargs, message):
    with pytest.raises(InputError, match=message):
        denoise(phantom.envelope, **{"model": tiny_model, "device": "cpu", **kwargs})


def test_a_colour_image_array_is_named_as_colour(tiny_model):
    rgb = np.random.default_rng(0).random((64, 64, 3))
    with pytest.raises(InputError, match=r"shape \(64, 64, 3\) is one colour image .* convert it to grey"):
        denoise(rgb, model=tiny_model, device="cpu")


def test_a_frame_run_in_tiles_reports_progress_per_tile(tiny_model):
    frame = make_phantom((160, 160), seed=5).envelope
    seen = []
    denoise(frame, model=tiny_model, device="cpu", tile_size=128, grain_px=(0.9, 0.9),  # native size: 4 tiles
            progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0.25, 1), (0.5, 1), (0.75, 1), (1.0, 1), (1, 1)]


def test_several_inputs_and_a_file_name_as_output_is_refused(tiny_model, frame_file, tmp_path):
    other = tmp_path / "b.nrrd"
    shutil.copy(frame_file, other)
    res = run("denoise", frame_file, other, "-o", tmp_path / "out.nrrd", "--model", tiny_model)
    assert res.returncode == 2 and "out.nrrd names a file, but several inputs" in res.stderr
    assert not (tmp_path / "out.nrrd").exists()


def test_an_unknown_output_extension_is_refused(tiny_model, frame_file, tmp_path):
    res = run("denoise", frame_file, "-o", tmp_path / "result.xyz", "--model", tiny_model)
    assert res.returncode == 2 and "unknown output file type '.xyz'" in res.stderr
    assert not (tmp_path / "result.xyz").exists()


def test_batch_size_zero_is_a_usage_error(frame_file, tmp_path):
    res = run("denoise", frame_file, "-o", tmp_path / "o.nrrd", "--batch-size", "0")
    assert res.returncode == 2 and "--batch-size: expected a whole number of at least 1" in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_absent_device_means_the_command_cannot_run(tiny_model, frame_file, tmp_path):
    res = run("denoise", frame_file, "-o", tmp_path / "o.nrrd", "--model", tiny_model, "--device", "cuda")
    assert res.returncode == 2 and "CUDA was requested" in res.stderr and "FAILED" not in res.stderr


def test_strength_zero_gives_the_input_back(tiny_model, frame_file, tmp_path):
    res = run("denoise", frame_file, "-o", tmp_path / "o.nrrd", "--model", tiny_model, "--device", "cpu",
              "--strength", "0", "--precision", "float32", "--tile-size", "128")
    assert res.returncode == 0, res.stderr
    assert np.array_equal(read_volume(tmp_path / "o.nrrd").frames, read_volume(frame_file).frames)


def test_precision_tile_size_and_strength_reach_the_command():
    args = build_parser().parse_args(["denoise", "a.nrrd", "-o", "b.nrrd", "--precision", "bfloat16",
                                      "--tile-size", "512", "--strength", "0.5"])
    assert (args.precision, args.tile_size, args.strength) == ("bfloat16", 512, 0.5)


def test_every_command_line_option_has_a_help_text():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, sub in commands.items()
               for a in sub._actions if not a.help]
    assert missing == []


def test_an_error_has_no_traceback_unless_debug_is_given(frame_file, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    quiet = run("denoise", frame_file, "-o", tmp_path / "o.nrrd", "--model", junk)
    loud = run("--debug", "denoise", frame_file, "-o", tmp_path / "o.nrrd", "--model", junk)
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def test_a_failed_file_is_named_once(tiny_model, tmp_path):
    bad = tmp_path / "broken.mha"
    bad.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 9 9\n")
    res = run("denoise", bad, "-o", tmp_path / "out.nrrd", "--model", tiny_model)
    assert res.returncode == 1 and res.stderr.count(str(bad)) == 1


def test_an_infinite_learning_rate_is_refused(tmp_path, frame_file):
    res = run("finetune", frame_file, "-o", tmp_path / "m.pt", "--lr", "inf")
    assert res.returncode == 2 and "--lr: expected a positive, finite number" in res.stderr
    with pytest.raises(InputError, match="learning rate must be a positive, finite number"):
        TrainConfig(lr=float("inf"))


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, tiny_model):
    """A study and the checkpoint of an 8-step run stopped after 4 steps (crop 48, batch 2)."""
    folder = tmp_path_factory.mktemp("resume")
    study = folder / "study"
    study.mkdir()
    for i in range(2):
        write_volume(study / f"c{i}.nrrd", Volume(make_cine(3, (64, 64), seed=i).envelope.astype(np.float32)))
    calls = []
    finetune_files([study], folder / "run.pt", init=tiny_model, steps=8, checkpoint_every=4,
                   should_stop=lambda: calls.append(1) or len(calls) > 4, **FAST)
    return study, folder / "run.pt.ckpt"


def test_resume_trains_to_the_steps_asked_for(interrupted_run, tiny_model, tmp_path):
    study, ckpt = interrupted_run
    outcome = finetune_files([study], tmp_path / "m.pt", init=tiny_model, steps=6, resume=ckpt, **FAST)
    assert outcome.steps == 6


def test_resume_with_no_more_steps_than_done_is_refused(interrupted_run, tiny_model, tmp_path):
    study, ckpt = interrupted_run
    with pytest.raises(InputError, match="the checkpoint has already trained 4 steps"):
        finetune_files([study], tmp_path / "m.pt", init=tiny_model, steps=4, resume=ckpt, device="cpu")


@pytest.mark.parametrize("option, value", [("crop", 64), ("lr", 0.5), ("batch_size", 3), ("seed", 7)])
def test_resume_refuses_settings_that_differ_from_its_checkpoint(interrupted_run, tiny_model, tmp_path,
                                                                 option, value):
    study, ckpt = interrupted_run
    with pytest.raises(InputError, match=f"{option.replace('_', ' ')} {value} was asked for, but the checkpoint"):
        finetune_files([study], tmp_path / "m.pt", init=tiny_model, resume=ckpt, device="cpu", **{option: value})
    assert not (tmp_path / "m.pt").exists()


def test_the_command_line_prints_what_a_resumed_run_will_do(interrupted_run, tiny_model, tmp_path):
    study, ckpt = interrupted_run
    res = run("finetune", study, "-o", tmp_path / "m.pt", "--from", tiny_model, "--resume", ckpt, "--steps", "6",
              "--device", "cpu")
    assert res.returncode == 0, res.stderr
    assert f"resuming {ckpt} at step 4: training to 6 steps (the checkpoint's run was to 8)" in res.stdout
    assert "finished: 6 steps" in res.stdout


def test_the_command_line_refuses_a_crop_given_with_resume(interrupted_run, tiny_model, tmp_path):
    study, ckpt = interrupted_run
    res = run("finetune", study, "-o", tmp_path / "m.pt", "--from", tiny_model, "--resume", ckpt, "--crop", "64")
    assert res.returncode == 2 and "crop 64 was asked for, but the checkpoint" in res.stderr


def test_the_abort_message_says_what_was_left(tmp_path):
    model, ckpt = tmp_path / "m.pt", tmp_path / "m.pt.ckpt"
    started = time.time()
    assert "no model or checkpoint was written" in _abort_message(model, ckpt, started)
    ckpt.write_bytes(b"checkpoint")
    assert f"continue from the checkpoint with --resume {ckpt}" in _abort_message(model, ckpt, started)
    model.write_bytes(b"model")
    assert f"the model {model} had already been written and is complete" in _abort_message(model, ckpt, started)


def _wait_for(text_of, pattern, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not re.search(pattern, text_of()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_second_ctrl_c_says_what_was_left(tiny_model, interrupted_run, tmp_path):
    study, _ = interrupted_run
    out, ckpt = tmp_path / "m.pt", tmp_path / "m.pt.ckpt"
    proc = subprocess.Popen(["speckle2self", "finetune", str(study), "-o", str(out), "--from", str(tiny_model),
                             "--steps", "100000", "--crop", "48", "--batch-size", "2", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    _wait_for(lambda: "".join(err), r"\| [1-9]\d*/100000", proc)  # training has taken a step
    proc.send_signal(signal.SIGINT)
    _wait_for(lambda: "".join(err), "stopping after this step", proc)  # the first Ctrl-C was handled
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    reader.join(timeout=10)
    stderr = "".join(err)
    assert proc.returncode == 130, stderr[-2000:]
    if out.exists():
        assert f"the model {out} had already been written and is complete" in stderr
    elif ckpt.exists():
        assert f"continue from the checkpoint with --resume {ckpt}" in stderr
    else:
        assert "no model or checkpoint was written" in stderr


def test_a_read_only_memory_map_as_out_is_an_input_error(tiny_model, phantom, tmp_path):
    frame = phantom.envelope.astype(np.float32)
    np.zeros(frame.shape, np.float32).tofile(tmp_path / "out.raw")
    read_only = np.memmap(tmp_path / "out.raw", dtype=np.float32, mode="r", shape=frame.shape)
    with pytest.raises(InputError, match="out is read-only .* mode='r\\+'"):
        denoise(frame, model=tiny_model, device="cpu", out=read_only)


def test_a_list_as_out_is_an_input_error(tiny_model, phantom):
    with pytest.raises(InputError, match="out must be a NumPy array .* not list"):
        denoise(phantom.envelope, model=tiny_model, device="cpu", out=[0.0] * 16)


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-5", "expected a whole number from 0 to 4294967295, not '-5'"),
    ("--seed", str(2 ** 70), f"expected a whole number from 0 to 4294967295, not '{2 ** 70}'"),
    ("--crop", "17", "expected a whole multiple of 16, such as 128, not '17'"),
    ("--patience", "-1", "expected a whole number of at least 0, not '-1'"),
])
def test_a_bad_finetune_number_is_a_usage_error(frame_file, tmp_path, option, value, message):
    res = run("finetune", frame_file, "-o", tmp_path / "m.pt", option, value)
    assert res.returncode == 2 and f"argument {option}: {message}" in res.stderr
    assert "this is a bug" not in res.stderr and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -5}, "seed must be a whole number from 0 to 4294967295, got -5"),
    ({"seed": 2 ** 70}, "seed must be a whole number from 0 to 4294967295"),
    ({"patience": -1}, "patience must be a whole number of validations, 0 .* or more, got -1"),
])
def test_a_bad_training_setting_is_an_input_error(kwargs, message):
    from speckle2self.training.loop import TrainConfig
    with pytest.raises(InputError, match=message):
        TrainConfig(**kwargs)


def test_a_crop_that_is_not_a_multiple_of_16_is_refused_before_reading_the_data(tiny_model, frame_file, tmp_path):
    from speckle2self.finetune.files import finetune_files
    with pytest.raises(InputError, match=r"crop must be a multiple of 16 pixels for this network, got 40 "
                                         r"\(use 32 or 48\)"):
        finetune_files([frame_file], tmp_path / "m.pt", init=tiny_model, crop=40, steps=1, device="cpu")
    assert not (tmp_path / "m.pt").exists()
