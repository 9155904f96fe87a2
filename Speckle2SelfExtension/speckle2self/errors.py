"""Exceptions the engine raises; each message names the problem and, where it can, the fix.

The command line maps them to exit codes: an error about one file of a batch fails that file
(exit 1); an error before any file is processed means the command cannot run (exit 2).
"""


class Speckle2SelfError(Exception):
    """Base class: anything the engine refuses or cannot do."""


class InputError(Speckle2SelfError, ValueError):
    """The frames, file or option given cannot be processed as they are."""


class ModelFileError(Speckle2SelfError):
    """A model file is missing, corrupt, tampered with, not a Speckle2Self model, or gave an unusable output."""


class OutputError(Speckle2SelfError, OSError):
    """A result could not be written (disk full, read-only, no permission); any previous file is unchanged."""


class TrainingDiverged(Speckle2SelfError, FloatingPointError):
    """Training produced a non-finite loss; nothing from the diverged steps is kept."""


class Cancelled(Speckle2SelfError):
    """The caller's stop request ended the work; nothing partial was returned or written."""
