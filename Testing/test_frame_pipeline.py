"""The prepared pipeline: work done once per cine (or per live geometry), then batch after batch;
and the automatic precision on CPU."""
import numpy as np
import pytest
import torch

from speckle2self.networks.devices import cpu_has_native_bfloat16
from speckle2self.inference.api import denoise, get_model, prepare
from speckle2self.inference.output_checks import value_range
from speckle2self.inference import runner as runner_module
from speckle2self.inference.runner import ModelRunner, automatic_precision


def _bmode(cine):
    return np.clip(np.rint(255 * cine.envelope / cine.envelope.max()), 0, 255).astype(np.uint8)


def test_a_prepared_pipeline_run_batch_by_batch_equals_denoise(tiny_model, cine):
    frames = _bmode(cine)
    pipeline = prepare(frames, model=tiny_model, device="cpu", precision="float32")
    bounds = value_range(frames)  # denoise keeps results in the whole cine's range, run in its batch's by default
    batches = np.concatenate([pipeline.run(frames[i:i + 2], bounds=bounds) for i in range(0, len(frames), 2)])
    # The same batches: float32 sums in the network differ by ~1e-4 grey levels between batch sizes
    whole = denoise(frames, model=tiny_model, device="cpu", precision="float32", batch_size=2)
    assert np.array_equal(batches, whole)


def test_a_pipeline_fits_frames_of_its_size_and_type_only(tiny_model, cine):
    frames = _bmode(cine)
    pipeline = prepare(frames, model=tiny_model, device="cpu")
    assert pipeline.fits(frames[:1]) and not pipeline.fits(frames[:, :-1]) and not pipeline.fits(frames.astype(float))


def test_saturated_pixels_inside_the_image_come_back_unchanged(tiny_model, cine):
    frames = _bmode(cine)
    frames[:, 40:44, 50:60] = 255
    out = prepare(frames, model=tiny_model, device="cpu").run(frames)
    assert np.array_equal(out[:, 40:44, 50:60], frames[:, 40:44, 50:60])


def test_auto_precision_is_bfloat16_only_on_cpus_that_compute_it_natively():
    expected = "bfloat16" if cpu_has_native_bfloat16() else "float32"
    assert automatic_precision(torch.device("cpu")) == expected
    assert automatic_precision(torch.device("cuda")) == "float16"


def test_auto_precision_keeps_float32_on_cpu_where_the_result_is_finer_than_8_bits():
    assert automatic_precision(torch.device("cpu"), eight_bit_output=False) == "float32"
    assert automatic_precision(torch.device("cuda"), eight_bit_output=False) == "float16"


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_frames_finer_than_8_bits_come_back_as_float32_would_make_them(tiny_model, cine, dtype):
    frames = (_bmode(cine)[:2].astype(np.float64) * (257 if dtype == np.uint16 else 1.001)).astype(dtype)
    auto = denoise(frames, model=tiny_model, device="cpu")
    assert np.array_equal(auto, denoise(frames, model=tiny_model, device="cpu", precision="float32"))


@pytest.mark.skipif(not cpu_has_native_bfloat16(), reason="this CPU has no native bfloat16")
def test_auto_precision_falls_back_to_float32_when_the_first_batch_disagrees(tiny_model, cine, monkeypatch):
    monkeypatch.setattr(runner_module, "HALF_TOLERANCE", 0.0)  # any difference at all counts as disagreement
    runner = ModelRunner(get_model(tiny_model), "cpu", "auto")
    assert runner.dtype == torch.bfloat16
    reference = ModelRunner(get_model(tiny_model), "cpu", "float32")
    batch = (_bmode(cine)[:1] / 255.0).astype(np.float32)
    assert np.array_equal(runner.run(batch), reference.run(batch))
    assert runner.dtype == torch.float32 and "using float32" in runner.notes[0]


def test_a_card_asking_for_two_passes_runs_the_network_again_on_its_own_output(tiny_model, cine, tmp_path):
    import copy
    from speckle2self.networks.model_file import export_model, load_model
    frames = _bmode(cine)[:2]
    loaded = load_model(tiny_model)
    card = copy.deepcopy(loaded.card)
    card["input"]["passes"] = 2
    export_model(loaded.module, card, tmp_path / "two.pt")
    pipeline = prepare(frames, model=tiny_model, device="cpu", precision="float32")
    norm, saved = pipeline.mapping.to_network(frames)
    twice = pipeline.runner.run(np.ascontiguousarray(np.clip(pipeline.runner.run(norm), 0, 1), dtype=np.float32))
    expected = np.clip(np.rint(pipeline.mapping.from_network(twice, saved)), 0, 255).astype(np.uint8)
    np.copyto(expected, frames, where=pipeline.mapping.unchanged(saved))
    two = denoise(frames, model=tmp_path / "two.pt", device="cpu", precision="float32", batch_size=2)
    assert np.abs(two.astype(int) - expected).max() <= 1  # float32 rounding at .5
    assert not np.array_equal(two, denoise(frames, model=tiny_model, device="cpu", precision="float32", batch_size=2))
