"""The shipped example scripts run, at a small size, and write what they say."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib import image

pytestmark = pytest.mark.slow   # runs the engine or the command line end to end

ROOT = Path(__file__).resolve().parent.parent


def test_apr_caps_example(tmp_path):
    out = tmp_path / "caps"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "apr_caps.py"), "--paths", "2", "--volume", "200",
                           "--horizon", "12", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("on_cap=")]
    assert len(lines) == 10                                  # 5 caps x (cap, reject)
    approvals = {(line.split()[0], line.split()[1]): int(line.split("approvals=")[1].split()[0].replace(",", ""))
                 for line in lines}
    # Rejecting over-cap applicants never approves more than pricing them at the cap.
    for key, value in approvals.items():
        if key[0] == "on_cap=reject":
            assert value <= approvals[("on_cap=cap", key[1])]
    picture = image.imread(out / "apr_caps.png")
    assert picture.shape[0] > 100 and picture[..., :3].std() > 0.01   # drawn, not blank


def test_allowance_runoff_example(tmp_path):
    """The allowance at the end of the origination window, against the losses of the 15 months after."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "allowance_runoff.py"), "--paths", "4",
                           "--set", "applicants.monthly_volume=3000", "--set", "applicants.origination_months=12",
                           "--set", "factor.asset_correlation=0", "--set", "factor.roll_correlation=0"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[2:]}
    assert set(rows) == {"huabei", "jiebei", "yuefu"}
    for product, row in rows.items():
        held, losses, ratio = float(row[1].replace(",", "")), float(row[2].replace(",", "")), float(row[4])
        assert held > 0 and losses > 0 and abs(ratio - held / losses) < 1e-3
        assert 0.75 < ratio < 1.25, (product, ratio)     # the same book's losses, provided for within a quarter
