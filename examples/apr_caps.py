"""APR caps and what they do: approvals and net revenue of the baseline under a range of caps, with
over-cap applicants priced at the cap or rejected. A scenario script using the Python API.

    python examples/apr_caps.py [--paths N] [--volume N] [--horizon N] [--out DIR]

Prints a table and writes DIR/apr_caps.png (default DIR: reports/apr_caps).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import simulator

ROOT = Path(__file__).resolve().parent.parent
CAPS = [0.36, 0.24, 0.20, 0.154, 0.12]
ON_CAP = ["cap", "reject"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    parser.add_argument("--paths", type=int, default=8)
    parser.add_argument("--volume", type=int, default=10_000, help="applicants a month")
    parser.add_argument("--horizon", type=int, default=36, help="months")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "apr_caps")
    args = parser.parse_args()

    rows = []
    for on_cap in ON_CAP:
        for cap in CAPS:
            scenario = simulator.load(args.scenario, {
                "policy.apr_cap": cap, "policy.on_cap": on_cap, "run.paths": args.paths,
                "applicants.monthly_volume": args.volume, "run.horizon_months": args.horizon})
            ds = simulator.run(scenario)
            approvals = int(ds["approvals"].sum())
            net_revenue = float(ds["pnl"].sel(view="book", pnl_line="net_revenue", pnl_product="total"))
            rows.append((on_cap, cap, approvals, net_revenue))
            print(f"on_cap={on_cap:<6}  apr_cap={cap:6.1%}  approvals={approvals:>9,}  net revenue={net_revenue:>15,.0f} yuan")

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for on_cap in ON_CAP:
        caps = [cap for mode, cap, _, _ in rows if mode == on_cap]
        left.plot(caps, [a for mode, _, a, _ in rows if mode == on_cap], marker="o", label=f"on_cap = {on_cap}")
        right.plot(caps, [n / 1e6 for mode, _, _, n in rows if mode == on_cap], marker="o", label=f"on_cap = {on_cap}")
    for ax, label in ((left, "applications approved"), (right, "net revenue (million yuan, mean over paths)")):
        ax.set_xlabel("APR cap")
        ax.set_ylabel(label)
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
        ax.legend()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "apr_caps.png", dpi=100)
    print(f"figure: {args.out / 'apr_caps.png'}")


if __name__ == "__main__":
    main()
