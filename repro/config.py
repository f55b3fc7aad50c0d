"""The configuration under test: a TOML file, one table per incident.

Model: each incident declares a frozen dataclass (its schema) whose fields are
the table's keys, with CI-sized defaults, plus optional per-profile overrides
(`PROFILES = {"full": {...}}` on the class: the postmortem's scale). Loading
checks every table the file holds against its incident's schema: unknown
table, unknown key, wrong type or missing file are each one ConfigError line
naming the file and the key. Path fields are resolved relative to the TOML
file (or to fixtures/ for the built-in defaults).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from repro.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
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


def read_file(path: Path) -> ConfigFile:
    if not path.is_file():
        raise ConfigError("configuration file not found", path=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
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


def _coerce(value: Any, tp: Any, base: Path, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, args[0], base, where, key)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif tp is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", path=where, key=key)
        resolved = (base / value).resolve()
        if not resolved.exists():
            raise ConfigError(f"file not found: {resolved}", path=where, key=key)
        return resolved
    else:
        ok = True
    if not ok:
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", path=where, key=key)
    return value


def build(schema: type[T], table: dict[str, Any], *, incident: str, config: ConfigFile,
          profile: str = "ci") -> T:
    """Make the incident's config object: defaults < profile overrides < the table."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    assert dataclasses.is_dataclass(schema)
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
            values[name] = _coerce(f.default, hints[name], FIXTURES, "built-in defaults",
                                   f"{incident}.{name}")
    obj = schema(**values)
    validate = getattr(obj, "validate", None)
    if validate:
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(str(exc), path=where, key=incident) from exc
    return obj
