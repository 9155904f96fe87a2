"""Bad inputs refused before any work, with a message that says what is wrong: outputs that cannot
hold the result, special files, symbolic link loops, results of an earlier run, masked arrays."""
import os
import subprocess

import numpy as np
import pytest

import speckle2self
from speckle2self.errors import InputError
from speckle2self.io import Volume, write_volume
from speckle2self.evaluation.phantoms import make_cine
from speckle2self.inference.pipeline import denoise_file, denoise_files


def run(*args):
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture()
def float_file(tmp_path):
    path = tmp_path / "scan.nrrd"
    write_volume(path, Volume(make_cine(1, (48, 48), seed=1).envelope.astype(np.float32), single_frame=True))
    return path


def test_a_dicom_output_for_a_non_dicom_input_is_refused_before_any_work(tiny_model, float_file, tmp_path):
    res = run("denoise", float_file, "-o", tmp_path / "o.dcm", "--model", tiny_model)
    assert res.returncode == 2 and ".dcm is written as DICOM, which needs a DICOM input" in res.stderr
    assert not (tmp_path / "o.dcm").exists()


@pytest.mark.parametrize("name, written", [("o.NII.GZ", ".nii.gz"), ("o.MHA", ".mha")])
def test_an_extension_the_writers_mishandle_is_refused_before_any_work(tiny_model, float_file, tmp_path, name, written):
    res = run("denoise", float_file, "-o", tmp_path / name, "--model", tiny_model)
    assert res.returncode == 2 and f"write the extension as {written!r} (lower case)" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nrrd"]


def test_float_data_to_png_is_refused_before_denoising(tiny_model, float_file, tmp_path):
    progress = []
    with pytest.raises(InputError, match="PNG holds 8- or 16-bit unsigned integers, not float32"):
        denoise_file(float_file, tmp_path / "o.png", model=tiny_model, device="cpu",
                     progress=lambda done, total: progress.append(done))
    assert progress == [] and not (tmp_path / "o.png").exists()


def test_a_fifo_input_is_refused_not_waited_on(tiny_model, tmp_path):
    os.mkfifo(tmp_path / "pipe.nrrd")
    res = run("denoise", tmp_path / "pipe.nrrd", "-o", tmp_path / "o.nrrd", "--model", tiny_model)
    assert res.returncode == 1 and "pipe.nrrd is not a regular file (a FIFO, socket or device)" in res.stderr


def test_a_symbolic_link_loop_is_named(tiny_model, tmp_path):
    os.symlink(tmp_path / "loop.nrrd", tmp_path / "loop.nrrd")
    res = run("denoise", tmp_path / "loop.nrrd", "-o", tmp_path / "o.nrrd", "--model", tiny_model)
    assert res.returncode == 1 and "loop.nrrd: a symbolic link loop" in res.stderr


def test_a_second_run_into_a_folder_inside_the_input_does_not_take_its_own_outputs(tiny_model, float_file):
    study = float_file.parent
    first = denoise_files([study], study / "denoised", model=tiny_model, device="cpu")
    second = denoise_files([study], study / "denoised", model=tiny_model, device="cpu")
    assert [r.input for r in first] == [r.input for r in second] == [float_file]
    assert not (study / "denoised" / "denoised").exists()


def test_a_masked_array_with_masked_pixels_is_refused(tiny_model):
    frame = make_cine(1, (48, 48), seed=1).envelope[0]
    masked = np.ma.masked_less(frame, np.median(frame))
    with pytest.raises(InputError, match=r"masked array with \d+ masked pixels.*frames.filled\(value\)"):
        speckle2self.denoise(masked, model=tiny_model, device="cpu")


def test_output_error_is_part_of_the_top_level_api():
    from speckle2self.errors import OutputError
    assert speckle2self.OutputError is OutputError and "OutputError" in speckle2self.__all__


def test_the_help_gives_the_cpu_batch_default_the_code_uses():
    from speckle2self.inference.api import default_batch_size
    import torch
    res = run("denoise", "--help")
    assert default_batch_size(torch.device("cpu"), 512, 512) == 1
    assert "default: 1 on CPU" in " ".join(res.stdout.split())
