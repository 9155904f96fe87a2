"""Never overwrite what a user owns: an input is every file it consists of (a header and its data
files, a DICOMDIR and the files it lists); no output, and no data file an output writes, may be one
of them, and two outputs of one run may never share a file. Refused before any work (exit 2)."""
import os
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk

from speckle2self.errors import InputError
from speckle2self.io import Volume, read_volume, write_volume
from speckle2self.io.footprint import input_files, output_files
from speckle2self.evaluation.phantoms import make_cine
from speckle2self.inference.pipeline import denoise_file, denoise_files


def run(*args):
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _write(path, seed=1):
    """A real MetaImage/NRRD file (with its .raw data file for .mhd/.nhdr) written by SimpleITK."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(make_cine(2, (48, 48), seed=seed).envelope.astype(np.float32)), str(path))
    return path


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _retarget(header, data_file):
    """Point a header's data file field at another file, as a user's hand-edited header would."""
    key = "ElementDataFile = " if header.suffix == ".mhd" else "data file: "
    lines = [f"{key}{data_file}" if line.startswith(key) else line for line in header.read_text().splitlines()]
    header.write_text("\n".join(lines) + "\n")


def test_an_nhdr_output_beside_an_mhd_input_may_not_replace_its_raw_file(tiny_model, tmp_path):
    _write(tmp_path / "scan.mhd")
    before = _snapshot(tmp_path)
    res = run("denoise", tmp_path / "scan.mhd", "-o", tmp_path / "scan.nhdr", "--model", tiny_model)
    assert res.returncode == 2, res.stderr
    assert f"the output's data file {tmp_path / 'scan.raw'} would replace" in res.stderr
    assert "refusing to overwrite the input" in res.stderr and "Traceback" not in res.stderr
    assert _snapshot(tmp_path) == before


def test_an_output_named_after_the_inputs_data_file_is_refused(tiny_model, tmp_path):
    _write(tmp_path / "y.mhd")
    (tmp_path / "y.mhd").rename(tmp_path / "x.mhd")
    _retarget(tmp_path / "x.mhd", "y.raw")
    before = _snapshot(tmp_path)
    res = run("denoise", tmp_path / "x.mhd", "-o", tmp_path / "y.mhd", "--model", tiny_model)
    assert res.returncode == 2, res.stderr
    assert f"{tmp_path / 'y.raw'}, the data file of the input {tmp_path / 'x.mhd'}" in res.stderr
    assert _snapshot(tmp_path) == before


def test_an_nrrd_data_file_field_is_part_of_the_input(tiny_model, tmp_path):
    _write(tmp_path / "y.nhdr")
    (tmp_path / "y.nhdr").rename(tmp_path / "x.nhdr")
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match="the data file of the input"):
        denoise_file(tmp_path / "x.nhdr", tmp_path / "y.mhd", model=tiny_model, device="cpu")
    assert _snapshot(tmp_path) == before


def test_two_outputs_that_would_share_a_data_file_are_refused_before_any_work(tiny_model, tmp_path):
    _write(tmp_path / "a" / "scan.mhd", seed=1)
    _write(tmp_path / "b" / "scan.nhdr", seed=2)
    res = run("denoise", tmp_path / "a" / "scan.mhd", tmp_path / "b" / "scan.nhdr", "-o", tmp_path / "out",
              "--model", tiny_model)
    assert res.returncode == 2, res.stderr
    assert f"would both write {tmp_path / 'out' / 'scan.raw'}" in res.stderr
    assert not (tmp_path / "out").exists() and "files denoised" not in res.stdout


def test_two_inputs_of_one_name_into_one_folder_are_refused_before_any_work(tiny_model, tmp_path):
    _write(tmp_path / "a" / "scan.nrrd", seed=1)
    _write(tmp_path / "b" / "scan.nrrd", seed=2)
    with pytest.raises(InputError, match="would both write"):
        denoise_files([tmp_path / "a" / "scan.nrrd", tmp_path / "b" / "scan.nrrd"], tmp_path / "out",
                      model=tiny_model, device="cpu")
    assert not (tmp_path / "out").exists()


def test_a_dicomdir_written_into_its_own_folder_is_refused_before_any_work(tiny_model, tmp_path):
    from pydicom.data import get_testdata_file
    study = tmp_path / "study"
    shutil.copytree(os.path.dirname(get_testdata_file("DICOMDIR")), study)
    before = _snapshot(study)
    res = run("denoise", study / "DICOMDIR", "-o", study, "--model", tiny_model)
    assert res.returncode == 2, res.stderr
    assert "is the input file; refusing to overwrite the input" in res.stderr
    assert _snapshot(study) == before


def test_writing_a_volume_refuses_its_sources_data_file(tmp_path):
    source = _write(tmp_path / "scan.mhd")
    volume = read_volume(source)
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match="refusing to overwrite the input"):
        write_volume(tmp_path / "scan.nhdr", volume.with_frames(volume.frames * 0))
    assert _snapshot(tmp_path) == before


def test_listed_and_numbered_data_files_are_part_of_the_input(tmp_path):
    listed = tmp_path / "listed.nhdr"
    listed.write_text("NRRD0004\ntype: float\ndimension: 3\nsizes: 4 4 2\nencoding: raw\n"
                      "data file: LIST\nf0.raw\nsub/f1.raw\n")
    numbered = tmp_path / "numbered.mhd"
    numbered.write_text("ObjectType = Image\nNDims = 3\nDimSize = 4 4 3\nElementType = MET_FLOAT\n"
                        "ElementDataFile = s%02d.raw 1 3 1\n")
    assert input_files(listed)[1:] == [tmp_path / "f0.raw", tmp_path / "sub" / "f1.raw"]
    assert input_files(numbered)[1:] == [tmp_path / f"s{i:02d}.raw" for i in (1, 2, 3)]


def test_the_data_files_a_writer_creates_are_predicted(tmp_path):
    volume = Volume(np.zeros((2, 8, 8), np.float32))
    for name in ("a.mhd", "b.nhdr", "c.x.nhdr", "d.nrrd"):
        write_volume(tmp_path / name, volume)
    written = sorted(p.name for p in tmp_path.iterdir())
    predicted = sorted(p.name for name in ("a.mhd", "b.nhdr", "c.x.nhdr", "d.nrrd")
                       for p in output_files(tmp_path / name))
    assert written == predicted


def test_an_output_may_not_replace_the_data_file_of_an_image_outside_the_run(tiny_model, tmp_path):
    _write(tmp_path / "other.nrrd", seed=2)
    _write(tmp_path / "kept" / "scan.mhd")  # not an input: someone else's image and its scan.raw
    before = _snapshot(tmp_path / "kept")
    res = run("denoise", tmp_path / "other.nrrd", "-o", tmp_path / "kept" / "scan.nhdr", "--model", tiny_model)
    assert res.returncode == 2, res.stderr
    assert f"its data file {tmp_path / 'kept' / 'scan.raw'} exists and is not scan.nhdr's own" in res.stderr
    assert _snapshot(tmp_path / "kept") == before


def test_an_earlier_result_with_its_data_file_may_be_replaced(tiny_model, tmp_path):
    _write(tmp_path / "in.nrrd")
    for _ in range(2):
        report = denoise_file(tmp_path / "in.nrrd", tmp_path / "out" / "result.nhdr", model=tiny_model, device="cpu")
        assert report.ok
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["result.nhdr", "result.raw"]


def test_writing_a_volume_refuses_a_data_file_it_does_not_own(tmp_path):
    (tmp_path / "scan.raw").write_bytes(b"someone else's pixels")
    with pytest.raises(InputError, match="scan.raw exists and is not scan.nhdr's own"):
        write_volume(tmp_path / "scan.nhdr", Volume(np.zeros((2, 8, 8), np.float32)))
    assert (tmp_path / "scan.raw").read_bytes() == b"someone else's pixels"
    assert not (tmp_path / "scan.nhdr").exists()
