"""Speckle2Self: self-supervised ultrasound speckle reduction in 3D Slicer.

This file is an adapter. Voxels go from nodes to the `speckle2self` engine and back; all the
numerical work, and everything with logic worth testing, is in `speckle2self` (see
`speckle2self/slicer_support.py`), which this module imports only when it is used, so the module
loads even before PyTorch is installed.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import queue
import shutil
import sys
import threading
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

MODULE_DIR = Path(__file__).resolve().parent
MODELS_SETTING = "Speckle2Self/ExtraModels"
USER_MODEL_DIR = Path.home() / ".speckle2self" / "models"  # user-writable; extension updates leave it alone


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
        self._cancelRequested = False
        self._finetune = None
        self._live = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(str(resourceFile("UI/Speckle2Self.ui")))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = Speckle2SelfLogic()

        self.ui.inputSelector.showChildNodeTypes = True  # RGB (vector) volumes are scalar-volume children
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

    def cleanup(self) -> None:
        if self._finetune is not None:
            self._finetune.stop()
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
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
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
        self.ui.applyButton.enabled = hasInput or self._running
        self.ui.applyButton.text = _("Cancel") if self._running else _("Denoise")
        self.ui.applyButton.toolTip = _("Stop after the current batch") if self._running else (
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
        params = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Speckle2Self could not denoise the volume."), waitCursor=False):
            self.logic.ensureTorch(interactive=True)
            self._setRunning(True)
            try:
                output = self.logic.denoise(params.inputVolume, model=params.modelPath or None, device=params.device,
                                            domain=params.domain, strength=params.strength,
                                            batchSize=params.batchSize or None, progress=self._onProgress,
                                            shouldStop=lambda: self._cancelRequested)
            except self.logic.cancelledError() as exc:
                self.ui.statusLabel.text = str(exc)
                return
            finally:
                self._setRunning(False)
            self.ui.statusLabel.text = _("Done: {name}").format(name=output.GetName())
            self.logic.showSideBySide(params.inputVolume, output)

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
                self.logic.ensureTorch(interactive=True)
                self._live = self.logic.startLive(params.inputVolume, model=params.modelPath or None,
                                                  device=params.device, domain=params.domain,
                                                  onUpdate=self._onLiveUpdate)
                self.logic.showSideBySide(params.inputVolume, self._live.outputNode)
                self.ui.liveStatusLabel.text = _("Live: waiting for the input to change…")
        finally:
            if self._live is None:
                self._stopLive()

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
        with slicer.util.tryWithErrorDisplay(_("Speckle2Self could not start fine-tuning."), waitCursor=True):
            self.logic.ensureTorch(interactive=True)
            self._finetune = self.logic.startFinetuning(
                nodes, params.finetuneOutputName, steps=params.finetuneSteps, learningRate=params.finetuneLearningRate,
                model=params.modelPath or None, device=params.device,
                onEvent=self._onFinetuneEvent)
            self.ui.finetuneStartButton.enabled = False
            self.ui.finetuneStopButton.enabled = True
            self.ui.finetuneStatusLabel.text = _("Starting…")

    def onFinetuneStop(self) -> None:
        if self._finetune is not None:
            self._finetune.stop()
            self.ui.finetuneStatusLabel.text = _("Stopping after the current step; the best model so far is kept…")

    def _onFinetuneEvent(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "step":
            self.ui.finetuneStatusLabel.text = _("step {step} / {steps}, loss {loss:.5f}").format(**event)
        elif kind in ("finished", "error", "exited"):
            self.ui.finetuneStartButton.enabled = True
            self.ui.finetuneStopButton.enabled = False
            self._finetune = None
            if kind == "finished":
                self.logic.rememberModel(event["model"])
                self._fillModelChoices()
                self._selectModel(event["model"])
                self.ui.finetuneStatusLabel.text = _("Saved {model}").format(**event)
            else:
                message = event.get("message", _("the fine-tuning process ended unexpectedly"))
                self.ui.finetuneStatusLabel.text = message
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
    def torchAvailable() -> bool:
        return importlib.util.find_spec("torch") is not None

    def ensureTorch(self, interactive: bool = False) -> None:
        """Make sure PyTorch can be imported, installing it through the PyTorch extension with consent."""
        if self.torchAvailable():
            return
        try:
            import PyTorchUtils
        except ImportError as exc:
            raise RuntimeError(_("Speckle2Self needs PyTorch. Install the 'PyTorch' extension from the "
                                 "Extensions Manager, restart Slicer, and try again.")) from exc
        if not interactive:
            raise RuntimeError(_("PyTorch is not installed. Run Speckle2SelfLogic().ensureTorch(interactive=True) "
                                 "or click Denoise in the module panel to install it."))
        if not slicer.util.confirmOkCancelDisplay(
                _("Speckle2Self needs PyTorch, which is not installed yet. Install it now? This downloads "
                  "several hundred megabytes and can take a few minutes.")):
            raise RuntimeError(_("PyTorch is required; the installation was declined."))
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=">=2.1") is None:
            raise RuntimeError(_("PyTorch was not installed; see the Python console for details."))

    @staticmethod
    def cancelledError() -> type:
        from speckle2self.errors import Cancelled
        return Cancelled

    def deviceDescription(self) -> str:
        if not self.torchAvailable():
            return _("PyTorch not installed yet")
        from speckle2self.devices import device_description, resolve_device
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
            return _("The model card is shown once PyTorch is installed.")
        from speckle2self.errors import Speckle2SelfError
        from speckle2self.inference import get_model
        from speckle2self.slicer_support import card_summary
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
        :param progress: called with a speckle2self.slicer_support.ProgressInfo after every batch.
        :param shouldStop: returning True cancels after the current batch (raises Cancelled); the
            partial output is removed.
        For a cine the result is a new sequence in the input's browser; its proxy node is returned.
        """
        if inputNode is None:
            raise ValueError(_("No input volume selected."))
        self.ensureTorch(interactive=False)
        options = dict(model=model, device=device, domain=domain, batch_size=batchSize, strength=strength,
                       progress=progress, should_stop=shouldStop)
        browser = slicer.modules.sequences.logic().GetFirstBrowserNodeForProxyNode(inputNode)
        if browser is not None:
            return self._denoiseSequence(browser, inputNode, options)
        return self._denoiseVolume(inputNode, outputNode, options)

    def _denoiseVolume(self, inputNode, outputNode, options):
        from speckle2self.slicer_support import denoise_volume_array, display_window
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
        from speckle2self.slicer_support import denoise_frame_stream
        inputSequence = browser.GetSequenceNode(proxyNode)
        isVector = proxyNode.IsA("vtkMRMLVectorVolumeNode")
        count = inputSequence.GetNumberOfDataNodes()
        outputSequence = slicer.mrmlScene.AddNewNodeByClass(
            "vtkMRMLSequenceNode", slicer.mrmlScene.GenerateUniqueName(inputSequence.GetName() + " denoised"))
        outputSequence.CopySequenceIndex(inputSequence)
        frameNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Speckle2Self frame")

        def readFrame(i: int):
            return slicer.util.arrayFromVolume(inputSequence.GetNthDataNode(i))

        def writeFrame(i: int, frame) -> None:
            slicer.util.updateVolumeFromArray(frameNode, frame[None])
            frameNode.CopyOrientation(inputSequence.GetNthDataNode(i))
            outputSequence.SetDataNodeAtValue(frameNode, inputSequence.GetNthIndexValue(i))

        try:
            denoise_frame_stream(readFrame, writeFrame, count, isVector, **options)
            browser.AddSynchronizedSequenceNode(outputSequence)
            browser.SetOverwriteProxyName(outputSequence, True)
            slicer.modules.sequences.logic().UpdateProxyNodesFromSequences(browser)
            proxy = browser.GetProxyNode(outputSequence)
            proxy.SetAndObserveTransformNodeID(proxyNode.GetTransformNodeID())
        except Exception:
            slicer.mrmlScene.RemoveNode(outputSequence)
            raise
        finally:
            slicer.mrmlScene.RemoveNode(frameNode)
        return proxy

    def denoiseFiles(self, paths, outputFolder, model=None, device: str = "auto", domain: str = "auto",
                     batchSize: int | None = None, progress=None) -> list[dict]:
        """Denoise files and folders into `outputFolder` without loading them; one report per file."""
        self.ensureTorch(interactive=False)
        from speckle2self.pipeline import denoise_files
        reports = denoise_files([str(p) for p in paths], str(outputFolder), model=model, device=device,
                                domain=domain, batch_size=batchSize, progress=progress)
        return [{"input": str(r.input), "output": str(r.output) if r.output else None, "ok": r.ok,
                 "error": r.error, "frames": r.frames, "seconds": r.seconds, "notes": r.notes} for r in reports]

    def showSideBySide(self, inputNode, outputNode) -> None:
        """Input in the left view, result in the right, pan and zoom linked."""
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        for viewName, node in (("Red", inputNode), ("Yellow", outputNode)):
            sliceLogic = layoutManager.sliceWidget(viewName).sliceLogic()
            composite = sliceLogic.GetSliceCompositeNode()
            composite.SetBackgroundVolumeID(node.GetID())
            composite.SetForegroundVolumeID(None)
            composite.SetLinkedControl(True)
            sliceLogic.GetSliceNode().RotateToVolumePlane(node)
            sliceLogic.FitSliceToBackground()

    # Live mode

    def startLive(self, inputNode, model=None, device: str = "auto", domain: str = "auto",
                  onUpdate=None) -> "LiveSession":
        """Denoise `inputNode` live: each change of its voxels (OpenIGTLinkIF updating it from a stream)
        goes to the engine's LiveDenoiser, and the newest result is written into one new volume.

        `onUpdate(text)` receives frames/s and latency on the main thread. Call `.stop()` on the
        returned session to end it; its observer and worker thread go with it.
        """
        if inputNode is None:
            raise ValueError(_("No input volume selected."))
        self.ensureTorch(interactive=False)
        return LiveSession(inputNode, model=model, device=device, domain=domain, onUpdate=onUpdate)

    # Fine-tuning

    def startFinetuning(self, volumeNodes, outputName: str, steps: int = 500, learningRate: float = 2e-4,
                        model: str | None = None, device: str = "auto", onEvent=None) -> "FinetuneProcess":
        """Export the volumes (all frames of cines), then fine-tune in a PythonSlicer process.

        `onEvent(dict)` receives the worker's events on the main thread; the loss curve is plotted live.
        The model is written under Slicer's user folder, never into the extension's install folder.
        """
        from speckle2self.finetune_worker import write_spec
        if not volumeNodes:
            raise ValueError(_("Select at least one volume or cine to fine-tune on."))
        workDir = Path(slicer.util.tempDirectory("Speckle2Self-finetune"))
        data = [self._exportFrames(node, workDir / f"data{i}.nrrd") for i, node in enumerate(volumeNodes)]
        modelDir = USER_MODEL_DIR
        modelDir.mkdir(parents=True, exist_ok=True)
        output = modelDir / (Path(outputName).stem + ".pt")
        spec = write_spec(workDir / "job.json", [str(p) for p in data], str(output), init=model, steps=steps,
                          lr=learningRate, device=device)
        return FinetuneProcess(spec, onEvent)

    def _exportFrames(self, node, path: Path) -> Path:
        """Write a volume (or every frame of its sequence) to NRRD for the worker, as grey frames."""
        from speckle2self.io import Volume, write_volume
        from speckle2self.slicer_support import collect_frames, frames_from_volume_array
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


class FinetuneProcess:
    """A running fine-tuning worker: events are read on a thread and delivered on the main thread."""

    def __init__(self, spec: Path, onEvent) -> None:
        from speckle2self.finetune_worker import parse_event
        self.spec = spec
        self.onEvent = onEvent
        self.events: list[dict] = []
        self._parse = parse_event
        self._queue: queue.Queue = queue.Queue()
        self._plotNodes: dict = {}
        python = shutil.which("PythonSlicer") or sys.executable
        env = {"PYTHONPATH": str(MODULE_DIR) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = slicer.util.launchConsoleProcess([python, "-m", "speckle2self.finetune_worker", str(spec)],
                                                        updateEnvironment=env)
        threading.Thread(target=self._read, daemon=True).start()
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.connect("timeout()", self._deliver)
        self._timer.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            event = self._parse(line)
            if event is None:
                logging.info(f"Speckle2Self fine-tuning: {line.rstrip()}")
            else:
                self._queue.put(event)
        self.process.wait()
        self._queue.put({"event": "exited", "code": self.process.returncode})

    def _deliver(self) -> None:
        from speckle2self.slicer_support import loss_curve_rows
        while not self._queue.empty():
            event = self._queue.get()
            if event["event"] == "exited" and any(e["event"] in ("finished", "error") for e in self.events):
                self._timer.stop()
                continue
            self.events.append(event)
            if event["event"] == "step":
                slicer.util.plot(loss_curve_rows(self.events), xColumnIndex=0,
                                 columnNames=["step", "loss", "reconstruction", "consistency"],
                                 title="Speckle2Self fine-tuning loss", nodes=self._plotNodes)
            if event["event"] in ("finished", "error", "exited"):
                self._timer.stop()
            if self.onEvent is not None:
                self.onEvent(event)

    def stop(self) -> None:
        """Ask the worker to stop after its current step and save the best model so far."""
        self.spec.with_suffix(".stop").write_text("stop", encoding="utf-8")


class LiveSession(VTKObservationMixin):
    """Live mode, kept thin: observes the input's voxels, hands each new frame to
    speckle2self.live.LiveDenoiser (newest frame wins, worker thread), and on the main thread
    (a QTimer) writes the newest result into the output volume with the input frame's geometry."""

    POLL_MS = 15

    def __init__(self, inputNode, model=None, device: str = "auto", domain: str = "auto", onUpdate=None) -> None:
        VTKObservationMixin.__init__(self)
        from speckle2self.live import LiveDenoiser
        self.inputNode = inputNode
        self.onUpdate = onUpdate
        self.live = LiveDenoiser(model, device, domain=domain)
        self.outputNode = slicer.mrmlScene.AddNewNodeByClass(
            "vtkMRMLScalarVolumeNode", slicer.mrmlScene.GenerateUniqueName(inputNode.GetName() + " live denoised"))
        self._shown = False
        self.addObserver(inputNode, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent, self.onInputModified)
        self._timer = qt.QTimer()
        self._timer.setInterval(self.POLL_MS)
        self._timer.connect("timeout()", self._deliver)
        self._timer.start()
        self.onInputModified()

    def onInputModified(self, caller=None, event=None) -> None:
        from speckle2self.slicer_support import frames_from_volume_array
        frames, _notes = frames_from_volume_array(slicer.util.arrayFromVolume(self.inputNode),
                                                  self.inputNode.IsA("vtkMRMLVectorVolumeNode"))
        ijkToRas = vtk.vtkMatrix4x4()
        self.inputNode.GetIJKToRASMatrix(ijkToRas)
        self.live.submit(frames, slicer.util.arrayFromVTKMatrix(ijkToRas))  # copied: the stream may overwrite it

    def _deliver(self) -> None:
        result = self.live.latest(timeout=0)
        if result is None:
            return
        slicer.util.updateVolumeFromArray(self.outputNode, result.frame)
        self.outputNode.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(result.meta))
        self.outputNode.SetAndObserveTransformNodeID(self.inputNode.GetTransformNodeID())
        if not self._shown:
            from speckle2self.slicer_support import display_window
            self.outputNode.CreateDefaultDisplayNodes()
            self.outputNode.GetDisplayNode().SetAutoWindowLevel(False)
            self.outputNode.GetDisplayNode().SetWindowLevel(*display_window(result.frame))
            self._shown = True
        if self.onUpdate is not None:
            self.onUpdate(self.live.stats().text)

    def stop(self) -> None:
        """Remove the observer, stop the timer and join the engine's worker thread; the output stays."""
        self.removeObservers()
        self._timer.stop()
        self.live.stop()


#
# Speckle2SelfTest
#


class Speckle2SelfTest(ScriptedLoadableModuleTest):
    """In-Slicer tests (Slicer --testing): real nodes, real engine, bundled model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_volume_geometry_and_speckle()
        self.setUp()
        self.test_rgb_volume_gives_grey_result()
        self.setUp()
        self.test_sequence_frames_and_browser()
        self.setUp()
        self.test_cancel_leaves_no_node()

    def _speckleVolume(self, frames: int = 2):
        import numpy as np
        from speckle2self.phantoms import make_cine
        cine = make_cine(frames, (128, 160), seed=5)
        ijkToRas = np.array([[-0.2, 0, 0, 10], [0, -0.3, 0, 20], [0, 0, 1.0, 5], [0, 0, 0, 1]])
        node = slicer.util.addVolumeFromArray(cine.envelope.astype(np.float32), ijkToRAS=ijkToRas, name="speckle")
        return node, cine

    def test_volume_geometry_and_speckle(self) -> None:
        import numpy as np
        from speckle2self.metrics import speckle_snr
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
        self.delayDisplay("Denoising a cine")
        node, cine = self._speckleVolume(frames=3)
        sequence = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceNode", "cine")
        frameNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "frame")
        for i, frame in enumerate(cine.envelope):
            slicer.util.updateVolumeFromArray(frameNode, frame[None].astype("float32"))
            frameNode.CopyOrientation(node)
            sequence.SetDataNodeAtValue(frameNode, str(0.05 * i))
        slicer.mrmlScene.RemoveNode(frameNode)
        browser = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "cine browser")
        browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
        slicer.modules.sequences.logic().UpdateProxyNodesFromSequences(browser)
        proxy = browser.GetProxyNode(sequence)
        before = [slicer.util.arrayFromVolume(sequence.GetNthDataNode(i)).copy() for i in range(3)]
        outProxy = Speckle2SelfLogic().denoise(proxy, device="cpu")
        outSequence = browser.GetSequenceNode(outProxy)  # found through the input's browser: plays in sync
        self.assertIsNotNone(outSequence)
        self.assertNotEqual(outSequence.GetID(), sequence.GetID())
        self.assertEqual(outSequence.GetNumberOfDataNodes(), 3)
        self.assertEqual([outSequence.GetNthIndexValue(i) for i in range(3)],
                         [sequence.GetNthIndexValue(i) for i in range(3)])
        self.assertIsNone(slicer.mrmlScene.GetFirstNodeByName("Speckle2Self frame"))  # temporary node removed
        for i in range(3):
            self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(sequence.GetNthDataNode(i)), before[i]))
        inMatrix, outMatrix = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        sequence.GetNthDataNode(0).GetIJKToRASMatrix(inMatrix)
        outSequence.GetNthDataNode(0).GetIJKToRASMatrix(outMatrix)
        self.assertTrue(np.allclose(slicer.util.arrayFromVTKMatrix(inMatrix), slicer.util.arrayFromVTKMatrix(outMatrix)))

    def test_cancel_leaves_no_node(self) -> None:
        self.delayDisplay("Cancelling")
        node, _cine = self._speckleVolume(frames=4)
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        with self.assertRaises(Speckle2SelfLogic.cancelledError()):
            Speckle2SelfLogic().denoise(node, device="cpu", batchSize=1, shouldStop=lambda: True)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)
