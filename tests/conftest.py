"""Shared helpers: scenarios from overrides, and books of identical loans run through the kernel."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from simulator.engine import simulation
from simulator.model import terms
from simulator.codes import METHODS, PRODUCTS
from simulator.config.loader import load_scenario

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
    return terms.accounts(
        n, roll_rates, account_id=np.arange(n), product=JIEBEI, principal=principal,
        apr=apr, term=term, method=METHODS.index(method), state0=state, pd_12m=np.full(n, pd_12m))


def run_book(tmp_path: Path, accounts, overrides: list[str], **kwargs):
    """Run the kernel on given accounts; returns (scenario, stocks, flows, rolls, cures) summed over bands."""
    loaded = loaded_scenario(tmp_path, overrides)
    out = simulation.run_accounts(loaded.scenario, accounts, **kwargs)
    return (loaded.scenario, *(out[name].sum(axis=3) for name in ("stocks", "flows", "rolls", "cures")))


def chromium() -> str | None:
    """The headless browser of the page tests (Debian's chromium, or another Chrome), None if none."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
