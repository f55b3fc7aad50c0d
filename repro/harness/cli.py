"""The `repro` command: a thin layer over pytest, the doctor, the reaper and the gate.

  repro list                     incidents, markers, the backends each can use on this
                                 machine and why not the others
  repro run [INCIDENT...] [--config FILE] [--provider NAME] [--profile ci|full]
                                 runs pytest on those incidents' folders, wherever they are
                                 installed (this package's and a team's registered under
                                 `repro.incidents`; same exit codes); with --provider
                                 docker|qemu|ec2[:IMAGE] and no incident named, every
                                 incident that can use that backend
  repro new NAME [--marker M] [--into DIR]
                                 writes a working skeleton incident (repro.harness.scaffold): into
                                 this checkout, or with --into into a team's own package
  repro doctor                   every prerequisite, checked for real, with its fix
  repro cleanup [--all]          removes every object the harness left on this machine
                                 (--all: also those of runs still in progress)
  repro report [RUN] [--html]    prints a run's summary (default: the latest); --html
                                 (re)writes its index.html and prints the page's path
  repro gate --baseline IMAGE --candidate IMAGE [--incidents NAME...] [--junit FILE]
                                 blocks (exit 1) a candidate image that brings an
                                 incident back; IMAGE is docker:NAME, qemu:DIR or ec2:AMI
  repro batch submit|status|collect  the shards of one run as an AWS Batch array job
                                 (repro.harness.engines.batch_cli, docs/engines.md)

Reports go to reports/ in the working directory unless --reports says where.

Exit codes: 0 all passed, 1 a reproduction failed (or the gate blocked), 2 bad
input or a missing prerequisite (one line saying what and how to fix it).

Every input is checked before anything starts: arguments by argparse (with
types that refuse a report folder that cannot be one, a non-positive or
non-finite timeout, a JUnit path in a missing folder), the configuration file
by repro.harness.config (the same check pytest's --repro-config gets), providers by
repro.harness.hosts.base.get_provider. So a bad input never starts a host or a run.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

from repro.harness import config as cfgfile
from repro.harness import incidents
from repro.harness.engines import batch_cli
from repro.harness.errors import ConfigError, PrerequisiteError, ReproError
from repro.harness.report import lifecycle

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES = ("Exit codes: 0 every reproduction as expected (or nothing to do), 1 a "
              "reproduction failed or the gate blocked, 2 bad input or a missing "
              "prerequisite (one line on stderr), 130 interrupted")


class _Parser(argparse.ArgumentParser):
    """One line and exit 2 for every bad argument; an option is never guessed from a
    prefix (with abbreviations on, `cleanup --al` meant `--all`: a typo that removes the
    objects of runs still in progress)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("epilog", EXIT_CODES)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, exit 2
        print(f"repro: {message} (see repro --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _folder(text: str) -> Path:
    """A folder for reports: one that exists, or one that can be made (no file in the way)."""
    path = Path(text)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise argparse.ArgumentTypeError(f"{part} is not a folder")
            return path
    return path


def _file_to_write(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    return path


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text!r}")
    return value


def _shard(text: str) -> str:
    from repro.harness.shards import Shard
    try:
        Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _run_id(text: str) -> str:
    from repro.harness.shards import check_run_id
    try:
        return check_run_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class _Version(argparse.Action):
    """`repro --version`: the package's version, and the harness commit from a checkout
    (computed only when asked: a git call per invocation would slow every command)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from repro.harness import provenance
        print(provenance.version_line())
        raise SystemExit(EXIT_OK)


def _reports_option(parser: argparse.ArgumentParser, reports: Path, what: str) -> None:
    """--reports, the same on every command that reads or writes run reports."""
    parser.add_argument("--reports", type=_folder, default=reports, metavar="DIR",
                        help=f"{what} (default: ./reports)")


def _parser() -> argparse.ArgumentParser:
    reports = Path.cwd() / "reports"  # the working directory's, wherever repro is installed
    p = _Parser(prog="repro", description="Postmortems as reproductions.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="incidents, markers and the backends each can use here")
    new = sub.add_parser("new", help="write a working skeleton incident")
    new.add_argument("name", metavar="NAME", help="the incident's name (its table, folder)")
    new.add_argument("--marker", help="its pytest marker (default: NAME)")
    new.add_argument("--into", type=Path, metavar="DIR",
                     help="a team's own package folder (default: this checkout's repro/)")
    run = sub.add_parser("run", help="run reproductions (pytest underneath)",
                         usage="repro run [INCIDENT ...] [options] [-- PYTEST_ARGS ...]",
                         epilog="After --, arguments go to pytest as they are (e.g. -- -q -x "
                                "-k prefix). " + EXIT_CODES)
    run.add_argument("incidents", nargs="*", metavar="INCIDENT",
                     help="incident names (repro list); none: every incident")
    run.add_argument("--config", type=Path, metavar="FILE",
                     help="the configurations under test (TOML; default fixtures/default.toml)")
    run.add_argument("--provider", metavar="NAME[:IMAGE]",
                     help="the host backend: docker, qemu, ec2, ssh, with an image for docker, "
                          "qemu or ec2 (default: each incident's own)")
    run.add_argument("--profile", choices=("ci", "full"), default="ci",
                     help="ci: scaled to a 2-core runner (default); full: the postmortems' scale")
    _reports_option(run, reports, "where run reports go")
    run.add_argument("--run-id", type=_run_id, metavar="RUNID",
                     help="the logical run (shared by its shards); report: <reports>/RUNID")
    run.add_argument("--shard", type=_shard, metavar="I/N",
                     help="run the I-th of N duration-balanced shares (needs --run-id)")
    run.add_argument("--again", metavar="RUN",
                     help="re-run a past run's incidents on the inputs it recorded (a run id "
                          "under --reports, or its folder) and say what differs")
    run.add_argument("--durations", type=Path, metavar="FILE",
                     help="seconds per incident for the shards (a merged run's durations.json)")
    merge = sub.add_parser("merge", help="combine the shard reports of one run into one")
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR")
    merge.add_argument("--out", type=_folder, help="default: <reports>/RUNID")
    _reports_option(merge, reports, "where run reports are")
    sub.add_parser("doctor", help="check every prerequisite and say how to fix it")
    clean = sub.add_parser("cleanup", help="remove every object the harness left on this machine")
    clean.add_argument("--all", action="store_true", dest="include_live",
                       help="also remove the objects of runs still in progress")
    rep = sub.add_parser("report", help="print a run's summary")
    rep.add_argument("run", nargs="?", default="latest", metavar="RUN",
                     help="a run id under --reports, or a run's folder (default: latest)")
    rep.add_argument("--html", action="store_true", help="(re)write the run's index.html")
    _reports_option(rep, reports, "where run reports are")
    gate = sub.add_parser("gate", help="block a candidate image that brings an incident back")
    gate.add_argument("--baseline", required=True, metavar="IMAGE",
                      help="the image in use: docker:NAME, qemu:DIR or ec2:ami-...")
    gate.add_argument("--candidate", required=True, metavar="IMAGE",
                      help="the image to release, in the same form")
    gate.add_argument("--incidents", nargs="+", default=[], metavar="INCIDENT",
                      help="default: every incident that can run on the images' backend")
    gate.add_argument("--config", type=Path, metavar="FILE",
                      help="default: fixtures/default.toml (fixed)")
    gate.add_argument("--profile", choices=("ci", "full"), default="ci",
                      help="ci (default) or full, as for repro run")
    _reports_option(gate, reports, "where the gate's report goes")
    gate.add_argument("--junit", type=_file_to_write, help="also copy the gate's junit.xml here")
    gate.add_argument("--timeout-min", type=_minutes, default=60.0,
                      help="per side (default 60)")
    gate.add_argument("--retries", type=int, default=1, choices=range(4), metavar="0-3",
                      help="re-runs of an inconclusive result per side (default 1)")
    batch_cli.add_parser(sub)  # repro batch submit|status|collect|child (AWS Batch)
    return p


def _check_incidents(names: list[str]) -> None:
    unknown = [n for n in names if n not in incidents.INCIDENTS]
    if not unknown:
        return
    by_marker = {i.marker: i.name for i in incidents.INCIDENTS.values() if i.marker != i.name}
    hints = [f"{n} is the marker of {by_marker[n]}" for n in unknown if n in by_marker]
    raise ConfigError(f"unknown incident {', '.join(unknown)}"
                      + (f" ({'; '.join(hints)}: repro run "
                         f"{' '.join(by_marker[n] for n in unknown if n in by_marker)})"
                         if hints else "")
                      + f"; known: {', '.join(incidents.INCIDENTS)}")


def _check_config(path: Path | None, profile: str) -> None:
    """The configuration file, checked now the way pytest's --repro-config is (one line);
    its [hosts] (the machines of provider ssh) taken in, as the plugin does."""
    if path is not None:
        file = cfgfile.read_file(path)
        incidents.validate_file(file, profile)
        from repro.harness.hosts import ssh as ssh_hosts
        ssh_hosts.configure(file.tables.get("hosts"), file.base, file.label)


def cmd_list() -> int:
    from tabulate import tabulate

    from repro.harness import doctor
    backends = doctor.backends(doctor.run_checks(doctor.BACKEND_CHECKS))
    rows = []
    for inc in incidents.INCIDENTS.values():
        usable = doctor.incident_backends(inc.name)
        here = [b for b in usable if backends.get(b) and backends[b].available]
        not_here = [f"{b}: {backends[b].why_not if b in backends else 'unknown backend'}"
                    for b in usable if b not in here]
        not_here += [f"{b}: {why}" for b, why in inc.not_on.items()]
        rows.append([inc.name, inc.marker, ", ".join(here) or "none",
                     "\n".join(not_here), inc.summary])
    print(tabulate(rows, headers=["incident", "marker", "backends here", "not here (why)",
                                  "what comes back"], maxcolwidths=[None, None, 16, 48, 40]))
    return EXIT_OK


def _runnable(names: list[str], provider: str | None) -> list[str]:
    """The incidents to run: those named, or with a host provider every one that can use it."""
    from repro.harness import doctor
    from repro.harness.hosts.base import get_provider
    _check_incidents(names)
    kind = (provider or "").partition(":")[0]
    if provider:
        chosen = get_provider(provider, key="--provider")  # unknown or malformed: one line
        missing = chosen.settings.missing() if kind == "ec2" else []  # type: ignore[attr-defined]
        if missing:
            raise PrerequisiteError(f"EC2 is not configured ({', '.join(missing)} unset)",
                                    "export them (docs/ec2.md) or use --provider ec2:AMI")
    if kind not in doctor.HOST_BACKENDS:
        return names
    able = [n for n in incidents.INCIDENTS if kind in doctor.incident_backends(n)]
    unable = [n for n in names if n not in able]
    if unable:
        raise ConfigError(f"{', '.join(unable)} cannot run on {kind} hosts; on {kind}: "
                          f"{', '.join(able) or 'none'}")
    return names or able


def cmd_run(args: argparse.Namespace) -> int:
    if args.again:
        return _run_again(args)
    return _run(args)


def _run_again(args: argparse.Namespace) -> int:
    from repro.harness import replay
    if args.incidents or args.config:
        raise ConfigError("--again takes no incidents and no --config: the run's own inputs")
    past = replay.load(args.again, args.reports)
    args.reports.mkdir(parents=True, exist_ok=True)
    args.config = args.reports / f"again-{past.report.run_id}.toml"
    args.incidents = replay.configuration(past, args.config)
    diff = replay.differences(past)
    print(f"repro run --again {past.report.run_id}: {', '.join(args.incidents)} on its "
          f"recorded inputs ({args.config})")
    print("differs since: " + ("; ".join(diff) if diff else "nothing recorded differs"))
    code = _run(args)
    from tabulate import tabulate

    from repro.harness.report.record import read_report
    now = read_report(args.reports / "latest" / "results.json")
    rows = replay.verdicts(past, now)
    print(tabulate(rows, headers=["incident", "configuration", "then", "now"]))
    changed = [r for r in rows if r[2] != r[3]]
    print(f"repro run --again: {len(changed)} of {len(rows)} verdicts changed")
    return code


def _run(args: argparse.Namespace) -> int:
    import pytest
    _check_config(args.config, args.profile)  # first: provider ssh needs its [hosts]
    chosen = _runnable(args.incidents, args.provider)
    from repro.harness.plugin import collect_paths
    argv = [*collect_paths(chosen), "--repro-profile", args.profile,
            "--repro-reports", str(args.reports),
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]  # repro is imported already
    if chosen:
        argv += ["-m", " or ".join(incidents.INCIDENTS[n].marker for n in chosen)]
    if args.config:
        argv += ["--repro-config", str(args.config)]
    if args.provider:
        argv += ["--repro-provider", args.provider]
    if args.shard and not args.run_id:
        raise ConfigError("--shard needs --run-id (every shard of one run shares it)")
    for flag, value in (("--repro-run-id", args.run_id), ("--repro-shard", args.shard),
                        ("--repro-durations", args.durations)):
        argv += [flag, str(value)] if value else []
    code = int(pytest.main([*argv, *args.pytest_args]))
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and args.shard:
        print(f"repro run: shard {args.shard} was empty (more shards than incidents to share)")
        return EXIT_OK
    return {0: EXIT_OK, 1: EXIT_FAILED}.get(code, EXIT_USAGE if code in (3, 4) else EXIT_FAILED)


def cmd_merge(args: argparse.Namespace) -> int:
    from repro.harness.report.merge import merge
    merged, out = merge(args.shards, args.out, args.reports)
    status = merged.status()
    print(status.headline)
    print(f"report: {out / 'summary.md'}\npage:   {out / 'index.html'}")
    return EXIT_OK if status.state == "good" else EXIT_FAILED


def cmd_new(args: argparse.Namespace) -> int:
    from repro.harness import scaffold
    done = scaffold.new(args.name, args.marker, args.into)
    shown = done.target.shown
    print(f"repro new: wrote incident {done.name} (marker {done.marker}) in "
          f"{done.folder}")
    for path in done.written:
        print(f"  {_shown(path, shown)}")
    print("  appended to: " + ", ".join(str(_shown(p, shown)) for p in done.appended))
    tests = _shown(done.folder, shown)
    if done.target.team:
        print("register it in your project's pyproject.toml, then reinstall your package "
              "(pip install -e .):\n  [project.entry-points.\"repro.incidents\"]\n"
              f"  {done.entry_point}")
    print(f"run it:\n  pytest {tests} -m {done.marker}      # both directions, Docker hosts"
          f"\n  pytest {tests}/tests             # the checker's unit tests\n"
          f"then tell its story in {tests}/README.md (docs/writing-an-incident.md)")
    return EXIT_OK


def _shown(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


def cmd_doctor() -> int:
    from tabulate import tabulate

    from repro.harness import doctor
    checks = doctor.run_checks()
    print(tabulate([[c.name, "ok" if c.ok else ("MISSING" if c.required else "no"),
                     c.detail, "" if c.ok else c.fix] for c in checks],
                   headers=["prerequisite", "", "found", "fix"], maxcolwidths=[None, None, 60, 50]))
    print()
    for b in doctor.backends(checks).values():
        print(f"backend {b.name}: " + ("available" if b.available else f"not available "
                                                                         f"({b.why_not})"))
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(f"repro doctor: missing {', '.join(missing)}; run the fixes above",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_cleanup(include_live: bool) -> int:
    from repro.harness.cleanup import live_runs, reap
    live = [] if include_live else sorted(live_runs().values())
    removed = reap(all_runs=include_live)
    for item in removed:
        print(f"removed {item}")
    print(f"repro cleanup: {len(removed)} object(s) removed")
    if live:
        print(f"repro cleanup: spared {len(live)} live run(s) still in progress: "
              f"{', '.join(live)} (stop them, or use --all)")
    return EXIT_OK


def _read_report(run_dir: Path) -> Any:
    """A run's results.json (every collected reproduction and pytest's status), or one
    ConfigError line: missing, unreadable, not a run's."""
    from repro.harness.report.record import read_report
    path = run_dir / "results.json"
    cfgfile.read_bytes(path, where=str(run_dir), key="results.json", limit=1)
    try:
        return read_report(path)
    except (ValueError, KeyError, TypeError) as exc:  # not the JSON a run writes
        said = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"not a run's results ({type(exc).__name__}: {said})",
                          path=str(path)) from exc


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run) if Path(args.run).is_dir() else args.reports / args.run
    path = run_dir / "summary.md"
    if not path.is_file():
        raise ConfigError(f"no report at {path}; run `repro run` first")
    if args.html:
        from repro.harness.report.html import write_html
        print(write_html(_read_report(run_dir), run_dir.resolve()))
        return EXIT_OK
    try:
        print(cfgfile.read_bytes(path).decode())
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text: not a summary repro wrote", path=str(path)) from exc
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    from repro.harness import gate, images
    _check_incidents(args.incidents)
    _check_config(args.config, args.profile)
    baseline, candidate = images.parse(args.baseline), images.parse(args.candidate)
    rows, out = gate.run_gate(baseline, candidate, args.incidents, config=args.config,
                              profile=args.profile, reports_root=args.reports,
                              timeout_s=args.timeout_min * 60, retries=args.retries)
    print(gate.table(rows, baseline, candidate))
    for r in rows:
        for d in r.detail:
            print(f"  {r.incident}: {d.splitlines()[0] if d else d}")
    if args.junit:
        shutil.copy(out / "junit.xml", args.junit)
    blocked = [f"{r.incident} {r.status}" for r in rows if r.blocks]
    print(f"repro gate: {'BLOCKED: ' + ', '.join(blocked) if blocked else 'passed'}"
          f" (report: {out / 'gate.md'})")
    return EXIT_FAILED if blocked else EXIT_OK


def _mark_abandoned(reports: Path) -> None:
    """Every command first marks the runs whose process died unfinished (never green:
    repro.harness.report.lifecycle); a folder it cannot rewrite is left as it is."""
    try:
        for folder in lifecycle.mark_abandoned(reports):
            print(f"repro: run {folder.name} did not finish (its process died): marked "
                  "abandoned", file=sys.stderr)
    except OSError as exc:
        print(f"repro: abandoned runs not marked: {exc}", file=sys.stderr)


def _split_at_dashes(argv: list[str]) -> tuple[list[str], list[str]]:
    """(repro's own arguments, those after `--`, which `repro run` passes to pytest).
    Only `run`'s: `repro batch submit ... -- RUN_ARGS` keeps its `--` for its own parser."""
    command = next((a for a in argv if not a.startswith("-")), "")
    if command != "run" or "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def main(argv: list[str] | None = None) -> int:
    own, pytest_args = _split_at_dashes(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(own)
    args.pytest_args = pytest_args
    _mark_abandoned(getattr(args, "reports", None) or Path.cwd() / "reports")
    commands = {"list": lambda: cmd_list(), "run": lambda: cmd_run(args),
                "new": lambda: cmd_new(args),
                "doctor": lambda: cmd_doctor(), "cleanup": lambda: cmd_cleanup(args.include_live),
                "report": lambda: cmd_report(args), "gate": lambda: cmd_gate(args),
                "merge": lambda: cmd_merge(args), "batch": lambda: batch_cli.main(args)}
    try:
        return commands[args.command]()
    except (ConfigError, PrerequisiteError) as exc:
        print(f"repro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ReproError as exc:  # the harness failed while running: a failed run, said in a line
        print(f"repro: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
