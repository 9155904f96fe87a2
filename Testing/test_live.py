"""LiveDenoiser: frames in from any thread, the newest wins, results out with their metadata.

Real threads and a real (tiny, trained) model; timing figures live in Testing/benchmarks/benchmark_live.py.
"""
import threading

import numpy as np
import pytest

from speckle2self.inference.api import denoise
from speckle2self.live.denoiser import LiveDenoiser

WAIT = 60.0  # generous bound for a loaded CI machine; never reached when things work


def _frames(cine, count=4):
    grey = cine.envelope / cine.envelope.max()
    return [np.clip(np.rint(255 * g), 0, 255).astype(np.uint8) for g in grey[:count]]


@pytest.fixture
def live(tiny_model):
    denoiser = LiveDenoiser(tiny_model, device="cpu", precision="float32")
    yield denoiser
    denoiser.stop()


def test_a_result_carries_its_frames_metadata_and_denoise_gives_the_same_pixels(live, tiny_model, cine):
    frame = _frames(cine, 1)[0]
    meta = {"timestamp": 1234.5, "matrix": np.eye(4), "name": "Image_Reference"}
    live.submit(frame, meta)
    result = live.latest(timeout=WAIT)
    assert result.meta is meta and result.index == 0
    assert result.frame.shape == frame.shape and result.frame.dtype == frame.dtype
    assert np.array_equal(result.frame, denoise(frame, model=tiny_model, device="cpu", precision="float32"))


def test_a_stream_of_16_bit_frames_comes_back_as_float32_would_make_it(tiny_model, cine):
    frame = _frames(cine, 1)[0].astype(np.uint16) * 257
    with LiveDenoiser(tiny_model, device="cpu") as automatic:
        automatic.submit(frame, None)
        result = automatic.latest(timeout=WAIT)
    assert result.frame.dtype == np.uint16
    assert np.array_equal(result.frame, denoise(frame, model=tiny_model, device="cpu", precision="float32"))


def test_the_caller_may_reuse_its_buffer_after_submitting(live, cine):
    frame = _frames(cine, 1)[0]
    buffer = frame.copy()
    live.submit(buffer, "first")
    buffer[:] = 0
    result = live.latest(timeout=WAIT)
    assert result.meta == "first" and result.frame.std() > 0


def test_frames_arriving_while_one_is_denoised_are_dropped_and_the_newest_is_kept(tiny_model, cine):
    frames = _frames(cine)
    started, release = threading.Event(), threading.Event()

    def hold(result):  # runs on the worker: keeps it busy until the test has submitted more frames
        started.set()
        release.wait(WAIT)

    with LiveDenoiser(tiny_model, device="cpu", precision="float32", on_result=hold) as live:
        live.submit(frames[0], 0)
        assert started.wait(WAIT)
        for i in (1, 2, 3):
            live.submit(frames[i], i)
        release.set()
        seen = [live.latest(timeout=WAIT).meta]
        while seen[-1] != 3:
            seen.append(live.latest(timeout=WAIT).meta)
        stats = live.stats()
    assert 1 not in seen and 2 not in seen
    assert stats.submitted == 4 and stats.dropped == 2 and stats.denoised == 2


def test_frames_can_come_from_several_threads(live, cine):
    frames = _frames(cine)
    threads = [threading.Thread(target=live.submit, args=(f, i)) for i, f in enumerate(frames)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert live.latest(timeout=WAIT) is not None
    stats = live.stats()
    assert stats.submitted == 4 and stats.denoised + stats.dropped <= 4


def test_the_scan_region_is_measured_once_per_frame_size(live, cine):
    frames = _frames(cine, 2)
    live.submit(frames[0])
    live.latest(timeout=WAIT)
    first = live._pipeline
    live.submit(frames[1])
    live.latest(timeout=WAIT)
    assert live._pipeline is first
    live.submit(frames[1][:, :-8].copy())
    assert live.latest(timeout=WAIT).frame.shape == frames[1][:, :-8].shape
    assert live._pipeline is not first and live._pipeline.runner is first.runner


def test_a_bad_frame_is_counted_and_the_stream_goes_on(live, cine):
    live.submit(np.full((64, 64), 7, np.uint8), "blank")
    live.submit(_frames(cine, 1)[0], "good")
    result = live.latest(timeout=WAIT)
    while result.meta != "good":
        result = live.latest(timeout=WAIT)
    stats = live.stats()
    assert stats.failed + stats.dropped == 1
    assert stats.failed == 0 or "same value" in stats.last_error


def test_stop_joins_the_worker_and_refuses_new_frames(tiny_model, cine):
    live = LiveDenoiser(tiny_model, device="cpu")
    live.submit(_frames(cine, 1)[0])
    live.stop()
    assert not live.running
    with pytest.raises(RuntimeError):
        live.submit(_frames(cine, 1)[0])


def test_stats_report_frames_per_second_and_latency(live, cine):
    for i, frame in enumerate(_frames(cine, 3)):
        live.submit(frame, i)
        live.latest(timeout=WAIT)
    stats = live.stats()
    assert stats.denoised == 3 and stats.frames_per_second > 0 and stats.median_latency_ms > 0
    assert "frames/s" in stats.text


def test_an_error_in_the_result_callback_is_counted_and_the_stream_goes_on(tiny_model, cine):
    calls = []

    def fail_once(result):
        calls.append(result.meta)
        if len(calls) == 1:
            raise OSError("client went away")

    with LiveDenoiser(tiny_model, device="cpu", on_result=fail_once) as live:
        for meta in ("first", "second"):
            live.submit(_frames(cine, 1)[0], meta)
            live.latest(timeout=WAIT)
        stats = live.stats()
    assert calls == ["first", "second"] and stats.failed == 1 and "client went away" in stats.last_error


def test_a_model_that_cannot_be_loaded_fails_the_constructor_and_leaves_no_thread(tmp_path):
    from speckle2self.errors import ModelFileError
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a model")
    before = set(threading.enumerate())
    with pytest.raises(ModelFileError):
        LiveDenoiser(bad, device="cpu")
    assert not set(threading.enumerate()) - before  # (an earlier test's thread may end meanwhile)



def test_a_dynamic_range_outside_10_to_120_db_is_refused_when_the_stream_is_set_up(tiny_model):
    from speckle2self.errors import InputError
    with pytest.raises(InputError, match="dynamic_range_db must be from 10 to 120 dB"):
        LiveDenoiser(tiny_model, device="cpu", dynamic_range_db=1e6)
