"""`repro new NAME`: a working skeleton incident, in this package or in a team's own.

Model: an incident is its folder and its fixtures; nothing else lists it (repro.harness.spec,
repro.incidents). `new()` checks everything before it writes anything (each refusal one
ConfigError line: a name that is not a lower-case identifier; one that exists: an
incident registered under it, a folder or module of that name, fixtures or a table of
that name; a marker another incident or the harness already uses), then writes from
templates/:

  <package>/<name>/             __init__.py (SPEC), config.py (schema), scenario.py,
                                check.py (rules), README.md, test_<name>.py (both
                                directions), tests/test_<name>_check.py (the checker
                                on hand-written histories)
  <fixtures>/<name>/            fixed.sh (passes), prefix.sh (flagged)
  <fixtures>/default.toml       its table appended (the file made when missing)
  <fixtures>/prefix.toml        likewise
  README.md of this checkout    its row in the incidents table (which the consistency
                                test asks for); only when writing into this package

<package> is this package's folder (a checkout: an installed copy in site-packages is
refused) or `into`, a team's package folder (made, with an __init__.py, when missing; the
incident is then registered through the entry point printed by `repro new`); <fixtures>
is the harness's (repro/fixtures/) or the team package's own `fixtures/` (its schema's
`FIXTURES` says so: repro.harness.config.fixtures_root).

The skeleton is a small real incident: a service killed on its host stays down (pre-fix:
started once by the host's init; fixed: supervised, started again), on Docker hosts,
observed from outside with a TCP probe; its fault SIGKILLs the listener.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from repro.harness import config as cfgfile
from repro.harness import incidents
from repro.harness.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent / "templates"
# markers the harness (or pytest) already gives a meaning
RESERVED_MARKERS = frozenset({"docker", "qemu", "ec2", "ssh", "slow", "skip", "skipif", "xfail",
                              "parametrize", "usefixtures", "filterwarnings", "tryfirst",
                              "trylast"})
TABLE_HEADER = "| incident | marker |"
INSTALLED = ("site-packages", "dist-packages")
FIXTURES_LINE = "__FIXTURES_LINE__\n"
TEAM_FIXTURES = ("\n    # this package's own fixtures folder (repro.harness.config.fixtures_root)\n"
                 '    FIXTURES: ClassVar[Path] = Path(__file__).resolve().parent.parent / '
                 '"fixtures"\n\n')
TOML_HEADERS = {
    "default.toml": "# The configuration under test of this package's incidents: their FIXED "
                    "configurations.\n# Paths are relative to this file.\n",
    "prefix.toml": "# This package's incidents' PRE-FIX configurations: `pytest ... "
                   "--repro-config` on this file\n# must FAIL (that is the incident coming "
                   "back).\n",
}
SPEC_POSTMORTEM = "(where the postmortem is: a document, an issue, a ticket)"
SPEC_SUMMARY = "a service killed on its host stays down: nothing restarts it"


@dataclass(frozen=True)
class Target:
    """Where a new incident goes."""

    package: Path         # the package folder the incident's folder goes in
    module: str           # that package's import name
    fixtures: Path        # its fixtures root
    readme: Path | None   # the checkout's README (its incidents table), in-tree only
    shown: Path           # what paths are shown relative to (the project's folder)

    @property
    def team(self) -> bool:
        return self.readme is None


@dataclass
class Scaffolded:
    name: str
    marker: str
    target: Target
    written: list[Path] = field(default_factory=list)
    appended: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.target.package / self.name

    @property
    def entry_point(self) -> str:
        return f'{self.name} = "{self.target.module}.{self.name}:SPEC"'


def new(name: str, marker: str | None = None, into: Path | None = None) -> Scaffolded:
    """Write the skeleton incident `name` (see the module's docstring)."""
    marker = marker or name
    _check_identifier("incident name", name)
    _check_identifier("marker", marker)
    target = team_target(into) if into is not None else own_target()
    _check_free(name, marker, target)
    done = Scaffolded(name, marker, target)
    tokens = _tokens(name, marker, target)
    if target.team and not (target.package / "__init__.py").is_file():  # a fresh package
        done.written.append(_write(target.package / "__init__.py",
                                   f'"""{target.module}: incidents (repro.incidents)."""\n'))
    for template in sorted((TEMPLATES / "incident").rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES / "incident").with_suffix("")
        relative = relative.with_name(_file_name(relative.name, name))
        done.written.append(_write(done.folder / relative, _render(template, tokens)))
    for script in ("fixed.sh", "prefix.sh"):
        done.written.append(_write(target.fixtures / name / script,
                                   _render(TEMPLATES / "fixtures" / f"{script}.tmpl", tokens),
                                   mode=0o755))
    for toml in ("default.toml", "prefix.toml"):
        done.appended.append(_append_table(target.fixtures / toml,
                                           _render(TEMPLATES / "fixtures" / f"{toml}.tmpl",
                                                   tokens)))
    if target.readme is not None:
        done.appended.append(_add_row(target.readme, readme_row(name, marker)))
    return done


def own_target() -> Target:
    """This package, when it is a checkout (never an installed copy)."""
    import repro

    package = Path(repro.__file__).resolve().parent
    if any(part in INSTALLED for part in package.parts):
        raise ConfigError(f"repro is installed ({package}): write the incident into your own "
                          "package with --into DIR (docs/writing-an-incident.md)")
    readme = package.parent / "README.md"
    if TABLE_HEADER not in _text(readme):
        raise ConfigError(f"{readme} has no incidents table (a line starting "
                          f"{TABLE_HEADER!r}) to add the new incident's row to")
    return Target(package, "repro", cfgfile.FIXTURES, readme, package.parent)


def team_target(into: Path) -> Target:
    """A team's package folder: its import name is its folder's, under every parent folder
    that is a package too."""
    package = into.resolve()
    if package.exists() and not package.is_dir():
        raise ConfigError(f"--into {into}: not a folder")
    parts = [package.name]
    parent = package.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    for part in parts:
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ConfigError(f"--into {into}: {part!r} is not a Python package name")
    return Target(package, ".".join(parts), package / "fixtures", None, parent)


def readme_row(name: str, marker: str) -> str:
    return (f"| [{name}](repro/{name}/README.md) | `{marker}` | {SPEC_POSTMORTEM} | "
            f"{SPEC_SUMMARY} (Docker) |")


def _check_identifier(what: str, value: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value) or keyword.iskeyword(value):
        raise ConfigError(f"{what} {value!r} is not a lower-case Python identifier (a-z, 0-9, "
                          "_, starting with a letter; e.g. service_restart)")


def _check_free(name: str, marker: str, target: Target) -> None:
    """Nothing of that name exists yet, and the marker is nobody's."""
    if name in incidents.INCIDENTS:
        raise ConfigError(f"incident {name} exists (in {incidents.INCIDENTS[name].package})")
    if name in incidents.NON_INCIDENT_TABLES:
        raise ConfigError(f"incident name {name} is taken: [{name}] is not an incident table")
    for path in (target.package / name, target.package / f"{name}.py", target.fixtures / name):
        if path.exists():
            raise ConfigError(f"{path} exists: choose another name")
    for toml in ("default.toml", "prefix.toml"):
        if re.search(rf"^\[{name}\]", _text(target.fixtures / toml), re.MULTILINE):
            raise ConfigError(f"{target.fixtures / toml} already has a [{name}] table")
    owner = next((s.name for s in incidents.INCIDENTS.values() if s.marker == marker), None)
    if owner:
        raise ConfigError(f"marker {marker} is used by incident {owner}: choose another "
                          "(--marker)")
    if marker in RESERVED_MARKERS:
        raise ConfigError(f"marker {marker} is one the harness or pytest uses: choose another "
                          "(--marker)")


def _tokens(name: str, marker: str, target: Target) -> dict[str, str]:
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    shown = target.package.relative_to(target.shown) if target.package.is_relative_to(
        target.shown) else target.package
    fixtures = "fixtures" if not target.team else f"{shown}/fixtures"
    return {"__NAME__": name, "__MARKER__": marker, "__CLASS__": f"{camel}Config",
            "__TESTS__": f"{shown}/{name}", "__FIXTURES__": fixtures,
            "__POSTMORTEM__": SPEC_POSTMORTEM, "__SUMMARY__": SPEC_SUMMARY,
            FIXTURES_LINE: TEAM_FIXTURES if target.team else "\n"}


def _file_name(template_name: str, name: str) -> str:
    return {"test_incident.py": f"test_{name}.py",
            "test_check.py": f"test_{name}_check.py"}.get(template_name, template_name)


def _render(template: Path, tokens: dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for token, value in tokens.items():
        text = text.replace(token, value)
    return text


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _append_table(path: Path, table: str) -> Path:
    """Append the incident's table to a TOML file (made, with a header, when missing)."""
    old = _text(path)
    head = old if old else TOML_HEADERS[path.name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head.rstrip("\n") + "\n" + table, encoding="utf-8")
    return path


def _add_row(readme: Path, row: str) -> Path:
    """The incident's row, after the last row of the README's incidents table."""
    lines = _text(readme).splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    while at + 1 < len(lines) and lines[at + 1].startswith("|"):
        at += 1
    lines.insert(at + 1, row + "\n")
    readme.write_text("".join(lines), encoding="utf-8")
    return readme
