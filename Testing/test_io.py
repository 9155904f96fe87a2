"""Files: every SimpleITK format round-trips frames, dtype and geometry; bad files fail clearly."""
import os
import stat

import numpy as np
import pytest
import SimpleITK as sitk

from speckle2self.errors import InputError, OutputError
from speckle2self.io import Volume, read_volume, write_volume

GEOMETRY = dict(spacing=(0.2, 0.3, 0.5), origin=(10.0, -5.0, 2.0),
                direction=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))


def _stack(dtype=np.float32, shape=(4, 20, 24)):
    rng = np.random.default_rng(0)
    return (rng.random(shape) * 200).astype(dtype)


@pytest.mark.parametrize("suffix", [".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_stacks_round_trip_with_geometry(tmp_path, suffix, dtype):
    vol = Volume(_stack(dtype), **GEOMETRY)
    path = write_volume(tmp_path / f"out{suffix}", vol)
    back = read_volume(path)
    assert back.frames.dtype == dtype and np.array_equal(back.frames, vol.frames)
    if suffix != ".tif":  # TIFF stores spacing only
        assert np.allclose(back.spacing, GEOMETRY["spacing"]) and np.allclose(back.origin, GEOMETRY["origin"])
        if not suffix.startswith(".nii"):  # NIfTI stores direction through qform (rounding)
            assert np.allclose(back.direction, GEOMETRY["direction"])


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint8), (".png", np.uint16), (".tif", np.float32),
                                           (".nrrd", np.float64)])
def test_single_frames_round_trip_as_2d(tmp_path, suffix, dtype):
    vol = Volume(_stack(dtype, (1, 30, 40)), spacing=(0.25, 0.5, 1.0), single_frame=True)
    back = read_volume(write_volume(tmp_path / f"f{suffix}", vol))
    assert back.single_frame and back.data.shape == (30, 40)
    assert np.array_equal(back.frames, vol.frames)
    assert np.allclose(back.spacing[:2], (0.25, 0.5))


def test_plus_sequence_header_fields_are_kept(tmp_path):
    img = sitk.GetImageFromArray(_stack(np.uint8))
    img.SetMetaData("UltrasoundImageOrientation", "MFA")
    img.SetMetaData("Seq_Frame0001_Timestamp", "12.345")
    img.SetMetaData("Seq_Frame0001_ProbeToTrackerTransform", "1 0 0 5 0 1 0 0 0 0 1 0 0 0 0 1")
    src = tmp_path / "scan.igs.mha"
    sitk.WriteImage(img, str(src))
    vol = read_volume(src)
    assert vol.metadata["Seq_Frame0001_Timestamp"] == "12.345"
    out = write_volume(tmp_path / "denoised.igs.mha", vol.with_frames(vol.frames.copy()))
    text = out.read_bytes()[:4000].decode("latin-1")
    assert "Seq_Frame0001_ProbeToTrackerTransform = 1 0 0 5" in text
    assert "UltrasoundImageOrientation = MFA" in text


def test_rgb_images_become_grey_by_luma(tmp_path):
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "c.png"))
    vol = read_volume(tmp_path / "c.png")
    assert vol.data.shape == (10, 12) and vol.frames.dtype == np.uint8
    assert np.all(vol.data == round(0.299 * 100 + 0.587 * 200 + 0.114 * 50))
    assert "RGB to grey" in vol.notes[0]


def test_four_dimensional_images_are_refused(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 8, 8), np.float32), isVector=False), str(tmp_path / "t.nrrd"))
    with pytest.raises(InputError, match="4-D images are not supported"):
        read_volume(tmp_path / "t.nrrd")


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = write_volume(tmp_path / "v.mha", Volume(_stack()))
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(InputError, match="cannot read the image"):
        read_volume(path)


def test_unsupported_and_missing_files_are_named(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "absent.nrrd")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        read_volume(tmp_path / "notes.txt")


def test_writing_over_the_input_is_refused(tmp_path):
    src = write_volume(tmp_path / "in.nrrd", Volume(_stack()))
    before = src.read_bytes()
    vol = read_volume(src)
    with pytest.raises(InputError, match="is the input file; refusing to overwrite"):
        write_volume(src, vol.with_frames(vol.frames * 0))
    assert src.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder_is_named(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(OutputError, match="is not writable"):
        write_volume(folder / "x.nrrd", Volume(_stack()))


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    with pytest.raises(InputError, match="PNG holds 8- or 16-bit unsigned integers"):
        write_volume(target, Volume(_stack(np.float32, (1, 8, 8)), single_frame=True))
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["x.png"]


def test_detached_header_and_data_are_written_together(tmp_path):
    write_volume(tmp_path / "v.mhd", Volume(_stack()))
    assert sorted(os.listdir(tmp_path)) == ["v.mhd", "v.raw"]
    assert "ElementDataFile = v.raw" in (tmp_path / "v.mhd").read_text()

