"""The shipped example scripts run, at a small size, and write what they say."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from matplotlib import image

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
