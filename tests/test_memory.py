"""Memory settling: one glibc malloc arena, numpy's huge-page advice off, and no failure where either
is not available."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.model import memory

CORE = getattr(np, "_core", None) or getattr(np, "core", None)


class FakeLibc:
    def __init__(self, calls: list):
        self.calls = calls

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return 1


@pytest.fixture
def advice():
    """numpy's huge-page advice, restored after the test."""
    get = getattr(CORE.multiarray, "_get_madvise_hugepage", None)
    if get is None:
        pytest.skip("this numpy has no huge-page advice switch")
    before = get()
    yield get
    CORE.multiarray._set_madvise_hugepage(before)


def test_one_malloc_arena_is_asked_of_glibc(monkeypatch, advice):
    """mallopt(M_ARENA_MAX, 1) on libc.so.6, M_ARENA_MAX being -8 in glibc's malloc.h."""
    calls, opened = [], []
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: opened.append(name) or FakeLibc(calls))
    memory.settle()
    assert memory.M_ARENA_MAX == -8 and opened == ["libc.so.6"] and calls == [(-8, 1)]


def test_numpy_no_longer_advises_huge_pages(advice):
    CORE.multiarray._set_madvise_hugepage(True)
    memory.settle()
    assert advice() is False


def test_settling_without_glibc_or_the_numpy_switch_is_harmless(monkeypatch, advice):
    """No libc.so.6 (another C library), a libc without mallopt, a numpy without the switch: settle
    returns and changes nothing it cannot."""
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(memory.ctypes, "CDLL", missing)
    CORE.multiarray._set_madvise_hugepage(True)
    monkeypatch.delattr(CORE.multiarray, "_set_madvise_hugepage")
    memory.settle()
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: object())
    memory.settle()
    monkeypatch.undo()
    assert advice() is True
