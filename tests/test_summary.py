"""The printed summary (simulator.summary): tail figures from too few paths print as lower bounds."""
from __future__ import annotations

from simulator.reporting import summary


def test_too_few_tail_paths_print_as_lower_bounds():
    head = {"var_top": 2.0e7, "es_top": 2.0e7, "economic_capital": 5.0e6, "raroc": 1.1, "tail_paths": 1.0,
            "capital_tail_paths": 1.0, "paths": 20.0, "tail_level": 0.999}
    assert summary.shown("var_top", head) == ">=20,000,000*"
    assert summary.shown("es_top", head) == ">=20,000,000*"
    assert summary.shown("raroc", head) == "n/a*"
    note = summary.tail_note([("run", head)])
    assert "too few paths" in note and "10,000 paths" in note and "importance" in note
    enough = head | {"tail_paths": 12.0, "capital_tail_paths": 12.0}
    assert summary.shown("var_top", enough) == "20,000,000" and summary.tail_note([("run", enough)]) == ""
