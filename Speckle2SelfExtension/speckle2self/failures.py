"""One wording for foreseeable failures: a short reason per exception, free of library internals.

Libraries report failures in their own terms: pydicom appends a traceback to a write error,
pydicom and torch suggest options that would be unsafe here (`force=True`, `weights_only=False`),
and a failed write names the hidden temporary file instead of the output. Every reader, writer and
loader words its error through `reason`, so users see the operating system's own description
("No space left on device", "Read-only file system") or the first line of the library's message.
"""
from __future__ import annotations

from typing import Iterator

_UNSAFE_ADVICE = ("force=True", "weights_only", "WeightsUnpickler", "pickle")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def reason(exc: BaseException) -> str:
    """One line saying why `exc` happened: the OS's description of an OSError anywhere in the
    exception's chain (pydicom re-raises write errors without their errno), else the first line of
    the message, else the exception's type name. Advice to weaken a safety check is left out."""
    for item in _chain(exc):
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if not first or any(word in first for word in _UNSAFE_ADVICE):
        return type(exc).__name__
    return first
