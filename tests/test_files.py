"""Atomic writes and output checks: a failed write leaves the old file and no debris, not even the
folders made for it; an output is refused before any work when it is an input, of the wrong kind or
in no folder."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from simulator.config import files
from simulator.config.schema import ScenarioError


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_finished_write_replaces_the_file_readable_by_all(tmp_path):
    """The new bytes replace the old, nothing else is left beside them, and the file is mode 0644
    (results are for sharing), not the private mode of a temporary file."""
    target = tmp_path / "out.txt"
    target.write_text("old")
    files.write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["out.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, failure):
    """An error or a Ctrl-C midway through: the old file is untouched and no temporary file is left."""
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half(tmp: Path) -> None:
        tmp.write_bytes(b"half of the n")
        raise failure

    with pytest.raises(type(failure)):
        files.write_atomic(target, half)
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["out.txt"]


def test_a_failed_write_removes_only_the_folders_it_made(tmp_path):
    """Missing folders are made for the file; when the write fails, those (and only those) go again."""
    (tmp_path / "kept").mkdir()

    def fail(tmp: Path) -> None:
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        files.write_atomic(tmp_path / "kept" / "a" / "b" / "out.txt", fail)
    assert listing(tmp_path) == ["kept"]
    files.write_bytes(tmp_path / "kept" / "a" / "b" / "out.txt", b"x")
    assert (tmp_path / "kept" / "a" / "b" / "out.txt").read_bytes() == b"x"


def test_made_folders_are_listed_deepest_first_and_removed_while_empty(tmp_path):
    """make_folder lists the folders it made, deepest first (none when the folder exists);
    remove_empty stops at the first that is not empty."""
    deep = tmp_path / "a" / "b" / "c"
    assert files.make_folder(deep) == [deep, deep.parent, deep.parent.parent]
    assert deep.is_dir() and files.make_folder(deep) == []
    (tmp_path / "a" / "keep.txt").write_text("mine")
    files.remove_empty([deep, deep.parent, deep.parent.parent])
    assert listing(tmp_path) == ["a", "a/keep.txt"]


def test_same_file_sees_through_links_and_spellings(tmp_path):
    """Two names of one file are the same file (a hard link, a symbolic link, a path through ..), a
    copy is not, and of two missing paths those that resolve alike are."""
    original = tmp_path / "in.csv"
    original.write_text("a,b\n")
    os.link(original, tmp_path / "hard.csv")
    (tmp_path / "soft.csv").symlink_to(original)
    (tmp_path / "sub").mkdir()
    (tmp_path / "copy.csv").write_text("a,b\n")
    for other in (tmp_path / "hard.csv", tmp_path / "soft.csv", tmp_path / "sub" / ".." / "in.csv"):
        assert files.same_file(original, other), other
    assert not files.same_file(original, tmp_path / "copy.csv")
    assert files.same_file(tmp_path / "x" / ".." / "gone.nc", tmp_path / "gone.nc")
    assert not files.same_file(tmp_path / "gone.nc", tmp_path / "other.nc")


def test_an_output_that_is_an_input_is_refused_naming_both(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("a,b\n")
    (tmp_path / "link.csv").symlink_to(source)
    with pytest.raises(ScenarioError) as info:
        files.check_output(tmp_path / "link.csv", "--out", [None, tmp_path / "other.csv", source])
    assert info.value.file == str(tmp_path / "link.csv") and info.value.key == "--out"
    assert str(source) in info.value.what and "not one of the inputs" in info.value.what


@pytest.mark.parametrize("where, folder, words", [
    ("a_folder", False, "expected a file name, found a folder"),
    ("a_file", True, "expected a folder the command can write, found a file"),
    ("/dev/null", False, "a device or another special file"),
    ("a_file/out.nc", False, "which is not a folder"),
    ("a_file/deeper/out", True, "which is not a folder"),
])
def test_an_output_of_the_wrong_kind_is_refused(tmp_path, where, folder, words):
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("mine")
    path = Path(where) if where.startswith("/") else tmp_path / where
    with pytest.raises(ScenarioError) as info:
        files.check_output(path, "--out", folder=folder)
    assert info.value.file == str(path) and info.value.key == "--out" and words in info.value.what
    assert listing(tmp_path) == ["a_file", "a_folder"] and (tmp_path / "a_file").read_text() == "mine"


def test_checking_a_good_output_writes_nothing(tmp_path):
    """An output in folders yet to be made passes the check, and the check makes none of them."""
    files.check_output(tmp_path / "new" / "deeper" / "out.nc", "--out", [tmp_path / "in.csv"])
    files.check_output(tmp_path / "new" / "run", "--out", folder=True)
    assert listing(tmp_path) == []
