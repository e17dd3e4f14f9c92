"""The report: every figure drawn and not blank, a self-contained HTML page, the CLI, compare, a real browser."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib import image

from simulator.reporting import figures, pages, summary
from simulator.results import dataset
from simulator.cli import main
from conftest import chromium

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

SCENARIO = '[run]\nname = "t"\n'
SMALL = ["run.paths=3", "applicants.monthly_volume=300", "run.horizon_months=18", "applicants.origination_months=12"]
FIGURES = ["vintage_curves.png", "delinquency.png", "roll_rates.png", "loss_distribution.png", "calibration.png",
           "apr_cap.png", "pnl_waterfall.png", "allowance.png", "forecasts.png"]
SWEEP_FIGURES = ["policy_frontier.png", "small_multiples.png", "compare_dpd30.png", "compare_loss_distribution.png"]


def _run(folder: Path, extra: list[str] = (), scenario: str = SCENARIO) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.toml"
    path.write_text(scenario)
    args = ["run", str(path), "--out", str(folder / "out"), "--quiet"]
    for item in [*SMALL, *extra]:
        args += ["--set", item]
    assert main(args) == 0
    return folder / "out"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("single"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("sweep"), scenario=SCENARIO + '\n[sweep]\n"policy.cutoff_score" = [560, 600]\n')


def assert_not_blank(path: Path) -> None:
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, path
    rgb = pixels[..., :3].astype(float)
    assert rgb.std() > 0, f"{path.name} is one colour"
    assert (rgb.min(axis=-1) < 0.98).mean() > 0.01, f"{path.name} is (nearly) all white"


class Page(HTMLParser):
    """Collects <img> sources, the text of <pre>, every text fragment and the tags that were opened."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.pre: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag in ("link", "script", "iframe"):
            self.links.append(attrs.get("href") or attrs.get("src") or "")
        if tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_pre:
            self.pre[-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def test_run_writes_the_report_and_every_figure(single):
    assert (single / "results.nc").is_file()
    assert (single / "report.html").is_file()
    for name in FIGURES:
        assert_not_blank(single / "figures" / name)
    for name in SWEEP_FIGURES:  # only for sweeps
        assert not (single / "figures" / name).exists()
    # No temporary files left behind.
    assert not [p for p in single.rglob("*.tmp")]


def test_html_is_self_contained_and_holds_scenario_headline_and_conventions(single):
    ds = dataset.read(single / "results.nc")
    page = parse(single / "report.html")
    assert page.tags[:1] == ["html"] and "body" in page.tags
    assert len(page.images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.links == []  # no scripts, stylesheets or frames from elsewhere
    html = (single / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert SCENARIO in page.pre  # the scenario text, unescaped by the parser
    text = " ".join(page.text)
    assert ds.attrs["title"] in text
    head = summary.headline(ds)
    for key in ["dpd30_ratio", "dpd90_ratio", "expected_loss", "net_revenue", "raroc"]:
        assert summary.shown(key, head) in text, key
    for name, value in ds.attrs.items():
        if name.startswith("convention_"):
            assert value in text, name
    assert "yuan" in text


def test_the_embedded_images_are_the_figure_files(single):
    import base64

    page = parse(single / "report.html")
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in page.images}
    assert embedded == {(single / "figures" / name).read_bytes() for name in FIGURES}


def test_sweep_report_has_frontier_and_small_multiples(sweep):
    """A sweep's report shows every cell: the cap figure in small multiples, the cells side by side."""
    names = ["vintage_curves_cells.png", "roll_rates_cells.png", "calibration_cells.png", "apr_cap_cells.png",
             "pnl_waterfall_cells.png", "allowance_cells.png", "coverage_cells.png", "stage_2_cells.png", "sweep_cells.png", *SWEEP_FIGURES]
    for name in names:
        assert_not_blank(sweep / "figures" / name)
    page = parse(sweep / "report.html")
    assert len(page.images) == len(names)
    text = " ".join(page.text)
    assert "cutoff_score=560" in text and "cutoff_score=600" in text  # one headline row per cell
    assert "against cutoff_score" in text          # the figures drawn against the swept value


def test_report_command(single, capsys):
    (single / "report.html").unlink()
    assert main(["report", str(single)]) == 0
    assert capsys.readouterr().out.strip() == str(single / "report.html")
    assert (single / "report.html").is_file()


@pytest.mark.parametrize("sweep", ["", '\n[sweep]\n"policy.cutoff_score" = [560, 600]\n'])
def test_the_run_draws_from_memory_the_report_the_file_gives(sweep, tmp_path):
    """`run` draws its report from the Dataset it has just written, not from results.nc read back: the
    same page and figures, byte for byte, as `simulator report` draws from the file."""
    folder = _run(tmp_path / "run", scenario=SCENARIO + sweep)
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(folder / "results.nc", again / "results.nc")
    assert main(["report", str(again)]) == 0
    assert (again / "report.html").read_bytes() == (folder / "report.html").read_bytes()
    drawn = sorted(p.name for p in (folder / "figures").iterdir())
    assert drawn == sorted(p.name for p in (again / "figures").iterdir()) and drawn
    for name in drawn:
        assert (again / "figures" / name).read_bytes() == (folder / "figures" / name).read_bytes(), name


def test_report_command_without_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "results.nc" in lines[0]
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "figures").exists()


def test_run_with_no_report(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    args = ["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]
    for item in SMALL:
        args += ["--set", item]
    assert main(args) == 0
    assert (tmp_path / "out" / "results.nc").is_file()
    assert not (tmp_path / "out" / "report.html").exists()
    assert not (tmp_path / "out" / "figures").exists()


def test_compare_draws_only_with_out(single, sweep, tmp_path, capsys):
    assert main(["compare", str(single), str(sweep)]) == 0
    table = capsys.readouterr().out
    assert "30+ ratio" in table or "30+" in table
    assert not list(tmp_path.iterdir())
    out = tmp_path / "cmp"
    assert main(["compare", str(single), str(sweep), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(table)  # the table is still printed first
    page = parse(out / "compare.html")
    assert len(page.images) == 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for name in ["compare_dpd30.png", "compare_loss_distribution.png"]:
        assert_not_blank(out / "figures" / name)
    text = " ".join(page.text)
    assert "out: cutoff_score=600" in text  # sweep cells labelled as compare prints them


def test_the_compare_pages_changes_are_those_the_text_table_prints(single, sweep, tmp_path, capsys):
    """The page's change of each figure is the string `compare` prints for it, its standard error
    (paired: the runs share their random numbers) after "±", and the same footnote under the table
    (the cell at cutoff 560 is the single run: its changes are 0, with no error)."""
    out = tmp_path / "cmp"
    assert main(["compare", str(single), str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed[printed.index("changes against "):].splitlines()
    width = max(len(label) for label, _, _ in summary.ROWS.values())
    text = {key: re.split(r"\s{2,}", line[width:].strip()) for key, line in zip(summary.ROWS, lines[2:])}
    section = re.search(r'<section id="changes">(.*?)</section>', (out / "compare.html").read_text("utf-8"), re.S)
    rows = [[html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", section.group(1)) if "<td>" in row]
    page = {key: row[1:] for key, row in zip(summary.ROWS, rows)}
    assert [row[0] for row in rows] == [label for label, _, _ in summary.ROWS.values()]
    assert page == text and len(page["originated"]) == 2
    assert " ± " in page["revenue"][1] and " ± " in page["pretax_income"][1]   # cutoff 600: other decisions
    assert html.unescape(re.findall(r'<p class="note">(.*?)</p>', section.group(1))[-1]) == lines[-2]
    assert lines[-2].startswith("errors of changes paired")


def test_figures_without_data_say_so(single, tmp_path, monkeypatch):
    """A run in which nothing happens still draws every figure, with a 'no data' note, never a blank."""
    notes = []
    draw_note = figures._no_data
    monkeypatch.setattr(figures, "_no_data", lambda ax, *args: (notes.append(ax), draw_note(ax, *args)))
    monkeypatch.setattr(figures, "_drawn", lambda ds, draws, processes: [draw(ds) for draw in draws])  # seen here
    ds = dataset.read(single / "results.nc")
    empty = ds.copy(deep=True)
    for name, var in empty.data_vars.items():
        if var.dtype.kind in "fi":
            empty[name] = var * 0
    folder = tmp_path / "empty"
    dataset.write(empty, folder / "results.nc")
    pages.build(folder)
    for name in FIGURES:
        assert_not_blank(folder / "figures" / name)
    assert len({id(ax.figure) for ax in notes}) == len(FIGURES)  # every figure wrote its note


def test_figures_drawn_in_processes_are_those_drawn_here(single):
    ds = dataset.read(single / "results.nc")
    here, there = figures.figures(ds, processes=1), figures.figures(ds, processes=2)
    assert [d.name for d in here] == [d.name for d in there] and len(here) == len(FIGURES)
    for a, b in zip(here, there):
        assert (a.png, a.title, a.caption) == (b.png, b.title, b.caption), a.name


@pytest.mark.parametrize("options, processes", [([], os.cpu_count()), (["--threads", "1"], 1),
                                                 (["--set", "engine.threads=3"], 3),
                                                 (["--set", "engine.threads=3", "--threads", "2"], 2)])
def test_the_report_is_drawn_on_the_runs_threads(options, processes, tmp_path, monkeypatch):
    asked = []
    drawn = figures._drawn
    monkeypatch.setattr(figures, "_drawn", lambda ds, draws, n: (asked.append(n), drawn(ds, draws, 1))[1])
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    args = ["run", str(tmp_path / "scenario.toml"), "--out", str(tmp_path / "out"), "--quiet", *options]
    assert main(args + [arg for item in SMALL for arg in ("--set", item)]) == 0
    assert asked == [processes]


def test_an_error_drawing_in_a_process_reaches_the_caller(single, monkeypatch):
    def broken(ds):
        raise KeyError("dpd30_ratio")

    monkeypatch.setattr(figures, "FIGURES", [figures.FIGURES[0], broken])
    with pytest.raises(KeyError, match="dpd30_ratio"):
        figures.figures(dataset.read(single / "results.nc"), processes=2)


def test_a_drawing_process_that_dies_is_replaced_by_this_one(single, monkeypatch, capsys):
    """A killed drawing process (out of memory, say) costs time, not the report: the same figures."""
    parent, second = os.getpid(), figures.FIGURES[1]

    def dies_in_a_child(ds):
        if os.getpid() != parent:
            os._exit(9)
        return second(ds)

    ds = dataset.read(single / "results.nc")
    monkeypatch.setattr(figures, "FIGURES", [figures.FIGURES[0], dies_in_a_child])
    drawn = figures.figures(ds, processes=2)
    assert [d.png for d in drawn] == [d.png for d in figures.figures(ds, processes=1)]
    assert capsys.readouterr().err.startswith("warning: a process drawing the report's figures died")


def test_report_renders_in_headless_chromium(sweep, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium binary")
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,8000", (sweep / "report.html").resolve().as_uri()],
        capture_output=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert_not_blank(shot)
    # The figures drew: the page is more than text on white (coloured pixels: the sweep's lines).
    pixels = image.imread(shot)[..., :3]
    colourful = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.2
    assert colourful.mean() > 0.002


def test_book_only_run_writes_its_report(tmp_path):
    """An existing book alone (no new business, so no vintages) of all three products, some rows
    delinquent, runs to its report: every figure is drawn, the vintage figure says there are none,
    and `simulator report` redraws it. The principal identity holds from the opening book on."""
    (tmp_path / "book.csv").write_text(
        "product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m,fee_per_period,price,limit\n"
        "jiebei,10000,0.146,12,equal_installment,3,current,,0.02,,,\n"
        "jiebei,5000,0.18,6,interest_first,1,M1,200,0.05,,,\n"
        "jiebei,8000,0.12,12,equal_principal,0,M2,1000,0.10,,,\n"
        "yuefu,900,,6,,2,current,,0.03,0.0075,1350,\n"
        "yuefu,450,,3,,1,M3,300,0.20,0.0,,\n"
        "huabei,2500,,,,,current,,0.02,,,6000\n"
        "huabei,800,,,,,M4,300,0.30,,,1000\n")
    scenario = tmp_path / "book.toml"
    scenario.write_text('[run]\nname = "book"\npaths = 3\nhorizon_months = 12\n[applicants]\nmonthly_volume = 0\n'
                        '[book]\nfile = "book.csv"\n')
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    for name in FIGURES:
        assert_not_blank(out / "figures" / name)
    assert "no vintages" in (out / "report.html").read_text(encoding="utf-8")
    ds = dataset.read(out / "results.nc")
    assert float(ds["opening_balance"].sum()) == 10000 + 5000 + 8000 + 900 + 450 + 2500 + 800
    assert (ds["opening_accounts"].sum(("score_band", "state")) > 0).all()      # every product
    balance = ds["balance"].sum(("product", "score_band", "state"))
    flows = ds[["drawn", "repaid", "prepaid", "charged_off"]].sum(("product", "score_band"))
    previous = xr.concat([ds["opening_balance"].sum().expand_dims(path=ds["path"]), balance.isel(month=slice(None, -1))
                          .drop_vars("month")], dim="month").transpose("path", "month")
    change = flows["drawn"] - flows["repaid"] - flows["prepaid"] - flows["charged_off"]
    np.testing.assert_allclose(balance.values, previous.values + change.values, atol=1e-6)
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()
