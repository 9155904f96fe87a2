"""The Slicer adapter's logic, tested without Slicer: arrays in the shapes Slicer gives
(arrayFromVolume: (K, J, I) scalar, (K, J, I, C) vector; one (1, J, I[, C]) array per sequence item)."""
import gc
import hashlib
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from speckle2self.errors import Cancelled, InputError
from speckle2self.inference.api import denoise
from speckle2self.slicer.slicer_support import (CONFIRM_ABOVE_SECONDS, ProgressInfo, RunEstimate, StageProgress, blend, chunks,
                                                denoise_frame_stream, denoise_volume_array, card_summary, collect_frames,
                                                display_window, duration_text, estimate_run, frame_plane_orientation,
                                                frames_from_volume_array, free_model_path, live_frames, write_sequence_nrrd,
                                                Problem, dependency_question, package_problems, torch_problem, version_tuple, loss_curve_rows, sample_data_source)

RESOURCES = Path(__file__).resolve().parents[1] / "Resources"


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


def test_one_component_vector_volume_is_used_as_it_is():
    arr = np.random.rand(2, 10, 12).astype(np.float32)  # arrayFromVolume drops the axis of a single component
    frames, notes = frames_from_volume_array(arr, is_vector=True)
    assert frames is arr and notes == ["used the single component"]


def test_wrong_array_shapes_are_named():
    with pytest.raises(InputError, match=r"vector volume should give a \(K, J, I, C\) or"):
        frames_from_volume_array(np.zeros((4, 5)), is_vector=True)
    with pytest.raises(InputError, match=r"scalar volume should give a \(K, J, I\) array"):
        frames_from_volume_array(np.zeros((4, 5)), is_vector=False)


def test_live_mode_takes_the_grey_frames_of_a_scalar_or_colour_input():
    rgb = np.zeros((1, 4, 5, 3), np.uint8)
    rgb[..., 0] = 100
    assert np.array_equal(live_frames(rgb, True), np.full((1, 4, 5), 30, np.uint8))  # 0.299 · 100
    scalar = np.arange(20, dtype=np.int16).reshape(1, 4, 5)
    assert live_frames(scalar, False) is scalar


@pytest.mark.parametrize("array, is_vector, class_name, message", [
    (None, False, "vtkMRMLScalarVolumeNode", "no image data yet: start the stream"),
    (np.zeros((3, 4, 5, 6)), False, "vtkMRMLMultiVolumeNode", "MultiVolume .* is not a live image"),
    (np.zeros((1, 4, 5, 6)), True, "vtkMRMLVectorVolumeNode", "6 components is not a colour image"),
    (np.zeros((2, 4, 5, 2, 2)), False, "vtkMRMLScalarVolumeNode", "should give a \\(K, J, I\\) array"),
])
def test_live_mode_refuses_an_input_it_cannot_show_before_it_makes_anything(array, is_vector, class_name, message):
    with pytest.raises(InputError, match=message):
        live_frames(array, is_vector, class_name)


def test_blend_mixes_in_the_inputs_dtype():
    a = np.full((2, 2), 100, np.uint8)
    b = np.full((2, 2), 200, np.uint8)
    assert np.all(blend(a, b, 0.25) == 125) and blend(a, b, 0.25).dtype == np.uint8
    assert np.array_equal(blend(a, b, 0.0), a) and blend(a, b, 1.0) is b
    with pytest.raises(InputError, match="strength must be between 0 and 1"):
        blend(a, b, 1.5)


def test_stage_progress_reports_frames_rate_and_the_stages_part_of_the_bar():
    ticks = iter([0.0, 2.0, 4.0])
    seen = []
    writing = StageProgress("writing", 10, seen.append, clock=lambda: next(ticks))
    writing.report(4)
    writing.callback()(10, 10)
    assert [(i.done, i.frames_per_second, i.stage) for i in seen] == [(4, 2.0, "writing"), (10, 2.5, "writing")]
    assert [i.percent for i in seen] == [91, 100]  # writing back fills the last 15 % of a cine's bar
    assert seen[1].text == "Writing: 10 / 10 frames, 2.5 frames/s"
    assert ProgressInfo(5, 10, 1.0).percent == 50  # a single volume: denoising is the whole bar


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


def _denoising(seen):
    return [i for i in seen if i.stage == "denoising"]


def test_cine_cancel_stops_after_the_current_batch_and_writes_nothing(tiny_model, cine):
    written = {}
    seen = []
    with pytest.raises(Cancelled, match="after 1 of 5 frames"):
        denoise_frame_stream(_sequence(cine).__getitem__, written.__setitem__, 5, False, chunk=2,
                             progress=seen.append, should_stop=lambda: len(_denoising(seen)) >= 1,
                             model=tiny_model, device="cpu", batch_size=1)
    assert written == {} and len(_denoising(seen)) == 1


def test_a_cine_run_reports_reading_denoising_and_writing_back_in_order(tiny_model, cine):
    seen = []
    denoise_frame_stream(_sequence(cine).__getitem__, {}.__setitem__, 5, False, chunk=2, progress=seen.append,
                         model=tiny_model, device="cpu", batch_size=2)
    assert [i.stage for i in seen] == ["reading", "denoising", "denoising", "denoising", "writing", "writing", "writing"]
    assert [i.percent for i in seen] == sorted(i.percent for i in seen) and seen[-1].percent == 100
    assert [i.done for i in seen if i.stage == "writing"] == [2, 4, 5]


def test_a_cine_can_be_cancelled_while_its_frames_are_read(tiny_model, cine):
    reads = []

    def read(i):
        reads.append(i)
        return _sequence(cine)[i % 5]
    with pytest.raises(Cancelled, match="while reading the cine"):
        denoise_frame_stream(read, {}.__setitem__, 40, False, should_stop=lambda: len(reads) >= 16,
                             model=tiny_model, device="cpu")
    assert len(reads) == 16  # stopped at the next check, every 16 frames, not after the whole cine


def test_a_cine_can_be_cancelled_while_it_is_written_back(tiny_model, cine):
    written = {}
    with pytest.raises(Cancelled, match="while writing back the cine"):
        denoise_frame_stream(_sequence(cine).__getitem__, written.__setitem__, 5, False, chunk=2,
                             should_stop=lambda: len(written) >= 2, model=tiny_model, device="cpu")
    assert sorted(written) == [0, 1]  # the caller removes the partial output (the module removes its sequence)


class _TrackedMemmap(np.memmap):
    """np.memmap that remembers (weakly) itself and every view made of it."""

    alive: list = []

    def __array_finalize__(self, obj):
        super().__array_finalize__(obj)
        _TrackedMemmap.alive.append(weakref.ref(self))


def _views_of_scratch_files_left():
    gc.collect()
    return [r() for r in _TrackedMemmap.alive if r() is not None]


@pytest.mark.parametrize("stop_when_written", [None, 2])
def test_no_view_of_the_scratch_files_is_left_when_they_are_deleted(tiny_model, cine, monkeypatch, tmp_path,
                                                                    stop_when_written):
    """Windows cannot delete a file that is still mapped (WinError 32): the last frame written
    was a view into the output map (blend returns the result itself at strength 1)."""
    import shutil
    _TrackedMemmap.alive = []
    monkeypatch.setattr(np, "memmap", _TrackedMemmap)
    left_at_cleanup = []
    remove = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        left_at_cleanup.extend(_views_of_scratch_files_left())
        remove(path, *args, **kwargs)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    written = {}
    stop = (lambda: len(written) >= stop_when_written) if stop_when_written else None
    try:
        denoise_frame_stream(_sequence(cine).__getitem__, written.__setitem__, 5, False, chunk=2, should_stop=stop,
                             scratch_dir=tmp_path, model=tiny_model, device="cpu")
    except Cancelled:
        assert stop_when_written
    assert len(_TrackedMemmap.alive) > 2 and left_at_cleanup == []
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone
    assert all(type(frame) is np.ndarray for frame in written.values())  # copies, not views of the map


def test_a_scratch_folder_that_cannot_be_removed_leaves_the_result_and_a_note(tiny_model, cine, monkeypatch):
    def locked(path, *args, **kwargs):
        raise PermissionError(13, "The process cannot access the file because it is being used by another process")
    monkeypatch.setattr("shutil.rmtree", locked)
    written = {}
    notes = denoise_frame_stream(_sequence(cine).__getitem__, written.__setitem__, 5, False, model=tiny_model,
                                 device="cpu")
    assert sorted(written) == list(range(5))
    assert len(notes) == 1 and "could not be removed (The process cannot access the file" in notes[0]


def _brightening_bmode_cine(cine):
    """16-bit-like B-mode frames whose brightness rises along the cine, so each chunk has its own range."""
    grey = cine.envelope / cine.envelope.max()
    return [(np.sqrt(f) * 1000.0 * (1 + k))[None].astype(np.float32) for k, f in enumerate(grey)]


def test_non_8_bit_bmode_cine_takes_one_grey_range_for_the_whole_cine(tiny_model, cine):
    model = tiny_model
    items = _brightening_bmode_cine(cine)
    written = {}
    denoise_frame_stream(items.__getitem__, written.__setitem__, len(items), False, chunk=2, model=model,
                         device="cpu", domain="bmode")
    whole = denoise(np.concatenate(items), model=model, device="cpu", domain="bmode")
    assert all(np.array_equal(written[i], whole[i]) for i in range(len(items)))


def test_one_component_vector_cine_is_denoised_like_a_scalar_one(tiny_model, cine):
    items = _sequence(cine)  # (1, J, I) items: what arrayFromVolume gives for a 1-component vector frame
    as_vector, as_scalar = {}, {}
    notes = denoise_frame_stream(items.__getitem__, as_vector.__setitem__, 5, True, model=tiny_model, device="cpu")
    denoise_frame_stream(items.__getitem__, as_scalar.__setitem__, 5, False, model=tiny_model, device="cpu")
    assert notes == ["used the single component"]
    assert all(np.array_equal(as_vector[i], as_scalar[i]) for i in range(5))


def test_cine_frames_of_different_sizes_are_refused(tiny_model, cine):
    items = _sequence(cine)
    items[3] = items[3][:, :-4]
    with pytest.raises(InputError, match="every frame of a cine must be the same size"):
        denoise_frame_stream(items.__getitem__, lambda i, f: None, 5, False, chunk=2, model=tiny_model, device="cpu")


def test_empty_sequence_is_refused(tiny_model):
    with pytest.raises(InputError, match="the sequence has no frames"):
        denoise_frame_stream(lambda i: None, lambda i, f: None, 0, False, model=tiny_model)


def test_display_window_spans_the_result():
    frames = np.linspace(0, 100, 1000).reshape(1, 10, 100)
    width, level = display_window(frames)
    assert level == pytest.approx(50, abs=1) and width == pytest.approx(98, abs=1)


def test_card_summary_names_architecture_data_and_parent(tiny_model):
    from speckle2self.networks.model_file import load_model
    loaded = load_model(tiny_model)
    text = card_summary(loaded.card, loaded.sha256)
    assert "widths 8-16-32-64" in text and "input: log" in text and "trained 6 steps on test phantoms" in text
    assert loaded.sha256[:12] in text


def test_card_summary_of_the_bundled_student_names_its_fold_and_teacher():
    from speckle2self.networks.model_file import load_model
    loaded = load_model(None)
    text = card_summary(loaded.card, loaded.sha256)
    teacher = load_model(Path(__file__).parent / "data" / "native_teacher.pt")
    learned_from = loaded.card["training"]["distilled_from"]  # the student before, self-distilled
    assert "2×2 pixels folded into channels" in text and f"distilled from {learned_from['sha256'][:12]}" in text
    assert learned_from["training"]["distilled_from"]["sha256"] == teacher.sha256


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


def test_a_long_run_is_estimated_from_one_timed_batch_of_the_first_frames(tiny_model, cine):
    items = _sequence(cine)
    reads = []
    ticks = iter([10.0, 10.0, 12.0, 12.0])

    def read(i):
        reads.append(i)
        return items[i % len(items)]

    estimate = estimate_run(read, 40, False, clock=lambda: next(ticks), model=tiny_model, device="cpu", batch_size=2)
    assert estimate.frames == 40 and estimate.seconds == 40.0 and reads == [0, 1]


def test_the_estimate_includes_reading_the_frames_and_writing_them_back(tiny_model, cine):
    ticks = iter([0.0, 1.0, 11.0, 13.0])  # read 2 frames: 1 s, denoise: 10 s, write back: 2 s
    written = []
    estimate = estimate_run(lambda i: _sequence(cine)[i], 40, False, write_frame=lambda i, f: written.append(i),
                            clock=lambda: next(ticks), model=tiny_model, device="cpu", batch_size=2)
    assert estimate == RunEstimate(frames=40, seconds=260.0, stage_seconds=(20.0, 200.0, 40.0))
    assert written == [0, 1]


def test_the_default_batch_is_the_one_the_run_uses(tiny_model, cine):
    reads = []
    estimate_run(lambda i: reads.append(i) or _sequence(cine)[0], 40, False, model=tiny_model, device="cpu")
    assert reads == [0]  # the engine's default CPU batch is 1 frame


def test_only_runs_longer_than_the_threshold_need_a_confirmation():
    assert not RunEstimate(100, CONFIRM_ABOVE_SECONDS).needs_confirmation
    assert RunEstimate(100, CONFIRM_ABOVE_SECONDS + 1).needs_confirmation


def test_the_question_names_frames_and_duration():
    assert RunEstimate(1200, 200.0).question == (
        "This cine has 1200 frames; denoising them takes about 3 min, reading and writing back the frames included "
        "(measured on the first frames). Denoise all frames now?")


def test_durations_are_rounded_the_way_a_person_says_them():
    assert [duration_text(t) for t in (2, 42, 200, 3600, 4800)] == ["about 5 s", "about 40 s", "about 3 min",
                                                                    "about 1 h", "about 1 h 20 min"]


def test_frames_in_the_axial_plane_are_shown_axial():
    assert frame_plane_orientation(np.diag([-0.2, -0.3, 1.0, 1.0])) == "Axial"  # DICOM-like cine frame
    assert frame_plane_orientation(np.diag([0.2, 0.2, 0.5])) == "Axial"  # K-frame stack


def test_frames_in_a_sagittal_or_coronal_plane_are_shown_so():
    sagittal = np.array([[0, 0, 1.0], [0.2, 0, 0], [0, 0.3, 0]])  # I along A, J along S, K along R
    coronal = np.array([[0.2, 0, 0], [0, 0, -1.0], [0, 0.3, 0]])  # K along -A
    assert frame_plane_orientation(sagittal) == "Sagittal" and frame_plane_orientation(coronal) == "Coronal"


def test_a_parent_transform_turns_the_frame_plane():
    about_a = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1.0]])  # 90° about A: S -> R
    assert frame_plane_orientation(np.diag([0.2, 0.3, 1.0, 1.0]), to_world=about_a) == "Sagittal"


def test_a_volume_without_a_k_direction_is_refused():
    with pytest.raises(InputError, match="no K direction"):
        frame_plane_orientation(np.zeros((4, 4)))


def test_a_free_model_name_is_the_name_itself(tmp_path):
    assert free_model_path(tmp_path, "liver_probe") == tmp_path / "liver_probe.pt"


def test_a_taken_model_name_gets_the_next_free_number(tmp_path):
    (tmp_path / "liver_probe.pt").write_bytes(b"earlier model")
    (tmp_path / "liver_probe_2.pt").write_bytes(b"another")
    assert free_model_path(tmp_path, "liver_probe.pt") == tmp_path / "liver_probe_3.pt"


def test_a_model_name_cannot_leave_the_model_folder_or_be_empty(tmp_path):
    assert free_model_path(tmp_path, "../../elsewhere/mine.pt") == tmp_path / "mine.pt"
    assert free_model_path(tmp_path, "  ") == tmp_path / "speckle2self_finetuned.pt"


def test_the_sample_is_offered_under_ultrasound_as_a_cine_that_loads_as_a_sequence():
    source = sample_data_source(RESOURCES, thumbnail=RESOURCES / "Icons" / "Speckle2Self.png")
    path = RESOURCES / "Samples" / "phantom_cine.seq.nrrd"
    assert source["category"] == "Ultrasound" and source["uris"] == path.resolve().as_uri()
    assert source["checksums"] == "SHA256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert source["loadFileType"] == "SequenceFile" and source["fileNames"].endswith(".seq.nrrd")
    assert Path(source["thumbnailFileName"]).is_file()


def _sequence_file(path):
    """(frames, rows, cols) pixels and header of a .seq.nrrd, read by ITK's NRRD reader (teem, as Slicer's)."""
    import SimpleITK as sitk
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    image = reader.Execute()
    pixels = np.moveaxis(sitk.GetArrayFromImage(image)[0], -1, 0)  # the list axis comes back as components
    return pixels, {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}, image.GetSpacing()


def test_the_bundled_sequence_is_the_bundled_phantom_cine_frame_by_frame():
    import SimpleITK as sitk
    pixels, header, spacing = _sequence_file(RESOURCES / "Samples" / "phantom_cine.seq.nrrd")
    cine = sitk.GetArrayFromImage(sitk.ReadImage(str(RESOURCES / "Samples" / "phantom_cine.nrrd")))
    assert np.array_equal(pixels, cine) and pixels.shape == (3, 256, 256)
    assert header["NRRD_kinds[pixel]"] == "list" and header["axis 3 index values"] == "0 1 2"
    assert header["DataNodeClassName"] == "vtkMRMLScalarVolumeNode" and spacing[:2] == (0.2, 0.2)
    assert (RESOURCES / "Samples" / "phantom_cine.seq.nrrd").stat().st_size < 400_000


def test_a_sequence_file_keeps_frames_order_values_and_index(tmp_path):
    frames = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    path = write_sequence_nrrd(tmp_path / "c.seq.nrrd", frames, (0.3, 0.4), ["0", "0.05", "0.1", "0.15"], "time")
    pixels, header, spacing = _sequence_file(path)
    assert np.array_equal(pixels, frames) and spacing[:2] == pytest.approx((0.3, 0.4))
    assert header["axis 3 index values"] == "0 0.05 0.1 0.15" and header["NRRD_labels[pixel]"] == "time"


def test_a_missing_sample_is_named(tmp_path):
    with pytest.raises(InputError, match="phantom_cine.seq.nrrd is missing"):
        sample_data_source(tmp_path)


def test_the_slicer_helpers_load_without_torch():
    code = ("import sys, speckle2self.slicer.slicer_support, speckle2self.slicer.worker_process; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# Dependencies

def test_installed_packages_that_are_new_enough_are_no_problem():
    assert package_problems() == []  # this environment installs the project's dependencies


def test_missing_and_outdated_packages_are_listed_with_what_they_are_for():
    versions = {"numpy": "2.4.6", "SimpleITK": "2.5.0", "tqdm": "4.67.1", "pydicom": "2.3.1", "pylibjpeg": "2.1.0",
                "pylibjpeg-openjpeg": "2.6.0", "pylibjpeg-rle": "2.2.0"}
    problems = package_problems(installed_version=versions.get)
    assert [(p.name, p.installed) for p in problems] == [("pydicom", "2.3.1"), ("pylibjpeg-libjpeg", None)]
    assert problems[0].line == "pydicom ≥ 2.4: 2.3.1 installed (for DICOM files)"
    assert problems[1].pip == "pylibjpeg-libjpeg>=2.1"
    assert [p.name for p in package_problems(installed_version=versions.get, include_optional=False)] == ["pydicom"]


def test_versions_compare_by_number_not_text():
    assert version_tuple("2.13.0+cu128") > version_tuple("2.1") > version_tuple("2.0.1")


def test_a_working_pytorch_of_at_least_2_1_is_no_problem():
    assert torch_problem() is None


def test_a_pytorch_older_than_2_1_is_outdated():
    problem = torch_problem(installed_version={"torch": "2.0.1"}.get)
    assert problem.line == "PyTorch ≥ 2.1: 2.0.1 installed (for the network)"


def test_a_pytorch_that_fails_to_load_says_what_to_do():
    def dll_error():
        raise OSError('[WinError 126] The specified module could not be found. Error loading "fbgemm.dll"')
    problem = torch_problem(installed_version={"torch": "2.5.1"}.get, import_torch=dll_error)
    assert "2.5.1 installed but it cannot be loaded (OSError: [WinError 126]" in problem.line
    assert "reinstall it with the PyTorch Utils module" in problem.line and "restart Slicer" in problem.line


def test_one_question_lists_every_problem():
    problems = [Problem("PyTorch", "2.1", None, "the network", "torch"),
                Problem("pydicom", "2.4", "2.3.1", "DICOM files", "pydicom>=2.4")]
    assert dependency_question(problems) == (
        "Speckle2Self needs these Python packages:\n• PyTorch ≥ 2.1: not installed (for the network)\n"
        "• pydicom ≥ 2.4: 2.3.1 installed (for DICOM files)\n\nInstall or upgrade them now?")
