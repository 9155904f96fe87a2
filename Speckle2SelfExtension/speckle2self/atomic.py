"""Write files so that a reader sees either the old file or the complete new one, never half.

The new content goes to a hidden temporary beside the target (`.NAME-XXXXXXXX.EXT`, tempfile's
eight random characters) and replaces the target when complete. A process killed in between leaves
its temporary behind; the next write into that folder removes such leftovers once they are older
than STALE_AFTER_S (a live write keeps touching its temporary, so it is never that old).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputError
from .failures import reason

STALE_AFTER_S = 15 * 60
TEMPORARY_NAME = re.compile(r"^\.[^./]+-[a-z0-9_]{8}(\.[A-Za-z0-9]+)+$")
"""Exactly the names atomic_path gives its temporaries (tempfile's random part: 8 of [a-z0-9_])."""
STAGING_NAME = re.compile(r"^\.speckle2self-[a-z0-9_]{8}$")
"""The private folders the writers of header + data formats stage their files in."""


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it vanishes.

    The temporary file keeps `target`'s extension (writers choose the format by it). An OSError
    (disk full, read-only, no permission) becomes an OutputError that names `target`, not the
    temporary.
    """
    target = Path(target)
    if suffix is None:
        suffix = "".join(target.suffixes) or ".tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}-", suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _output_error(target, exc) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise _output_error(target, exc) from exc
        raise


def _output_error(target: Path, exc: OSError) -> OutputError:
    return OutputError(f"{target}: cannot write ({reason(exc)}); any previous file there is unchanged")


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporaries of our own naming pattern left in `folder` by killed processes.

    Only names that match TEMPORARY_NAME (files) or STAGING_NAME (folders) exactly and that were
    last modified more than `older_than_s` seconds ago; returns what was removed. Never raises.
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            is_file = entry.is_file(follow_symlinks=False)
            is_dir = entry.is_dir(follow_symlinks=False)
            ours = (is_file and TEMPORARY_NAME.match(entry.name)) or (is_dir and STAGING_NAME.match(entry.name))
            if not ours or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                continue
            shutil.rmtree(entry.path) if is_dir else os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _mode_for(target: Path) -> int:
    """The replaced file's permissions, or what a plain open() would have given a new file."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target, suffix=".tmp") as tmp:
        tmp.write_text(text, encoding="utf-8")
