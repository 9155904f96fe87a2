"""The model actor: loads and verifies the model once, then denoises files with `denoise_file`.

A plain class; the driver makes it a Ray actor (ray.remote) with the resources its layout asks
for, so this module does not import Ray. Each file goes through pipeline.denoise_file, the very
function the single-process command calls, so the bytes written are the same.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import ModelFileError, Speckle2SelfError
from ..failures import reason
from ..inference.pipeline import FileReport, denoise_file, denoise_files

EXPECTED_ERRORS = (Speckle2SelfError, OSError)
"""What denoise_files reports as a file's failure; anything else is reported as a bug."""


class DenoiseWorker:
    """One model, loaded once; files in, FileReports out (failures included, never raised)."""

    def __init__(self, model_path: str, sha256: str, bundled: bool, options: dict, threads: int | None,
                 cwd: str) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.options = options
        self.model = None
        self.error: str | None = None
        try:
            self._start(model_path, sha256, bundled, threads, cwd)
        except (Speckle2SelfError, OSError) as exc:
            self.error = f"worker {self.name}: {exc}"

    def _start(self, model_path: str, sha256: str, bundled: bool, threads: int | None, cwd: str) -> None:
        import torch
        from ..networks.model_file import bundled_model_path, load_model
        if threads:
            torch.set_num_threads(threads)
        if not os.path.isdir(cwd):
            raise OSError(f"the driver's working folder {cwd} is not on this node; inputs, outputs and the "
                          "model must be on storage every node shares")
        os.chdir(cwd)  # inputs and outputs keep the names the user gave, as in one process
        path = Path(model_path)
        if bundled and not path.is_file():  # the wheel may sit elsewhere on this node
            path = bundled_model_path()
        model = load_model(path)
        if model.sha256 != sha256:
            raise ModelFileError(f"the model {path} on this node has sha256 {model.sha256}, not the driver's "
                                 f"{sha256}; every node needs the same model file")
        self.model = model

    def ready(self) -> str | None:
        """None once the model is loaded and verified, else why it could not be."""
        return self.error

    def pid(self) -> int:
        return os.getpid()

    def denoise(self, src: str, dst: str) -> FileReport:
        """One input file to its output, as denoise_files would do it."""
        try:
            report = denoise_file(src, dst, model=self.model, **self.options)
        except EXPECTED_ERRORS as exc:
            report = FileReport(Path(src), None, False, str(exc))
        except Exception as exc:  # noqa: BLE001  (one broken file must not stop an archive)
            report = FileReport(Path(src), None, False, f"unexpected {type(exc).__name__}: {reason(exc)} (this is "
                                "a bug; please report it)")
        report.worker = self.name
        return report

    def denoise_series(self, src: str, dst: str) -> FileReport:
        """A folder holding one DICOM series to one volume file: denoise_files' own case."""
        report = denoise_files([src], dst, model=self.model, **self.options)[0]
        report.worker = self.name
        return report
