"""Every file an input consists of and every file an output creates, so a run never writes over an input.

A MetaImage or NRRD header may keep its pixels in other files (`ElementDataFile = y.raw`,
`data file: y.raw`, a LIST of files or a numbered pattern), and ITK's writers put a `.raw` data file
next to a `.mhd` or `.nhdr` output. Comparing header names alone let an output's data file replace
an input's pixels, and let two outputs of one run share one data file (issue 18). `check_plan`
compares every file of every input with every file of every output before any work.
"""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError

DETACHED_SUFFIXES = (".mhd", ".nhdr")
"""Output suffixes that SimpleITK writes as a header plus a data file NAME.raw (uncompressed): any
case of .mhd, and .nhdr in lower case only (ITK writes a .NHDR as one attached NRRD file)."""
_HEADER_SUFFIXES = (".mhd", ".mha", ".nhdr", ".nrrd")
_HEADER_BYTES = 1 << 20
_MAX_FILES = 100_000
_MHD_KEY = re.compile(r"^\s*ElementDataFile\s*=\s*(.*?)\s*$", re.IGNORECASE)
_NRRD_KEY = re.compile(r"^\s*data ?file\s*:\s*(.*?)\s*$", re.IGNORECASE)


def output_files(path: str | os.PathLike) -> list[Path]:
    """The files writing an image to `path` creates: the file itself, and NAME.raw for .mhd/.nhdr."""
    path = Path(path)
    if path.suffix.lower() == ".mhd" or path.suffix == ".nhdr":
        return [path, path.with_suffix(".raw")]
    return [path]


def input_files(path: str | os.PathLike) -> list[Path]:
    """The file and the data files its header names (relative names are relative to the header)."""
    path = Path(path)
    if path.suffix.lower() not in _HEADER_SUFFIXES or not path.is_file():
        return [path]
    names = _data_file_names(_header_lines(path), mhd=path.suffix.lower() in (".mhd", ".mha"))
    return [path] + [Path(name) if Path(name).is_absolute() else path.parent / name for name in names]


def _header_lines(path: Path) -> list[str]:
    """The text lines at the start of a header (a .mha/.nrrd's binary pixels are never read whole)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_BYTES)
    except OSError:
        return []
    return head.decode("latin-1").splitlines()


def _data_file_names(lines: list[str], *, mhd: bool) -> list[str]:
    key = _MHD_KEY if mhd else _NRRD_KEY
    for index, line in enumerate(lines):
        if not mhd and not line.strip():  # a blank line ends a NRRD header
            return []
        match = key.match(line)
        if match:
            return _expand(match.group(1), lines[index + 1:])
    return []


def _expand(value: str, rest: list[str]) -> list[str]:
    """One data file name, a LIST (the lines after the field), or a pattern `FORMAT MIN MAX STEP`."""
    words = value.split()
    if not words or value.upper() == "LOCAL":
        return []
    if words[0].upper() == "LIST":
        return [line.strip() for line in rest[:_MAX_FILES] if line.strip()]
    if "%" in words[0] and len(words) >= 4:
        try:
            first, last, step = (int(w) for w in words[1:4])
            numbers = itertools.islice(range(first, last + (1 if step > 0 else -1), step), _MAX_FILES)
            return [words[0] % i for i in numbers]
        except (ValueError, TypeError, ZeroDivisionError):
            return []
    return [value]


def _identity(path: Path) -> tuple:
    """What makes two paths one file: device and inode when it exists (links included), else the
    absolute path with links resolved."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.normcase(os.path.realpath(path)))


def check_plan(pairs: Sequence[tuple[Path, Path]], inputs: Iterable[Path] = ()) -> None:
    """Refuse a plan in which an output (or its data file) is a file of any input, two outputs share
    a file, or an output's data file already exists without being that output's own (the data file
    of an earlier result of the same name may be replaced; another image's may not). `pairs` are
    (input, output); `inputs` are further files read (e.g. a DICOMDIR)."""
    owners: dict[tuple, tuple[Path, Path]] = {}
    for src in [src for src, _ in pairs] + list(inputs):
        for part in input_files(src):
            owners.setdefault(_identity(part), (src, part))
    written: dict[tuple, tuple[Path, Path]] = {}
    for src, dst in pairs:
        for part in output_files(dst):
            key = _identity(part)
            if key in owners:
                raise InputError(_overwrite_message(dst, part, *owners[key]))
            if key in written:
                raise InputError(_shared_message(written[key], (src, dst), part))
            written[key] = (src, dst)
        check_own_data_files(dst)


def check_own_data_files(dst: Path) -> None:
    """Refuse an output whose data file (NAME.raw of a .mhd/.nhdr) exists but is not named by the
    header already at `dst`: it may hold another image's pixels."""
    own = None
    for part in output_files(dst)[1:]:
        if part.exists():
            own = {_identity(p) for p in input_files(dst)[1:]} if own is None else own
            if _identity(part) not in own:
                raise InputError(f"{dst}: its data file {part} exists and is not {dst.name}'s own; writing would "
                                 "replace it (it may hold another image's pixels): choose another output name")


def _overwrite_message(dst: Path, part: Path, src: Path, owned: Path) -> str:
    if part == dst and owned == src:
        return f"{dst} is the input file; refusing to overwrite the input"
    what = "the output" if part == dst else f"the output's data file {part}"
    whose = "the input" if owned == src else f"{owned}, the data file of the input"
    return (f"{dst}: {what} would replace {whose} {src}; refusing to overwrite the input "
            "(choose another output name or folder)")


def _shared_message(first: tuple[Path, Path], second: tuple[Path, Path], part: Path) -> str:
    return (f"{first[1]} (from {first[0]}) and {second[1]} (from {second[0]}) would both write {part}; "
            "refusing to let one output replace the other (rename an input or write them to separate folders)")
