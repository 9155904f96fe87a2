"""The Speckle2Self module's LiveSession (Speckle2SelfLib: the module's own classes, one concern a file)."""
from __future__ import annotations

import logging

import qt
import slicer
import vtk
from slicer.util import VTKObservationMixin


class LiveSession(VTKObservationMixin):
    """Live mode, kept thin: observes the input's voxels, hands each new frame to
    speckle2self.live.denoiser.LiveDenoiser (newest frame wins, worker thread), and on the main thread
    (a QTimer) writes the newest result into the output volume with the input frame's geometry.

    The input is read before anything is made, and a start that fails part way releases what it
    made, so a bad input leaves no thread, node, observer or timer behind. `onFirstResult()` is
    called once the output has its first frame, geometry and parent transform (the views can only
    be rotated onto it and fitted then).
    """

    POLL_MS = 15

    def __init__(self, inputNode, model=None, device: str = "auto", domain: str = "auto", onUpdate=None,
                 onFirstResult=None) -> None:
        VTKObservationMixin.__init__(self)
        from speckle2self.live.denoiser import LiveDenoiser
        self.inputNode = inputNode
        self.onUpdate = onUpdate
        self.onFirstResult = onFirstResult
        self.live = None
        self.outputNode = None
        self._timer = None
        self._observedImage = None
        self._shown = False
        firstFrames = self._readFrames()  # raises before anything exists
        try:
            self.live = LiveDenoiser(model, device, domain=domain)
            self.outputNode = slicer.mrmlScene.AddNewNodeByClass(
                "vtkMRMLScalarVolumeNode", slicer.mrmlScene.GenerateUniqueName(inputNode.GetName() + " live denoised"))
            self.addObserver(inputNode, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent, self.onInputModified)
            self._observeImageData()
            self._timer = qt.QTimer()
            self._timer.setInterval(self.POLL_MS)
            self._timer.connect("timeout()", self._deliver)
            self._timer.start()
            self._submit(firstFrames)
        except Exception:
            self.stop(removeOutput=True)
            raise

    def _readFrames(self):
        """The input's current grey frames (speckle2self.slicer.slicer_support.live_frames says what it refuses)."""
        from speckle2self.slicer.slicer_support import live_frames
        node = self.inputNode
        array = slicer.util.arrayFromVolume(node) if node.GetImageData() is not None else None
        return live_frames(array, node.IsA("vtkMRMLVectorVolumeNode"), node.GetClassName())

    def _observeImageData(self) -> None:
        """Observe the input's image data object: a vtkMRMLStreamingVolumeNode (OpenIGTLink VIDEO)
        decodes its frames only while its image data has an observer, i.e. otherwise only while it
        is shown in a view. The object is replaced when the frame size changes, so this is redone."""
        imageData = self.inputNode.GetImageData() if self.inputNode.IsA("vtkMRMLStreamingVolumeNode") else None
        if imageData is self._observedImage:
            return
        if self._observedImage is not None:
            self.removeObserver(self._observedImage, vtk.vtkCommand.ModifiedEvent, self._onImageDataModified)
        if imageData is not None:
            self.addObserver(imageData, vtk.vtkCommand.ModifiedEvent, self._onImageDataModified)
        self._observedImage = imageData

    def _onImageDataModified(self, caller=None, event=None) -> None:
        """Nothing to do: the observer itself keeps a streaming volume decoding (the node's own
        ImageDataModifiedEvent delivers the frame)."""

    def onInputModified(self, caller=None, event=None) -> None:
        self._observeImageData()
        try:
            frames = self._readFrames()
        except Exception as exc:  # e.g. the stream cleared the image: skip this frame, keep the session
            logging.warning(f"Speckle2Self live: frame skipped: {exc}")
            return
        self._submit(frames)

    def _submit(self, frames) -> None:
        ijkToRas = vtk.vtkMatrix4x4()
        self.inputNode.GetIJKToRASMatrix(ijkToRas)
        self.live.submit(frames, slicer.util.arrayFromVTKMatrix(ijkToRas))  # copied: the stream may overwrite it

    def _deliver(self) -> None:
        result = self.live.latest(timeout=0) if self.live is not None else None
        if result is None:
            return
        slicer.util.updateVolumeFromArray(self.outputNode, result.frame)
        self.outputNode.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(result.meta))
        self.outputNode.SetAndObserveTransformNodeID(self.inputNode.GetTransformNodeID())
        if not self._shown:
            from speckle2self.slicer.slicer_support import display_window
            self.outputNode.CreateDefaultDisplayNodes()
            self.outputNode.GetDisplayNode().SetAutoWindowLevel(False)
            self.outputNode.GetDisplayNode().SetWindowLevel(*display_window(result.frame))
            self._shown = True
            if self.onFirstResult is not None:
                self.onFirstResult()
        if self.onUpdate is not None:
            self.onUpdate(self.live.stats().text)

    def stop(self, removeOutput: bool = False) -> None:
        """Remove the observers, stop and disconnect the timer, join the engine's worker thread and
        drop every reference to the model and the panel, so the session can be freed. The output
        stays unless `removeOutput` (a start that failed)."""
        self.removeObservers()
        self._observedImage = None
        if self._timer is not None:
            self._timer.stop()
            self._timer.disconnect("timeout()", self._deliver)  # the connection would keep this session alive
            self._timer = None
        if self.live is not None:
            self.live.stop()
            self.live = None
        if removeOutput and self.outputNode is not None:
            slicer.mrmlScene.RemoveNode(self.outputNode)
            self.outputNode = None
        self.onUpdate = self.onFirstResult = None
