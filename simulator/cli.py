"""`simulator run | validate | compare | report | calibrate | backtest | quote`: the command line."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from .config.schema import ScenarioError
from .config.loader import load_scenario, to_toml


def _scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="scenario file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. --set run.paths=50 (TOML value syntax)")


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors (exit status 2, no usage dump)."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from .model import quotes

    from ._version import __version__

    parser = Parser(prog="simulator", description="Monte Carlo simulator of consumer-credit portfolios")
    parser.add_argument("--version", action="version", version=f"simulator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write DIR/results.nc")
    _scenario_args(run)
    run.add_argument("--out", type=Path, help="output folder (default: reports/<run.name>/)")
    run.add_argument("--threads", type=int, help="kernel threads, and processes drawing the report (default: "
                                                 "engine.threads, 0 = all cores)")
    run.add_argument("--block-size", type=int, help="borrowers per kernel block (default: engine.block_size)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="run on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster at ADDRESS (tcp://host:port)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run from DIR/.checkpoint (same scenario); identical result")
    run.add_argument("--no-report", action="store_true", help="write results.nc only, without DIR/report.html")
    run.add_argument("--tape", type=Path, metavar="FILE",
                     help="also write the loan tape of path 0: one row per account and month (.parquet or .csv)")
    run.add_argument("--format", choices=("table", "csv", "json"), default="table",
                     help="how the headline is printed (default table)")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a scenario; --print shows it resolved")
    _scenario_args(validate)
    validate.add_argument("--print", dest="print_resolved", action="store_true",
                          help="print the complete resolved scenario (TOML)")
    validate.set_defaults(func=cmd_validate)

    compare = sub.add_parser("compare", help="headline figures of two or more runs side by side")
    compare.add_argument("runs", nargs="+", type=Path, metavar="DIR", help="output folders of runs (with results.nc)")
    compare.add_argument("--out", type=Path, metavar="DIR",
                         help="also draw the runs side by side into DIR/compare.html (default: print only)")
    compare.add_argument("--reference", metavar="LABEL",
                         help="the run or sweep cell the changes are against (its label, or a part of it that "
                              "names one; default: the first)")
    compare.add_argument("--accept-differences", action="store_true",
                         help="compare runs that differ in paths, horizon, applicants, results mode or version "
                              "(refused by default), with a warning above the table")
    compare.add_argument("--format", choices=("table", "csv", "json"), default="table",
                         help="output format (default table)")
    compare.set_defaults(func=cmd_compare)

    report = sub.add_parser("report", help="draw the figures and write DIR/report.html from DIR/results.nc")
    report.add_argument("folder", type=Path, metavar="DIR", help="output folder of a run (with results.nc)")
    report.set_defaults(func=cmd_report)

    calibrate = sub.add_parser("calibrate", help="estimate behavioural parameters from a loan tape; write a scenario")
    calibrate.add_argument("tape", type=Path, metavar="TAPE", help="a loan tape (.parquet or .csv)")
    calibrate.add_argument("--out", type=Path, required=True, metavar="FILE", help="the scenario to write (TOML)")
    calibrate.add_argument("--extends", type=Path, required=True, metavar="BASE",
                           help="the scenario the written one extends (its other keys)")
    calibrate.add_argument("--mapping", type=Path, metavar="FILE",
                           help="a mapping file (TOML) naming the tape's columns and status codes")
    calibrate.add_argument("--on-bad-rows", choices=("stop", "drop"), default="stop",
                           help="bad rows (duplicates, status jumps, growing loan balances) stop the reading "
                                "(default) or are dropped and reported")
    calibrate.set_defaults(func=cmd_calibrate)

    calibrate.add_argument("--offers", type=Path, metavar="FILE",
                           help="the approved offers, to refit take-up (default: TAPE's <stem>_offers beside it, "
                                "when there)")
    calibrate.add_argument("--by-band", action="store_true",
                           help="also print the roll rates by score band (and note them in the scenario)")
    calibrate.add_argument("--until-month", type=int, metavar="M",
                           help="use only the tape's months up to M (out of time: backtest the rest with "
                                "backtest --from-month M)")

    backtest = sub.add_parser("backtest", help="run a scenario on a loan tape's own accounts; draw the tape against "
                                               "the simulated band")
    backtest.add_argument("tape", type=Path, metavar="TAPE", help="a loan tape (.parquet or .csv)")
    _scenario_args(backtest)
    backtest.add_argument("--out", type=Path, metavar="DIR",
                          help="output folder (default: reports/<run.name>_backtest/)")
    backtest.add_argument("--paths", type=int, default=100, help="paths of the simulated band (default 100)")
    backtest.add_argument("--level", type=float, default=0.95,
                          help="the band's level: the middle share of the paths it holds (default 0.95)")
    backtest.add_argument("--from-month", type=int, metavar="M",
                          help="compare only months after M and vintages originated after it (out of time)")
    backtest.add_argument("--mapping", type=Path, metavar="FILE",
                          help="a mapping file (TOML) naming the tape's columns and status codes")
    backtest.add_argument("--on-bad-rows", choices=("stop", "drop"), default="stop",
                          help="bad rows stop the reading (default) or are dropped and reported")
    backtest.add_argument("--threads", type=int, help="kernel threads (default: engine.threads, 0 = all cores)")
    backtest.add_argument("--quiet", action="store_true", help="no progress bar")
    backtest.set_defaults(func=cmd_backtest)

    quotes.add_parser(sub)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = load_scenario(args.scenario, args.overrides)
    if loaded.book_paths():
        from .model.book import check_books

        check_books(loaded)
    if args.print_resolved:
        print(to_toml(loaded.resolved()), end="")
    else:
        print(f"{args.scenario}: ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    loaded = load_scenario(args.scenario, args.overrides)
    from . import api

    from .reporting import summary

    out = args.out or Path("reports") / loaded.scenario.run.name
    started = time.perf_counter()
    try:
        ds = api.run(loaded, out=out, threads=args.threads, block_size=args.block_size, workers=args.workers,
                           scheduler=args.scheduler, resume=args.resume, tape=args.tape,
                           progress=not args.quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"error: interrupted; no results written; finished tasks are kept in {out / '.checkpoint'} "
              f"(run again with --resume)", file=sys.stderr)
        return 130
    try:
        if not args.quiet and args.format == "table":
            print(summary.render(ds, out / "results.nc", time.perf_counter() - started))
        elif not args.quiet:
            print(summary.export(summary.records(summary.columns(ds)), args.format))
        if not args.no_report:
            threads = loaded.scenario.engine.threads if args.threads is None else args.threads
            page = api.report(out, ds, processes=threads or None)
            if not args.quiet:
                print(f"report: {page}")
    except KeyboardInterrupt:
        print(f"error: interrupted after the run: {out / 'results.nc'} is complete, its report is not drawn "
              f"(draw it with: simulator report {out})", file=sys.stderr)
        return 130
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .reporting import pages, summary

    if args.out is not None:
        pages.check_compare(args.runs, args.out)
    columns, cells = summary.compared(args.runs)
    reference = summary.reference_index(columns, args.reference)
    warnings = summary.check_comparable(columns, cells, args.accept_differences)
    errors = summary.difference_errors(cells, reference) if len(columns) > 1 else None
    if args.format != "table":
        print(summary.export(summary.records(columns, reference, errors), args.format, warnings))
    else:
        for line in warnings:
            print(line)
        print(summary.table(columns))
        if summary.tail_note(columns):
            print(summary.tail_note(columns))
        if len(columns) > 1:
            print()
            print(summary.changes_table(columns, reference, errors))
    if args.out is not None:
        drawn = pages.compare(args.runs, args.out, args.reference)
        if args.format == "table":
            print(f"drawing: {drawn}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import api

    print(api.report(args.folder))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from . import api

    fit = api.calibrate(args.tape, args.out, args.extends, mapping=args.mapping, on_bad_rows=args.on_bad_rows,
                              offers=args.offers, by_band=args.by_band, until_month=args.until_month)
    if fit.dropped:
        print(fit.dropped)
    print(fit.table)
    print(f"scenario: {fit.scenario}")
    print(f"fit report: {fit.fit_report}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from . import api

    if args.out is None:
        args.out = Path("reports") / f"{load_scenario(args.scenario, args.overrides).scenario.run.name}_backtest"
    done = api.backtest(args.tape, args.scenario, args.overrides, out=args.out, paths=args.paths,
                              level=args.level, from_month=args.from_month, mapping=args.mapping,
                              on_bad_rows=args.on_bad_rows, threads=args.threads,
                              progress=not args.quiet and sys.stderr.isatty())
    if done.dropped:
        print(done.dropped)
    print(done.table)
    print(f"results: {done.results}")
    print(f"report: {done.report}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning as one line on stderr (its first line), never a multi-line dump."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else ""
    print(f"warning: {category.__name__}: {first}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no file is left half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `simulator quote ... | head`
        sys.stderr.close()
        return 0
    except OSError as exc:    # the system refused a file (disk full, permissions): say which, in one line
        print(f"error: {exc.filename or '-'}: -: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
