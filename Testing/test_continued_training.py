"""A finished run trains on with a new objective (train_real_model.py --continue-from)."""

import pytest
import torch

from speckle2self.errors import InputError
from speckle2self.training.loop import (TrainConfig, checkpoint_progress, continued_checkpoint, read_checkpoint,
                                        train)
from speckle2self.training.losses import LossWeights

from conftest import TINY

FAST = dict(batch_size=2, crop=48, checkpoint_every=2)


@pytest.fixture(scope="module")
def finished(training_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "first.ckpt"
    train(training_frames, TrainConfig(steps=4, **FAST), arch=TINY, device="cpu", checkpoint=path)
    return path


def test_a_finished_run_trains_on_with_new_loss_weights_and_budget(finished, training_frames, tmp_path):
    config = TrainConfig(steps=6, weights=LossWeights(consistency=0.0, local_mean=2.0), **FAST)
    path = tmp_path / "next.ckpt"
    continued_checkpoint(finished, path, config)
    saved, done = checkpoint_progress(path)
    assert done == 4 and saved.steps == 6 and saved.weights == config.weights
    result = train(training_frames, config, arch=TINY, device="cpu", checkpoint=path, resume=path)
    assert result.steps_done == 6 and result.config.weights == config.weights
    assert "local_mean" in result.final_losses
    assert checkpoint_progress(finished)[1] == 4  # the source checkpoint is left as it was


def test_a_finished_run_trains_on_in_crops_of_another_size(finished, training_frames, tmp_path):
    config = TrainConfig(steps=5, **{**FAST, "crop": 64, "batch_size": 1})
    path = tmp_path / "next.ckpt"
    continued_checkpoint(finished, path, config)
    saved, _ = checkpoint_progress(path)
    assert (saved.crop, saved.batch_size) == (64, 1)
    result = train(training_frames, config, arch=TINY, device="cpu", checkpoint=path, resume=path)
    assert result.steps_done == 5 and (result.config.crop, result.config.batch_size) == (64, 1)


def test_the_continued_run_keeps_weights_judged_by_its_own_objective(finished, training_frames, tmp_path):
    # The source's best loss was a different objective's: kept, a run whose losses are larger
    # (here a heavy local-mean term; an L1 reconstruction on real frames) would never beat it and
    # would export the source's weights unchanged.
    config = TrainConfig(steps=6, weights=LossWeights(local_mean=100.0), **FAST)
    path = tmp_path / "next.ckpt"
    continued_checkpoint(finished, path, config)
    source = read_checkpoint(finished)
    result = train(training_frames, config, arch=TINY, device="cpu", resume=path)
    assert result.best_loss > source["best_loss"]
    weights = result.net.state_dict()
    assert any(not torch.equal(weights[k], v) for k, v in source["best_state"].items())


def test_a_budget_the_run_has_already_spent_is_refused(finished, tmp_path):
    with pytest.raises(InputError, match="already trained 4 steps"):
        continued_checkpoint(finished, tmp_path / "next.ckpt", TrainConfig(steps=4, **FAST))
    assert not (tmp_path / "next.ckpt").exists()
