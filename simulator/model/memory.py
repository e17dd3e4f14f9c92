"""How the process takes memory for a large run (no effect on results): one malloc arena, and no
transparent huge pages asked for by numpy. Both measured on 10 M applicants (benchmarks/README.md)."""
from __future__ import annotations

import ctypes

import numpy as np

M_ARENA_MAX = -8   # glibc's mallopt parameter: the most malloc arenas


def settle() -> None:
    """Threads allocate from glibc's main heap (elsewhere: nothing), so memory the preparing threads
    free is reused by the kernel and the Dataset rather than kept in arenas of their own; and numpy no
    longer advises huge pages for its large arrays, whose first touch made the kernel compact memory
    (with the common `defrag = madvise` setting) and ran numpy's steps after origination 3 to 5 times
    slower."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    advise = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if advise is not None:
        advise(False)
