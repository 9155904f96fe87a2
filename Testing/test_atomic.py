"""Atomic writes: complete file or none, with ordinary permissions."""
import os

import pytest

from speckle2self.atomic import atomic_path


def test_a_new_file_gets_the_permissions_open_would_give(tmp_path):
    with atomic_path(tmp_path / "out.nrrd") as tmp:
        tmp.write_bytes(b"data")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.nrrd").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.nrrd"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.nrrd"]
