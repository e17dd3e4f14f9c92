"""One run per folder: the OS lock on the folder, the holder named in the refusal, and nothing left
behind by a run that made the folder and wrote nothing."""
from __future__ import annotations

import fcntl
import os
import socket

import pytest

from simulator.engine import lock
from simulator.config.schema import ScenarioError


def test_a_held_folder_names_its_holder_and_an_empty_one_goes_again(tmp_path):
    """The folder (and its missing parents) is made and says who holds it; a block that wrote
    nothing leaves none of it behind."""
    folder = tmp_path / "a" / "out"
    with lock.hold(folder) as held:
        assert held == folder and folder.is_dir()
        holder = (folder / lock.HOLDER).read_text()
        assert f"pid {os.getpid()} on {socket.gethostname()}" in holder
    assert list(tmp_path.iterdir()) == []


def test_what_the_block_wrote_stays_and_the_holder_file_goes(tmp_path):
    folder = tmp_path / "out"
    with lock.hold(folder):
        (folder / "results.nc").write_bytes(b"done")
    assert sorted(p.name for p in folder.iterdir()) == ["results.nc"]


def test_a_second_run_is_refused_naming_the_first(tmp_path):
    """A second hold of a held folder (its own open of the folder: flock excludes it as it would
    another process) is an error naming the folder, --out and the holder; the holder keeps the folder
    and its holder file."""
    folder = tmp_path / "out"
    with lock.hold(folder):
        said = (folder / lock.HOLDER).read_text()
        with pytest.raises(ScenarioError) as info:
            with lock.hold(folder):
                pass
        assert info.value.file == str(folder) and info.value.key == "--out"
        assert f"held by {said}" in info.value.what and "choose another --out" in info.value.what
        assert (folder / lock.HOLDER).read_text() == said


def test_a_lock_without_a_holder_file_is_another_run(tmp_path):
    """A folder locked by something that wrote no holder file is refused as held by another run, and
    once that lock is gone the folder can be held."""
    folder = tmp_path / "out"
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ScenarioError, match="held by another run"):
            with lock.hold(folder):
                pass
    finally:
        os.close(fd)
    with lock.hold(folder):
        assert (folder / lock.HOLDER).is_file()


def test_a_block_that_fails_releases_the_folder(tmp_path):
    """An error inside the block: the lock is released and the holder file removed, so the next run
    holds the folder."""
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(RuntimeError):
        with lock.hold(folder):
            raise RuntimeError("the run failed")
    assert list(folder.iterdir()) == []
    with lock.hold(folder):
        pass


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    """An --out that is a file, or under one: an error naming it and --out; the file is untouched."""
    (tmp_path / "taken").write_text("mine")
    for folder in (tmp_path / "taken", tmp_path / "taken" / "out"):
        with pytest.raises(ScenarioError) as info:
            with lock.hold(folder):
                pass
        assert info.value.file == str(folder) and info.value.key == "--out" and "cannot use" in info.value.what
    assert (tmp_path / "taken").read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["taken"]
