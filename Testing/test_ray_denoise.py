"""`speckle2self denoise --ray`: the single-process command's results, on a real local Ray cluster.

One Ray cluster (2 CPUs, small object store, bound to loopback) is started for the module; command
line runs join it by its address, as they would join a cluster's head node. Outputs are compared
byte for byte with the command without --ray, in float32 (bfloat16, which `auto` picks on CPUs
that compute it natively, rounds differently with the number of threads per process).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pydicom
import pytest
from dicom_examples import example

from speckle2self.io import Volume, write_volume
from speckle2self.evaluation.phantoms import make_cine

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1, not the network interface
needs_ray = pytest.mark.skipif(find_spec("ray") is None,
                               reason='Ray is not installed (pip install "speckle2self[ray]")')
EXACT = ("--device", "cpu", "--precision", "float32")


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU Ray cluster for this module; yields its head node's address (HOST:PORT)."""
    import logging
    import ray
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2 ** 20, logging_level=logging.ERROR,
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def run(*args, timeout=240):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.run(["speckle2self", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def nrrd_files(folder, count=3, frames=3, size=(64, 64)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        envelope = make_cine(frames, size, seed=10 + i).envelope.astype(np.float32)
        write_volume(folder / f"cine{i}.nrrd", Volume(envelope, spacing=(0.1, 0.2, 1.0)))
    return folder


def dicom_series(folder, count=3):
    """`count` files of one ultrasound series (pydicom's RGB example, each its own instance)."""
    folder.mkdir(parents=True)
    for i in range(count):
        ds = example("rgb_color")
        ds.SOPInstanceUID, ds.InstanceNumber = pydicom.uid.generate_uid(), i + 1
        ds.save_as(folder / f"img{i}.dcm", enforce_file_format=True)
    return folder


def same_bytes(a, b):
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


@needs_ray
def test_nrrd_outputs_are_bit_identical_to_one_process(cluster, tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study")
    one = run("denoise", study, "-o", tmp_path / "one", "--model", tiny_model, *EXACT)
    ray = run("denoise", study, "-o", tmp_path / "ray", "--model", tiny_model, *EXACT, "--ray", cluster,
              "--workers", "2")
    assert one.returncode == 0 and ray.returncode == 0, ray.stderr
    assert same_bytes(tmp_path / "one", tmp_path / "ray")
    assert "3 of 3 files denoised" in ray.stdout


@needs_ray
def test_a_dicom_series_split_over_two_workers_is_one_new_series_bit_identical(cluster, tiny_model, tmp_path):
    series = dicom_series(tmp_path / "series")
    one = run("denoise", series, "-o", tmp_path / "one", "--model", tiny_model, *EXACT)
    ray = run("denoise", series, "-o", tmp_path / "ray", "--model", tiny_model, *EXACT, "--ray", cluster,
              "--workers", "2", "--report", tmp_path / "report.jsonl")
    assert one.returncode == 0 and ray.returncode == 0, ray.stderr
    assert same_bytes(tmp_path / "one", tmp_path / "ray")
    rows = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert len({row["worker"] for row in rows}) == 2  # the series was shared out
    out = [pydicom.dcmread(p) for p in sorted((tmp_path / "ray").glob("*.dcm"))]
    assert len({d.SeriesInstanceUID for d in out}) == 1 and len({d.SOPInstanceUID for d in out}) == 3


@needs_ray
def test_a_broken_file_fails_alone_with_the_same_words(cluster, tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=2)
    (study / "broken.mha").write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 9 9\n")
    one = run("denoise", study, "-o", tmp_path / "one", "--model", tiny_model)
    res = run("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--ray", cluster)
    assert res.returncode == one.returncode == 1
    failed = [line for line in res.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "broken.mha" in failed[0]
    assert failed == [line for line in one.stderr.splitlines() if line.startswith("FAILED")]
    assert (tmp_path / "out" / "cine0.nrrd").is_file() and (tmp_path / "out" / "cine1.nrrd").is_file()
    assert not (tmp_path / "out" / "broken.mha").exists()
    assert "2 of 3 files denoised" in res.stdout


@needs_ray
def test_skip_existing_resumes_without_touching_finished_outputs(cluster, tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study")
    out = tmp_path / "out"
    assert run("denoise", study, "-o", out, "--model", tiny_model, "--ray", cluster).returncode == 0
    (out / "cine1.nrrd").unlink()  # as if the run had been interrupted before this file
    (out / ".cine1-abcd1234.nrrd").write_bytes(b"half")  # and had left a temporary behind
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.nrrd")}
    res = run("denoise", study, "-o", out, "--model", tiny_model, "--ray", cluster, "--skip-existing")
    assert res.returncode == 0, res.stderr
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.nrrd")
            if p.name != "cine1.nrrd"} == finished
    assert (out / "cine1.nrrd").is_file()
    assert "1 of 3 files denoised, 2 already there" in res.stdout


@needs_ray
def test_a_worker_that_dies_has_its_file_retried_on_another(cluster, tiny_model, tmp_path):
    from speckle2self import denoise_files, denoise_files_ray
    study = nrrd_files(tmp_path / "study", count=4, frames=24, size=(128, 128))  # files long enough to die in
    killed = []

    def kill_first_worker(report, total):  # its next file is queued on it already: that one must survive
        if not killed:
            killed.append(report.worker)
            os.kill(int(report.worker.rsplit(":", 1)[1]), signal.SIGKILL)

    reports = denoise_files_ray([study], tmp_path / "ray", workers=2, model=tiny_model, device="cpu",
                                precision="float32", on_file=kill_first_worker)
    assert all(r.ok for r in reports), [r.error for r in reports]
    retried = [r for r in reports if any("its first worker died" in n for n in r.notes)]
    assert len(retried) >= 1 and all(r.worker != killed[0] for r in retried)
    denoise_files([study], tmp_path / "one", model=tiny_model, device="cpu", precision="float32")
    assert same_bytes(tmp_path / "one", tmp_path / "ray")


def test_skip_existing_and_the_report_work_without_ray_too(tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=2)
    out = tmp_path / "out"
    assert run("denoise", study / "cine0.nrrd", "-o", out, "--model", tiny_model).returncode == 0
    before = (out / "cine0.nrrd").stat().st_mtime_ns
    res = run("denoise", study, "-o", out, "--model", tiny_model, "--skip-existing", "--report", tmp_path / "r.jsonl")
    assert res.returncode == 0, res.stderr
    assert (out / "cine0.nrrd").stat().st_mtime_ns == before and (out / "cine1.nrrd").is_file()
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["input"], r["status"], r["frames"]) for r in rows] == [
        (str(study / "cine0.nrrd"), "skipped", 0), (str(study / "cine1.nrrd"), "ok", 3)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_ray
def test_a_dead_address_is_one_line_and_exit_2(tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=1)
    port = _closed_port()
    res = run("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--ray", f"127.0.0.1:{port}",
              timeout=60)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"speckle2self: error: no Ray cluster at 127.0.0.1:{port}: Connection "
                                       "refused; start one with `ray start --head` or check the address"]
    assert not (tmp_path / "out").exists()


@needs_ray
def test_an_address_that_is_not_ray_is_one_line_and_exit_2(tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=1)
    with socket.socket() as server:  # answers, but not in gRPC
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = "127.0.0.1:%d" % server.getsockname()[1]
        res = run("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--ray", address, timeout=60)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"speckle2self: error: no Ray cluster at {address}: no answer within 5 s; "
                                       "start one with `ray start --head` or check the address"]


def test_without_ray_the_command_says_how_to_install_it(tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=1)
    code = ("import sys; sys.modules['ray'] = None; from speckle2self.cli import main; "
            f"sys.exit(main(['denoise', {str(study)!r}, '-o', {str(tmp_path / 'out')!r}, '--model', "
            f"{str(tiny_model)!r}, '--ray']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.splitlines() == ['speckle2self: error: --ray needs Ray, which is not installed; install it '
                                       'with: pip install "speckle2self[ray]"']


def test_the_python_api_imports_without_ray():
    code = "import sys; sys.modules['ray'] = None; import speckle2self; print(speckle2self.denoise_files_ray.__name__)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "denoise_files_ray", res.stderr


@needs_ray
def test_ray_without_an_address_starts_a_local_instance_and_shows_progress(tiny_model, tmp_path):
    study = nrrd_files(tmp_path / "study", count=2)
    res = run("denoise", study, "-o", tmp_path / "out", "--model", tiny_model, "--ray", "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert "2/2 files, 6 frames," in res.stderr and "frames/s, ETA 0s" in res.stderr
    assert (tmp_path / "out" / "cine1.nrrd").is_file()


def test_a_gpu_cluster_gets_one_model_actor_per_gpu():
    from speckle2self.cluster.layout import Layout, plan_layout
    assert plan_layout({"CPU": 64.0, "GPU": 4.0}, "auto", None) == Layout(4, num_cpus=1, num_gpus=1, threads=1)
    assert plan_layout({"CPU": 64.0, "GPU": 4.0}, "auto", 8).num_gpus == 0.5  # two actors share each GPU
    assert plan_layout({"CPU": 64.0, "GPU": 4.0}, "cpu", None).num_gpus == 0  # --device cpu keeps off them


def test_a_cpu_cluster_shares_its_cores_among_the_actors():
    from speckle2self.cluster.layout import Layout, plan_layout
    assert plan_layout({"CPU": 8.0}, "auto", None) == Layout(8, num_cpus=1, num_gpus=0, threads=1)
    assert plan_layout({"CPU": 8.0}, "cpu", 2) == Layout(2, num_cpus=4, num_gpus=0, threads=4)


def test_cuda_on_a_cluster_without_gpus_is_refused():
    from speckle2self.cluster import ClusterError
    from speckle2self.cluster.layout import plan_layout
    with pytest.raises(ClusterError, match="--device cuda asks for GPUs, but the Ray cluster has none"):
        plan_layout({"CPU": 8.0}, "cuda", None)


def test_progress_says_files_frames_rate_and_time_left():
    import io
    from pathlib import Path
    from speckle2self.cluster.progress import ArchiveProgress
    from speckle2self.inference.pipeline import FileReport
    now = [100.0]
    out = io.StringIO()
    progress = ArchiveProgress(stream=out, every_s=0.0, clock=lambda: now[0])
    now[0] = 110.0
    progress(FileReport(Path("a.nrrd"), Path("o/a.nrrd"), True, frames=200), 4)
    progress(FileReport(Path("b.nrrd"), Path("o/b.nrrd"), True, skipped=True), 4)
    now[0] = 120.0
    progress(FileReport(Path("c.nrrd"), None, False, "c.nrrd: broken"), 4)
    assert out.getvalue().splitlines() == [
        "1/4 files, 200 frames, 20.0 frames/s, ETA 30s",
        "2/4 files (1 skipped), 200 frames, 20.0 frames/s, ETA 20s",
        "3/4 files (1 failed, 1 skipped), 200 frames, 10.0 frames/s, ETA 10s"]


def test_the_report_has_one_row_per_input(tmp_path):
    import csv
    from pathlib import Path
    from speckle2self.inference.pipeline import FileReport
    from speckle2self.inference.report_file import write_report
    reports = [FileReport(Path("a.nrrd"), Path("o/a.nrrd"), True, frames=3, seconds=1.25, worker="node1:42"),
               FileReport(Path("b.nrrd"), None, False, "b.nrrd: broken"),
               FileReport(Path("c.nrrd"), Path("o/c.nrrd"), True, skipped=True)]
    rows = list(csv.DictReader(write_report(tmp_path / "run.csv", reports).open()))
    assert [list(r.values()) for r in rows] == [["a.nrrd", "o/a.nrrd", "ok", "", "3", "1.25", "node1:42"],
                                                ["b.nrrd", "", "failed", "b.nrrd: broken", "0", "0.0", ""],
                                                ["c.nrrd", "o/c.nrrd", "skipped", "", "0", "0.0", ""]]
    assert list(rows[0]) == ["input", "output", "status", "error", "frames", "seconds", "worker"]
