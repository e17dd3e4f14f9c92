"""One run per folder: a run holds its output folder with an OS lock (flock on the folder itself),
which the OS releases when the run ends, however it ends; a second run gets an error naming the holder."""
from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from ..config import files
from ..config.schema import ScenarioError

HOLDER = ".run"   # who holds the folder: for the error message of a run that finds it held


@contextmanager
def hold(folder: Path):
    """Hold `folder` (created if needed) for the duration of the block; the folders this made and the
    block left empty are removed again, so bad input leaves nothing behind."""
    folder = Path(folder)
    made: list[Path] = []
    try:
        made = files.make_folder(folder)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        files.remove_empty(made)
        raise ScenarioError(str(folder), "--out", f"expected a folder the run can write, found one it cannot "
                                                  f"use ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = (folder / HOLDER).read_text().strip() if (folder / HOLDER).is_file() else "another run"
            raise ScenarioError(str(folder), "--out", f"expected a folder no other run is using, found it held by "
                                                      f"{holder} (wait for it, or choose another --out)") from None
        try:
            files.write_bytes(folder / HOLDER, f"the run of pid {os.getpid()} on {socket.gethostname()} since "
                                               f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        except OSError as exc:
            raise ScenarioError(str(folder), "--out", f"expected a folder the run can write, found one it cannot "
                                                      f"write ({exc.strerror or exc})") from None
        try:
            yield folder
        finally:
            (folder / HOLDER).unlink(missing_ok=True)
    finally:
        os.close(fd)
        files.remove_empty(made)     # only what the run left empty
