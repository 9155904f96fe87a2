"""Foreseeable failures give one clear line that names the file and the problem, never a library's
internals: DICOM files cut short or not DICOM at all, foreign checkpoints, full disks, complex,
1-bit and left-over temporary files."""
import os
import resource
import signal
import subprocess
import time

import numpy as np
import pytest
import SimpleITK as sitk

from speckle2self.atomic import STALE_AFTER_S, atomic_path
from speckle2self.errors import InputError, ModelFileError
from speckle2self.io import Volume, read_dicom, read_volume, write_volume
from speckle2self.training.loop import checkpoint_progress


@pytest.fixture(scope="module")
def us_dicom():
    from pydicom.data import get_testdata_file
    return get_testdata_file("US1_UNCR.dcm")


def test_random_bytes_named_dcm_are_not_dicom_and_no_force_advice(tmp_path):
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="random.dcm: not a DICOM file") as info:
        read_dicom(path)
    assert "force" not in str(info.value)


@pytest.mark.parametrize("keep", [200, 1000])
def test_a_dicom_cut_in_its_header_is_called_truncated(us_dicom, tmp_path, keep):
    path = tmp_path / "cut.dcm"
    path.write_bytes(open(us_dicom, "rb").read()[:keep])
    with pytest.raises(InputError, match="cut.dcm: DICOM file without image pixels.*truncated"):
        read_dicom(path)


def test_a_dicom_cut_in_its_pixels_is_called_truncated(us_dicom, tmp_path):
    data = open(us_dicom, "rb").read()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=r"cut.dcm: the pixel data is incomplete \(\d+ of 921600 bytes\): "
                                         "the file is truncated"):
        read_dicom(path)


def test_resuming_from_a_random_file_gives_no_unsafe_advice(tmp_path):
    path = tmp_path / "run.pt.ckpt"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError, match="run.pt.ckpt is not a Speckle2Self training checkpoint") as info:
        checkpoint_progress(path)
    assert "weights_only" not in str(info.value) and "trust" not in str(info.value)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # a disk that fills after 200 kB
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG instead of killing


@pytest.mark.parametrize("suffix, problem", [(".dcm", "cannot write (File too large)"),
                                             (".nii", "the file written does not read back complete")])
def test_a_write_that_runs_out_of_space_is_one_clean_line(us_dicom, tmp_path, suffix, problem):
    out = tmp_path / "out"
    out.mkdir()
    res = subprocess.run(["speckle2self", "denoise", us_dicom, "-o", str(out / f"result{suffix}"), "--device", "cpu"],
                         capture_output=True, text=True, preexec_fn=_limit_file_size,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    failed = [line for line in res.stderr.splitlines() if line.startswith("FAILED")]
    assert res.returncode == 1 and len(failed) == 1, res.stderr[-2000:]
    assert f"result{suffix}: " in failed[0] and problem in failed[0]
    assert "Traceback" not in res.stderr and ".result-" not in res.stderr
    assert os.listdir(out) == []


def test_stale_temporaries_of_our_pattern_are_removed_on_the_next_write(tmp_path):
    old = time.time() - STALE_AFTER_S - 60
    stale, recent = tmp_path / ".scan-abc12_yz.nrrd", tmp_path / ".scan-k9x8w7v6.nrrd"
    lookalikes = [tmp_path / ".scan-notours.nrrd", tmp_path / "scan-abc12_yz.nrrd", tmp_path / ".scan-ABCDEFGH.nrrd"]
    for path in [stale, recent, *lookalikes]:
        path.write_bytes(b"left over")
        os.utime(path, (old, old) if path != recent else None)
    with atomic_path(tmp_path / "other.nrrd") as tmp:
        tmp.write_bytes(b"new")
    assert not stale.exists() and recent.exists() and all(p.exists() for p in lookalikes)


def test_a_complex_mha_is_refused_not_read_as_grey_and_alpha(tmp_path):
    iq = (np.random.rand(16, 16) + 1j * np.random.rand(16, 16)).astype(np.complex64)
    sitk.WriteImage(sitk.GetImageFromArray(iq), str(tmp_path / "iq.mha"))
    with pytest.raises(InputError, match=r"iq.mha: 2 floating-point components per pixel are complex \(I/Q\)"):
        read_volume(tmp_path / "iq.mha")


def test_a_1_bit_png_is_refused_rather_than_returned_as_8_bit(tmp_path):
    from PIL import Image
    Image.fromarray(np.random.default_rng(2).random((32, 32)) > 0.5).save(tmp_path / "mask.png")
    with pytest.raises(InputError, match="mask.png: a 1-bit PNG has only 2 grey levels"):
        read_volume(tmp_path / "mask.png")


def test_an_8_bit_png_is_still_read(tmp_path):
    frame = (np.random.default_rng(3).random((32, 32)) * 255).astype(np.uint8)
    write_volume(tmp_path / "grey.png", Volume(frame[None], single_frame=True))
    assert np.array_equal(read_volume(tmp_path / "grey.png").frames[0], frame)
