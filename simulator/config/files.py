"""Files written atomically: into a temporary file beside the target, flushed to disk, then renamed
over it, so that a crash or Ctrl-C never leaves a half-written file where a finished one is expected.
Outputs are checked before any work (never one of the inputs, never a folder where a file is meant,
a place that can be written), and folders made for an output that failed are removed again."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from .schema import ScenarioError


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same inode, or the same resolved path where one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _existing_folder(path: Path) -> Path:
    """The nearest folder of `path` (itself or an ancestor) that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(path: Path, option: str, inputs: Iterable[Path | None] = (), folder: bool = False) -> None:
    """Refuse, before any work, an output `path` (a file, or with `folder` a folder) that is one of
    `inputs`, is of the other kind, or lies where nothing can be written."""
    path = Path(path)
    for source in inputs:
        if source is not None and same_file(path, source):
            raise ScenarioError(str(path), option, f"expected an output that is not one of the inputs, found "
                                                   f"{source} (choose another {option})")
    if folder and path.exists() and not path.is_dir():
        raise ScenarioError(str(path), option, "expected a folder the command can write, found a file")
    if not folder and path.is_dir():
        raise ScenarioError(str(path), option, "expected a file name, found a folder")
    if not folder and path.exists() and not path.is_file():
        raise ScenarioError(str(path), option, "expected a file name, found a device or another special file")
    where = _existing_folder(path if folder else path.parent)
    if not where.is_dir():
        raise ScenarioError(str(path), option, f"expected a place the command can write, found {where}, which is "
                                               f"not a folder")
    try:    # a file made and gone at once: what the system says, for root and read-only mounts too
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise ScenarioError(str(path), option, f"expected a place the command can write, found {where} read-only "
                                               f"({exc.strerror or exc.__class__.__name__})") from None


def make_folder(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; the folders made, deepest first (for `remove_empty`)."""
    folder = Path(folder)
    made = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        made.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:
        remove_empty(made)
        raise
    return made


def remove_empty(made: list[Path]) -> None:
    """Remove the folders `make_folder` made, deepest first, as long as they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` to fill a temporary file beside `path`, then rename it to `path`; on failure
    nothing is left behind, not even the folders made for it."""
    path = Path(path)
    made = make_folder(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except BaseException:
        remove_empty(made)
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_empty(made)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
