"""Exceptions the engine raises; each message names the problem and, where it can, the fix."""


class Speckle2SelfError(Exception):
    """Base class: anything the engine refuses or cannot do."""


class InputError(Speckle2SelfError, ValueError):
    """The frames, file or option given cannot be processed as they are."""


class ModelFileError(Speckle2SelfError):
    """A model file is missing, corrupt, tampered with, or not a Speckle2Self model."""


class Cancelled(Speckle2SelfError):
    """The caller's stop request ended the work; nothing partial was returned or written."""
