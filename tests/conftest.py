"""Shared helpers: scenarios from overrides, and books of identical loans run through the kernel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator import engine
from simulator.config import METHODS, PRODUCTS, load_scenario

JIEBEI = PRODUCTS.index("jiebei")


@pytest.fixture
def scenario_file(tmp_path: Path):
    """Write a scenario TOML (default: only [run]) and return its path."""

    def make(text: str = '[run]\nname = "t"\n', name: str = "s.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def loaded_scenario(tmp_path: Path, overrides: list[str]):
    path = tmp_path / "kernel.toml"
    path.write_text('[run]\nname = "kernel"\n')
    return load_scenario(path, ["applicants.monthly_volume=0", *overrides])


def identical_book(n: int, principal: float, apr: float, term: int, method: str, pd_12m: float,
                   roll_rates, state: int = 0):
    """Account arrays of n identical cash loans of an existing book (first payment due in month 1)."""
    return engine.account_arrays(
        np.arange(n), np.full(n, JIEBEI), np.zeros(n), np.zeros(n), np.full(n, int(round(principal * 100))),
        np.full(n, apr), np.full(n, term), np.full(n, METHODS.index(method)), np.full(n, state),
        np.full(n, pd_12m), np.zeros(n, dtype=bool), roll_rates)


def run_book(tmp_path: Path, accounts, overrides: list[str], **kwargs):
    """Run the kernel on given accounts; returns (scenario, stocks, flows, rolls, cures) summed over bands."""
    loaded = loaded_scenario(tmp_path, overrides)
    stocks, flows, rolls, cures = engine.run_kernel(loaded.scenario, accounts, **kwargs)
    return loaded.scenario, stocks.sum(axis=3), flows.sum(axis=3), rolls.sum(axis=3), cures.sum(axis=3)
