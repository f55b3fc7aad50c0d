"""The `repro` command: a thin layer over pytest and the cleanup reaper.

  repro list                     incidents and their markers
  repro run [INCIDENT...] [--config FILE] [--provider NAME] [--profile ci|full]
                                 runs `pytest repro/` for those incidents
  repro cleanup                  removes every object of the harness on this machine
  repro report [RUN]             prints a run's summary (default: the latest)

Exit codes: 0 all passed, 1 a reproduction failed, 2 bad input or a missing
prerequisite (one line saying what and how to fix it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from repro import incidents
from repro.errors import ReproError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        print(f"repro: {message} (see repro --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="repro", description="Postmortems as reproductions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="incidents and their markers")
    run = sub.add_parser("run", help="run reproductions (pytest underneath)")
    run.add_argument("incidents", nargs="*", metavar="INCIDENT")
    run.add_argument("--config", type=Path)
    run.add_argument("--provider")
    run.add_argument("--profile", choices=("ci", "full"), default="ci")
    sub.add_parser("cleanup", help="remove every object of the harness on this machine")
    rep = sub.add_parser("report", help="print a run's summary")
    rep.add_argument("run", nargs="?", default="latest")
    return p


def cmd_list() -> int:
    from tabulate import tabulate
    rows = [[i.name, i.marker, i.summary] for i in incidents.INCIDENTS.values()]
    print(tabulate(rows, headers=["incident", "marker", "what comes back"]))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import pytest
    unknown = [n for n in args.incidents if n not in incidents.INCIDENTS]
    if unknown:
        print(f"repro: unknown incident {', '.join(unknown)}; known: "
              f"{', '.join(incidents.INCIDENTS)}", file=sys.stderr)
        return EXIT_USAGE
    if args.config and not args.config.is_file():
        print(f"repro: {args.config}: configuration file not found", file=sys.stderr)
        return EXIT_USAGE
    argv = [str(PROJECT_ROOT / "repro"), "--repro-profile", args.profile]
    if args.incidents:
        argv += ["-m", " or ".join(incidents.INCIDENTS[n].marker for n in args.incidents)]
    if args.config:
        argv += ["--repro-config", str(args.config)]
    if args.provider:
        argv += ["--repro-provider", args.provider]
    code = int(pytest.main(argv))
    return {0: EXIT_OK, 1: EXIT_FAILED}.get(code, EXIT_USAGE if code in (3, 4) else EXIT_FAILED)


def cmd_cleanup() -> int:
    from repro.cleanup import reap
    removed = reap(all_runs=True)
    for item in removed:
        print(f"removed {item}")
    print(f"repro cleanup: {len(removed)} object(s) removed")
    return EXIT_OK


def cmd_report(run: str) -> int:
    path = PROJECT_ROOT / "reports" / run / "summary.md"
    if not path.is_file():
        print(f"repro: no report at {path}; run `repro run` first", file=sys.stderr)
        return EXIT_USAGE
    print(path.read_text())
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "cleanup":
            return cmd_cleanup()
        return cmd_report(args.run)
    except ReproError as exc:
        print(f"repro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
