"""The fine-tuning subprocess protocol the Slicer panel relies on, run as a real subprocess."""
import subprocess
import sys

import numpy as np

from speckle2self.finetune.finetune_worker import encode_event, parse_event, write_spec
from speckle2self.io import Volume, write_volume
from speckle2self.networks.model_file import load_model
from speckle2self.evaluation.phantoms import make_phantom


def test_events_round_trip_and_log_lines_are_ignored():
    line = encode_event("step", step=5, loss=0.1)
    assert parse_event(line + "\n") == {"event": "step", "step": 5, "loss": 0.1}
    assert parse_event("fine-tuning: 10%|#") is None
    assert parse_event("speckle2self-event {broken") is None


def _data(tmp_path):
    path = tmp_path / "frames.nrrd"
    write_volume(path, Volume(np.stack([make_phantom((72, 72), seed=s).envelope for s in (1, 2)]).astype(np.float32)))
    return path


def _run(spec):
    proc = subprocess.run([sys.executable, "-m", "speckle2self.finetune.finetune_worker", str(spec)],
                          capture_output=True, text=True)
    return proc.returncode, [e for e in map(parse_event, proc.stdout.splitlines()) if e]


def test_worker_reports_steps_and_writes_the_model(tmp_path, tiny_model):
    spec = write_spec(tmp_path / "job.json", [str(_data(tmp_path))], str(tmp_path / "tuned.pt"),
                      init=str(tiny_model), steps=10, crop=48, batch_size=2, device="cpu")
    code, events = _run(spec)
    assert code == 0, events
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert [e["step"] for e in events if e["event"] == "step"] == [5, 10]
    assert load_model(events[-1]["model"]).card["training"]["steps"] == 10


def test_stop_file_mid_run_ends_early_and_keeps_the_best_model(tmp_path, tiny_model):
    spec = write_spec(tmp_path / "job.json", [str(_data(tmp_path))], str(tmp_path / "tuned.pt"),
                      init=str(tiny_model), steps=100000, crop=48, batch_size=2, device="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "speckle2self.finetune.finetune_worker", str(spec)],
                            stdout=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        event = parse_event(line)
        if event:
            events.append(event)
            if event["event"] == "step":
                (tmp_path / "job.stop").write_text("")
    assert proc.wait(timeout=120) == 0
    finished = events[-1]
    assert finished["event"] == "finished" and finished["stopped"] is True and finished["steps"] < 100000
    assert load_model(tmp_path / "tuned.pt").card["training"]["stopped_early"] is True


def test_stop_file_before_the_first_step_writes_nothing(tmp_path, tiny_model):
    spec = write_spec(tmp_path / "job.json", [str(_data(tmp_path))], str(tmp_path / "tuned.pt"),
                      init=str(tiny_model), steps=1000, crop=48, batch_size=2, device="cpu")
    (tmp_path / "job.stop").write_text("")
    code, events = _run(spec)
    assert code == 1 and events[-1] == {"event": "error",
                                        "message": "training stopped before its first step; no model was written"}
    assert not (tmp_path / "tuned.pt").exists()


def test_bad_data_is_reported_as_an_error_event(tmp_path, tiny_model):
    spec = write_spec(tmp_path / "job.json", [str(tmp_path / "missing.nrrd")], str(tmp_path / "m.pt"),
                      init=str(tiny_model), steps=5, device="cpu")
    code, events = _run(spec)
    assert code == 1 and events[-1]["event"] == "error" and "missing.nrrd: no such file" in events[-1]["message"]
