"""The bundled model on real clinical frames (pydicom, pydicom-data), through the same path as the
command line: speckle goes down, brightness, contrast and edges stay, no black pepper, and every
pixel outside the ultrasound image comes back bit for bit. None of these files was used in training.
"""
import numpy as np
import pytest

import real_frames as rf
from speckle2self.io.dicom_read import read_dicom
from speckle2self.inference.pipeline import dicom_hints
from speckle2self.inference.api import denoise
from speckle2self.mapping.log_mapping import LogMapping
from speckle2self.inference.api import get_model

FILES = rf.real_files()
FRAMES = 4


@pytest.fixture(scope="module", params=sorted(FILES))
def case(request):
    image = read_dicom(FILES[request.param])
    frames = image.volume.frames[:FRAMES]
    hints = dicom_hints(image)
    if hints["keep"] is not None:
        hints["keep"] = hints["keep"][:FRAMES]
    out = denoise(frames, device="cpu", domain="bmode", **hints)
    region = LogMapping(frames, "bmode", get_model(None).card["input"], 60.0, (0.0, 255.0), hints["region"]).region
    colour = hints["keep"] if hints["keep"] is not None else np.zeros(frames.shape, bool)
    areas = rf.choose_areas(frames[0], region & ~colour[0])
    kept = colour | np.stack([rf.drawn_graphics(f, region) for f in frames])  # colour and graphics: not tissue
    return request.param, frames, out, region, areas, kept


def test_all_the_files_the_issue_names_are_there():
    assert {"sonosite_echo_cine", "philips_echo", "ge_doppler", "aloka"} <= set(FILES)


def test_speckle_snr_at_least_doubles_in_homogeneous_tissue(case):
    name, frames, out, region, areas, _ = case
    assert rf.speckle_snr(out[0], areas) >= 2.0 * rf.speckle_snr(frames[0], areas), name


def test_tissue_brightness_is_kept_within_ten_percent(case):
    name, frames, out, region, areas, _ = case
    assert rf.tissue_mean(out[0], areas) == pytest.approx(rf.tissue_mean(frames[0], areas), rel=0.1), name


def test_contrast_to_the_darkest_region_is_kept_within_one_db(case):
    name, frames, out, region, areas, _ = case
    if not rf.contrast_db(out[0], areas) >= rf.contrast_db(frames[0], areas) - 1.0:
        _known_gap("contrast", name)
    assert rf.contrast_db(out[0], areas) >= rf.contrast_db(frames[0], areas) - 1.0, name


def test_edges_are_not_widened(case):
    name, frames, out, region, areas, _ = case
    if not rf.rise_distance(out[0], areas) <= 1.1 * rf.rise_distance(frames[0], areas) + 1e-9:
        _known_gap("edge", name)
    assert rf.rise_distance(out[0], areas) <= 1.1 * rf.rise_distance(frames[0], areas) + 1e-9, name


KNOWN_GAPS: dict[tuple[str, str], str] = {}
"""(test, file): why a measured gap is still open; none now (the ALOKA edge that widened was the frame
counter drawn over the image, which now comes back bit for bit)."""


def _known_gap(test: str, name: str) -> None:
    if (test, name) in KNOWN_GAPS:
        pytest.xfail(KNOWN_GAPS[(test, name)])


def test_no_more_black_pepper_than_a_7x7_median(case):
    name, frames, out, region, areas, kept = case
    passed = rf.pepper(out[0], region, kept[0]) <= rf.pepper(rf.median7(frames[0]), region, kept[0]) + 1e-6
    if not passed:
        _known_gap("pepper", name)
    assert rf.pepper(out[0], region, kept[0]) <= rf.pepper(rf.median7(frames[0]), region, kept[0]) + 1e-6, name


def test_every_pixel_outside_the_scan_region_is_unchanged(case):
    name, frames, out, region, areas, _ = case
    assert np.array_equal(out[:, ~region], frames[:, ~region]), name


def test_colour_pixels_and_drawn_graphics_are_unchanged(case):
    name, frames, out, region, areas, kept = case
    assert np.array_equal(out[kept], frames[kept]), name


def test_the_frame_counter_aloka_draws_in_grey_over_the_image_comes_back_bit_for_bit():
    image = read_dicom(FILES["aloka"])
    frames = image.volume.frames[:1]
    out = denoise(frames, device="cpu", domain="bmode", **dicom_hints(image))
    text = frames == 190  # the scanner's text grey: no tissue of this frame reaches it
    assert text.sum() > 500
    assert np.array_equal(out[text], frames[text])


def test_every_pixel_inside_the_scan_region_is_denoised(case):
    name, frames, out, region, areas, kept = case
    inside = region & ~kept[0] & (frames[0] < 255)
    assert (out[0][inside] != frames[0][inside]).mean() > 0.5, name
