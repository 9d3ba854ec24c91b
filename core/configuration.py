"""Configs are data: dataclasses with defaults and one-line help, read from YAML, overridden from
the command line with dotted keys (``--set policy.top_p=0.9``).

Each dataclass field may carry ``metadata={"help": "..."}`` and the values it accepts (``choices``,
``at_least``, ``above``, ``at_most``), checked when a config is loaded; ``describe()`` prints them.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from core.jsonio import atomic_write_text

T = TypeVar("T")


def option(text: str, default: Any = None, factory: Any = None, *, choices: tuple | None = None,
           at_least: float | None = None, above: float | None = None, at_most: float | None = None) -> Any:
    """A config dataclass field with one-line help (``describe`` prints it); ``factory`` for list or
    dict defaults; ``choices`` or bounds (``above`` is exclusive) are checked when a config loads."""
    meta = {"help": text, **{k: v for k, v in (("choices", choices), ("at_least", at_least), ("above", above),
                                               ("at_most", at_most)) if v is not None}}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _check(value: Any, meta: Any, where: str) -> None:
    """The value against its field's ``choices`` and bounds."""
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "at_least" in meta and value < meta["at_least"]:
        raise ConfigError(f"{where}: must be at least {meta['at_least']:g}; got {value!r}")
    if "above" in meta and value <= meta["above"]:
        raise ConfigError(f"{where}: must be above {meta['above']:g}; got {value!r}")
    if "at_most" in meta and value > meta["at_most"]:
        raise ConfigError(f"{where}: must be at most {meta['at_most']:g}; got {value!r}")


class ConfigError(ValueError):
    pass


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: cannot read {value!r} as {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (arg, *_) = typing.get_args(tp) or (Any,)
        items = [_convert(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and value != out:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return out
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _key(where: str, name: str) -> str:
    """``file, key a.b``: the source and the dotted key, never glued into ``file.a.b``."""
    if ", key " in where or where.startswith("--set "):
        return f"{where}.{name}"
    return f"--set {name}" if where == "--set" else f"{where}, key {name}"


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build a dataclass from a mapping; unknown keys are an error (typos must not pass silently), and
    so is a value outside its field's choices or bounds. ``where`` names the source (a file)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = _convert(v, hints[k], _key(where, k))
        _check(kwargs[k], fields[k].metadata, _key(where, k))
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested mapping; values are parsed as YAML scalars."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section (a nested mapping merges; anything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a mapping. ``base: other.yaml`` (relative to the file) reads that file first and
    lays this one over it, so a variant config states only what it changes."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: base configs form a cycle ({' -> '.join(str(p) for p in seen)})")
    with open(path, encoding="utf-8") as fh:
        loaded = yaml.safe_load(fh) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = loaded.pop("base", None)
    if base is None:
        return loaded
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a file name, got {base!r}")
    return _merge(read_yaml(path.parent / base, seen + (path.resolve(),)), loaded)


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults, then the YAML file (after its ``base`` file, if it names one), then the overrides.
    A bad value is reported against the file that holds it, or against --set."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(Path(path))
        from_dict(cls, copy.deepcopy(data), where=str(path))
    if not overrides:
        return from_dict(cls, data, where=str(path) if path else "config")
    return from_dict(cls, apply_overrides(data, overrides), where="--set")


def save(obj: Any, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per field: dotted name, default and help, for --help texts and docs."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            lines.extend(describe(hints[f.name], name + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        bounds = [f"{word} {f.metadata[k]:g}" for k, word in (("at_least", ">="), ("above", ">"), ("at_most", "<="))
                  if k in f.metadata]
        accepts = f" [{', '.join(bounds)}]" if bounds else ""
        lines.append(f"{name} = {default!r}  {f.metadata.get('help', '')}{accepts}".rstrip())
    return lines
