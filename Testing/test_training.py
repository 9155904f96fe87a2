"""Training from noisy frames only: convergence, reproducibility, stop, checkpoints, fine-tuning."""
import numpy as np
import pytest
import torch

from speckle2self.errors import InputError, ModelFileError
from speckle2self.networks.model_file import load_model
from speckle2self.evaluation.phantoms import make_phantom
from speckle2self.training.loop import TrainConfig, train

from conftest import TINY

FAST = dict(batch_size=2, crop=48)


def _weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_losses_go_down_on_generated_speckle(training_frames):
    result = train(training_frames, TrainConfig(steps=60, seed=0, **FAST), arch=TINY, device="cpu")
    totals = [h["total"] for h in result.history]
    assert np.mean(totals[-15:]) < 0.6 * np.mean(totals[:5])


def test_same_seed_gives_same_weights(training_frames):
    cfg = TrainConfig(steps=5, seed=3, **FAST)
    a = train(training_frames, cfg, arch=TINY, device="cpu")
    b = train(training_frames, cfg, arch=TINY, device="cpu")
    assert torch.equal(_weights(a.net), _weights(b.net))


def test_progress_reports_every_step_with_loss_terms(training_frames):
    seen = []
    train(training_frames, TrainConfig(steps=4, **FAST), arch=TINY, device="cpu", progress=seen.append)
    assert [r.step for r in seen] == [1, 2, 3, 4]
    assert set(seen[0].losses) == {"total", "reconstruction", "consistency"}
    assert all(r.total_steps == 4 for r in seen)


def test_stop_request_ends_cleanly_and_keeps_best_weights(training_frames):
    calls = {"n": 0}

    def stop_after_7():
        calls["n"] += 1
        return calls["n"] > 7

    result = train(training_frames, TrainConfig(steps=100, best_every=2, **FAST), arch=TINY, device="cpu",
                   should_stop=stop_after_7)
    assert result.stopped and result.steps_done == 7
    assert np.isfinite(result.best_loss)
    best_step = min((h for h in result.history if h["step"] % 2 == 0), key=lambda h: h["smoothed"])
    assert result.best_loss == pytest.approx(best_step["smoothed"])


def test_resumed_run_equals_uninterrupted_run(training_frames, tmp_path):
    cfg = TrainConfig(steps=8, checkpoint_every=4, best_every=1, **FAST)
    whole = train(training_frames, cfg, arch=TINY, device="cpu")
    ckpt = tmp_path / "run.ckpt"
    n = {"k": 0}

    def stop_at_4():
        n["k"] += 1
        return n["k"] > 4

    first = train(training_frames, cfg, arch=TINY, device="cpu", checkpoint=ckpt, should_stop=stop_at_4)
    assert first.steps_done == 4 and ckpt.exists()
    resumed = train(training_frames, cfg, arch=TINY, device="cpu", resume=ckpt)
    assert resumed.steps_done == 8
    assert torch.allclose(_weights(resumed.net), _weights(whole.net), atol=1e-6)


def test_frames_of_different_sizes_from_many_arrays():
    arrays = [make_phantom((64, 80), seed=1).envelope, make_phantom((100, 64), seed=2).envelope,
              np.stack([make_phantom((72, 72), seed=s).envelope for s in (3, 4)])]
    result = train(arrays, TrainConfig(steps=3, **FAST), arch=TINY, device="cpu")
    assert result.data_summary["frames"] == 4
    assert result.data_summary["frame_shapes"] == [[64, 80], [72, 72], [100, 64]]


def test_frames_smaller_than_the_crop_are_refused_by_name():
    with pytest.raises(InputError, match=r"array 0: frames of 32×40 pixels are smaller than the 48-pixel"):
        train([np.random.rand(32, 40)], TrainConfig(steps=1, **FAST), arch=TINY, device="cpu")


def test_fine_tuning_starts_from_the_models_weights(tiny_model, training_frames):
    parent = load_model(tiny_model)
    result = train(training_frames, TrainConfig(steps=1, lr=1e-12, **FAST), init=tiny_model, device="cpu")
    assert result.parent_sha256 == parent.sha256
    assert result.net.arch == parent.architecture
    for name, value in parent.module.state_dict().items():
        assert torch.allclose(result.net.denoiser().state_dict()[name], value, atol=1e-6), name


def test_fine_tuning_keeps_the_parents_input_and_takes_a_new_local_mean_radius(tiny_model, training_frames):
    config = TrainConfig(steps=1, batch_size=2, crop=48, network_input={"domain": "envelope", "local_mean_radius": 5})
    result = train(training_frames, config, init=tiny_model, device="cpu")
    assert result.config.network_input["domain"] == "log"
    assert result.config.network_input["grain_px"] == [0.9, 0.9]
    assert result.config.network_input["local_mean_radius"] == 5


def test_fine_tuning_from_a_file_that_is_not_a_model_is_refused(tmp_path, training_frames):
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="is not a Speckle2Self model"):
        train(training_frames, TrainConfig(steps=1, **FAST), init=bogus, device="cpu")


def test_training_card_says_no_clean_data_was_used(training_frames):
    result = train(training_frames, TrainConfig(steps=2, **FAST), arch=TINY, device="cpu")
    card = result.card("phantoms")
    assert card["training"]["clean_references_used"] is False
    assert card["training"]["steps"] == 2
    assert set(card["training"]["final_losses"]) == {"total", "reconstruction", "consistency"}


def test_consistency_warmup_ramps_the_weight_from_zero():
    from speckle2self.training.losses import LossWeights
    from speckle2self.training.loop import _weights_at
    cfg = TrainConfig(weights=LossWeights(1.0, 0.4), consistency_warmup=4)
    assert [_weights_at(cfg, s).consistency for s in (0, 2, 4, 9)] == [0.0, 0.2, 0.4, 0.4]
    assert _weights_at(cfg, 2).reconstruction == 1.0


def test_matched_consistency_trains_and_is_recorded_in_the_card(training_frames):
    from speckle2self.training.losses import LossWeights
    cfg = TrainConfig(steps=3, weights=LossWeights(consistency_band="matched"), **FAST)
    result = train(training_frames, cfg, arch=TINY, device="cpu")
    assert np.isfinite([h["consistency"] for h in result.history]).all()
    assert result.card("phantoms")["training"]["config"]["weights"]["consistency_band"] == "matched"
