"""Fine-tuning on a study: lazy frames, held-out validation, schedule, early stopping, logs, safety."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from speckle2self.errors import InputError, Speckle2SelfError
from speckle2self.finetune.files import finetune_files
from speckle2self.io import FrameCache, LazyVolume, Volume, read_volume, write_volume
from speckle2self.finetune.loss_log import read_csv
from speckle2self.networks.model_file import load_model
from speckle2self.evaluation.phantoms import make_cine
from speckle2self.training.loop import TrainConfig, _lr_at, train
from speckle2self.training.training_data import TrainingFrames

from conftest import TINY

FAST = dict(crop=48, batch_size=2, device="cpu")


@pytest.fixture()
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for i in range(3):
        write_volume(folder / f"cine{i}.nrrd", Volume(make_cine(4, (64, 72), seed=i).envelope.astype(np.float32)))
    return folder


def test_lazy_volume_reads_the_header_first_and_pixels_on_demand(study):
    cache = FrameCache()
    vol = LazyVolume(study / "cine0.nrrd", cache)
    assert vol.shape == (4, 64, 72) and vol.dtype == np.float32 and cache.items == {}
    assert np.array_equal(vol[2], read_volume(study / "cine0.nrrd").frames[2])
    assert list(cache.items) == [study / "cine0.nrrd"]


def test_frame_cache_keeps_memory_within_its_budget(study):
    one_file = 4 * 64 * 72 * 4
    cache = FrameCache(budget_bytes=int(1.5 * one_file))
    vols = [LazyVolume(study / f"cine{i}.nrrd", cache) for i in range(3)]
    for v in vols:
        v[0]
    assert list(cache.items) == [study / "cine2.nrrd"]


def test_held_out_frames_are_disjoint_from_training_frames_and_reproducible():
    frames = TrainingFrames([np.random.rand(10, 32, 32)], crop=16)
    train_a, val_a = frames.split(0.2, seed=3)
    train_b, val_b = frames.split(0.2, seed=3)
    assert len(val_a) == 2 and len(train_a) == 8
    assert set(val_a.index).isdisjoint(train_a.index) and val_a.index == val_b.index


def test_too_few_frames_for_validation_is_named():
    with pytest.raises(InputError, match="1 frames are too few to hold out 50%"):
        TrainingFrames([np.random.rand(32, 32)], crop=16).split(0.5, seed=0)


def test_cosine_schedule_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1e-3, lr_schedule="cosine", min_lr_ratio=0.1)
    assert _lr_at(cfg, 0) == pytest.approx(1e-3) and _lr_at(cfg, 50) == pytest.approx(5.5e-4)
    assert _lr_at(cfg, 100) == pytest.approx(1e-4)


def test_early_stopping_ends_the_run_when_validation_stops_improving(training_frames):
    frames = TrainingFrames(training_frames, crop=48)
    train_part, val_part = frames.split(0.25, seed=0)
    result = train(train_part, TrainConfig(steps=50, crop=48, batch_size=2, lr=1e-12, val_every=1, patience=2),
                   arch=TINY, device="cpu", validation=val_part)
    assert result.steps_done == 3 and result.stop_reason.startswith("early stopping")
    assert [h.get("validation") is not None for h in result.history] == [True, True, True]


def test_validation_loss_picks_the_best_weights(training_frames):
    frames = TrainingFrames(training_frames, crop=48)
    train_part, val_part = frames.split(0.25, seed=0)
    result = train(train_part, TrainConfig(steps=20, crop=48, batch_size=2, val_every=5), arch=TINY,
                   device="cpu", validation=val_part)
    vals = [h["validation"] for h in result.history if "validation" in h]
    assert len(vals) == 4 and result.best_val_loss == pytest.approx(min(vals))


def test_study_fine_tuning_writes_model_log_and_curves(study, tiny_model, tmp_path):
    out = tmp_path / "tuned.pt"
    outcome = finetune_files([study], out, init=tiny_model, steps=12, val_every=4, **FAST)
    card = load_model(out).card["training"]
    assert card["parent_sha256"] == load_model(tiny_model).sha256
    assert card["data_summary"] == {"arrays": 3, "frames": 11, "frame_shapes": [[64, 72]], "domains": ["envelope"]}
    assert "cine" not in str(card["data_summary"])  # counts and sizes only, no names
    rows = read_csv(outcome.log_csv)
    assert [r["step"] for r in rows] == list(range(1, 13)) and sum("validation" in r for r in rows) == 3
    png = read_volume(outcome.log_png)
    assert png.data.shape[:2] == (400, 700)


def test_nan_frames_in_a_study_name_the_file_and_frame(tmp_path, tiny_model):
    data = make_cine(3, (64, 64), seed=1).envelope.astype(np.float32)
    data[1, 5, 5] = np.nan
    write_volume(tmp_path / "bad.nrrd", Volume(data))
    with pytest.raises(InputError, match=r"bad.nrrd: frame 1 contains NaN"):
        finetune_files([tmp_path / "bad.nrrd"], tmp_path / "m.pt", init=tiny_model, steps=30, val_fraction=0, **FAST)
    assert not (tmp_path / "m.pt").exists()


def test_a_study_with_no_readable_frames_is_refused(tmp_path, tiny_model):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError, match="folder contains no supported image files"):
        finetune_files([tmp_path / "empty"], tmp_path / "m.pt", init=tiny_model, **FAST)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(study, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "m.pt"
    finetune_files([study], out, init=tiny_model, steps=4, **FAST)
    ckpt = tmp_path / "m.pt.ckpt"
    before, model_before = ckpt.read_bytes(), out.read_bytes()

    def disk_full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(Speckle2SelfError, match="could not write the checkpoint .*No space left on device.*unchanged"):
        finetune_files([study], out, init=tiny_model, steps=4, **FAST)
    assert ckpt.read_bytes() == before and out.read_bytes() == model_before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_interrupted_study_run_resumes_to_the_same_model(study, tiny_model, tmp_path):
    whole = finetune_files([study], tmp_path / "a.pt", init=tiny_model, steps=8, checkpoint_every=4, **FAST)
    calls = {"n": 0}

    def stop_at_4():
        calls["n"] += 1
        return calls["n"] > 4

    finetune_files([study], tmp_path / "b.pt", init=tiny_model, steps=8, checkpoint_every=4, should_stop=stop_at_4,
                   **FAST)
    resumed = finetune_files([study], tmp_path / "b.pt", init=tiny_model, steps=8, resume=tmp_path / "b.pt.ckpt",
                             **FAST)
    assert resumed.steps == whole.steps == 8
    a, b = load_model(tmp_path / "a.pt").module.state_dict(), load_model(tmp_path / "b.pt").module.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_each_process_takes_its_own_share_of_the_global_batch():
    from speckle2self.training.distributed import DistContext
    batch = torch.arange(8).reshape(8, 1)
    assert DistContext(rank=1, world=2).shard(batch).flatten().tolist() == [4, 5, 6, 7]
    assert DistContext().shard(batch) is batch
    with pytest.raises(InputError, match="batch size 8 must be divisible by the 3 processes"):
        DistContext(rank=0, world=3).shard(batch)


def _weights(path):
    return torch.cat([v.flatten() for v in load_model(path).module.state_dict().values()])


def test_two_gloo_processes_equal_one_process(study, tiny_model, tmp_path):
    common = ["finetune", str(study), "--from", str(tiny_model), "--steps", "4", "--crop", "48",
              "--batch-size", "4", "--device", "cpu", "--val-fraction", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    single = subprocess.run([sys.executable, "-m", "speckle2self", *common, "-o", str(tmp_path / "one.pt")],
                            capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "-m", "speckle2self", *common, "-o", str(tmp_path / "two.pt")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert torch.allclose(_weights(tmp_path / "one.pt"), _weights(tmp_path / "two.pt"), atol=1e-5)
    assert multi.stdout.count("wrote ") == 1  # only rank 0 writes and reports


def test_finetuning_keeps_the_parent_models_loss_weights(study, tmp_path):
    from speckle2self.training.losses import LossWeights
    from speckle2self.networks.model_file import export_model
    frames = [make_cine(2, (64, 64), seed=9).envelope[0].astype(np.float32)]
    parent = train(frames, TrainConfig(steps=2, batch_size=2, crop=48, weights=LossWeights(1.0, 0.7, respeckle=0.5)),
                   arch=TINY,
                   device="cpu")
    export_model(parent.net.denoiser(), parent.card("parent"), tmp_path / "parent.pt")
    outcome = finetune_files([study], tmp_path / "child.pt", init=tmp_path / "parent.pt", steps=2, val_fraction=0,
                             **FAST)
    child = load_model(outcome.model_path)
    assert child.card["training"]["config"]["weights"] == {"reconstruction": 1.0, "consistency": 0.7,
                                                           "local_mean": 0.0, "local_mean_window": 8,
                                                           "respeckle": 0.5, "reconstruction_norm": "mse",
                                                           "consistency_band": "full"}
