"""The Speckle2Self module's FinetuneProcess (Speckle2SelfLib: the module's own classes, one concern a file)."""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import qt
import slicer

MODULE_DIR = Path(__file__).resolve().parents[1]  # the module's folder (this file is in Speckle2SelfLib/)


class FinetuneProcess:
    """A running fine-tuning worker: its output is read on a thread, its events delivered on the main thread.

    The process handling (decoding, last output lines, stop then kill) is speckle2self.slicer.worker_process.
    """

    def __init__(self, spec: Path, output: Path, onEvent) -> None:
        from speckle2self.slicer.worker_process import STOP_GRACE_SECONDS, WorkerProcess
        self.spec = spec
        self.output = output
        self.onEvent = onEvent
        self.events: list[dict] = []
        self.graceSeconds = STOP_GRACE_SECONDS
        self._plotNodes: dict = {}
        python = shutil.which("PythonSlicer") or sys.executable
        env = {"PYTHONPATH": str(MODULE_DIR) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        process = slicer.util.launchConsoleProcess([python, "-m", "speckle2self.finetune.finetune_worker", str(spec)],
                                                   updateEnvironment=env)
        self.worker = WorkerProcess(process, spec.with_suffix(".stop"), grace_seconds=self.graceSeconds,
                                    on_log=lambda line: logging.info(f"Speckle2Self fine-tuning: {line}"))
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.connect("timeout()", self._deliver)
        self._timer.start()

    def _deliver(self) -> None:
        from speckle2self.slicer.slicer_support import loss_curve_rows
        for event in self.worker.poll():
            if event["event"] == "exited" and any(e["event"] in ("finished", "error") for e in self.events):
                self._finish()
                continue
            self.events.append(event)
            if event["event"] == "step":
                # The chart is put in the layout once, when its nodes are made; later steps only update them.
                slicer.util.plot(loss_curve_rows(self.events), xColumnIndex=0,
                                 columnNames=["step", "loss", "reconstruction", "consistency"],
                                 title="Speckle2Self fine-tuning loss", nodes=self._plotNodes,
                                 show=not self._plotNodes)
            onEvent = self.onEvent
            if event["event"] in ("finished", "error", "exited"):
                self._finish()
            if onEvent is not None:
                onEvent(event)

    def stop(self) -> None:
        """Ask the worker to stop after its current step and save the best model so far; a worker
        still running `graceSeconds` later is killed (checked on every delivery)."""
        self.worker.request_stop()

    def _finish(self) -> None:
        """The run is over: let go of the panel and delete the exported training data."""
        self._disconnect()
        shutil.rmtree(self.spec.parent, ignore_errors=True)  # the worker read its data at start

    def _disconnect(self) -> None:
        """Stop and disconnect the timer (its connection would keep this object alive) and drop the
        panel's callback."""
        if self._timer is not None:
            self._timer.stop()
            self._timer.disconnect("timeout()", self._deliver)
            self._timer = None
        self.onEvent = None

    def release(self) -> None:
        """Let go of everything this run made in Slicer (Reload, a new run, closing the module): the
        loss chart's nodes are removed; a worker still running is asked to stop and save its best
        model, and its export folder, which holds the stop request, is left to it."""
        if self._timer is not None:
            self.stop()
            self._disconnect()
        else:
            self._finish()
        for node in self._plotNodes.values():
            for item in (node if isinstance(node, (list, tuple)) else [node]):
                if item is not None and item.GetScene() is not None:
                    slicer.mrmlScene.RemoveNode(item)
        self._plotNodes = {}
