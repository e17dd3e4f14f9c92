"""Checkpoints: the finished tasks of a run, saved under DIR/.checkpoint so that an interrupted run
resumes where it stopped (`--resume`), and trusted only when they are provably this run's.

- The fingerprint covers everything a result depends on: every cell's resolved scenario (seed
  included), the task plan, the content of every input file (the books), the simulator's version
  and the source of the simulator package. Resuming needs a fingerprint equal to the run's.
- Each task file carries the task's identity, the fingerprint and a checksum of its arrays; it is
  checked (names, dtypes, shapes, identity, checksum) before use. A damaged file is recomputed.
- The folder must be a real directory (not a link); files are flushed to disk before they appear.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import files
from .._version import __version__
from ..config.loader import LoadedScenario
from ..config.schema import ScenarioError

FINGERPRINT = "fingerprint"
_META = ("task__", "fingerprint__", "checksum__")


class Task(NamedTuple):
    """One unit of work: paths p0 .. p1 - 1 of borrowers b0 .. b1 - 1 (of one sweep cell)."""
    cell: int
    p0: int
    p1: int
    b0: int
    b1: int


def source_digest() -> str:
    """sha256 of the simulator package's source (its .py and .toml files, in every wing)."""
    digest = hashlib.sha256()
    package = Path(str(resources.files("simulator")))
    for entry in sorted(package.rglob("*")):
        if entry.suffix in (".py", ".toml") and "__pycache__" not in entry.parts:
            digest.update(entry.relative_to(package).as_posix().encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


def fingerprint(loaded: LoadedScenario) -> str:
    """sha256 of everything the run's results depend on."""
    books = {}
    for sc in loaded.cells:
        path = loaded.book_path(sc)
        if path is not None and str(path) not in books:
            books[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    # Threads and block sizes change no bit of the results (docs/model.md section 7): a resume may change them.
    cells = [c.model_dump(mode="json", exclude={"engine": {"threads", "block_size"}}) for c in loaded.cells]
    text = json.dumps({"cells": cells,
                       "plan": [(c.engine.task_paths, c.engine.task_borrowers) for c in loaded.cells],
                       "books": books, "version": __version__, "source": source_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _checksum(sums: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(sums):
        array = np.ascontiguousarray(sums[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()


class Checkpoints:
    """The finished tasks of one run in `folder` (see the module's docstring). Without `resume`,
    earlier checkpoints there are removed; with it, they must carry this run's fingerprint."""

    def __init__(self, folder: Path, loaded: LoadedScenario, resume: bool,
                 shapes: list[dict[str, tuple[int, ...]]]):
        self.folder, self.shapes = Path(folder), shapes
        self.digest = fingerprint(loaded)
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise ScenarioError(str(self.folder), "--out", "expected the run's own checkpoint folder, found a link "
                                                           "or a file there (remove it)")
        if resume:
            stamp = self.folder / FINGERPRINT
            found = stamp.read_text() if stamp.is_file() else None
            if found != self.digest:
                what = "no fingerprint" if found is None else "another run's (a different scenario, seed, task plan, " \
                                                              "book file or simulator)"
                raise ScenarioError(str(self.folder), "--resume", f"expected checkpoints of this very run, found {what}")
        else:
            self.remove_folder(self.folder)

    def _path(self, task: Task) -> Path:
        return self.folder / f"cell{task.cell}-p{task.p0}-{task.p1}-b{task.b0}-{task.b1}.npz"

    def load(self, task: Task) -> dict[str, np.ndarray] | None:
        """The task's saved sums if they are intact and this run's, else None (recompute)."""
        path = self._path(task)
        if not path.is_file() or path.is_symlink():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
        except Exception:  # truncated, empty or not a zip: recompute
            return None
        expected = {name: (task.p1 - task.p0,) + shape for name, shape in self.shapes[task.cell].items()}
        meta = {name: arrays.pop(name, None) for name in _META}
        if set(arrays) != set(expected) or any(m is None for m in meta.values()):
            return None
        if any(arrays[n].dtype != np.int64 or arrays[n].shape != shape for n, shape in expected.items()):
            return None
        if meta["task__"].tolist() != list(task) or str(meta["fingerprint__"]) != self.digest \
                or str(meta["checksum__"]) != _checksum(arrays):
            return None
        return arrays

    def save(self, task: Task, sums: dict[str, np.ndarray]) -> None:
        """Save a finished task (the folder and its fingerprint are made at the first one)."""
        if not self.folder.is_dir():  # made at the first finished task: bad input writes nothing
            self.folder.mkdir(parents=True)
            files.write_bytes(self.folder / FINGERPRINT, self.digest.encode())
        meta = {"task__": np.asarray(task, dtype=np.int64), "fingerprint__": np.asarray(self.digest),
                "checksum__": np.asarray(_checksum(sums))}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **sums, **meta)

        files.write_atomic(self._path(task), write)

    @staticmethod
    def remove_folder(folder: Path) -> None:
        """Drop a run's checkpoints (a link is removed, never followed)."""
        folder = Path(folder)
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)
