"""Speckle2Self: self-supervised ultrasound speckle reduction in 3D Slicer.

This file is an adapter. Voxels go from nodes to the `speckle2self` engine and back; all the
numerical work, and everything with logic worth testing, is in `speckle2self` (see
`speckle2self/slicer/slicer_support.py`), which this module imports only when it is used, so the module
loads even before PyTorch is installed.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin
from Speckle2SelfLib import FinetuneProcess, LiveSession

MODULE_DIR = Path(__file__).resolve().parent
MODELS_SETTING = "Speckle2Self/ExtraModels"
USER_MODEL_DIR = Path.home() / ".speckle2self" / "models"  # user-writable; extension updates leave it alone
NOT_INPUT_CLASSES = ("vtkMRMLLabelMapVolumeNode", "vtkMRMLDiffusionWeightedVolumeNode",
                     "vtkMRMLDiffusionTensorVolumeNode", "vtkMRMLTensorVolumeNode",
                     "vtkMRMLMultiVolumeNode")  # scalar-volume subclasses that are not images the engine takes


ENGINE = "speckle2self"


def useBundledEngine() -> None:
    """Make `import speckle2self` find the engine next to this module, not a pip-installed copy.

    Slicer appends module folders to the end of sys.path, behind site-packages, so a
    `pip install speckle2self` in Slicer's Python would shadow the engine this module was written
    for; a copy imported from elsewhere is forgotten so that the next import finds this one."""
    folder = str(MODULE_DIR)
    if sys.path[:1] != [folder]:
        while folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    loaded = sys.modules.get(ENGINE)
    if loaded is not None and Path(loaded.__file__).resolve().parent != MODULE_DIR / ENGINE:
        forgetEngineModules()


def forgetEngineModules() -> None:
    """Drop the engine and its submodules from sys.modules: the next import reads them afresh."""
    for name in [n for n in sys.modules if n == ENGINE or n.startswith(ENGINE + ".")]:
        del sys.modules[name]


useBundledEngine()


def resourceFile(relative: str) -> Path:
    """A resource next to the installed module, or in the source tree's top-level Resources/."""
    for base in (MODULE_DIR / "Resources", MODULE_DIR.parent / "Resources"):
        if (base / relative).exists():
            return base / relative
    return MODULE_DIR / "Resources" / relative


#
# Speckle2Self
#


class Speckle2Self(ScriptedLoadableModule):
    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Speckle2Self")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Ultrasound")]
        self.parent.dependencies = []
        self.parent.contributors = ["Speckle2Self developers"]
        self.parent.helpText = _(
            "Removes ultrasound speckle from a volume or a cine with Speckle2Self, a network trained "
            "self-supervised on noisy images only. Choose the input, click <b>Denoise</b>; the result "
            "is a new volume (or a new sequence in the same browser) and the input is left untouched. "
            "The <i>Fine-tuning</i> section adapts the model to your own scanner's images.")
        self.parent.acknowledgementText = _(
            "Method: Li, Navab, Jiang, <i>Speckle2Self: Self-supervised ultrasound speckle reduction "
            "without clean data</i>, Medical Image Analysis, 2025.")
        # ScriptedLoadableModule looks for the icon next to this file only; the source tree keeps it one level up.
        self.parent.icon = qt.QIcon(str(resourceFile("Icons/Speckle2Self.png")))
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData() -> None:
    """Offer the bundled phantom cine in the Sample Data module, under 'Ultrasound'."""
    import SampleData
    from speckle2self.errors import InputError
    from speckle2self.slicer.slicer_support import SAMPLE_FILE, sample_data_source
    try:
        source = sample_data_source(resourceFile(SAMPLE_FILE).parents[1], thumbnail=resourceFile("Icons/Speckle2Self.png"))
    except InputError as exc:
        logging.warning(f"Speckle2Self: no Sample Data entry: {exc}")
        return
    SampleData.SampleDataLogic.registerCustomSampleDataSource(**source)


#
# Speckle2SelfParameterNode
#


@parameterNodeWrapper
class Speckle2SelfParameterNode:
    """Settings saved with the scene. modelPath "" means the bundled model; batchSize 0 means automatic."""

    inputVolume: vtkMRMLScalarVolumeNode
    modelPath: str = ""
    device: Annotated[str, Choice(["auto", "cuda", "cpu"])] = "auto"
    domain: Annotated[str, Choice(["auto", "bmode", "envelope"])] = "auto"
    strength: Annotated[float, WithinRange(0.0, 1.0)] = 1.0
    batchSize: Annotated[int, WithinRange(0, 256)] = 0
    finetuneSteps: Annotated[int, WithinRange(10, 100000)] = 500
    finetuneLearningRate: Annotated[float, WithinRange(1e-6, 1e-2)] = 2e-4
    finetuneOutputName: str = "speckle2self_finetuned"


#
# Speckle2SelfWidget
#


class Speckle2SelfWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: reads the GUI, calls one logic method, shows progress; no numerical work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._running = False
        self._installing = False
        self._cancelRequested = False
        self._finetune = None
        self._finetuneDone = None  # the last finished run: its loss chart stays until the next run
        self._live = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(str(resourceFile("UI/Speckle2Self.ui")))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = Speckle2SelfLogic()

        self.ui.inputSelector.showChildNodeTypes = True  # RGB (vector) volumes are scalar-volume children
        for selector in (self.ui.inputSelector, self.ui.finetuneVolumesSelector):
            selector.hideChildNodeTypes = list(NOT_INPUT_CLASSES)
        self.ui.progressBar.hide()
        self.ui.finetuneStopButton.enabled = False
        self._fillModelChoices()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.modelBrowseButton.connect("clicked(bool)", self.onBrowseModel)
        self.ui.finetuneStartButton.connect("clicked(bool)", self.onFinetuneStart)
        self.ui.finetuneStopButton.connect("clicked(bool)", self.onFinetuneStop)
        self.ui.liveButton.connect("toggled(bool)", self.onLiveToggled)
        self.initializeParameterNode()

    def onReload(self) -> None:
        """Reload the engine's modules with this one (as MONAIAuto3DSeg reloads its Lib), so a
        developer sees engine changes without restarting Slicer."""
        forgetEngineModules()
        ScriptedLoadableModuleWidget.onReload(self)

    def cleanup(self) -> None:
        """Module Reload or application exit: no timer, observer or callback of this widget may outlive it."""
        for run in (self._finetune, self._finetuneDone):
            if run is not None:
                run.release()
        self._finetune = self._finetuneDone = None
        self._stopLive()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.ui.deviceLabel.text = self.logic.deviceDescription()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self._stopLive()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = next((node for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
                          if not any(node.IsA(c) for c in NOT_INPUT_CLASSES)), None)
            if first:
                self._parameterNode.inputVolume = first

    def setParameterNode(self, inputParameterNode: Speckle2SelfParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._selectModel(self._parameterNode.modelPath)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = (hasInput or self._running) and not self._installing
        self.ui.applyButton.text = _("Cancel") if self._running else _("Denoise")
        self.ui.applyButton.toolTip = _("Stop after the current batch or frame") if self._running else (
            _("Denoise the input volume or every frame of its sequence") if hasInput else _("Select an input volume"))

    # Model choices

    def _fillModelChoices(self) -> None:
        combo = self.ui.modelComboBox
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(_("Bundled default model"), "")
        for path in self.logic.extraModels():
            combo.addItem(Path(path).name, path)
        combo.blockSignals(False)

    def _selectModel(self, path: str) -> None:
        combo = self.ui.modelComboBox
        index = combo.findData(path)
        if index < 0:
            combo.addItem(Path(path).name, path)
            index = combo.count - 1
        combo.setCurrentIndex(index)
        self._showModelCard(path)

    def onModelChanged(self, index: int) -> None:
        path = self.ui.modelComboBox.itemData(index) or ""
        if self._parameterNode:
            self._parameterNode.modelPath = path
        self._showModelCard(path)

    def onBrowseModel(self) -> None:
        path = qt.QFileDialog.getOpenFileName(self.parent, _("Choose a Speckle2Self model"), "",
                                              _("Speckle2Self models (*.pt)"))
        if path:
            self.logic.rememberModel(path)
            self._selectModel(path)
            if self._parameterNode:
                self._parameterNode.modelPath = path

    def _showModelCard(self, path: str) -> None:
        self.ui.modelCardLabel.text = self.logic.modelSummary(path or None)

    # Denoising

    def onApplyButton(self) -> None:
        if self._running:
            self._cancelRequested = True
            self.ui.applyButton.text = _("Cancelling…")
            return
        if self._installing:
            return
        params = self._parameterNode
        inputNode = params.inputVolume  # kept: the selection can change while the run processes events
        options = dict(model=params.modelPath or None, device=params.device, domain=params.domain,
                       batchSize=params.batchSize or None)
        with slicer.util.tryWithErrorDisplay(_("Speckle2Self could not denoise the volume."), waitCursor=False):
            self._ensureDependencies()
            if not self._confirmLongRun(inputNode, options):
                return
            self._setRunning(True)
            try:
                output = self.logic.denoise(inputNode, strength=params.strength, progress=self._onProgress,
                                            shouldStop=lambda: self._cancelRequested, **options)
            except self.logic.cancelledError() as exc:
                self.ui.statusLabel.text = str(exc)
                return
            finally:
                self._setRunning(False)
            self.ui.statusLabel.text = _("Done: {name}").format(name=output.GetName())
            self.logic.showSideBySide(inputNode, output)

    def _ensureDependencies(self) -> None:
        """Install what is missing or outdated (one dialog lists it all), with Denoise and Start
        disabled so that no second install can start."""
        if not self.logic.dependencyProblems():
            return
        self._installing = True
        self.ui.finetuneStartButton.enabled = False
        self.ui.statusLabel.text = _("Checking Python packages… (details in the Python console)")
        self.ui.progressBar.setRange(0, 0)  # busy indicator: the installer reports no fraction done
        self.ui.progressBar.show()
        self._updateButtons()
        try:
            self.logic.ensureDependencies(interactive=True)
            self.ui.statusLabel.text = ""
            self.ui.deviceLabel.text = self.logic.deviceDescription()
        finally:
            self._installing = False
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.hide()
            self.ui.finetuneStartButton.enabled = self._finetune is None
            self._updateButtons()

    def _confirmLongRun(self, inputNode, options: dict) -> bool:
        """For a long input, say how many frames and about how long, and ask before starting."""
        self.ui.statusLabel.text = _("Timing the first frames…")
        with slicer.util.WaitCursor():
            estimate = self.logic.estimateRun(inputNode, **options)
        self.ui.statusLabel.text = ""
        if estimate is None or not estimate.needs_confirmation:
            return True
        return slicer.util.confirmOkCancelDisplay(estimate.question, windowTitle=_("Speckle2Self"))

    def _setRunning(self, running: bool) -> None:
        self._running = running
        self._cancelRequested = False
        self.ui.progressBar.setVisible(running)
        self.ui.progressBar.value = 0
        self._updateButtons()
        slicer.app.processEvents()

    def _onProgress(self, info) -> None:
        self.ui.progressBar.value = info.percent
        self.ui.statusLabel.text = info.text
        slicer.app.processEvents()

    # Live mode

    def onLiveToggled(self, checked: bool) -> None:
        if not checked:
            self._stopLive()
            return
        params = self._parameterNode
        try:
            with slicer.util.tryWithErrorDisplay(_("Speckle2Self could not start live mode."), waitCursor=True):
                if params is None or params.inputVolume is None:
                    raise ValueError(_("Select the input volume (the one the stream updates) first."))
                self._ensureDependencies()
                inputNode = params.inputVolume
                self._live = self.logic.startLive(inputNode, model=params.modelPath or None, device=params.device,
                                                  domain=params.domain, onUpdate=self._onLiveUpdate,
                                                  onFirstResult=self._onLiveFirstResult)
                self.ui.liveStatusLabel.text = _("Live: waiting for the input to change…")
        finally:
            if self._live is None:
                self._stopLive()

    def _onLiveFirstResult(self) -> None:
        """The output has data, geometry and transform now: rotate the views onto it and fit them."""
        if self._live is not None:
            self.logic.showSideBySide(self._live.inputNode, self._live.outputNode)

    def _onLiveUpdate(self, statsText: str) -> None:
        self.ui.liveStatusLabel.text = _("Live: {stats}").format(stats=statsText)

    def _stopLive(self) -> None:
        """Stop live mode (its observer, timer and engine thread go with it) and untoggle the button."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            self.ui.liveStatusLabel.text = _("Live mode stopped.")
        if self.ui.liveButton.checked:
            self.ui.liveButton.blockSignals(True)
            self.ui.liveButton.checked = False
            self.ui.liveButton.blockSignals(False)

    # Fine-tuning

    def onFinetuneStart(self) -> None:
        params = self._parameterNode
        nodes = self.ui.finetuneVolumesSelector.checkedNodes()
        if self._installing or self._finetune is not None:
            return
        with slicer.util.tryWithErrorDisplay(_("Speckle2Self could not start fine-tuning."), waitCursor=False):
            self._ensureDependencies()
            if self._finetuneDone is not None:  # its chart makes way for the new run's
                self._finetuneDone.release()
                self._finetuneDone = None
            with slicer.util.WaitCursor():
                self._finetune = self.logic.startFinetuning(
                    nodes, params.finetuneOutputName, steps=params.finetuneSteps,
                    learningRate=params.finetuneLearningRate, model=params.modelPath or None, device=params.device,
                    onEvent=self._onFinetuneEvent)
            self.ui.finetuneStartButton.enabled = False
            self.ui.finetuneStopButton.enabled = True
            self.ui.finetuneStatusLabel.text = _("Starting… the model will be saved as {name}").format(
                name=self._finetune.output.name)

    def onFinetuneStop(self) -> None:
        if self._finetune is not None:
            self._finetune.stop()
            self.ui.finetuneStatusLabel.text = _(
                "Stopping after the current step; the best model so far is kept (a process that does not stop "
                "within {seconds:.0f} s is ended)…").format(seconds=self._finetune.graceSeconds)

    def _onFinetuneEvent(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "step":
            self.ui.finetuneStatusLabel.text = _("step {step} / {steps}, loss {loss:.5f}").format(**event)
        elif kind in ("finished", "error", "exited"):
            self.ui.finetuneStartButton.enabled = True
            self.ui.finetuneStopButton.enabled = False
            self._finetuneDone, self._finetune = self._finetune, None
            if kind == "finished":
                self.logic.rememberModel(event["model"])
                self._fillModelChoices()
                self._selectModel(event["model"])
                self.ui.finetuneStatusLabel.text = _("Saved {model}").format(**event)
            else:
                from speckle2self.slicer.worker_process import exit_message
                message = event.get("message") if kind == "error" else exit_message(event)
                self.ui.finetuneStatusLabel.text = message.splitlines()[0]
                slicer.util.errorDisplay(_("Fine-tuning failed: {message}").format(message=message))


#
# Speckle2SelfLogic
#


class Speckle2SelfLogic(ScriptedLoadableModuleLogic):
    """Console and batch entry points; blocking, no dialogs unless `interactive` says so.

    >>> logic = Speckle2SelfLogic()
    >>> out = logic.denoise(getNode("Image_Reference"), strength=0.8)
    >>> report = logic.denoiseFiles(["/data/a.nrrd", "/data/cines"], "/data/denoised")
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self) -> Speckle2SelfParameterNode:
        return Speckle2SelfParameterNode(super().getParameterNode())

    # Dependencies

    @staticmethod
    def torchProblem():
        """None if PyTorch >= 2.1 is installed and loads, else what is wrong (speckle2self.slicer.slicer_support.Problem).

        Checked from the package metadata first, so a missing PyTorch is not imported; one that
        fails to import (a DLL error on Windows) is caught and described, not raised."""
        from speckle2self.slicer.slicer_support import torch_problem
        return torch_problem()

    @staticmethod
    def torchAvailable() -> bool:
        return Speckle2SelfLogic.torchProblem() is None

    def ensureDependencies(self, interactive: bool = False) -> None:
        """Make sure PyTorch and the Python packages the engine needs are there.

        Every missing or outdated package is listed in one confirmation (the anchors' pattern); on
        OK, PyTorch comes from the PyTorch extension and the rest from pip (slicer.packaging where
        this Slicer has it). Without `interactive` nothing is installed and the optional DICOM
        decoders are not checked. A PyTorch that is installed but cannot load is not reinstalled
        here: the error says what to do.
        """
        from speckle2self.slicer.slicer_support import dependency_question
        problems = self.dependencyProblems(includeOptional=interactive)
        torch = next((p for p in problems if p.name == "PyTorch"), None)
        if torch is not None and torch.detail:
            raise RuntimeError(torch.line)
        if not problems:
            return
        lines = "\n".join(p.line for p in problems)
        if not interactive:
            raise RuntimeError(_("Speckle2Self is missing Python packages:\n{lines}\nClick Denoise in the module "
                                 "panel, or run Speckle2SelfLogic().ensureDependencies(interactive=True), to install "
                                 "them.").format(lines=lines))
        if not slicer.util.confirmOkCancelDisplay(dependency_question(problems), windowTitle=_("Speckle2Self")):
            required = [p for p in problems if not p.optional]
            if required:
                raise RuntimeError(_("Speckle2Self cannot run without: {names}; the installation was declined.").format(
                    names=", ".join(p.name for p in required)))
            self._optionalDeclined = True  # the DICOM decoders: not asked again in this session
            return
        with slicer.util.WaitCursor():
            if torch is not None:
                self._installTorch()
            packages = [p.pip for p in problems if p.name != "PyTorch"]
            if packages:
                self._pipInstall(packages)

    _optionalDeclined = False

    def dependencyProblems(self, includeOptional: bool = True) -> list:
        """Every unmet requirement (speckle2self.slicer.slicer_support.Problem), PyTorch first; optional
        ones (the DICOM decoders) only if asked for and not declined before."""
        from speckle2self.slicer.slicer_support import package_problems
        torch = self.torchProblem()
        return ([torch] if torch else []) + package_problems(include_optional=includeOptional
                                                             and not self._optionalDeclined)

    @staticmethod
    def _installTorch() -> None:
        """PyTorch through the PyTorch extension, which picks the build for this computer's GPU."""
        from speckle2self.slicer.slicer_support import TORCH_MINIMUM
        try:
            import PyTorchUtils
        except ImportError as exc:
            raise RuntimeError(_("Speckle2Self needs PyTorch. Install the 'PyTorch' extension from the "
                                 "Extensions Manager, restart Slicer, and try again.")) from exc
        installed = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                                  torchVersionRequirement=f">={TORCH_MINIMUM}")
        if installed is None:
            raise RuntimeError(_("PyTorch was not installed; see the Python console for details."))

    @staticmethod
    def _pipInstall(requirements: list[str]) -> None:
        """pip through slicer.packaging (Slicer 5.12 and later: progress dialog), else slicer.util.pip_install."""
        packaging = getattr(slicer, "packaging", None)
        if packaging is not None and hasattr(packaging, "pip_install"):
            packaging.pip_install(requirements, requester="Speckle2Self")
        else:
            slicer.util.pip_install(requirements)

    @staticmethod
    def cancelledError() -> type:
        from speckle2self.errors import Cancelled
        return Cancelled

    def deviceDescription(self) -> str:
        """The device the engine would use, or why PyTorch cannot be used (never raises: enter() shows it)."""
        problem = self.torchProblem()
        if problem is not None:
            return problem.line
        from speckle2self.networks.devices import device_description, resolve_device
        return device_description(resolve_device("auto"))

    # Models

    def extraModels(self) -> list[str]:
        stored = qt.QSettings().value(MODELS_SETTING) or []
        paths = [stored] if isinstance(stored, str) else list(stored)
        return [p for p in paths if Path(p).is_file()]

    def rememberModel(self, path: str) -> None:
        paths = self.extraModels()
        if path not in paths:
            qt.QSettings().setValue(MODELS_SETTING, paths + [str(path)])

    def modelSummary(self, path: str | None) -> str:
        if not self.torchAvailable():
            return _("The model card is shown once PyTorch is installed and loads.")
        from speckle2self.errors import Speckle2SelfError
        from speckle2self.inference.api import get_model
        from speckle2self.slicer.slicer_support import card_summary
        try:
            loaded = get_model(path)
        except Speckle2SelfError as exc:
            return _("Cannot use this model: {error}").format(error=exc)
        return card_summary(loaded.card, loaded.sha256)

    # Denoising nodes

    def denoise(self, inputNode, outputNode=None, model=None, device: str = "auto", domain: str = "auto",
                strength: float = 1.0, progress=None, batchSize: int | None = None, shouldStop=None):
        """Denoise a volume, or every frame of the sequence it is the proxy of; returns the output node.

        :param inputNode: scalar or RGB volume node; never modified.
        :param outputNode: scalar volume node to overwrite (single volumes only); None creates one.
        :param model: path of a Speckle2Self .pt file, or None for the bundled model.
        :param progress: called with a speckle2self.slicer.slicer_support.ProgressInfo after every batch; a cine
            also reports reading its frames and writing the result back (ProgressInfo.stage).
        :param shouldStop: returning True cancels after the current batch, or while a cine's frames are
            read or written back (raises Cancelled); the partial output is removed.
        For a cine the result is a new sequence in the input's browser; its proxy node is returned.
        """
        if inputNode is None:
            raise ValueError(_("No input volume selected."))
        self.ensureDependencies(interactive=False)
        options = dict(model=model, device=device, domain=domain, batch_size=batchSize, strength=strength,
                       progress=progress, should_stop=shouldStop)
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForProxyNode(inputNode)
        if browser is not None:
            return self._denoiseSequence(browser, inputNode, options)
        return self._denoiseVolume(inputNode, outputNode, options)

    def estimateRun(self, inputNode, model=None, device: str = "auto", domain: str = "auto",
                    batchSize: int | None = None):
        """Frames and expected seconds for denoising `inputNode` (timed on one batch of its first frames).

        Returns a speckle2self.slicer.slicer_support.RunEstimate, or None for an input short enough not to
        need one (the panel asks before a long run; console and batch calls do not ask).
        """
        from speckle2self.slicer.slicer_support import ESTIMATE_ABOVE_FRAMES, estimate_run
        if inputNode is None:
            raise ValueError(_("No input volume selected."))
        self.ensureDependencies(interactive=False)
        isVector = inputNode.IsA("vtkMRMLVectorVolumeNode")
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForProxyNode(inputNode)
        if browser is not None:
            sequence = browser.GetSequenceNode(inputNode)
            count = sequence.GetNumberOfDataNodes()

            def readFrame(i: int):
                return slicer.util.arrayFromVolume(sequence.GetNthDataNode(i))
        else:
            voxels = slicer.util.arrayFromVolume(inputNode)
            count = voxels.shape[0]

            def readFrame(i: int):
                return voxels[i:i + 1]
        if count <= ESTIMATE_ABOVE_FRAMES:
            return None
        if browser is None:
            return estimate_run(readFrame, count, isVector, model=model, device=device, domain=domain,
                                batch_size=batchSize)
        # Writing back is timed as the run writes: into a sequence, here a throwaway one.
        scratch = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceNode", "Speckle2Self timing")
        frameNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Speckle2Self frame")
        try:
            return estimate_run(readFrame, count, isVector, write_frame=self._frameWriter(sequence, scratch, frameNode),
                                model=model, device=device, domain=domain, batch_size=batchSize)
        finally:
            slicer.mrmlScene.RemoveNode(scratch)
            slicer.mrmlScene.RemoveNode(frameNode)

    @staticmethod
    def _frameWriter(inputSequence, outputSequence, frameNode):
        """writeFrame(i, grey): frame i of the result into `outputSequence` at the input's index value,
        with the input frame's geometry (through one reused temporary volume node)."""
        def writeFrame(i: int, frame) -> None:
            slicer.util.updateVolumeFromArray(frameNode, frame[None])
            frameNode.CopyOrientation(inputSequence.GetNthDataNode(i))
            outputSequence.SetDataNodeAtValue(frameNode, inputSequence.GetNthIndexValue(i))
        return writeFrame

    def _denoiseVolume(self, inputNode, outputNode, options):
        from speckle2self.slicer.slicer_support import denoise_volume_array, display_window
        isVector = inputNode.IsA("vtkMRMLVectorVolumeNode")
        result, notes = denoise_volume_array(slicer.util.arrayFromVolume(inputNode), isVector, **options)
        for note in notes:
            logging.info(f"Speckle2Self: {inputNode.GetName()}: {note}")
        created = outputNode is None
        if created:
            outputNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLScalarVolumeNode", slicer.mrmlScene.GenerateUniqueName(inputNode.GetName() + " denoised"))
        try:
            slicer.util.updateVolumeFromArray(outputNode, result)
            outputNode.CopyOrientation(inputNode)
            outputNode.SetAndObserveTransformNodeID(inputNode.GetTransformNodeID())
            outputNode.CreateDefaultDisplayNodes()
            outputNode.GetDisplayNode().SetAutoWindowLevel(False)
            outputNode.GetDisplayNode().SetWindowLevel(*display_window(result))
        except Exception:
            if created:
                slicer.mrmlScene.RemoveNode(outputNode)
            raise
        return outputNode

    def _denoiseSequence(self, browser, proxyNode, options):
        from speckle2self.slicer.slicer_support import denoise_frame_stream
        if browser.GetRecordingActive():
            raise RuntimeError(_("Sequence browser '{browser}' is recording; stop recording, then denoise.").format(
                browser=browser.GetName()))
        inputSequence = browser.GetSequenceNode(proxyNode)
        isVector = proxyNode.IsA("vtkMRMLVectorVolumeNode")
        count = inputSequence.GetNumberOfDataNodes()
        outputSequence = slicer.mrmlScene.AddNewNodeByClass(
            "vtkMRMLSequenceNode", slicer.mrmlScene.GenerateUniqueName(inputSequence.GetName() + " denoised"))
        # Index name, unit and type only: CopySequenceIndex would also copy the item list with empty
        # data nodes, and the sequence would then never get its DataNodeClassName.
        outputSequence.SetIndexName(inputSequence.GetIndexName())
        outputSequence.SetIndexUnit(inputSequence.GetIndexUnit())
        outputSequence.SetIndexType(inputSequence.GetIndexType())
        outputSequence.SetNumericIndexValueTolerance(inputSequence.GetNumericIndexValueTolerance())
        frameNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Speckle2Self frame")

        def readFrame(i: int):
            return slicer.util.arrayFromVolume(inputSequence.GetNthDataNode(i))

        writeFrame = self._frameWriter(inputSequence, outputSequence, frameNode)

        wasPlaying, selectedItem = browser.GetPlaybackActive(), browser.GetSelectedItemNumber()
        browser.SetPlaybackActive(False)  # paused while the output sequence is built
        try:
            denoise_frame_stream(readFrame, writeFrame, count, isVector, scratch_dir=slicer.app.temporaryPath,
                                 **options)
            browser.AddSynchronizedSequenceNode(outputSequence)  # its proxy is named after the sequence
            slicer.modules.sequences.logic().UpdateProxyNodesFromSequences(browser)
        except Exception:
            slicer.mrmlScene.RemoveNode(outputSequence)
            raise
        finally:
            slicer.mrmlScene.RemoveNode(frameNode)
            browser.SetSelectedItemNumber(selectedItem)
            browser.SetPlaybackActive(wasPlaying)
        proxy = browser.GetProxyNode(outputSequence)
        if proxy is None:
            raise RuntimeError(_("The denoised sequence '{sequence}' was made, but browser '{browser}' shows no "
                                 "volume for it. Select it in the Sequences module to view it.").format(
                sequence=outputSequence.GetName(), browser=browser.GetName()))
        proxy.SetAndObserveTransformNodeID(proxyNode.GetTransformNodeID())
        return proxy

    def denoiseFiles(self, paths, outputFolder, model=None, device: str = "auto", domain: str = "auto",
                     batchSize: int | None = None, progress=None) -> list[dict]:
        """Denoise files and folders into `outputFolder` without loading them; one report per file."""
        self.ensureDependencies(interactive=False)
        from speckle2self.inference.pipeline import denoise_files
        reports = denoise_files([str(p) for p in paths], str(outputFolder), model=model, device=device,
                                domain=domain, batch_size=batchSize, progress=progress)
        return [{"input": str(r.input), "output": str(r.output) if r.output else None, "ok": r.ok,
                 "error": r.error, "frames": r.frames, "seconds": r.seconds, "notes": r.notes} for r in reports]

    def showSideBySide(self, inputNode, outputNode) -> None:
        """Input in the left view, result in the right, pan and zoom linked, both showing the frames face on.

        The side-by-side layout asks for an axial Yellow view only when that view is first created;
        in a running Slicer Yellow is usually sagittal. So both views are set explicitly to the
        orientation of the input's frame plane before they are rotated onto the volume and fitted.
        """
        from speckle2self.slicer.slicer_support import frame_plane_orientation
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        ijkToRas, toWorld = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        inputNode.GetIJKToRASMatrix(ijkToRas)
        slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(inputNode.GetParentTransformNode(), None, toWorld)
        orientation = frame_plane_orientation(slicer.util.arrayFromVTKMatrix(ijkToRas),
                                              slicer.util.arrayFromVTKMatrix(toWorld))
        for viewName, node in (("Red", inputNode), ("Yellow", outputNode)):
            sliceLogic = layoutManager.sliceWidget(viewName).sliceLogic()
            composite = sliceLogic.GetSliceCompositeNode()
            composite.SetBackgroundVolumeID(node.GetID())
            composite.SetForegroundVolumeID(None)
            composite.SetLinkedControl(True)
            sliceLogic.GetSliceNode().SetOrientation(orientation)
            sliceLogic.GetSliceNode().RotateToVolumePlane(node)
            sliceLogic.FitSliceToBackground()

    # Live mode

    def startLive(self, inputNode, model=None, device: str = "auto", domain: str = "auto",
                  onUpdate=None, onFirstResult=None) -> "LiveSession":
        """Denoise `inputNode` live: each change of its voxels (OpenIGTLinkIF updating it from a stream)
        goes to the engine's LiveDenoiser, and the newest result is written into one new volume.

        `onUpdate(text)` receives frames/s and latency on the main thread; `onFirstResult()` is called
        once the output has its first frame (e.g. to show it). Call `.stop()` on the returned session
        to end it; its observers, timer and worker thread go with it. An input that cannot be shown
        (no image data, a MultiVolume, more than 4 components) raises and leaves nothing behind.
        """
        if inputNode is None:
            raise ValueError(_("No input volume selected."))
        self.ensureDependencies(interactive=False)
        return LiveSession(inputNode, model=model, device=device, domain=domain, onUpdate=onUpdate,
                           onFirstResult=onFirstResult)

    # Fine-tuning

    def startFinetuning(self, volumeNodes, outputName: str, steps: int = 500, learningRate: float = 2e-4,
                        model: str | None = None, device: str = "auto", onEvent=None) -> "FinetuneProcess":
        """Export the volumes (all frames of cines), then fine-tune in a PythonSlicer process.

        `onEvent(dict)` receives the worker's events on the main thread; the loss curve is plotted live.
        The model is written under the user's model folder, never into the extension's install folder,
        and never over an earlier model: a taken name gets a number (`name_2.pt`, …).
        """
        from speckle2self.finetune.finetune_worker import write_spec
        from speckle2self.slicer.slicer_support import free_model_path
        if not volumeNodes:
            raise ValueError(_("Select at least one volume or cine to fine-tune on."))
        workDir = Path(slicer.util.tempDirectory("Speckle2Self-finetune"))
        data = [self._exportFrames(node, workDir / f"data{i}.nrrd") for i, node in enumerate(volumeNodes)]
        modelDir = USER_MODEL_DIR
        modelDir.mkdir(parents=True, exist_ok=True)
        output = free_model_path(modelDir, outputName)
        spec = write_spec(workDir / "job.json", [str(p) for p in data], str(output), init=model, steps=steps,
                          lr=learningRate, device=device)
        return FinetuneProcess(spec, output, onEvent)

    def _exportFrames(self, node, path: Path) -> Path:
        """Write a volume (or every frame of its sequence) to NRRD for the worker, as grey frames."""
        from speckle2self.io import Volume, write_volume
        from speckle2self.slicer.slicer_support import collect_frames, frames_from_volume_array
        isVector = node.IsA("vtkMRMLVectorVolumeNode")
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForProxyNode(node)
        if browser is None:
            frames, _notes = frames_from_volume_array(slicer.util.arrayFromVolume(node), isVector)
        else:
            sequence = browser.GetSequenceNode(node)
            frames = collect_frames(lambda i: slicer.util.arrayFromVolume(sequence.GetNthDataNode(i)),
                                    sequence.GetNumberOfDataNodes(), isVector)
        write_volume(path, Volume(frames))
        return path


#
# Speckle2SelfTest
#


class Speckle2SelfTest(ScriptedLoadableModuleTest):
    """In-Slicer tests (Slicer --testing): real nodes, real engine, bundled model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    TORCH_MISSING = "PyTorch is not installed: the denoising tests are skipped (install the PyTorch extension to run them)"

    def runTest(self) -> None:
        self.setUp()
        self.test_views_show_input_and_result_face_on_in_one_orientation()
        if not Speckle2SelfLogic.torchAvailable():
            logging.warning(self.TORCH_MISSING)
            self.delayDisplay(self.TORCH_MISSING)
            return
        self.setUp()
        self.test_volume_geometry_and_speckle()
        self.setUp()
        self.test_rgb_volume_gives_grey_result()
        self.setUp()
        self.test_sequence_frames_and_browser()
        self.setUp()
        self.test_cancel_leaves_no_node()
        self.setUp()
        self.test_cancelling_a_cine_leaves_no_sequence_and_restores_the_browser()
        self.setUp()
        self.test_live_start_on_a_bad_input_leaves_nothing_behind()
        self.setUp()
        self.test_live_shows_the_first_result_and_stops_cleanly()
        self.setUp()
        self.test_a_dicom_file_goes_through_denoise_files()
        self.setUp()
        self.test_the_sample_loads_as_a_cine_and_is_denoised_as_one()

    def _requireTorch(self) -> None:
        """Skip (as TotalSegmentator and MONAIAuto3DSeg do) on a build machine without PyTorch, saying why."""
        if not Speckle2SelfLogic.torchAvailable():
            logging.warning(self.TORCH_MISSING)
            self.skipTest(self.TORCH_MISSING)

    def _sliceToRasRotation(self, viewName: str):
        sliceNode = slicer.app.layoutManager().sliceWidget(viewName).sliceLogic().GetSliceNode()
        return slicer.util.arrayFromVTKMatrix(sliceNode.GetSliceToRAS())[:3, :3]

    def test_views_show_input_and_result_face_on_in_one_orientation(self) -> None:
        """Red and Yellow end up with the same slice-to-RAS orientation, looking along K, whatever
        Yellow showed before (a running Slicer leaves it sagittal)."""
        import numpy as np
        if slicer.app.layoutManager() is None:
            self.skipTest("no main window, so no slice views")
        self.delayDisplay("Side-by-side views")
        rng = np.random.default_rng(1)
        cases = {"2-D frame": (rng.random((1, 60, 80)), np.diag([0.2, 0.3, 1.0, 1.0]), False),
                 "K-frame stack": (rng.random((5, 60, 80)), np.diag([0.2, 0.2, 0.5, 1.0]), False),
                 "DICOM-like cine": (rng.random((1, 60, 80)), np.diag([-0.25, -0.25, 1.0, 1.0]), True)}
        for name, (voxels, ijkToRas, isCine) in cases.items():
            with self.subTest(name):
                slicer.mrmlScene.Clear()
                node = slicer.util.addVolumeFromArray(voxels.astype(np.float32), ijkToRAS=ijkToRas, name=name)
                if isCine:
                    node = self._cineOf(node, frames=3)[2]
                result = slicer.modules.volumes.logic().CloneVolume(slicer.mrmlScene, node, name + " result")
                slicer.app.layoutManager().sliceWidget("Yellow").sliceLogic().GetSliceNode().SetOrientationToSagittal()
                Speckle2SelfLogic().showSideBySide(node, result)
                red, yellow = self._sliceToRasRotation("Red"), self._sliceToRasRotation("Yellow")
                self.assertTrue(np.allclose(red, yellow), f"{name}: Red {red.tolist()}, Yellow {yellow.tolist()}")
                self.assertTrue(np.allclose(np.abs(red[:, 2]), [0, 0, 1]), f"{name}: slice normal {red[:, 2]}")

    def _cineOf(self, node, frames: int):
        """A cine whose frame i is slice i (cyclically) of `node`, with `node`'s geometry and index 'time' in s.

        Returns its browser, sequence and proxy node; `node` itself is removed from the scene."""
        import numpy as np
        sequence = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceNode", "cine")
        sequence.SetIndexName("time")
        sequence.SetIndexUnit("s")
        frameNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "frame")
        voxels = slicer.util.arrayFromVolume(node)
        for i in range(frames):
            slicer.util.updateVolumeFromArray(frameNode, np.ascontiguousarray(voxels[i % len(voxels)][None]))
            frameNode.CopyOrientation(node)
            sequence.SetDataNodeAtValue(frameNode, str(0.05 * i))
        slicer.mrmlScene.RemoveNode(frameNode)
        slicer.mrmlScene.RemoveNode(node)
        browser = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "cine browser")
        browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
        slicer.modules.sequences.logic().UpdateProxyNodesFromSequences(browser)
        return browser, sequence, browser.GetProxyNode(sequence)

    def _speckleVolume(self, frames: int = 2):
        import numpy as np
        from speckle2self.evaluation.phantoms import make_cine
        cine = make_cine(frames, (128, 160), seed=5)
        ijkToRas = np.array([[-0.2, 0, 0, 10], [0, -0.3, 0, 20], [0, 0, 1.0, 5], [0, 0, 0, 1]])
        node = slicer.util.addVolumeFromArray(cine.envelope.astype(np.float32), ijkToRAS=ijkToRas, name="speckle")
        return node, cine

    def test_volume_geometry_and_speckle(self) -> None:
        import numpy as np
        from speckle2self.evaluation.metrics import speckle_snr
        self._requireTorch()
        self.delayDisplay("Denoising a speckle volume")
        node, cine = self._speckleVolume()
        before = slicer.util.arrayFromVolume(node).copy()
        out = Speckle2SelfLogic().denoise(node, device="cpu")
        result = slicer.util.arrayFromVolume(out)
        self.assertEqual(result.shape, before.shape)
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(node), before))
        inMatrix, outMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(inMatrix)
        out.GetIJKToRASMatrix(outMatrix)
        self.assertTrue(np.allclose(slicer.util.arrayFromVTKMatrix(inMatrix), slicer.util.arrayFromVTKMatrix(outMatrix)))
        flat = cine.echogenicity == cine.echogenicity[10, 10]
        self.assertGreater(speckle_snr(result[0][flat]), 1.3 * speckle_snr(before[0][flat]))

    def test_rgb_volume_gives_grey_result(self) -> None:
        import numpy as np
        self._requireTorch()
        self.delayDisplay("Denoising an RGB volume")
        envelope = self._speckleVolume()[1].envelope
        grey = np.round(envelope / envelope.max() * 255)
        rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)
        node = slicer.util.addVolumeFromArray(rgb, name="rgb", nodeClassName="vtkMRMLVectorVolumeNode")
        out = Speckle2SelfLogic().denoise(node, device="cpu")
        self.assertTrue(out.IsA("vtkMRMLScalarVolumeNode") and not out.IsA("vtkMRMLVectorVolumeNode"))
        self.assertEqual(slicer.util.arrayFromVolume(out).shape, rgb.shape[:3])

    def test_sequence_frames_and_browser(self) -> None:
        import numpy as np
        self._requireTorch()
        self.delayDisplay("Denoising a cine")
        browser, sequence, proxy = self._cineOf(self._speckleVolume(frames=3)[0], frames=3)
        browser.SetSelectedItemNumber(1)
        before = [slicer.util.arrayFromVolume(sequence.GetNthDataNode(i)).copy() for i in range(3)]
        outProxy = Speckle2SelfLogic().denoise(proxy, device="cpu")
        outSequence = browser.GetSequenceNode(outProxy)  # found through the input's browser: plays in sync
        self.assertIsNotNone(outSequence)
        self.assertNotEqual(outSequence.GetID(), sequence.GetID())
        self.assertEqual(outSequence.GetNumberOfDataNodes(), 3)
        self.assertEqual([outSequence.GetNthIndexValue(i) for i in range(3)],
                         [sequence.GetNthIndexValue(i) for i in range(3)])
        self.assertEqual((outSequence.GetIndexName(), outSequence.GetIndexUnit()), ("time", "s"))
        self.assertEqual(outSequence.GetDataNodeClassName(), "vtkMRMLScalarVolumeNode")
        self.assertEqual(browser.GetSelectedItemNumber(), 1)
        self.assertIsNone(slicer.mrmlScene.GetFirstNodeByName("Speckle2Self frame"))  # temporary node removed
        for i in range(3):
            self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(sequence.GetNthDataNode(i)), before[i]))
        inMatrix, outMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        sequence.GetNthDataNode(0).GetIJKToRASMatrix(inMatrix)
        outSequence.GetNthDataNode(0).GetIJKToRASMatrix(outMatrix)
        self.assertTrue(np.allclose(slicer.util.arrayFromVTKMatrix(inMatrix), slicer.util.arrayFromVTKMatrix(outMatrix)))

    def test_cancel_leaves_no_node(self) -> None:
        self._requireTorch()
        self.delayDisplay("Cancelling")
        node, _cine = self._speckleVolume(frames=4)
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        with self.assertRaises(Speckle2SelfLogic.cancelledError()):
            Speckle2SelfLogic().denoise(node, device="cpu", batchSize=1, shouldStop=lambda: True)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)

    def test_cancelling_a_cine_leaves_no_sequence_and_restores_the_browser(self) -> None:
        self._requireTorch()
        self.delayDisplay("Cancelling a cine")
        browser, _sequence, proxy = self._cineOf(self._speckleVolume(frames=4)[0], frames=4)
        browser.SetSelectedItemNumber(2)
        browser.SetPlaybackActive(True)
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        with self.assertRaises(Speckle2SelfLogic.cancelledError()):
            Speckle2SelfLogic().denoise(proxy, device="cpu", batchSize=1, shouldStop=lambda: True)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)
        self.assertTrue(browser.GetPlaybackActive())
        browser.SetPlaybackActive(False)
        self.assertEqual(browser.GetSelectedItemNumber(), 2)

    def test_live_start_on_a_bad_input_leaves_nothing_behind(self) -> None:
        """No image data, or a vector volume of 5 components: refused before a node, observer, timer
        or thread is made, and the same input can be refused again (nothing left half started)."""
        import numpy as np
        from speckle2self.errors import InputError
        self._requireTorch()
        self.delayDisplay("Live mode on a bad input")
        empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "no image yet")
        fiveComponents = slicer.util.addVolumeFromArray(np.zeros((1, 8, 9, 5), np.uint8), name="five",
                                                        nodeClassName="vtkMRMLVectorVolumeNode")
        for node, message in ((empty, "no image data"), (fiveComponents, "5 components")):
            nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
            for _attempt in range(2):
                with self.assertRaises(InputError) as raised:
                    Speckle2SelfLogic().startLive(node, device="cpu")
                self.assertIn(message, str(raised.exception))
                self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)
                self.assertFalse(node.HasObserver(slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent))

    def test_live_shows_the_first_result_and_stops_cleanly(self) -> None:
        """The output gets the input's geometry and parent transform with its first frame; after
        stop() the session holds no thread or model and the input has no observer left."""
        import time
        import weakref
        import numpy as np
        self._requireTorch()
        self.delayDisplay("Live mode")
        node, cine = self._speckleVolume(frames=1)
        transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
        node.SetAndObserveTransformNodeID(transform.GetID())
        firstResults = []
        session = Speckle2SelfLogic().startLive(node, device="cpu", onFirstResult=lambda: firstResults.append(1))
        deadline = time.monotonic() + 60
        while not firstResults and time.monotonic() < deadline:
            slicer.app.processEvents()
            time.sleep(0.01)
        self.assertEqual(firstResults, [1])
        output = session.outputNode
        self.assertEqual(slicer.util.arrayFromVolume(output).shape, slicer.util.arrayFromVolume(node).shape)
        self.assertEqual(output.GetTransformNodeID(), transform.GetID())
        worker = weakref.ref(session.live)
        session.stop()
        self.assertIsNone(session.live)
        self.assertIsNone(worker())
        self.assertFalse(node.HasObserver(slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent))
        self.assertIsNotNone(slicer.mrmlScene.GetNodeByID(output.GetID()))  # the result stays

    def test_a_dicom_file_goes_through_denoise_files(self) -> None:
        """A derived DICOM series from a DICOM ultrasound file, with Slicer's own pydicom (2.4 in
        Slicer 5.10, 3.x from 5.12); a broken file next to it is reported, not fatal."""
        import numpy as np
        import pydicom
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid
        from speckle2self.io.pydicom_compat import save_as_dicom_file
        self._requireTorch()
        self.delayDisplay("Denoising DICOM files")
        folder = Path(slicer.util.tempDirectory("Speckle2SelfTest-dicom"))
        envelope = self._speckleVolume()[1].envelope[0]
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientID, ds.Modality = "S2S-TEST", "US"
        ds.Rows, ds.Columns = envelope.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelSpacing = [0.2, 0.2]
        ds.PixelData = np.round(envelope / envelope.max() * 255).astype(np.uint8).tobytes()
        save_as_dicom_file(ds, folder / "frame.dcm")
        (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 40)
        reports = Speckle2SelfLogic().denoiseFiles([folder / "frame.dcm", folder / "broken.dcm"], folder / "out",
                                                   device="cpu")
        self.assertEqual([r["ok"] for r in reports], [True, False])
        out = pydicom.dcmread(reports[0]["output"])
        self.assertEqual(list(out.ImageType), ["DERIVED", "SECONDARY"])
        self.assertEqual(out.pixel_array.shape, envelope.shape)

    def test_the_sample_loads_as_a_cine_and_is_denoised_as_one(self) -> None:
        """Sample Data's entry is a 3-frame cine in a sequence browser; Denoise makes a second
        sequence of 3 frames in the same browser."""
        import SampleData
        self._requireTorch()
        self.delayDisplay("Sample cine")
        registerSampleData()
        loaded = SampleData.downloadSample("Speckle2SelfPhantomCine")
        sequence = loaded.GetMasterSequenceNode() if loaded.IsA("vtkMRMLSequenceBrowserNode") else loaded
        self.assertTrue(sequence.IsA("vtkMRMLSequenceNode"))
        self.assertEqual(sequence.GetNumberOfDataNodes(), 3)
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForSequenceNode(sequence)
        self.assertIsNotNone(browser)
        outProxy = Speckle2SelfLogic().denoise(browser.GetProxyNode(sequence), device="cpu")
        self.assertEqual(browser.GetSequenceNode(outProxy).GetNumberOfDataNodes(), 3)
