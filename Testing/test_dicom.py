"""Ultrasound DICOM in and out, on pydicom's real ultrasound example files and files made from them."""
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_examples import example, pydicom_file
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from speckle2self.errors import InputError
from speckle2self.io import read_dicom, read_volume, write_dicom
from speckle2self.io.dicom_read import frame_time, pixel_spacing
from speckle2self.io.pydicom_compat import (apply_color_lut, convert_color_space, decode_pixels, pydicom_major,
                                            save_as_dicom_file)


def _save(ds, path):
    save_as_dicom_file(ds, path)
    return path


@pytest.fixture()
def ybr_cine(tmp_path):
    """30-frame US cine, JPEG Baseline, YBR_FULL_422, with a (stale) ultrasound region."""
    return _save(example("ybr_color"), tmp_path / "cine.dcm")


def test_jpeg_ybr_cine_frames_timing_and_spacing_from_its_region(ybr_cine):
    image = read_dicom(ybr_cine)
    assert image.volume.frames.shape == (30, 240, 320) and image.volume.frames.dtype == np.uint8
    assert image.frame_time_ms == pytest.approx(33.333)
    assert image.volume.spacing[:2] == pytest.approx((0.5105, 0.5105), abs=1e-4)  # 0.05105 cm
    assert "does not fit the 320×240 image" in image.warnings[0]


def test_colour_is_grey_by_luma_and_colour_pixels_are_marked(tmp_path):
    image = read_dicom(_save(example("rgb_color"), tmp_path / "rgb.dcm"))
    rgb = example("rgb_color").pixel_array.astype(np.float64)
    expected = np.rint(rgb @ [0.299, 0.587, 0.114]).astype(np.uint8)
    assert np.array_equal(image.volume.frames[0], expected)
    spread = rgb.max(-1) - rgb.min(-1)
    assert np.array_equal(image.colour_mask[0], spread > 24) and image.colour_mask.any()


SEPIA = np.array([1.0, 0.82, 0.62])


def _tinted_dataset(seed=0):
    """An RGB frame as a scanner with a sepia-tinted grey map shows it: speckle with a bright band,
    and a red and blue Doppler patch drawn over it."""
    rng = np.random.default_rng(seed)
    grey = np.clip(110 + 30 * np.log(rng.rayleigh(1.0, (240, 320)) / 1.25), 0, 255)
    grey[100:120] = np.clip(grey[100:120] + 80, 0, 255)
    rgb = np.rint(grey[..., None] * SEPIA).astype(np.uint8)
    doppler = np.zeros((240, 320), bool)
    doppler[30:70, 200:260] = True
    rgb[30:50, 200:260] = (200, 20, 10)
    rgb[50:70, 200:260] = (20, 60, 220)
    ds = example("rgb_color")
    ds.Rows, ds.Columns = 240, 320
    ds.PixelData = rgb.tobytes()
    return ds, rgb, doppler


def test_a_tinted_display_map_is_not_taken_for_colour(tmp_path):
    ds, rgb, doppler = _tinted_dataset()
    image = read_dicom(_save(ds, tmp_path / "sepia.dcm"))
    assert image.tint is not None
    assert np.array_equal(image.colour_mask[0], doppler)
    assert any("tinted" in note for note in image.volume.notes)


def test_a_tinted_display_comes_back_denoised_in_its_tint(tiny_model, tmp_path):
    ds, rgb, doppler = _tinted_dataset(seed=1)
    res = _cli("denoise", _save(ds, tmp_path / "sepia.dcm"), "-o", tmp_path / "out.dcm", "--model", tiny_model,
               "--device", "cpu")
    assert res.returncode == 0, res.stderr
    out = pydicom.dcmread(tmp_path / "out.dcm").pixel_array
    assert np.array_equal(out[doppler], rgb[doppler])
    tissue = (slice(140, 230), slice(10, 180))
    ratio = out[tissue].reshape(-1, 3).astype(np.float64).mean(axis=0) / out[tissue][..., 0].mean()
    assert ratio == pytest.approx(SEPIA, abs=0.03)
    assert out[tissue][..., 0].std() < 0.7 * rgb[tissue][..., 0].std()


def test_grey_colour_images_have_no_tint(tmp_path):
    assert read_dicom(_save(example("rgb_color"), tmp_path / "rgb.dcm")).tint is None


def test_palette_colour_goes_through_its_lookup_table(tmp_path):
    ds = example("palette_color")
    image = read_dicom(_save(ds, tmp_path / "pal.dcm"))
    lut = apply_color_lut(ds.pixel_array, ds)
    rgb8 = np.rint(lut.astype(np.float64) * 255 / 65535) if lut.max() > 255 else lut.astype(np.float64)
    assert np.array_equal(image.rgb[0], rgb8.astype(np.uint8))
    assert image.volume.spacing[0] == pytest.approx(float(ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaY) * 10)


def test_jpeg2000_ybr_rct_decodes(tmp_path):
    image = read_dicom(_save(example("jpeg2k"), tmp_path / "j2k.dcm"))
    assert image.volume.frames.shape == (1, 480, 640)
    assert np.array_equal(image.rgb[0], example("jpeg2k").pixel_array)


def _grey_dataset(photometric="MONOCHROME2", bits=8):
    ds = example("rgb_color")
    grey = np.arange(240 * 320).reshape(240, 320) % (2 ** bits - 1)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    del ds.PlanarConfiguration
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelData = grey.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    ds.PixelSpacing = [0.1, 0.2]
    return ds, grey


def test_monochrome1_is_inverted_so_bright_means_echo(tmp_path):
    ds, grey = _grey_dataset("MONOCHROME1")
    image = read_dicom(_save(ds, tmp_path / "m1.dcm"))
    assert np.array_equal(image.volume.frames[0], grey.max() + grey.min() - grey)
    assert image.volume.spacing[:2] == (0.2, 0.1)  # (column, row) = ITK's (x, y)


def test_planar_rgb_reads_like_interleaved(tmp_path):
    ds = example("rgb_color")
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(example("rgb_color").pixel_array.transpose(2, 0, 1)).tobytes()
    planar = read_dicom(_save(ds, tmp_path / "planar.dcm"))
    interleaved = read_dicom(_save(example("rgb_color"), tmp_path / "inter.dcm"))
    assert np.array_equal(planar.rgb, interleaved.rgb)


def test_rle_compressed_frames_decode(tmp_path):
    ds, grey = _grey_dataset(bits=16)
    ds.compress(RLELossless)
    image = read_dicom(_save(ds, tmp_path / "rle.dcm"))
    assert np.array_equal(image.volume.frames[0], grey) and image.volume.frames.dtype == np.uint16


def test_missing_spacing_and_regions_is_reported():
    ds, _ = _grey_dataset()
    del ds.PixelSpacing
    assert pixel_spacing(ds) == ((1.0, 1.0), ["no pixel spacing and no calibrated 2-D ultrasound region: "
                                              "spacing set to 1 mm"])


def test_frame_time_vector_gives_the_mean_interval():
    ds = pydicom.Dataset()
    ds.FrameTimeVector = [0, 30, 34, 32]
    assert frame_time(ds) == pytest.approx(32.0)


def test_truncated_and_non_image_files_give_clear_errors(tmp_path, ybr_cine):
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(ybr_cine.read_bytes()[:3000])
    with pytest.raises(InputError, match="cut.dcm: (not a readable DICOM file|cannot decode the pixels|DICOM file without)"):
        read_dicom(cut)
    ds = example("rgb_color")
    del ds.PixelData
    with pytest.raises(InputError, match="DICOM file without image pixels"):
        read_dicom(_save(ds, tmp_path / "nopix.dcm"))


def test_derived_series_has_every_required_attribute(ybr_cine, tmp_path):
    image = read_dicom(ybr_cine)
    out = write_dicom(tmp_path / "out.dcm", image, 255 - image.volume.frames, "f" * 64)
    src, ds = pydicom.dcmread(ybr_cine), pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID and ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert "Speckle2Self" in ds.DerivationDescription and "f" * 64 in ds.DerivationDescription
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ds.FrameTime == src.FrameTime and ds.NumberOfFrames == 30
    assert ds.SequenceOfUltrasoundRegions == src.SequenceOfUltrasoundRegions


def test_colour_pixels_are_written_back_unchanged(ybr_cine, tmp_path):
    image = read_dicom(ybr_cine)
    out = pydicom.dcmread(write_dicom(tmp_path / "out.dcm", image, 255 - image.volume.frames, "0" * 64)).pixel_array
    mask = image.colour_mask
    assert np.array_equal(out[mask], image.rgb[mask])
    assert np.array_equal(out[~mask][:, 0], (255 - image.volume.frames)[~mask])


def test_round_trip_keeps_geometry_and_timing(ybr_cine, tmp_path):
    image = read_dicom(ybr_cine)
    back = read_dicom(write_dicom(tmp_path / "rt.dcm", image, image.volume.frames, "0" * 64))
    assert back.volume.frames.shape == image.volume.frames.shape
    assert back.volume.spacing == image.volume.spacing and back.frame_time_ms == image.frame_time_ms


def test_read_volume_routes_dicom(ybr_cine):
    assert read_volume(ybr_cine).frames.shape == (30, 240, 320)


def _cli(*args):
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True)


def test_cli_denoises_a_jpeg_cine_into_a_derived_dicom_series(tiny_model, ybr_cine, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "IM0001").write_bytes(ybr_cine.read_bytes())  # no extension, as on scanner media
    (study / "broken").write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 40)
    res = _cli("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--device", "cpu")
    assert res.returncode == 1 and "broken" in res.stderr  # the bad file is reported; the cine is done
    ds = pydicom.dcmread(tmp_path / "out" / "IM0001")
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.pixel_array.shape == (30, 240, 320, 3)
    assert "does not fit" in res.stdout  # the stale calibration warning reaches the user


def test_cli_writes_another_format_when_asked(tiny_model, ybr_cine, tmp_path):
    res = _cli("denoise", ybr_cine, "-o", tmp_path / "cine.nrrd", "--model", tiny_model, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    vol = read_volume(tmp_path / "cine.nrrd")
    assert vol.frames.shape == (30, 240, 320) and vol.spacing[0] == pytest.approx(0.5105, abs=1e-4)


def _dciodvfy_errors(path):
    res = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return {line.split(" - ", 1)[-1] for line in (res.stdout + res.stderr).splitlines() if line.startswith("Error")}


@pytest.mark.parametrize("name", ["ybr_color", "rgb_color", "palette_color", "jpeg2k"])
def test_output_passes_dciodvfy_with_no_error_of_its_own(name, tmp_path):
    """dicom3tools' validator (installed by .ci/run); errors already in pydicom's example files are theirs."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (apt-get install dicom3tools); CI installs it")
    src = _save(example(name), tmp_path / "src.dcm")
    image = read_dicom(src)
    out = write_dicom(tmp_path / "out.dcm", image, image.volume.frames, "0" * 64)
    new_errors = _dciodvfy_errors(out) - _dciodvfy_errors(src)
    assert new_errors == set()
    if name == "ybr_color":
        assert _dciodvfy_errors(out) == set()


def test_fine_tuning_reads_a_dicom_study_lazily(tiny_model, ybr_cine, tmp_path):
    from speckle2self.finetune.files import finetune_files
    from speckle2self.io import FrameCache, LazyVolume
    lazy = LazyVolume(ybr_cine, FrameCache())
    assert lazy.shape == (30, 240, 320) and lazy.dtype == np.uint8 and lazy.cache.items == {}
    outcome = finetune_files([ybr_cine], tmp_path / "m.pt", init=tiny_model, steps=3, crop=64, batch_size=2,
                             device="cpu")
    assert outcome.steps == 3 and (tmp_path / "m.pt").is_file()


# pydicom's own test files (in its wheel): one per transfer syntax / photometric interpretation.
CODEC_FILES = {
    "MR_small_bigendian.dcm": ("Explicit VR Big Endian", "MONOCHROME2"),
    "SC_rgb_small_odd_big_endian.dcm": ("Explicit VR Big Endian", "RGB"),
    "MR_small_implicit.dcm": ("Implicit VR Little Endian", "MONOCHROME2"),
    "SC_rgb_rle.dcm": ("RLE Lossless", "RGB"),
    "SC_rgb_rle_2frame.dcm": ("RLE Lossless", "RGB"),
    "SC_jpeg_no_color_transform.dcm": ("JPEG Baseline (Process 1)", "RGB"),
    "JPGExtended.dcm": ("JPEG Extended (Process 2 and 4)", "MONOCHROME2"),
    "SC_rgb_jpeg_gdcm.dcm": ("JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", "RGB"),
    "MR_small_jpeg_ls_lossless.dcm": ("JPEG-LS Lossless Image Compression", "MONOCHROME2"),
    "JPEGLSNearLossless_08.dcm": ("JPEG-LS Lossy (Near-Lossless) Image Compression", "MONOCHROME2"),
    "MR_small_jp2klossless.dcm": ("JPEG 2000 Image Compression (Lossless Only)", "MONOCHROME2"),
    "GDCMJ2K_TextGBR.dcm": ("JPEG 2000 Image Compression (Lossless Only)", "YBR_RCT"),
    "SC_ybr_full_422_uncompressed.dcm": ("Explicit VR Little Endian", "YBR_FULL_422"),
}


def _codec_file(name):
    path = pydicom_file(name)
    if path is None:
        pytest.skip(f"{name} is in neither pydicom {pydicom.__version__}'s test files nor pydicom-data")
    return path


@pytest.mark.parametrize("name", sorted(CODEC_FILES))
def test_every_transfer_syntax_and_photometric_decodes_to_the_expected_grey(name):
    path = _codec_file(name)
    ds = pydicom.dcmread(path)
    assert (ds.file_meta.TransferSyntaxUID.name, ds.PhotometricInterpretation) == CODEC_FILES[name]
    image = read_dicom(path)
    decoded = decode_pixels(ds)  # the same pixels under pydicom 2.4 and 3: see the next test
    pixels = decoded.reshape((image.volume.frames.shape[0],) + decoded.shape[-(3 if ds.SamplesPerPixel == 3 else 2):])
    if ds.SamplesPerPixel == 3:
        rgb = pixels if ds.BitsAllocated == 8 else np.rint(pixels / 257.0)
        expected = np.rint(rgb.astype(np.float64) @ [0.299, 0.587, 0.114])
    else:
        expected = pixels
    assert image.volume.frames.dtype.byteorder in ("=", "|")
    assert np.array_equal(image.volume.frames, expected.astype(image.volume.frames.dtype))


# SHA-256 (first 16 hex digits) of the pixels pydicom 3.0 decodes, little-endian: pydicom 2.4 must give the same.
PYDICOM_3_PIXELS = {
    "MR_small_bigendian.dcm": "88617aaa46138fb1",
    "SC_rgb_small_odd_big_endian.dcm": "ef2df252ba3cd066",
    "SC_rgb_rle_2frame.dcm": "026dac3bc332e46b",
    "SC_jpeg_no_color_transform.dcm": "b095963c15d9d3d8",  # JPEG storing RGB: no colour transform
    "JPGExtended.dcm": "b1d76492f77a12c5",
    "SC_rgb_jpeg_gdcm.dcm": "169e619557b12114",
    "MR_small_jpeg_ls_lossless.dcm": "88617aaa46138fb1",
    "MR_small_jp2klossless.dcm": "88617aaa46138fb1",
    "GDCMJ2K_TextGBR.dcm": "bea5673fdd49313f",
    "SC_ybr_full_422_uncompressed.dcm": "ddb100d8f45a7fbf",  # YCbCr stored: RGB out
    "SC_rgb_dcmtk_+eb+cy+np.dcm": "dd0201297dfb9448",  # JPEG YBR_FULL_422: RGB out
    "examples_ybr_color.dcm": "4e5a7293e30281ca",  # a JPEG echo cine, as scanners write them
    "examples_palette.dcm": "66e6c512c39591b2",
    "examples_jpeg2k.dcm": "e16892020c73095e",
    "JPGLosslessP14SV1_1s_1f_8b.dcm": "36e27e4f1e87a7d5",  # pydicom-data's ultrasound files from here on
    "gdcm-US-ALOKA-16.dcm": "ee2a4d1309ce1587",
    "color3d_jpeg_baseline.dcm": "2701df1f19ab67d8",
    "US1_J2KR.dcm": "e16892020c73095e",
}


@pytest.mark.parametrize("name", sorted(PYDICOM_3_PIXELS))
def test_pydicom_2_4_and_3_decode_the_same_pixels(name):
    """Slicer 5.10 ships pydicom 2.4.4: CI runs this file with it too (.ci/run)."""
    pixels = np.ascontiguousarray(decode_pixels(pydicom.dcmread(_codec_file(name))))
    digest = hashlib.sha256(pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()).hexdigest()
    assert digest[:16] == PYDICOM_3_PIXELS[name]


def test_ybr_full_uncompressed_is_converted_to_rgb_first(tmp_path):
    ds = example("rgb_color")
    ybr = convert_color_space(example("rgb_color").pixel_array, "RGB", "YBR_FULL")
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = ybr.tobytes()
    image = read_dicom(_save(ds, tmp_path / "ybr.dcm"))
    assert np.abs(image.rgb[0].astype(int) - example("rgb_color").pixel_array).max() <= 2  # YCbCr round trip


def test_non_image_dicom_is_named(tmp_path):
    from pydicom.data import get_testdata_file
    with pytest.raises(InputError, match=r"rtplan.dcm: DICOM file without image pixels \(RT Plan Storage\)"):
        read_dicom(get_testdata_file("rtplan.dcm"))
    with pytest.raises(InputError, match="MR_truncated.dcm: the pixel data is incomplete .* the file is truncated"):
        read_dicom(get_testdata_file("MR_truncated.dcm"))


def test_files_of_one_series_stay_one_new_series(tiny_model, tmp_path):
    from speckle2self.inference.pipeline import denoise_files
    study = tmp_path / "series"
    study.mkdir()
    for i in range(3):
        ds = example("rgb_color")
        ds.SOPInstanceUID, ds.InstanceNumber = pydicom.uid.generate_uid(), i + 1
        _save(ds, study / f"img{i}.dcm")
    reports = denoise_files([study], tmp_path / "out", model=tiny_model, device="cpu")
    assert all(r.ok for r in reports)
    out = [pydicom.dcmread(tmp_path / "out" / f"img{i}.dcm") for i in range(3)]
    assert len({d.SeriesInstanceUID for d in out}) == 1
    assert out[0].SeriesInstanceUID != example("rgb_color").SeriesInstanceUID
    assert len({d.SOPInstanceUID for d in out}) == 3


def test_a_dicomdir_expands_to_the_images_it_lists():
    from pydicom.data import get_testdata_file
    from speckle2self.inference.pipeline import expand_inputs
    dicomdir = get_testdata_file("DICOMDIR")
    found = expand_inputs([dicomdir])
    assert len(found) == 31 and all(p.is_file() for p, _ in found)
    assert all(not str(rel).startswith("/") for _, rel in found)


@pytest.mark.skipif(pydicom_major() < 3, reason="pydicom 2.4 cannot encode JPEG 2000, which makes this test's file")
def test_ybr_ict_jpeg2000_decodes_to_rgb(tmp_path):
    from pydicom.uid import JPEG2000
    ds = example("rgb_color")
    ds.compress(JPEG2000, j2k_cr=[10], use_mct=True)  # irreversible colour transform
    ds.PhotometricInterpretation = "YBR_ICT"
    image = read_dicom(_save(ds, tmp_path / "ict.dcm"))
    error = np.abs(image.rgb[0].astype(int) - example("rgb_color").pixel_array.astype(int))
    assert error.mean() < 8  # lossy 10:1; a colour-space mix-up would be off by tens of levels


def test_segmented_16_bit_palette_is_expanded(tmp_path):
    ds = example("palette_color")
    for colour, end in (("Red", 65535), ("Green", 32768), ("Blue", 0)):
        delattr(ds, f"{colour}PaletteColorLookupTableData")
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        segments = np.array([0, 1, 0, 1, 255, end], dtype="<u2").tobytes()  # discrete 0, then linear ramp
        ds.add_new(pydicom.datadict.tag_for_keyword(f"Segmented{colour}PaletteColorLookupTableData"), "OW", segments)
    image = read_dicom(_save(ds, tmp_path / "segmented.dcm"))
    index = example("palette_color").pixel_array.astype(np.float64)
    assert np.array_equal(image.rgb[0][..., 0], np.rint(np.rint(index / 255 * 65535) / 257).astype(np.uint8))
    assert image.rgb[0][..., 2].max() == 0 and image.rgb[0][..., 1].max() == 128


def test_a_single_frame_series_folder_becomes_one_ordered_volume(tiny_model, tmp_path):
    from speckle2self.inference.pipeline import denoise_files
    study = tmp_path / "series"
    study.mkdir()
    for i, instance in enumerate([3, 1, 2]):  # files on disk out of order
        ds, _ = _grey_dataset()
        ds.PixelData = np.full((240, 320), 40 * instance, np.uint8).tobytes()
        ds.SOPInstanceUID, ds.InstanceNumber = pydicom.uid.generate_uid(), instance
        _save(ds, study / f"file{i}.dcm")
    reports = denoise_files([study], tmp_path / "series.nrrd", model=tiny_model, device="cpu")
    assert reports[0].ok, reports[0].error
    vol = read_volume(tmp_path / "series.nrrd")
    assert vol.frames.shape == (3, 240, 320)
    assert [int(np.median(f)) for f in vol.frames] == [40, 80, 120]  # constant frames pass through, in order
    assert vol.spacing[:2] == (0.2, 0.1)


def test_a_folder_of_several_series_cannot_become_one_file(tiny_model, tmp_path):
    from speckle2self.inference.pipeline import denoise_files
    study = tmp_path / "two"
    study.mkdir()
    _save(example("rgb_color"), study / "a.dcm")
    other = example("rgb_color")
    other.SeriesInstanceUID = pydicom.uid.generate_uid()
    _save(other, study / "b.dcm")
    reports = denoise_files([study], tmp_path / "one.nrrd", model=tiny_model, device="cpu")
    assert not reports[0].ok and "holds 2 DICOM series" in reports[0].error
    assert not (tmp_path / "one.nrrd").exists()


def test_8_bit_palette_lookup_tables(tmp_path):
    ds = example("palette_color")
    ramp = np.arange(256, dtype=np.uint8)
    for colour, lut in (("Red", ramp), ("Green", 255 - ramp), ("Blue", ramp // 2)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 8])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut.tobytes())
    image = read_dicom(_save(ds, tmp_path / "pal8.dcm"))
    index = example("palette_color").pixel_array.astype(np.uint8)
    assert np.array_equal(image.rgb[0], np.stack([index, 255 - index, index // 2], axis=-1))


def test_a_compressed_file_no_decoder_can_read_names_the_decoders_to_install(ybr_cine, monkeypatch):
    """Slicer ships no pylibjpeg: pydicom then fails on JPEG 2000, JPEG-LS and lossless JPEG files."""
    def no_decoder(ds):
        raise RuntimeError("Unable to decode the pixel data as there are no pixel data handlers available")
    monkeypatch.setattr("speckle2self.io.dicom_read.decode_pixels", no_decoder)
    with pytest.raises(InputError, match=r"cine.dcm: cannot decode the pixels \(JPEG Baseline.*pylibjpeg-libjpeg"):
        read_dicom(ybr_cine)


def test_a_librarys_own_failure_on_one_file_is_reported_and_the_batch_goes_on(tiny_model, tmp_path, monkeypatch):
    from speckle2self.inference import pipeline
    study = tmp_path / "study"
    study.mkdir()
    for name in ("a.dcm", "b.dcm"):
        ds = example("rgb_color")
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        _save(ds, study / name)
    write = pipeline.write_dicom

    def fails_on_a(path, *args, **kwargs):
        if Path(path).name == "a.dcm":
            raise ValueError("With tag (0028,0010) got exception: bad value")
        return write(path, *args, **kwargs)
    monkeypatch.setattr(pipeline, "write_dicom", fails_on_a)
    reports = pipeline.denoise_files([study], tmp_path / "out", model=tiny_model, device="cpu")
    assert [(r.input.name, r.ok) for r in reports] == [("a.dcm", False), ("b.dcm", True)]
    assert "ValueError: With tag (0028,0010) got exception: bad value" in reports[0].error
    assert (tmp_path / "out" / "b.dcm").is_file() and not (tmp_path / "out" / "a.dcm").exists()


def test_a_rescale_that_is_not_applied_is_said(tmp_path):
    ds = example("ybr_color")
    ds.RescaleSlope, ds.RescaleIntercept = 2, -10
    image = read_dicom(_save(ds, tmp_path / "rescaled.dcm"))
    assert any("Rescale Slope 2 and Intercept -10 are not applied" in w for w in image.warnings)


def test_per_frame_pixel_spacings_that_differ_are_said(tmp_path):
    from pydicom.dataset import Dataset
    ds = example("ybr_color")
    ds.PixelSpacing = [0.1, 0.1]
    groups = []
    for i in range(int(ds.NumberOfFrames)):
        measures, group = Dataset(), Dataset()
        measures.PixelSpacing = [0.1 + 0.3 * i / (int(ds.NumberOfFrames) - 1)] * 2
        group.PixelMeasuresSequence = [measures]
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = groups
    image = read_dicom(_save(ds, tmp_path / "per_frame.dcm"))
    assert any("pixel spacings vary from 0.1 to 0.4 mm; 0.1 × 0.1 mm is used for every frame" in w
               for w in image.warnings)
