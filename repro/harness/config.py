"""The configuration under test: a TOML file, one table per incident.

Model: each incident declares a frozen dataclass (its schema) whose fields are
the table's keys, with CI-sized defaults, plus optional per-profile overrides
(`PROFILES = {"full": {...}}` on the class: the postmortem's scale). Loading
checks every table the file holds against its incident's schema, before any
host starts: an unreadable file (missing, a directory, not UTF-8, no
permission), bad TOML, an unknown table or key, a wrong type, a number that
is not finite, a path key that names no readable file, an unknown provider
(any field named `provider`, see repro.harness.hosts.base.parse_provider) and a value
the schema's `validate()` refuses are each one ConfigError line naming the
file and the key. Path fields are resolved relative to the TOML file; a
schema's own defaults (no table, or a key the table leaves out) relative to
the incident's fixtures root (`fixtures_root`).

Fixtures ship inside the package (repro/fixtures/, package data: they come
with the wheel; the checkout's top-level `fixtures` is a link to it). A team's
incident in its own package keeps its fixtures in its own package: its schema
says where with a `FIXTURES` class attribute (the folder its default paths and
its spec's pre-fix fixture are relative to), e.g.

    FIXTURES: ClassVar[Path] = Path(__file__).resolve().parent.parent / "fixtures"
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from repro.harness.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"  # the harness's own (package data)
PROFILES = ("ci", "full")

T = TypeVar("T")


@dataclass(frozen=True)
class ConfigFile:
    """A parsed TOML file: its tables, and the directory its paths are relative to."""

    path: Path | None
    tables: dict[str, dict[str, Any]]

    @property
    def base(self) -> Path:
        return self.path.parent if self.path else FIXTURES

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "built-in defaults"


def fixtures_root(schema: type[Any]) -> Path:
    """The folder an incident's fixtures live in: its schema's `FIXTURES` when it declares
    one (a team's package), else the harness's."""
    root = getattr(schema, "FIXTURES", None)
    return Path(root) if root is not None else FIXTURES


def _reason(exc: OSError | ValueError | RuntimeError) -> str:
    """One line for why a file cannot be read (no errno number, no repeated path)."""
    if isinstance(exc, UnicodeDecodeError):
        line = exc.object[:exc.start].count(b"\n") + 1
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} on line {line})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_bytes(path: Path, *, where: str | None = None, key: str | None = None,
               limit: int = -1) -> bytes:
    """The bytes of a regular, readable file (its first `limit`; -1: all of them), or one
    ConfigError line saying why not. `where`/`key` name the file and the key that pointed
    at `path` (by default `path` is the configuration file itself)."""
    where = where or str(path)
    target = f": {path}" if key else ""  # a key pointed here: say where it resolved to
    try:
        if not path.exists():
            raise ConfigError(f"file not found{target}" if key else
                              "configuration file not found", path=where, key=key)
        if not path.is_file():
            raise ConfigError(f"not a regular file{target}", path=where, key=key)
        with path.open("rb") as fh:
            return fh.read(limit)
    except (OSError, ValueError) as exc:  # no permission, I/O error, NUL in the name...
        raise ConfigError(f"cannot read{target}: {_reason(exc)}", path=where, key=key) from exc


def read_file(path: Path) -> ConfigFile:
    raw = read_bytes(path)
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # a BOM some editors write is fine
    except UnicodeDecodeError as exc:
        raise ConfigError(_reason(exc), path=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    tables: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError("top-level keys must be incident tables like [mtu_wedge]",
                              path=str(path), key=name)
        tables[name] = table
    return ConfigFile(path=path.resolve(), tables=tables)


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            Path: "a path (string)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce_path(value: Any, base: Path, where: str, key: str) -> Path:
    """A path key: relative to the file, naming a regular file that can be read."""
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"expected {_type_name(Path)}, got {value!r}", path=where, key=key)
    try:
        resolved = (base / value).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # embedded NUL, symlink loop
        raise ConfigError(f"not a usable path {str(value)!r}: {_reason(exc)}",
                          path=where, key=key) from exc
    read_bytes(resolved, where=where, key=key, limit=1)
    return resolved


def _coerce(value: Any, tp: Any, base: Path, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, args[0], base, where, key)
    if tp is Path:
        return _coerce_path(value, base, where, key)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {value!r}", path=where, key=key)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", path=where, key=key)
    return value


def _check_provider(value: Any) -> None:
    """A known provider in a well-formed NAME[:IMAGE], whose backend settings are sound."""
    from repro.harness.hosts.base import get_provider, parse_provider
    parse_provider(str(value))  # the name and the image's form, no backend imported
    get_provider(str(value), key=None)  # the backend's own settings (REPRO_EC2_*); starts nothing


# checks for a key of this name in every incident's table (ValueError, ConfigError: refused)
FIELD_CHECKS: dict[str, Callable[[Any], None]] = {"provider": _check_provider}


def _check_fields(values: dict[str, Any], incident: str, where: str) -> None:
    for name, check in FIELD_CHECKS.items():
        if name in values:
            try:
                check(values[name])
            except (ValueError, ConfigError) as exc:
                raise ConfigError(str(exc), path=where, key=f"{incident}.{name}") from exc


def _values(schema: type[Any], table: dict[str, Any], incident: str, config: ConfigFile,
            profile: str) -> dict[str, Any]:
    """Keyword arguments for the schema: defaults < profile overrides < the table."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    where = config.label
    for key in table:
        if key not in fields:
            raise ConfigError(f"unknown key; [{incident}] takes {', '.join(sorted(fields))}",
                              path=where, key=f"{incident}.{key}")
    overrides: dict[str, Any] = dict(getattr(schema, "PROFILES", {}).get(profile, {}))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in table:
            values[name] = _coerce(table[name], hints[name], config.base, where,
                                   f"{incident}.{name}")
        elif name in overrides:
            values[name] = overrides[name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError("required key is missing", path=where, key=f"{incident}.{name}")
        elif isinstance(f.default, Path):
            values[name] = _coerce(f.default, hints[name], fixtures_root(schema),
                                   "built-in defaults", f"{incident}.{name}")
    _check_fields({k: v for k, v in values.items() if k in table}, incident, where)
    return values


def build(schema: type[T], table: dict[str, Any], *, incident: str, config: ConfigFile,
          profile: str = "ci") -> T:
    """Make the incident's config object: defaults < profile overrides < the table."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    assert dataclasses.is_dataclass(schema)
    obj = schema(**_values(schema, table, incident, config, profile))
    validate = getattr(obj, "validate", None)
    if validate:
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(str(exc), path=config.label, key=incident) from exc
    return obj
