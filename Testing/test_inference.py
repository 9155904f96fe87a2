"""denoise(): contract (shape, dtype, range, geometry of values), bad input, tiling, batching, cancel."""
import numpy as np
import pytest

import speckle2self
from speckle2self.errors import Cancelled, InputError
from speckle2self.inference.api import denoise


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_same_shape_and_dtype_back_in_the_inputs_range(tiny_model, cine, dtype):
    env = cine.envelope
    frames = (env / env.max() * (200 if dtype != np.float64 else 1.0)).astype(dtype)
    out = denoise(frames, model=tiny_model, device="cpu")
    assert out.shape == frames.shape and out.dtype == frames.dtype
    assert out.min() >= frames.min() and out.max() <= frames.max()


def test_a_single_2d_frame_comes_back_2d(tiny_model, phantom):
    out = denoise(phantom.envelope, model=tiny_model, device="cpu")
    assert out.shape == phantom.envelope.shape and out.ndim == 2


def test_input_is_never_modified(tiny_model, cine):
    frames = cine.envelope.astype(np.float32)
    before = frames.copy()
    denoise(frames, model=tiny_model, device="cpu")
    assert np.array_equal(frames, before)


def test_public_entry_point_is_the_same_function():
    assert speckle2self.denoise is denoise


@pytest.mark.parametrize("data, message", [
    (np.zeros((0, 64, 64)), "frames are empty"),
    (np.ones((1, 1)), "too small to denoise"),
    (np.full((32, 32), 7.0), "every pixel has the same value"),
    (np.ones((2, 3, 32, 32)), "got 4-D"),
    (np.ones((32, 32), dtype=np.complex64), "complex data is not supported"),
    (np.ones((32, 32), dtype=bool), "real numeric array"),
    (np.array([["a"] * 16] * 16), "real numeric array"),
])
def test_bad_arrays_give_one_clear_error(tiny_model, data, message):
    with pytest.raises(InputError, match=message):
        denoise(data, model=tiny_model, device="cpu")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_frame(tiny_model, cine, bad):
    frames = cine.envelope.copy()
    frames[3, 10, 10] = bad
    with pytest.raises(InputError, match="frame 3 contains NaN or infinite values"):
        denoise(frames, model=tiny_model, device="cpu")


@pytest.mark.parametrize("kwargs, message", [
    ({"domain": "log"}, "domain must be 'auto', 'envelope' or 'bmode'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"batch_size": -1}, "batch_size must be at least 1"),
])
def test_bad_options_are_named(tiny_model, phantom, kwargs, message):
    with pytest.raises(InputError, match=message):
        denoise(phantom.envelope, model=tiny_model, **{"device": "cpu", **kwargs})


def test_cuda_request_without_a_gpu_says_so(tiny_model, phantom):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="CUDA was requested but this PyTorch build sees no CUDA GPU"):
        denoise(phantom.envelope, model=tiny_model, device="cuda")


def test_a_blank_frame_inside_a_cine_passes_through_unchanged(tiny_model, cine):
    frames = cine.envelope.astype(np.float32)
    frames[2] = 5.0
    out = denoise(frames, model=tiny_model, device="cpu")
    assert np.all(out[2] == 5.0)


def test_batch_size_does_not_change_the_result(tiny_model, cine):
    one = denoise(cine.envelope, model=tiny_model, device="cpu", batch_size=1)
    three = denoise(cine.envelope, model=tiny_model, device="cpu", batch_size=3)
    assert np.allclose(one, three, atol=1e-5 * cine.envelope.max())


def test_tiling_matches_whole_frame_inference_away_from_seams(tiny_model):
    from speckle2self.evaluation.phantoms import make_phantom
    frame = make_phantom((224, 224), seed=11).envelope
    whole = denoise(frame, model=tiny_model, device="cpu")
    tiled = denoise(frame, model=tiny_model, device="cpu", tile_size=128)
    inner = (slice(16, -16), slice(16, -16))
    floor = 1e-6 * frame.max()
    db = np.abs(20 * np.log10(np.maximum(whole, floor) / np.maximum(tiled, floor)))[inner]  # as the display shows it
    assert db.max() < 1.0 and db.mean() < 0.1


def test_progress_counts_frames_up_to_the_total(tiny_model, cine):
    seen = []
    denoise(cine.envelope, model=tiny_model, device="cpu", batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_stop_request_cancels_before_the_next_batch(tiny_model, cine):
    seen = []
    with pytest.raises(Cancelled, match="after 2 of 5 frames"):
        denoise(cine.envelope, model=tiny_model, device="cpu", batch_size=2,
                progress=lambda d, t: seen.append(d), should_stop=lambda: len(seen) >= 1)
    assert seen == [2]


def test_memory_mapped_cine_is_read_in_place_and_left_untouched(tiny_model, cine, tmp_path):
    path = tmp_path / "cine.npy"
    np.save(path, cine.envelope.astype(np.float32))
    original = path.read_bytes()
    mm = np.load(path, mmap_mode="r")
    out = denoise(mm, model=tiny_model, device="cpu")
    assert out.shape == mm.shape and not isinstance(out, np.memmap)
    assert path.read_bytes() == original


def test_eight_bit_input_is_treated_as_bmode_and_keeps_its_brightness(tiny_model, cine):
    from speckle2self.evaluation.demo import display_bmode
    bmode = np.stack([display_bmode(f, 60.0) for f in cine.envelope])
    out = denoise(bmode, model=tiny_model, device="cpu")
    assert out.dtype == np.uint8
    per_frame = np.abs(out.reshape(len(out), -1).mean(1) - bmode.reshape(len(bmode), -1).mean(1))
    assert per_frame.max() < 1.5
    as_env = denoise(bmode, model=tiny_model, device="cpu", domain="envelope")
    assert not np.array_equal(out, as_env)


def test_bmode_black_background_stays_black_and_tissue_keeps_its_brightness(tiny_model, cine):
    from speckle2self.evaluation.demo import display_bmode
    bmode = np.stack([display_bmode(f, 60.0) for f in cine.envelope])
    bmode = np.maximum(bmode, 1)  # tissue is never pure black ...
    bmode[:, :, :20] = 0  # ... the area outside the sector is
    out = denoise(bmode, model=tiny_model, device="cpu")
    assert np.all(out[:, :, :20] == 0)
    tissue_in = bmode[:, :, 20:].reshape(len(bmode), -1).mean(1)
    tissue_out = out[:, :, 20:].reshape(len(out), -1).mean(1)
    assert np.abs(tissue_out - tissue_in).max() < 1.5


def test_bmode_annotation_neither_sets_the_scale_nor_gets_blurred(tiny_model, cine):
    from speckle2self.evaluation.demo import display_bmode
    plain = np.stack([np.clip(display_bmode(f, 60.0), 20, 200) for f in cine.envelope])
    marked = plain.copy()
    marked[:, 2:8, 2:30] = 255  # burned-in white text
    out_plain = denoise(plain, model=tiny_model, device="cpu").astype(int)
    out_marked = denoise(marked, model=tiny_model, device="cpu")
    assert np.all(out_marked[:, 2:8, 2:30] == 255)
    far = (slice(None), slice(40, None), slice(40, None))
    assert np.abs(out_marked[far].astype(int) - out_plain[far]).mean() < 1.0


def test_bmode_annotations_on_the_background_keep_their_input_values(tiny_model, cine):
    from speckle2self.evaluation.demo import display_bmode
    frames = np.zeros((len(cine.envelope), 130, 112), np.uint8)
    frames[:, :96] = np.maximum(np.stack([display_bmode(f, 60.0) for f in cine.envelope]), 20)
    frames[:, 112:120, 10:90] = 40  # a grey toolbar below the image (4 % of the frame) ...
    frames[:, 114:118, 20:60:3] = 230  # ... with text on it
    out = denoise(frames, model=tiny_model, device="cpu")
    assert np.array_equal(out[:, 96:], frames[:, 96:])
    assert np.abs(out[:, :96].astype(int) - frames[:, :96]).mean() > 1.0


def test_envelope_point_reflector_neither_sets_the_scale_nor_is_lost(tiny_model, phantom):
    plain = phantom.envelope.astype(np.float32)
    marked = plain.copy()
    marked[10, 10] = 100.0 * plain.max()  # a wire target 40 dB above the brightest speckle
    out_plain = denoise(plain, model=tiny_model, device="cpu", domain="envelope")
    out_marked = denoise(marked, model=tiny_model, device="cpu", domain="envelope")
    assert out_marked[10, 10] > 0.95 * marked[10, 10]  # still 40 dB above the speckle
    far = (slice(40, None), slice(40, None))
    assert np.abs(out_marked[far] - out_plain[far]).mean() < 0.02 * plain.std()
