"""The Slicer adapter's logic, tested without Slicer: arrays in the shapes Slicer gives
(arrayFromVolume: (K, J, I) scalar, (K, J, I, C) vector; one (1, J, I[, C]) array per sequence item)."""
import numpy as np
import pytest

from speckle2self.errors import Cancelled, InputError
from speckle2self.inference import denoise
from speckle2self.slicer_support import (ProgressInfo, ProgressRelay, blend, chunks, denoise_frame_stream,
                                         denoise_volume_array, card_summary, collect_frames, display_window, frames_from_volume_array,
                                         loss_curve_rows)


def test_scalar_volume_frames_are_the_array_itself():
    arr = np.random.rand(3, 10, 12).astype(np.float32)
    frames, notes = frames_from_volume_array(arr, is_vector=False)
    assert frames is arr and notes == []


def test_rgb_volume_becomes_grey_by_luma():
    arr = np.zeros((2, 4, 5, 3), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 10, 20, 250
    frames, notes = frames_from_volume_array(arr, is_vector=True)
    assert frames.shape == (2, 4, 5) and frames.dtype == np.uint8
    assert np.all(frames == round(0.299 * 10 + 0.587 * 20 + 0.114 * 250))
    assert "RGB to grey" in notes[0]


def test_wrong_array_shapes_are_named():
    with pytest.raises(InputError, match=r"vector volume should give a \(K, J, I, C\) array"):
        frames_from_volume_array(np.zeros((4, 5, 3)), is_vector=True)
    with pytest.raises(InputError, match=r"scalar volume should give a \(K, J, I\) array"):
        frames_from_volume_array(np.zeros((4, 5)), is_vector=False)


def test_blend_mixes_in_the_inputs_dtype():
    a = np.full((2, 2), 100, np.uint8)
    b = np.full((2, 2), 200, np.uint8)
    assert np.all(blend(a, b, 0.25) == 125) and blend(a, b, 0.25).dtype == np.uint8
    assert np.array_equal(blend(a, b, 0.0), a) and blend(a, b, 1.0) is b
    with pytest.raises(InputError, match="strength must be between 0 and 1"):
        blend(a, b, 1.5)


def test_progress_relay_reports_whole_job_counts_and_rate():
    ticks = iter([0.0, 2.0, 4.0])
    seen = []
    relay = ProgressRelay(10, seen.append, clock=lambda: next(ticks))
    relay.at_offset(0)(4, 4)
    relay.at_offset(4)(6, 6)
    assert seen == [ProgressInfo(4, 10, 2.0), ProgressInfo(10, 10, 2.5)]
    assert seen[1].percent == 100 and seen[1].text == "10 / 10 frames, 2.5 frames/s"


def test_chunks_cover_everything_once():
    assert list(chunks(7, 3)) == [(0, 3), (3, 6), (6, 7)]


def test_volume_denoising_matches_the_engine_and_leaves_input_alone(tiny_model, cine):
    arr = cine.envelope.astype(np.float32)
    before = arr.copy()
    out, notes = denoise_volume_array(arr, False, model=tiny_model, device="cpu")
    assert np.array_equal(out, denoise(arr, model=tiny_model, device="cpu"))
    assert np.array_equal(arr, before) and notes == []


def test_half_strength_is_halfway(tiny_model, cine):
    arr = cine.envelope.astype(np.float32)
    full, _ = denoise_volume_array(arr, False, model=tiny_model, device="cpu")
    half, _ = denoise_volume_array(arr, False, strength=0.5, model=tiny_model, device="cpu")
    assert np.allclose(half, (arr + full) / 2, atol=1e-6)


def _sequence(cine, rgb=False):
    frames = cine.envelope / cine.envelope.max() * 255
    items = [np.round(f).astype(np.uint8)[None] for f in frames]
    return [np.repeat(i[..., None], 3, axis=-1) for i in items] if rgb else items


def test_cine_streams_frame_by_frame_like_the_whole_stack(tiny_model, cine):
    items = _sequence(cine)
    written = {}
    reads = []

    def read(i):
        reads.append(i)
        return items[i]

    denoise_frame_stream(read, written.__setitem__, len(items), False, chunk=2, model=tiny_model, device="cpu")
    whole = denoise(np.concatenate(items), model=tiny_model, device="cpu")
    assert sorted(written) == list(range(len(items))) and reads == list(range(len(items)))
    assert all(np.array_equal(written[i], whole[i]) for i in written)


def test_rgb_cine_is_denoised_as_grey(tiny_model, cine):
    written = {}
    notes = denoise_frame_stream(_sequence(cine, rgb=True).__getitem__, written.__setitem__, 5, True,
                                 model=tiny_model, device="cpu")
    assert written[0].shape == cine.envelope.shape[1:] and written[0].dtype == np.uint8
    assert notes == ["converted RGB to grey (0.299 R + 0.587 G + 0.114 B)"]


def test_cine_cancel_stops_within_a_chunk(tiny_model, cine):
    written = {}
    seen = []
    with pytest.raises(Cancelled, match="within frames 0-1 of 5"):
        denoise_frame_stream(_sequence(cine).__getitem__, written.__setitem__, 5, False, chunk=2,
                             progress=seen.append, should_stop=lambda: len(seen) >= 1,
                             model=tiny_model, device="cpu", batch_size=1)
    assert sorted(written) == []  # the first chunk never completed: stop came after its first batch


def test_empty_sequence_is_refused(tiny_model):
    with pytest.raises(InputError, match="the sequence has no frames"):
        denoise_frame_stream(lambda i: None, lambda i, f: None, 0, False, model=tiny_model)


def test_display_window_spans_the_result():
    frames = np.linspace(0, 100, 1000).reshape(1, 10, 100)
    width, level = display_window(frames)
    assert level == pytest.approx(50, abs=1) and width == pytest.approx(98, abs=1)


def test_card_summary_names_architecture_data_and_parent(tiny_model):
    from speckle2self.model_file import load_model
    loaded = load_model(tiny_model)
    text = card_summary(loaded.card, loaded.sha256)
    assert "widths 8-16-32-64" in text and "input: envelope" in text and "trained 6 steps on test phantoms" in text
    assert loaded.sha256[:12] in text


def test_loss_curve_rows_keep_only_step_events():
    events = [{"event": "started"}, {"event": "step", "step": 5, "loss": 0.5, "reconstruction": 0.4, "consistency": 1.0},
              {"event": "step", "step": 10, "loss": 0.3, "reconstruction": 0.2, "consistency": 1.0}]
    assert loss_curve_rows(events).tolist() == [[5, 0.5, 0.4, 1.0], [10, 0.3, 0.2, 1.0]]
    assert loss_curve_rows([]).shape == (0, 4)


def test_collect_frames_stacks_a_cine_as_grey(cine):
    items = _sequence(cine, rgb=True)
    stack = collect_frames(items.__getitem__, len(items), True)
    assert stack.shape == (5,) + cine.envelope.shape[1:] and stack.dtype == np.uint8
    assert np.array_equal(stack[3], items[3][0, ..., 0])
