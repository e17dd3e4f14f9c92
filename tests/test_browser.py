"""The report's pages in a real browser: the run page, a 32-cell sweep's page and a compare page,
opened in headless Chromium 1400 px wide. Each fails on a console error, a table or figure wider
than the page's content box or scrolling sideways, a blank screenshot, and an embedded figure that
is blank or whose ink touches its edge (something cut off)."""
from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from matplotlib import image

from simulator.cli import main
from conftest import chromium

pytestmark = pytest.mark.slow   # runs the engine and a browser end to end

WIDTH = 1400
ROOT = Path(__file__).resolve().parent.parent
# Small and quick: few applicants, two paths, 13 months, no factor correlation (the ECL's tables
# then need one factor path, not thousands).
SMALL = ["applicants.monthly_volume=60", "run.paths=2", "run.horizon_months=13", "applicants.origination_months=12",
         "factor.asset_correlation=0", "factor.roll_correlation=0", "macro.prepay_sensitivity=0"]

# Run in the page before its own scripts: record errors; once loaded, show every hidden part (each
# sweep cell's table), then write what does not fit into the DOM for --dump-dom to print.
CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push("error: " + (e.message || e.target.outerHTML.slice(0, 80))),
                        true);
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push("console.error: " + args.join(" ")); __consoleError(...args); };
window.addEventListener("load", () => {
  const found = {errors: window.__errors, problems: [], images: 0, tables: 0};
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.alt ? " " + el.alt : "") +
                     (el.className ? "." + el.className : "") + " " + el.textContent.trim().slice(0, 50);
  document.querySelectorAll("[hidden]").forEach(el => el.hidden = false);
  document.querySelectorAll("details").forEach(el => el.open = true);
  const body = document.body, style = getComputedStyle(body), box = body.getBoundingClientRect();
  const left = box.left + parseFloat(style.paddingLeft), right = box.right - parseFloat(style.paddingRight);
  if (document.documentElement.scrollWidth > window.innerWidth)
    found.problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px`);
  for (const el of body.querySelectorAll("table, figure, img")) {
    const r = el.getBoundingClientRect();
    if (r.left < left - 1 || r.right > right + 1)
      found.problems.push(`${name(el)}: ${Math.round(r.left)}..${Math.round(r.right)} px outside the content box ` +
                          `${Math.round(left)}..${Math.round(right)}`);
  }
  for (const el of body.querySelectorAll("*")) {
    if (el.tagName === "PRE" || el.closest("pre")) continue;    // the scenario's text may scroll
    const clips = ["auto", "scroll", "hidden"].includes(getComputedStyle(el).overflowX);
    if ((clips || ["TD", "TH"].includes(el.tagName)) && el.scrollWidth > el.clientWidth + 1)
      found.problems.push(`${name(el)}: content ${el.scrollWidth} px in ${el.clientWidth} px`);
  }
  for (const img of body.querySelectorAll("img")) {
    found.images += 1;
    if (!img.complete || img.naturalWidth === 0) found.problems.push(`${img.alt}: the image did not load`);
    else if (img.width < 0.6 * img.naturalWidth)
      found.problems.push(`${img.alt}: shrunk to ${Math.round(100 * img.width / img.naturalWidth)}% (unreadable)`);
  }
  found.tables = body.querySelectorAll("table").length;
  const out = document.createElement("pre");
  out.id = "browser-findings";
  out.textContent = JSON.stringify(found);
  body.appendChild(out);
});
</script>"""


BROWSER = chromium()
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no chromium (apt-get install -y chromium; .ci/run does)")


def _browse(page: Path, tmp: Path, *options: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp / 'profile'}", f"--window-size={WIDTH},3000", "--virtual-time-budget=10000",
         *options, page.resolve().as_uri()],
        capture_output=True, timeout=120, cwd=tmp)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def _findings(page: Path, tmp: Path) -> dict:
    """The page with CHECK put first in its head, opened; what the script found."""
    text = page.read_text(encoding="utf-8")
    checked = tmp / f"checked_{page.name}"
    checked.write_text(text.replace("<head>", "<head>\n" + CHECK, 1), encoding="utf-8")
    dom = _browse(checked, tmp, "--dump-dom").stdout.decode("utf-8", errors="replace")
    found = re.search(r'<pre id="browser-findings">(.*?)</pre>', dom, re.S)
    assert found, f"{page.name}: the check did not run (no findings in the DOM)"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def _figure_faults(name: str, png: bytes) -> list[str]:
    """A figure that is blank, or whose ink (dark pixels) touches its border: cut off at the edge."""
    pixels = image.imread(io.BytesIO(png), format="png")[..., :3].astype(float)
    ink = pixels.min(axis=-1) < 0.8
    if pixels.std() == 0 or ink.mean() < 0.005:
        return [f"{name}: blank"]
    edges = {"top": ink[:2], "bottom": ink[-2:], "left": ink[:, :2], "right": ink[:, -2:]}
    return [f"{name}: cut off at the {edge} ({int(px.sum())} px)" for edge, px in edges.items() if px.sum()]


def _embedded(page: Path) -> list[tuple[str, bytes]]:
    text = page.read_text(encoding="utf-8")
    return [(alt, base64.b64decode(data)) for data, alt in
            re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', text)]


def check_page(page: Path, tmp: Path) -> dict:
    """Every fault of the page in the browser (and of its figures), asserted none; the findings."""
    tmp.mkdir(parents=True, exist_ok=True)
    found = _findings(page, tmp)
    faults = [f"console: {e}" for e in found["errors"]] + found["problems"]
    figures = _embedded(page)
    assert figures, f"{page.name}: no embedded figure"
    for alt, png in figures:
        faults += _figure_faults(alt, png)
    shot = tmp / f"{page.stem}.png"
    _browse(page, tmp, f"--screenshot={shot}")
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[1] == WIDTH, pixels.shape
    if pixels.std() == 0 or (pixels.min(axis=-1) < 0.8).mean() < 0.01:
        faults.append(f"{page.name}: the screenshot is blank")
    assert not faults, f"{page.name}:\n" + "\n".join(faults)
    return found


def _run(folder: Path, scenario: str) -> Path:
    args = ["run", str(ROOT / "scenarios" / scenario), "--out", str(folder), "--quiet"]
    for item in SMALL:
        args += ["--set", item]
    assert main(args) == 0
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A run of the baseline and the rate-cap sweep (8 caps x 2 ways x 2 macro paths: 32 cells)."""
    if BROWSER is None:
        pytest.skip("no chromium (apt-get install -y chromium; .ci/run does)")
    base = tmp_path_factory.mktemp("pages")
    return _run(base / "baseline", "baseline.toml"), _run(base / "sweep", "rate_cap_sweep.toml")


@needs_browser
def test_the_run_page_fits_and_draws(runs, tmp_path):
    found = check_page(runs[0] / "report.html", tmp_path)
    assert found["images"] >= 8


@needs_browser
def test_the_sweep_page_fits_and_draws_and_has_every_cells_band_table(runs, tmp_path):
    page = runs[1] / "report.html"
    text = page.read_text(encoding="utf-8")
    assert text.count('class="band-cell"') == 32          # one by-band table a cell, one shown at a time
    assert len(re.findall(r"<option ", text)) == 32
    check_page(page, tmp_path)


@needs_browser
def test_the_compare_page_has_the_changes_against_the_reference(runs, tmp_path):
    out = tmp_path / "compare"
    reference = "sweep: apr_cap=0.24, on_cap=reject, macro=baseline"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(out), "--reference", reference]) == 0
    page = out / "compare.html"
    text = page.read_text(encoding="utf-8")
    changes = re.search(r'<section id="changes">(.*?)</section>', text, re.S)
    assert changes and f"against {reference}" in changes.group(1)
    assert changes.group(1).count("baseline</th>") >= 1 and " pts" in changes.group(1)
    check_page(page, tmp_path / "check")
