"""Distillation: a fast student learns its teacher's output, resumably, and says where it came from."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speckle2self.errors import ModelFileError
from speckle2self.networks.model_file import export_model, load_model
from speckle2self.networks.network import Architecture
from speckle2self.training.distil import DistilConfig, distil, distillation_loss, student_card
from speckle2self.training.training_data import TrainingFrames

STUDENT = Architecture(widths=(8, 16), scales=(0.5, 1.0), full_res_skip=True, space_to_depth=2)


@pytest.fixture
def teacher(tiny_model):
    return load_model(tiny_model)


@pytest.fixture
def frames(teacher, training_frames):
    return TrainingFrames(training_frames, 48, network_input=dict(teacher.card["input"]))


def _gap(net, teacher, frames):
    batch = torch.from_numpy(frames.sample_crops(np.random.default_rng(99), 8)).unsqueeze(1)
    with torch.no_grad():
        return float(distillation_loss(net.denoiser()(batch), teacher.module(batch), 1.0))


def test_the_student_moves_towards_the_teachers_output(teacher, frames):
    untrained = distil(teacher, frames, STUDENT, DistilConfig(steps=1, batch_size=4, crop=48, lr=0.0))
    trained = distil(teacher, frames, STUDENT, DistilConfig(steps=60, batch_size=4, crop=48, lr=3e-3))
    assert _gap(trained, teacher, frames) < 0.6 * _gap(untrained, teacher, frames)


def test_the_edge_term_charges_a_blurred_output_but_not_an_offset_one():
    teacher = torch.zeros(1, 1, 16, 16)
    teacher[..., 8:] = 1.0
    offset, blurred = teacher + 0.1, torch.nn.functional.avg_pool2d(teacher, 3, 1, 1, count_include_pad=False)
    assert distillation_loss(offset, teacher, 3.0) == pytest.approx(distillation_loss(offset, teacher, 0.0))
    assert distillation_loss(blurred, teacher, 3.0) > distillation_loss(blurred, teacher, 1.0) > \
        distillation_loss(blurred, teacher, 0.0)


def _script(name: str, *args) -> subprocess.CompletedProcess:
    """Run one of Testing/scripts with these arguments; its exit status and output."""
    script = Path(__file__).parent / "scripts" / name
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True)


def _assert_refused_before_writing(run: subprocess.CompletedProcess, message: str, folder: Path) -> None:
    """The script stopped with a usage error saying `message`, and wrote nothing into `folder`."""
    assert run.returncode == 2
    assert message in run.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("option, value, message", [
    ("--gradient-weight", "-1", "--gradient-weight must be 0 or more, got -1.0"),
    ("--local-mean-radius", "-2", "--local-mean-radius must be 0 or more, got -2"),
    ("--lr", "0", "--lr must be more than 0, got 0.0"),
])
def test_the_distillation_script_refuses_a_negative_setting_before_reading_anything(tmp_path, option, value, message):
    run = _script("distil_student.py", "--teacher", tmp_path / "none.pt", "--out", tmp_path / "s.pt", option, value)
    _assert_refused_before_writing(run, message, tmp_path)


def test_an_interrupted_distillation_resumes_to_the_same_student(teacher, frames, tmp_path):
    config = DistilConfig(steps=8, batch_size=2, crop=48, checkpoint_every=4)
    straight = distil(teacher, frames, STUDENT, config)
    ckpt = tmp_path / "student.pt.ckpt"

    def interrupt(step, _loss):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distil(teacher, frames, STUDENT, config, ckpt, progress=interrupt)
    resumed = distil(teacher, frames, STUDENT, config, ckpt)  # from step 4
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_student_is_refused(teacher, frames, tmp_path):
    ckpt = tmp_path / "student.pt.ckpt"
    distil(teacher, frames, STUDENT, DistilConfig(steps=1, batch_size=2, crop=48), ckpt)
    other = Architecture(widths=(8, 16), scales=(0.5, 1.0), space_to_depth=2)
    with pytest.raises(ModelFileError, match="another architecture"):
        distil(teacher, frames, other, DistilConfig(steps=2, batch_size=2, crop=48), ckpt)


def test_the_student_file_reads_its_input_as_the_teacher_and_names_it(teacher, frames, tmp_path):
    config = DistilConfig(steps=1, batch_size=2, crop=48)
    net = distil(teacher, frames, STUDENT, config)
    export_model(net.denoiser(), student_card(net, teacher, config, "test phantoms"), tmp_path / "student.pt")
    student = load_model(tmp_path / "student.pt")
    assert student.card["input"]["grain_px"] == teacher.card["input"]["grain_px"]
    assert student.card["training"]["distilled_from"]["sha256"] == teacher.sha256
    assert student.architecture.space_to_depth == 2


def test_a_student_card_can_set_its_own_local_mean_radius(teacher, frames, tmp_path):
    config = DistilConfig(steps=1, batch_size=2, crop=48)
    net = distil(teacher, frames, STUDENT, config)
    export_model(net.denoiser(), student_card(net, teacher, config, "test phantoms", local_mean_radius=0),
                 tmp_path / "student.pt")
    student = load_model(tmp_path / "student.pt")
    assert student.card["input"]["local_mean_radius"] == 0
    assert teacher.card["input"].get("local_mean_radius") != 0
    assert student.card["input"]["grain_px"] == teacher.card["input"]["grain_px"]


def test_a_student_file_can_be_recarded_with_another_local_mean_radius_and_passes(teacher, frames, tmp_path):
    config = DistilConfig(steps=1, batch_size=2, crop=48)
    net = distil(teacher, frames, STUDENT, config)
    export_model(net.denoiser(), student_card(net, teacher, config, "test phantoms"), tmp_path / "student.pt")
    run = _script("make_default_model.py", "--recard", tmp_path / "student.pt", "--out", tmp_path / "r0.pt",
                  "--local-mean-radius", "0", "--passes", "2", "--edge-quantile", "0.93")
    assert run.returncode == 0, run.stderr
    recarded, original = load_model(tmp_path / "r0.pt"), load_model(tmp_path / "student.pt")
    assert recarded.card["input"]["local_mean_radius"] == 0 and recarded.card["input"]["passes"] == 2
    assert recarded.card["input"]["edge_quantile"] == 0.93
    assert recarded.card["training"] == original.card["training"]
    assert all(torch.equal(a, b) for a, b in zip(recarded.module.state_dict().values(),
                                                 original.module.state_dict().values()))


def test_a_student_is_fine_tuned_like_any_model_and_keeps_its_layout(teacher, frames, tmp_path):
    from speckle2self.errors import InputError
    from speckle2self.evaluation.phantoms import make_cine
    from speckle2self.finetune.files import finetune_files
    from speckle2self.io import Volume, write_volume
    config = DistilConfig(steps=1, batch_size=2, crop=48)
    net = distil(teacher, frames, STUDENT, config)
    export_model(net.denoiser(), student_card(net, teacher, config, "test phantoms"), tmp_path / "student.pt")
    write_volume(tmp_path / "study.nrrd", Volume(make_cine(4, (96, 96), seed=3).envelope.astype(np.float32)))
    with pytest.raises(InputError, match="crop must be a multiple of 8"):
        finetune_files([tmp_path / "study.nrrd"], tmp_path / "tuned.pt", init=tmp_path / "student.pt", crop=36,
                       steps=2, batch_size=2, val_fraction=0, device="cpu")
    outcome = finetune_files([tmp_path / "study.nrrd"], tmp_path / "tuned.pt", init=tmp_path / "student.pt",
                             crop=48, steps=2, batch_size=2, val_fraction=0, device="cpu")
    tuned = load_model(outcome.model_path)
    assert tuned.architecture.space_to_depth == 2 and tuned.card["training"]["parent_sha256"] == load_model(
        tmp_path / "student.pt").sha256


def test_fine_tuning_a_student_keeps_its_teachers_loss_weights(training_frames, tmp_path):
    # The student's own card holds distillation settings only; fine-tuning it with the default
    # objective (no re-speckling) would undo what its teacher learned.
    from dataclasses import asdict
    from speckle2self.evaluation.phantoms import make_cine
    from speckle2self.finetune.files import finetune_files
    from speckle2self.io import Volume, write_volume
    from speckle2self.training.loop import TrainConfig, train
    from speckle2self.training.losses import LossWeights
    weights = LossWeights(1.0, 0.7, local_mean=2.0, respeckle=0.5, reconstruction_norm="l1")
    parent = train(training_frames, TrainConfig(steps=2, batch_size=2, crop=48, weights=weights),
                   arch=Architecture.preset("tiny"), device="cpu")
    export_model(parent.net.denoiser(), parent.card("teacher"), tmp_path / "teacher.pt")
    teacher = load_model(tmp_path / "teacher.pt")
    frames = TrainingFrames(training_frames, 48, network_input=dict(teacher.card["input"]))
    config = DistilConfig(steps=1, batch_size=2, crop=48)
    net = distil(teacher, frames, STUDENT, config)
    export_model(net.denoiser(), student_card(net, teacher, config, "test phantoms"), tmp_path / "student.pt")
    write_volume(tmp_path / "study.nrrd", Volume(make_cine(4, (96, 96), seed=3).envelope.astype(np.float32)))
    outcome = finetune_files([tmp_path / "study.nrrd"], tmp_path / "tuned.pt", init=tmp_path / "student.pt",
                             crop=48, steps=2, batch_size=2, val_fraction=0, device="cpu")
    assert load_model(outcome.model_path).card["training"]["config"]["weights"] == asdict(weights)


def test_a_teacher_whose_card_asks_for_two_passes_is_learned_as_its_network_applied_twice(teacher, frames, tmp_path):
    import copy
    card = copy.deepcopy(teacher.card)
    card["input"]["passes"] = 2
    export_model(teacher.module, card, tmp_path / "twice.pt")
    twice = load_model(tmp_path / "twice.pt")
    config = DistilConfig(steps=60, batch_size=4, crop=48, lr=3e-3)
    of_two, of_one = distil(twice, frames, STUDENT, config), distil(teacher, frames, STUDENT, config)
    batch = torch.from_numpy(frames.sample_crops(np.random.default_rng(99), 8)).unsqueeze(1)
    with torch.no_grad():
        two = teacher.module(teacher.module(batch).clamp(0, 1))
        gap_two, gap_one = (float((s.denoiser()(batch) - two).abs().mean()) for s in (of_two, of_one))
    assert gap_two < gap_one
    assert student_card(of_two, twice, config, "test")["training"]["distilled_from"]["passes"] == 2


def test_a_continued_distillation_decays_its_learning_rate_from_where_it_continues(teacher, frames, tmp_path):
    first = DistilConfig(steps=20, batch_size=2, crop=48, lr=3e-3)
    distil(teacher, frames, STUDENT, first, tmp_path / "a.ckpt")
    start = {k: v.clone() for k, v in torch.load(tmp_path / "a.ckpt", weights_only=False)["model"].items()}
    (tmp_path / "b.ckpt").write_bytes((tmp_path / "a.ckpt").read_bytes())
    tail = distil(teacher, frames, STUDENT, DistilConfig(steps=24, batch_size=2, crop=48, lr=3e-3), tmp_path / "a.ckpt")
    fresh = distil(teacher, frames, STUDENT, DistilConfig(steps=24, batch_size=2, crop=48, lr=3e-3, decay_from=20),
                   tmp_path / "b.ckpt")
    moved = [sum(float((v - start[k]).abs().sum()) for k, v in net.state_dict().items()) for net in (tail, fresh)]
    assert moved[1] > 3 * moved[0]  # the tail of a 24-step decay runs at about 6 % of the rate


def test_the_distillation_script_refuses_a_decay_start_beyond_its_steps(tmp_path):
    run = _script("distil_student.py", "--teacher", tmp_path / "none.pt", "--out", tmp_path / "s.pt",
                  "--steps", "100", "--decay-from", "100")
    assert run.returncode == 2 and "--decay-from must be 0 or more and below --steps (100), got 100" in run.stderr


@pytest.mark.parametrize("option, value, message", [
    ("--passes", "0", "--passes must be 1 to 4, got 0"),
    ("--edge-quantile", "1.5", "--edge-quantile must be within 0..1, got 1.5"),
])
def test_recarding_refuses_a_card_the_engine_would_refuse_before_writing_anything(tmp_path, option, value, message):
    run = _script("make_default_model.py", "--recard", tmp_path / "none.pt", "--out", tmp_path / "r.pt", option, value)
    _assert_refused_before_writing(run, message, tmp_path)
