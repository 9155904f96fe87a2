"""Log-domain models: what is denoised, what comes back bit for bit, and how envelope data travel."""
import numpy as np
import pytest

from speckle2self.inference.api import denoise
from speckle2self.mapping.grain import box_blur
from speckle2self.mapping.local_mean import keep_local_mean
from speckle2self.mapping.log_mapping import envelope_to_log, log_to_envelope
from speckle2self.networks.model_file import load_model


def _bmode_frame(seed=0, size=(160, 192)):
    """8-bit speckle in a rectangle (the scan region) on black, with text on the black and a marker inside."""
    rng = np.random.default_rng(seed)
    frame = np.zeros(size, np.uint8)
    speckle = 20 * np.log10(rng.rayleigh(1.0, (120, 150)) + 1e-3)
    frame[20:140, 30:180] = np.clip(150 + 4 * speckle, 1, 254).astype(np.uint8)
    frame[3:10, 5:90:4] = 255  # burned-in text
    frame[78:83, 100:105] = 255  # a caliper mark inside the image
    return frame


def test_the_card_says_the_model_is_log_domain(tiny_model):
    card = load_model(tiny_model).card
    assert card["input"]["domain"] == "log" and card["input"]["grain_px"] == [0.9, 0.9]


def test_pixels_outside_the_scan_region_come_back_bit_for_bit(tiny_model):
    frame = _bmode_frame()
    out = denoise(frame, model=tiny_model, device="cpu")
    outside = np.ones(frame.shape, bool)
    outside[20:140, 30:180] = False
    assert np.array_equal(out[outside], frame[outside])
    assert (out[22:138, 32:178] != frame[22:138, 32:178]).mean() > 0.5


def test_float_bmode_outside_the_region_is_bit_exact(tiny_model):
    frame = _bmode_frame().astype(np.float64) * 3.7 + 0.123456789
    out = denoise(frame, model=tiny_model, device="cpu", domain="bmode")
    assert out.dtype == np.float64 and np.array_equal(out[:15], frame[:15])


def test_a_marker_inside_the_image_is_kept_and_does_not_bleed(tiny_model):
    frame = _bmode_frame()
    plain = frame.copy()
    plain[78:83, 100:105] = frame[70:75, 100:105]
    out = denoise(frame, model=tiny_model, device="cpu")
    ref = denoise(plain, model=tiny_model, device="cpu")
    assert np.array_equal(out[78:83, 100:105], frame[78:83, 100:105])
    ring = np.zeros(frame.shape, bool)
    ring[74:87, 96:109] = True
    ring[78:83, 100:105] = False
    assert np.abs(out[ring].astype(int) - ref[ring].astype(int)).mean() < 3


def test_colour_pixels_passed_as_keep_are_unchanged(tiny_model):
    frame = _bmode_frame()
    keep = np.zeros(frame.shape, bool)
    keep[40:60, 60:90] = True
    out = denoise(frame, model=tiny_model, device="cpu", keep=keep)
    assert np.array_equal(out[keep], frame[keep])


def test_a_region_mask_bounds_what_is_denoised(tiny_model):
    frame = _bmode_frame()
    region = np.zeros(frame.shape, bool)
    region[20:80, 30:180] = True
    out = denoise(frame, model=tiny_model, device="cpu", region=region)
    assert np.array_equal(out[80:], frame[80:]) and (out[22:78, 32:178] != frame[22:78, 32:178]).mean() > 0.5


def test_negative_envelope_values_come_back_in_the_input_range(tiny_model):
    x = -np.random.default_rng(0).rayleigh(1.0, (64, 64)) * 1000 - 5000
    out = denoise(x, model=tiny_model, device="cpu")
    assert out.min() >= x.min() - 1e-6 * abs(x.min()) and out.max() <= x.max() + 1e-6 * abs(x.max())


def test_envelope_mean_amplitude_is_kept(tiny_model):
    x = np.random.default_rng(1).rayleigh(1.0, (2, 96, 96)).astype(np.float32)
    out = denoise(x, model=tiny_model, device="cpu")
    assert out.mean(axis=(1, 2)) == pytest.approx(x.mean(axis=(1, 2)), rel=1e-3)


def test_a_coarse_grain_is_resampled_and_the_output_has_the_input_shape(tiny_model):
    frame = _bmode_frame()
    out = denoise(frame, model=tiny_model, device="cpu", grain_px=(3.0, 3.0))
    assert out.shape == frame.shape and out.dtype == frame.dtype


def test_envelope_log_round_trip():
    x = np.random.default_rng(2).rayleigh(1.0, (2, 32, 32)).astype(np.float32) + 0.01
    grey, ref = envelope_to_log(x, 60.0)
    assert np.allclose(log_to_envelope(grey, ref, 60.0), x, rtol=1e-4)


def test_keeping_the_local_mean_restores_a_shrunk_contrast():
    noisy = np.zeros((1, 64, 64), np.float32)
    noisy[:, :, 32:] = 1.0
    shrunk = 0.5 + 0.5 * (noisy - 0.5)
    restored = keep_local_mean(shrunk, noisy, 3)
    assert abs(restored[0, 32, 5] - 0.0) < 0.05 and abs(restored[0, 32, 60] - 1.0) < 0.05
    assert np.allclose(box_blur(np.ones((1, 8, 8), np.float32), 2), 1.0)


def test_a_region_of_the_wrong_shape_is_refused(tiny_model):
    from speckle2self.errors import InputError
    with pytest.raises(InputError, match="region has shape"):
        denoise(_bmode_frame(), model=tiny_model, device="cpu", region=np.ones((10, 10), bool))


def test_a_keep_mask_of_the_wrong_shape_is_refused(tiny_model):
    from speckle2self.errors import InputError
    with pytest.raises(InputError, match="keep has shape"):
        denoise(_bmode_frame(), model=tiny_model, device="cpu", keep=np.ones((3, 10, 10), bool))


def _mapping(frame, card_input):
    from speckle2self.mapping.log_mapping import LogMapping
    return LogMapping(frame[None], "bmode", {"grain_px": [8.0, 8.0], **card_input}, 60.0, (0.0, 255.0))


def test_a_card_edge_quantile_of_one_turns_edge_restoration_off():
    frame = _bmode_frame()
    frame[60:140, 30:105] //= 3  # a dark half: a strong edge at column 105
    off = _mapping(frame, {"local_mean_radius": 0, "edge_quantile": 1.0})
    net, saved = off.to_network(frame[None])
    assert np.array_equal(off.from_network(net, saved)[0], frame)  # an identity network comes back as it went in
    on = _mapping(frame, {"local_mean_radius": 0})
    net, saved = on.to_network(frame[None])
    assert not np.array_equal(on.from_network(net, saved)[0], frame)


def test_an_edge_quantile_outside_zero_to_one_is_refused():
    from speckle2self.errors import InputError
    with pytest.raises(InputError, match="edge_quantile is 1.5"):
        _mapping(_bmode_frame(), {"edge_quantile": 1.5})


@pytest.mark.parametrize("passes", [0, 5])
def test_network_passes_outside_one_to_four_are_refused(passes):
    from speckle2self.errors import InputError
    with pytest.raises(InputError, match=f"passes is {passes}"):
        _mapping(_bmode_frame(), {"passes": passes})
