"""The figures (simulator.figures), piece by piece (the drawn report: test_report.py)."""
from __future__ import annotations

import numpy as np


def test_frontier_labels_of_coinciding_cells_are_gathered():
    from simulator.reporting.figures import _coinciding

    groups = _coinciding(np.array([0.01, 0.01, 0.02]), np.array([5e6, 5e6, 4e6]), ["a=1", "a=2", "a=3"])
    assert sorted(groups.values()) == [["a=1", "a=2"], ["a=3"]]
