"""The report pages' HTML pieces, without a run: a figure embedded whole, text escaped, the headline
table's layouts and its footnote, the estimates beside the base, the conventions, and an --out for
compare that would replace a run's file."""
from __future__ import annotations

import base64
import math
from html.parser import HTMLParser

import numpy as np
import pytest
import xarray as xr

from simulator.reporting import pages
from simulator.fitting.calibration import Estimate
from simulator.config.schema import ScenarioError
from simulator.reporting.figures import Drawing
from simulator.reporting.summary import ROWS
from simulator.model.tail import MIN_TAIL_PATHS


class Tree(HTMLParser):
    """Start tags with their attributes, and the text inside each kind of tag."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("img", "meta"):
            self._open.append(tag)

    def handle_endtag(self, tag):
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag):]

    def handle_data(self, data):
        if self._open:
            self.text.setdefault(self._open[-1], []).append(data)

    def named(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


def head(**figures) -> dict[str, float]:
    """A headline of round figures, with enough tail paths unless told."""
    out = {key: 1.0 for key in ROWS}
    out |= {"tail_paths": 50, "capital_tail_paths": 50, "tail_level": 0.99, "paths": 1000} | figures
    return out


def test_a_figure_is_embedded_whole_with_its_text_escaped():
    """The PNG's bytes come back from the data URI; the id is the file's stem; a title or caption
    with markup in it is text, not tags."""
    png = bytes(range(256)) * 3
    drawing = Drawing("loss_distribution.png", png, 'Loss & "tail"', "<b>bold</b> claims < 1")
    tree = Tree(pages._figure_html(drawing))
    (figure,), (img,) = tree.named("figure"), tree.named("img")
    assert figure["id"] == "loss_distribution"
    assert img["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(img["src"].split(",", 1)[1]) == png
    assert img["alt"] == 'Loss & "tail"'
    assert [name for name, _ in tree.tags] == ["figure", "img", "figcaption", "b"]   # the title's <b> only
    assert "".join(tree.text["figcaption"]) == ' <b>bold</b> claims < 1'


def test_a_page_is_one_complete_document():
    page = pages._page("Run <1> & co", "<p>body</p>")
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
    tree = Tree(page)
    assert tree.named("meta") == [{"charset": "utf-8"}] and tree.text["title"] == ["Run <1> & co"]
    assert "<p>body</p>" in page and "<style>" in page and "http" not in page


def test_one_run_has_a_value_column_and_a_row_per_figure():
    """One column: a row per headline figure, labelled, in the order of the printed table, the value
    as printed (1,234,567 applicants; 1.23% 30+)."""
    tree = Tree(pages.headline_table([("base", head(applicants=1_234_567.0, dpd30_ratio=0.0123))]))
    assert tree.text["th"] == ["figure", "value"]
    cells = tree.text["td"]
    assert len(cells) == 2 * len(ROWS)
    assert cells[0::2] == [label for label, _, _ in ROWS.values()]
    rows = dict(zip(cells[0::2], cells[1::2]))
    assert rows["applicants"] == "1,234,567" and rows["30+ ratio of balances, mean"] == "1.23%"
    assert tree.named("p") == []                     # no footnote


def test_several_runs_have_a_column_each_in_tables_that_fit():
    """Two or more: one row per figure, labelled in full, one column per run or cell, in tables of
    pages.BLOCK columns (8 runs: a table of 5 and one of 3), the reference run's heading marked."""
    columns = [(f"run {i}", head(approvals=float(i))) for i in range(8)]
    tree = Tree(pages.headline_table(columns, reference="run 7"))
    assert pages.BLOCK == 5 and len(tree.named("table")) == 2
    assert tree.text["th"] == ["figure", *(f"run {i}" for i in range(5)), "figure", "run 5", "run 6", "run 7"]
    assert [attrs.get("class") for attrs in tree.named("th")][-1] == "reference"
    cells = tree.text["td"]
    assert len(cells) == len(ROWS) * (1 + 5) + len(ROWS) * (1 + 3)
    first = [cells[i:i + 6] for i in range(0, 6 * len(ROWS), 6)]
    assert [row[0] for row in first] == [label for label, _, _ in ROWS.values()]
    assert first[list(ROWS).index("approvals")][1:] == ["0", "1", "2", "3", "4"]


def test_changes_against_the_reference_as_the_summary_formats_them(monkeypatch):
    """The compare page's changes: one column per run but the reference, each cell
    summary.format_change of summary.changes with the errors summary.difference_errors gives the
    columns' Datasets (the change ± its error, "~" within noise), and under the table the note
    `simulator compare` prints; none for one run."""
    columns = [("a", head(approvals=100.0, dpd30_ratio=0.02, dpd90_ratio=0.03)),
               ("b", head(approvals=110.0, dpd30_ratio=0.025, dpd90_ratio=0.031))]
    cells = [xr.Dataset(attrs={"run": "a"}), xr.Dataset(attrs={"run": "b"})]
    asked = []

    def difference_errors(cells_, reference):
        asked.append(([c.attrs["run"] for c in cells_], reference))
        errors = {key: math.nan for key in ROWS} | {"approvals": 2.0, "dpd30_ratio": 0.001, "dpd90_ratio": 0.002}
        return [(errors, True), (dict(errors), True)]

    monkeypatch.setattr(pages.summary, "difference_errors", difference_errors)
    ((label, shown),), paired = pages.change_columns(columns, cells, 0)
    assert asked == [(["a", "b"], 0)]
    assert label == "b" and shown["approvals"] == "+10.0 ± 2.0 (+10.0%)"
    assert shown["dpd30_ratio"] == "+0.50 pts ± 0.10 (+25.0%)" and shown["dpd90_ratio"].startswith("~ +0.10 pts ± 0.20")
    assert paired == [True]
    tree = Tree(pages.changes_html(columns, cells, 1))
    assert tree.text["h2"] == ["Changes against b"] and tree.text["th"] == ["figure", "a"]
    assert "-10.0 ± 2.0 (-9.1%)" in tree.text["td"]
    intro = "".join(tree.text["p"])
    assert "standard error (±), paired when the runs share their random numbers" in intro
    assert "~" in tree.text["code"] and "within 2 errors" in intro
    assert pages.summary.changes_note([True]) in tree.text["p"]
    assert pages.changes_html(columns[:1], cells[:1], 0) == ""


def test_tail_figures_on_too_few_paths_are_marked_and_footnoted():
    """Fewer than MIN_TAIL_PATHS paths beyond the VaR: VaR and ES shown as lower bounds (">=", marked
    "*"), capital on enough paths as it is, and a footnote says how many paths the level needs
    (10 / (1 - 0.99) = 1,000)."""
    assert MIN_TAIL_PATHS == 10                     # docs/results.md: fewer than 10 paths at or beyond a VaR
    few = head(tail_paths=9, var_top=5000.0)
    tree = Tree(pages.headline_table([("base", few)]))
    rows = dict(zip(tree.text["td"][0::2], tree.text["td"][1::2]))
    assert rows[ROWS["var_top"][0]] == ">=5,000*" and rows[ROWS["es_top"][0]].startswith(">=")
    assert rows[ROWS["economic_capital"][0]] == "1"
    (note,) = tree.text["p"]
    assert note.startswith("* too few paths beyond the 99.0% quantile (9 of 1,000") and "use 1,000 paths" in note


def test_estimates_beside_the_base_with_their_intervals():
    """A 95% interval of value +- 1.96 se to four figures; a derived figure (no standard error) says so."""
    rows = [("policy.takeup_base", Estimate(0.6, 0.01, 100), 0.55), ("policy.apr_cap", Estimate(2.0, math.nan, 0), 1.0)]
    tree = Tree(pages._against_base_html(rows))
    assert tree.text["td"] == ["0.6", "[0.5804, 0.6196]", "0.55", "2", "(derived)", "1"]
    assert tree.text["code"] == ["policy.takeup_base", "policy.apr_cap"]


def test_conventions_list_each_convention_and_every_variable():
    """Each convention_ attribute by its name in words; each variable with its dimensions (- for
    none), display units before units, and description."""
    ds = xr.Dataset({"loss": (("path", "month"), np.zeros((1, 2)), {"units": "1", "display_units": "yuan",
                                                                   "description": "credit loss"}),
                     "seed_used": ((), 5, {"units": "1"})},
                    attrs={"convention_day_count": "actual/365", "title": "not a convention"})
    tree = Tree(pages._conventions_html(ds))
    assert tree.text["dt"] == ["day count"] and tree.text["dd"] == ["actual/365"]
    assert tree.text["td"] == ["loss", "path x month", "yuan", "credit loss", "seed_used", "-", "1"]


def test_compare_refuses_an_out_that_would_replace_a_runs_file(tmp_path):
    """Before any run is read: an --out holding one of the runs' own files (results, pages, figures)
    is an error naming it; a fresh --out passes and nothing is made."""
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    for name in ("results.nc", "compare.html", "figures/small_multiples.png"):
        (run / name).write_bytes(b"the run's")
    with pytest.raises(ScenarioError) as info:
        pages.check_compare([run], run)
    assert info.value.file == str(run / "compare.html") and info.value.key == "--out"
    inputs = pages.check_compare([run], tmp_path / "cmp")
    assert {p.name for p in inputs} >= {"results.nc", "compare.html", "small_multiples.png"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    (tmp_path / "cmp").write_text("a file")
    with pytest.raises(ScenarioError, match="found a file"):
        pages.check_compare([run], tmp_path / "cmp")
