"""Static checks of the Slicer module, its .ui, CMake packaging and Extensions Index entry.

Slicer cannot run here; these checks fail CI for the mistakes that would otherwise only show up
inside Slicer: syntax the bundled Python rejects, widget or parameter names without a counterpart,
files missing from (or left out of) the package, an index entry the catalog would reject, and
engine names the module imports that do not exist.
"""
import ast
import importlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "Speckle2SelfExtension" / "Speckle2Self.py"
LIB = ROOT / "Speckle2SelfExtension" / "Speckle2SelfLib"
SOURCES = [MODULE, *sorted(LIB.glob("*.py"))]  # the module file and the helper classes cut from it
UI = ROOT / "Resources" / "UI" / "Speckle2Self.ui"
MODULE_CMAKE = ROOT / "Speckle2SelfExtension" / "CMakeLists.txt"


@pytest.fixture(scope="module")
def tree():
    """The module and its Speckle2SelfLib helper files as one tree: the helpers were the module's own classes."""
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in SOURCES]
    return ast.Module(body=[node for t in trees for node in t.body], type_ignores=[])


@pytest.fixture(scope="module")
def ui():
    return ET.parse(UI).getroot()


def test_module_parses_for_python_3_10(tree):
    for path in SOURCES:
        ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 10))


def test_module_defines_the_four_scripted_module_classes(tree):
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"Speckle2Self", "Speckle2SelfWidget", "Speckle2SelfLogic", "Speckle2SelfTest",
            "Speckle2SelfParameterNode"} <= names


def test_module_loads_without_torch_or_the_engine(tree):
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert not top & {"torch", "numpy", "speckle2self", "PyTorchUtils", "SimpleITK"}


def test_every_widget_used_in_code_exists_in_the_ui(ui):
    used = set(re.findall(r"self\.ui\.(\w+)", "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)))
    defined = {w.get("name") for w in ui.iter("widget")}
    assert used and used - defined == set()


def _wrapper_fields(tree) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper"
                                                  for d in node.decorator_list):
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    raise AssertionError("no @parameterNodeWrapper class in the module")


def test_every_slicer_parameter_name_is_a_parameter_node_field(tree, ui):
    names = {p.find("string").text for p in ui.iter("property") if p.get("name") == "SlicerParameterName"}
    assert names and names - _wrapper_fields(tree) == set()


def test_input_selector_shows_rgb_volumes(ui):
    selector = next(w for w in ui.iter("widget") if w.get("name") == "inputSelector")
    props = {p.get("name"): p for p in selector.iter("property")}
    assert props["showChildNodeTypes"].find("bool").text == "true"


def test_engine_names_the_module_imports_exist(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("speckle2self"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, variable
    return [line.strip() for line in match.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


def test_cmake_lists_exactly_the_module_and_engine_files():
    listed = set(_cmake_list(MODULE_CMAKE.read_text(), "MODULE_PYTHON_SCRIPTS"))
    engine = ROOT / "Speckle2SelfExtension"
    on_disk = {"${MODULE_NAME}.py"} | {str(p.relative_to(engine)) for folder in ("speckle2self", "Speckle2SelfLib")
                                          for p in (engine / folder).rglob("*.py")}
    assert listed == on_disk


def test_cmake_lists_exactly_the_resources():
    listed = set(_cmake_list(MODULE_CMAKE.read_text(), "MODULE_TOP_LEVEL_RESOURCES"))
    resources = ROOT / "Resources"
    assert listed == {str(p.relative_to(resources)) for p in resources.rglob("*") if p.is_file()}


def test_cmake_declares_extension_metadata_and_self_test():
    top = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"project\(Speckle2Self\)", top)
    assert 'set(EXTENSION_CATEGORY "Ultrasound")' in top and "set(EXTENSION_DEPENDS PyTorch)" in top
    assert "add_subdirectory(Speckle2SelfExtension)" in top and 'VERSION_LESS "5.10"' in top
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in MODULE_CMAKE.read_text()


# The catalog-entry rules of Slicer's extension index (schema v1.0.2), restated for validation.
CATALOG_ENTRY = {
    "type": "object",
    "required": ["$schema", "category", "scm_url"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"}, "category": {"type": "string"}, "scm_url": {"type": "string"},
        "scm_revision": {"type": "string"}, "scm_type": {"enum": ["git", "local"]},
        "build_dependencies": {"type": "array", "items": {"type": "string"}},
        "dicom_support_rule": {"type": "string"}, "build_subdirectory": {"type": "string"},
        "enabled": {"type": "boolean"}, "tier": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}


def test_extensions_index_entry_is_valid_and_matches_cmake():
    entry = json.loads((ROOT / "Speckle2Self.json").read_text())
    jsonschema.validate(entry, CATALOG_ENTRY)
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    top = (ROOT / "CMakeLists.txt").read_text()
    depends = re.search(r"set\(EXTENSION_DEPENDS (.*?)\)", top).group(1).split()
    assert entry["build_dependencies"] == depends and entry["category"] == "Ultrasound"


def test_the_catalog_rules_reject_what_the_index_would_reject():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"$schema": "x", "category": "Ultrasound", "scm_url": "u", "homepage": "h"}, CATALOG_ENTRY)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"$schema": "x", "category": "Ultrasound"}, CATALOG_ENTRY)


# Behaviour in a running Slicer that can be checked in the source (issue 12)

def _function(tree, name: str, owner: str | None = None) -> ast.FunctionDef:
    scope = tree if owner is None else next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner)
    found = [n for n in ast.walk(scope) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(found) == 1, f"{name}: {len(found)} definitions"
    return found[0]


def _calls(node: ast.AST, attribute: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == attribute]


def test_output_sequences_are_not_made_with_copy_sequence_index(tree):
    # CopySequenceIndex copies the item list with empty data nodes: DataNodeClassName would never be set.
    assert _calls(tree, "CopySequenceIndex") == []


def test_output_sequence_gets_index_name_unit_and_type(tree):
    function = _function(tree, "_denoiseSequence")
    for setter in ("SetIndexName", "SetIndexUnit", "SetIndexType"):
        assert _calls(function, setter), setter


def test_output_sequence_keeps_slicers_defaults_for_class_name_and_proxy_name(tree):
    # GetDataNodeClassName() reads the first item's class; overwriting the proxy name would rename
    # the output proxy on every frame ('… [time=…s]') and fire events while a cine plays.
    function = _function(tree, "_denoiseSequence")
    assert not [c for c in _calls(function, "SetAttribute") if ast.literal_eval(c.args[0]) == "DataNodeClassName"]
    assert _calls(tree, "SetOverwriteProxyName") == []


def test_both_views_get_their_orientation_set_before_they_are_rotated_and_fitted(tree):
    function = _function(tree, "showSideBySide")
    loop = next(n for n in ast.walk(function) if isinstance(n, ast.For))
    views = {e.elts[0].value for e in loop.iter.elts}
    first = {name: min(c.lineno for c in _calls(loop, name))
             for name in ("SetOrientation", "RotateToVolumePlane", "FitSliceToBackground")}
    assert views == {"Red", "Yellow"}
    assert first["SetOrientation"] < first["RotateToVolumePlane"] < first["FitSliceToBackground"]


def test_the_loss_chart_is_put_in_the_layout_only_when_it_is_first_made(tree):
    plots = _calls(tree, "plot")
    assert len(plots) == 1
    keywords = {k.arg: k.value for k in plots[0].keywords}
    assert "show" in keywords and not isinstance(keywords["show"], ast.Constant)  # never the default show=True
    assert ast.unparse(keywords["show"]) == f"not {ast.unparse(keywords['nodes'])}"


def test_packages_are_installed_from_the_panel_only_with_its_buttons_locked(tree):
    installs = [c for c in _calls(tree, "ensureDependencies") if any(k.arg == "interactive" and k.value.value is True
                                                                     for k in c.keywords)]
    guard = _function(tree, "_ensureDependencies")
    assert installs and all(any(c is i for c in ast.walk(guard)) for i in installs)
    locks = [n for n in ast.walk(guard) if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "self._installing"
             and n.value.value is True]
    assert locks and locks[0].lineno < installs[0].lineno


def test_one_dialog_lists_every_missing_or_outdated_package_and_pytorch_is_version_checked(tree):
    ensure = ast.unparse(_method(tree, "Speckle2SelfLogic", "ensureDependencies"))
    assert "dependency_question(problems)" in ensure and "self.dependencyProblems(" in ensure
    assert "torch.detail" in ensure  # installed but broken: say what to do, no reinstall
    problems = ast.unparse(_method(tree, "Speckle2SelfLogic", "dependencyProblems"))
    assert "self.torchProblem()" in problems and "package_problems(" in problems
    assert "torchVersionRequirement=f'>={TORCH_MINIMUM}'" in ast.unparse(_method(tree, "Speckle2SelfLogic", "_installTorch"))
    pip = ast.unparse(_method(tree, "Speckle2SelfLogic", "_pipInstall"))
    assert "packaging.pip_install(" in pip and "slicer.util.pip_install(" in pip


def test_a_pytorch_that_cannot_load_does_not_break_the_panel(tree):
    """enter() shows deviceDescription(), which reports the problem instead of importing torch blindly."""
    assert "self.logic.deviceDescription" in _called_names(_method(tree, "Speckle2SelfWidget", "enter"))
    describe = _method(tree, "Speckle2SelfLogic", "deviceDescription")
    assert _first_line(describe, "self.torchProblem") < min(n.lineno for n in ast.walk(describe)
                                                            if isinstance(n, ast.ImportFrom))


def test_input_selectors_hide_labelmaps_dwi_tensor_and_multivolumes(tree):
    constant = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "NOT_INPUT_CLASSES")
    assert set(ast.literal_eval(constant.value)) == {"vtkMRMLLabelMapVolumeNode", "vtkMRMLDiffusionWeightedVolumeNode",
                                                     "vtkMRMLDiffusionTensorVolumeNode", "vtkMRMLTensorVolumeNode",
                                                     "vtkMRMLMultiVolumeNode"}
    loop = next(n for n in ast.walk(_function(tree, "setup")) if isinstance(n, ast.For)
                and "hideChildNodeTypes" in ast.unparse(n))
    assert {ast.unparse(e) for e in loop.iter.elts} == {"self.ui.inputSelector", "self.ui.finetuneVolumesSelector"}


def test_the_sample_is_registered_with_sample_data_at_startup(tree):
    connects = [c for c in _calls(_function(tree, "__init__", "Speckle2Self"), "connect") if ast.literal_eval(c.args[0]) == "startupCompleted()"]
    assert [ast.unparse(c.args[1]) for c in connects] == ["registerSampleData"]
    assert _calls(_function(tree, "registerSampleData"), "registerCustomSampleDataSource")


def _test_class(tree) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Speckle2SelfTest")


def test_in_slicer_tests_cover_views_sequence_class_name_and_cancel(tree):
    source = ast.unparse(_test_class(tree))
    assert "def test_views_show_input_and_result_face_on_in_one_orientation" in source
    assert "outSequence.GetDataNodeClassName()" in source
    assert "def test_cancel_leaves_no_node" in source and "def test_cancelling_a_cine_leaves_no_sequence" in source


def test_in_slicer_denoising_tests_are_skipped_without_pytorch(tree):
    for method in _test_class(tree).body:
        if isinstance(method, ast.FunctionDef) and method.name.startswith("test_") and _calls(method, "denoise"):
            assert _calls(method, "_requireTorch"), f"{method.name} would fail, not skip, without PyTorch"
    assert "skipTest" in ast.unparse(_function(tree, "_requireTorch"))


def _method(tree, class_name: str, method_name: str) -> ast.FunctionDef:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == method_name)


def _called_names(function: ast.FunctionDef) -> set[str]:
    """Dotted names of everything `function` calls, e.g. 'self.live.stop'."""
    return {ast.unparse(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)}


def test_the_live_toggle_is_a_checkable_button_wired_to_live_mode(tree, ui):
    button = next(w for w in ui.iter("widget") if w.get("name") == "liveButton")
    props = {p.get("name"): p for p in button.iter("property")}
    assert props["checkable"].find("bool").text == "true"
    assert "self.ui.liveButton.connect('toggled(bool)', self.onLiveToggled)" in ast.unparse(
        _method(tree, "Speckle2SelfWidget", "setup"))


def test_live_mode_observes_the_input_voxels_and_polls_results_on_a_timer(tree):
    init = ast.unparse(_method(tree, "LiveSession", "__init__"))
    assert "ImageDataModifiedEvent" in init and "LiveDenoiser" in init and "QTimer" in init


def test_stopping_live_mode_removes_its_observer_timer_and_worker(tree):
    assert {"self.removeObservers", "self._timer.stop", "self.live.stop"} <= _called_names(_method(tree, "LiveSession", "stop"))
    assert "self._live.stop" in _called_names(_method(tree, "Speckle2SelfWidget", "_stopLive"))
    assert "self._stopLive" in _called_names(_method(tree, "Speckle2SelfWidget", "onLiveToggled"))


def test_closing_the_scene_or_the_module_stops_live_mode(tree):
    assert "self._stopLive" in _called_names(_method(tree, "Speckle2SelfWidget", "onSceneStartClose"))
    assert "self._stopLive" in _called_names(_method(tree, "Speckle2SelfWidget", "cleanup"))


def test_live_mode_touches_nodes_only_from_the_timer_on_the_main_thread(tree):
    """The engine's worker thread gets no callback into the module: results are polled."""
    init = _method(tree, "LiveSession", "__init__")
    live_call = next(n for n in ast.walk(init) if isinstance(n, ast.Call) and ast.unparse(n.func) == "LiveDenoiser")
    assert "on_result" not in {k.arg for k in live_call.keywords}
    assert "self.live.latest" in _called_names(_method(tree, "LiveSession", "_deliver"))


# Live mode and fine-tuning sessions start and stop cleanly (issue 19)

def _first_line(function: ast.FunctionDef, dotted: str) -> int:
    lines = [n.lineno for n in ast.walk(function) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted]
    assert lines, f"{function.name} does not call {dotted}"
    return min(lines)


def test_live_reads_its_input_before_it_makes_a_thread_node_observer_or_timer(tree):
    init = _method(tree, "LiveSession", "__init__")
    read = _first_line(init, "self._readFrames")
    for maker in ("LiveDenoiser", "slicer.mrmlScene.AddNewNodeByClass", "self.addObserver", "qt.QTimer"):
        assert read < _first_line(init, maker), maker
    assert "live_frames" in ast.unparse(_method(tree, "LiveSession", "_readFrames"))


def test_a_live_start_that_fails_part_way_releases_what_it_made(tree):
    init = _method(tree, "LiveSession", "__init__")
    guard = next(n for n in init.body if isinstance(n, ast.Try))
    made = {ast.unparse(n.func) for n in ast.walk(ast.Module(body=guard.body, type_ignores=[])) if isinstance(n, ast.Call)}
    assert {"LiveDenoiser", "slicer.mrmlScene.AddNewNodeByClass", "self.addObserver", "qt.QTimer"} <= made
    handler = ast.unparse(guard.handlers[0])
    assert "self.stop(removeOutput=True)" in handler and handler.rstrip().endswith("raise")
    stop = ast.unparse(_method(tree, "LiveSession", "stop"))
    assert "slicer.mrmlScene.RemoveNode(self.outputNode)" in stop


def test_live_views_are_set_up_when_the_first_result_has_arrived(tree):
    assert "showSideBySide" not in ast.unparse(_method(tree, "Speckle2SelfWidget", "onLiveToggled"))
    assert "self.logic.showSideBySide" in _called_names(_method(tree, "Speckle2SelfWidget", "_onLiveFirstResult"))
    deliver = _method(tree, "LiveSession", "_deliver")
    first = _first_line(deliver, "self.onFirstResult")
    for setter in ("slicer.util.updateVolumeFromArray", "self.outputNode.SetIJKToRASMatrix",
                   "self.outputNode.SetAndObserveTransformNodeID"):
        assert _first_line(deliver, setter) < first, setter


def test_live_observes_a_streaming_volumes_image_data_so_that_it_keeps_decoding(tree):
    observe = ast.unparse(_method(tree, "LiveSession", "_observeImageData"))
    assert "vtkMRMLStreamingVolumeNode" in observe and "GetImageData()" in observe
    assert "self.addObserver(imageData, vtk.vtkCommand.ModifiedEvent" in observe
    for caller in ("__init__", "onInputModified"):
        assert "self._observeImageData" in _called_names(_method(tree, "LiveSession", caller))


def test_ended_sessions_disconnect_their_timers_and_drop_model_and_panel(tree):
    stop = ast.unparse(_method(tree, "LiveSession", "stop"))
    assert "self._timer.disconnect('timeout()', self._deliver)" in stop
    assert "self.live = None" in stop and "self.onUpdate = self.onFirstResult = None" in stop
    disconnect = ast.unparse(_method(tree, "FinetuneProcess", "_disconnect"))
    assert "self._timer.disconnect('timeout()', self._deliver)" in disconnect and "self.onEvent = None" in disconnect


def test_fine_tuning_removes_its_export_folder_and_chart(tree):
    assert "shutil.rmtree(self.spec.parent" in ast.unparse(_method(tree, "FinetuneProcess", "_finish"))
    release = ast.unparse(_method(tree, "FinetuneProcess", "release"))
    assert "slicer.mrmlScene.RemoveNode(item)" in release and "self._plotNodes" in release
    assert "self._finetuneDone.release" in _called_names(_method(tree, "Speckle2SelfWidget", "onFinetuneStart"))


def test_reload_releases_fine_tuning_and_live_sessions(tree):
    cleanup = _method(tree, "Speckle2SelfWidget", "cleanup")
    assert {"run.release", "self._stopLive", "self.removeObservers"} <= _called_names(cleanup)
    assert "(self._finetune, self._finetuneDone)" in ast.unparse(cleanup)


def test_in_slicer_tests_cover_live_on_a_bad_input_dicom_files_and_the_sample_cine(tree):
    source = ast.unparse(_test_class(tree))
    for name in ("test_live_start_on_a_bad_input_leaves_nothing_behind", "test_live_shows_the_first_result_and_stops_cleanly",
                 "test_a_dicom_file_goes_through_denoise_files", "test_the_sample_loads_as_a_cine_and_is_denoised_as_one"):
        assert f"def {name}" in source and f"self.{name}()" in source


# Packaging and developer details (issue 19)

def test_index_entry_is_formatted_as_the_index_lints_it():
    """The index's prettier check puts one array element per line (json.dumps(indent=2) does the same)."""
    text = (ROOT / "Speckle2Self.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert '"build_dependencies": [\n    "PyTorch"\n  ]' in text


def test_cmake_minimum_is_the_slicer_5_10_templates():
    assert (ROOT / "CMakeLists.txt").read_text().startswith("cmake_minimum_required(VERSION 3.20.6...3.22.6 FATAL_ERROR)")


def test_the_module_imports_only_what_it_uses(tree):
    imported = {a.asname or a.name.split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names if a.name != "annotations"}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert imported - used == set()


def test_the_bundled_engine_comes_first_on_sys_path_and_a_foreign_copy_is_forgotten(tree):
    prefer = ast.unparse(_function(tree, "useBundledEngine"))
    assert "sys.path.insert(0, folder)" in prefer and "forgetEngineModules()" in prefer
    module = ast.parse(MODULE.read_text(encoding="utf-8"))  # the helpers never import the engine on load
    calls = [n for n in module.body if isinstance(n, ast.Expr) and ast.unparse(n) == "useBundledEngine()"]
    first_class = min(n.lineno for n in module.body if isinstance(n, ast.ClassDef))
    assert calls and calls[0].lineno < first_class  # before anything can import the engine


def test_reload_also_reloads_the_engine(tree):
    reload = _method(tree, "Speckle2SelfWidget", "onReload")
    assert _called_names(reload) == {"forgetEngineModules", "ScriptedLoadableModuleWidget.onReload"}


def test_the_icon_is_found_in_the_source_tree_too(tree):
    assert "self.parent.icon = qt.QIcon(str(resourceFile('Icons/Speckle2Self.png')))" in ast.unparse(
        _function(tree, "__init__", "Speckle2Self"))


def test_the_estimate_times_writing_back_as_the_run_writes(tree):
    estimate = ast.unparse(_method(tree, "Speckle2SelfLogic", "estimateRun"))
    assert "write_frame=self._frameWriter(sequence, scratch, frameNode)" in estimate
    assert "slicer.mrmlScene.RemoveNode(scratch)" in estimate  # the throwaway sequence goes
    assert "self._frameWriter(inputSequence, outputSequence, frameNode)" in ast.unparse(
        _method(tree, "Speckle2SelfLogic", "_denoiseSequence"))


def test_the_module_file_holds_the_template_classes_and_its_helpers_load_no_engine():
    module = ast.parse(MODULE.read_text(encoding="utf-8"))
    assert [n.name for n in module.body if isinstance(n, ast.ClassDef)] == [
        "Speckle2Self", "Speckle2SelfParameterNode", "Speckle2SelfWidget", "Speckle2SelfLogic", "Speckle2SelfTest"]
    for path in sorted(LIB.glob("*.py")):
        top = [n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not any("speckle2self" in ast.unparse(n) or "torch" in ast.unparse(n) for n in top), path.name
