"""Builds config dataclasses from YAML data and environment variables, generically from their type hints.

Knows nothing about the proxy's sections: config.py supplies the schema (the dataclasses) and the value
rules. Every failure is a ConfigError of one line, "<file or env variable>: <dotted key>: <problem>".
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SECRET = {"secret": True}  # field metadata: never echoed in errors, redacted by config.effective_config()
NOT_A_KEY = {"not_a_key": True}  # field metadata: set by the loader, never read from YAML or env


class ConfigError(Exception):
    """One line naming the key and the file; the entry point prints it and exits non-zero."""


@dataclass(frozen=True)
class Rule:
    """A constraint on one key's value; `describe` completes "must be ..."."""

    describe: str
    accepts: Callable[[Any], bool]


def one_of(*choices: str) -> Rule:
    return Rule("one of " + ", ".join(choices), lambda v: v in choices)


def int_between(low: int, high: int) -> Rule:
    return Rule(f"an integer between {low} and {high}", lambda v: low <= v <= high)


def int_at_least(low: int) -> Rule:
    return Rule(f"an integer >= {low}", lambda v: v >= low)


def matching(describe: str, pattern: str, *also: str) -> Rule:
    return Rule(describe, lambda v: v in also or re.fullmatch(pattern, v) is not None)


POSITIVE = Rule("a number > 0", lambda v: v > 0)
NOT_NEGATIVE = Rule("a number >= 0", lambda v: v >= 0)
NON_EMPTY = Rule("a non-empty string", bool)

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


@dataclass(frozen=True)
class _At:
    key: str  # as the user wrote it: accounts[0].name
    rule: str  # generalised to look up a Rule: accounts[].name, lingma.context_windows.*
    secret: bool = False  # never echo the value

    def child(self, f: dataclasses.Field) -> _At:
        secret = self.secret or bool(f.metadata.get("secret"))
        return _At(_join(self.key, f.name), _join(self.rule, f.name), secret)

    def item(self, index: int) -> _At:
        return _At(f"{self.key}[{index}]", f"{self.rule}[]", self.secret)

    def entry(self, name: str) -> _At:
        return _At(f"{self.key}.{name}", f"{self.rule}.*", self.secret)


_ROOT = _At("", "")


def show(value: Any) -> str:
    """A value as an error message quotes it: short, one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _keys_of(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("not_a_key")]


def _default_of(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


class SchemaBuilder:
    """One load: knows the rules and which keys came from the environment, to name them in errors."""

    def __init__(self, source: str, rules: Mapping[str, Rule], env_prefix: str) -> None:
        self.source = source
        self._rules = rules
        self._env_prefix = env_prefix
        self._env_var_of: dict[str, str] = {}

    def where(self, key: str) -> str:
        for prefix, var in self._env_var_of.items():
            if key == prefix or key.startswith((prefix + ".", prefix + "[")):
                return var
        return self.source

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {key}: {problem}")

    def _invalid(self, at: _At, expected: str, value: Any) -> ConfigError:
        return self.error(at.key, f"must be {expected}" + ("" if at.secret else f", got {show(value)}"))

    # --- YAML data -> dataclasses

    def build(self, cls: type, data: Any) -> Any:
        return self._build(cls, data, _ROOT)

    def _build(self, cls: type, data: Any, at: _At) -> Any:
        if not isinstance(data, dict):
            raise self._invalid(at, "a mapping", data)
        fields = {f.name: f for f in _keys_of(cls)}
        for name in data:
            if name not in fields:
                close = difflib.get_close_matches(str(name), fields, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(fields)})"
                raise self.error(_join(at.key, str(name)), "unknown key" + hint)
        values = {
            name: self._convert(_hints(cls)[name], value, at.child(fields[name]), _default_of(fields[name]))
            for name, value in data.items()
        }
        for f in fields.values():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and f.name not in values:
                raise self.error(at.child(f).key, "is required")
        return cls(**values)

    def _convert(self, hint: Any, value: Any, at: _At, default: Any = None) -> Any:
        container = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint):
            return self._build(hint, {} if value is None else value, at)
        if container is list:
            if value is None:
                return []
            if not isinstance(value, list):
                raise self._invalid(at, "a list", value)
            (item_hint,) = typing.get_args(hint)
            return [self._convert(item_hint, item, at.item(i)) for i, item in enumerate(value)]
        if container is dict:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise self._invalid(at, "a mapping", value)
            _, value_hint = typing.get_args(hint)
            merged = dict(default or {})  # entries given are merged over the defaults (login.selectors)
            for name, item in value.items():
                if not isinstance(name, str):
                    raise self.error(at.key, f"keys must be strings, got {show(name)}")
                merged[name] = self._convert(value_hint, item, at.entry(name))
            return merged
        return self._scalar(hint, value, at)

    def _scalar(self, hint: type, value: Any, at: _At) -> Any:
        rule = self._rules.get(at.rule)
        expected = rule.describe if rule else _TYPE_WORDS[hint]
        if hint is bool:
            ok = isinstance(value, bool)
        elif hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif hint is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok or (rule is not None and not rule.accepts(value)):
            raise self._invalid(at, expected, value)
        return value

    # --- environment overrides, merged into the YAML data before building

    def apply_env(self, cls: type, data: dict, environ: Mapping[str, str]) -> None:
        """Set data[section][key] from <prefix><SECTION>_<KEY> for every settable key present in environ."""
        known = {var: (key, hint) for var, key, hint in self._env_keys(cls, _ROOT)}
        sections = tuple(f.name.upper() + "_" for f in _keys_of(cls))
        for var, text in sorted(environ.items()):
            if not var.startswith(self._env_prefix):
                continue
            if var not in known:
                # A typo in a section's variable would otherwise be ignored in silence.
                if var[len(self._env_prefix) :].startswith(sections):
                    close = difflib.get_close_matches(var, known, n=1)
                    raise ConfigError(f"{var}: unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))
                continue
            key, hint = known[var]
            node = data
            *parents, leaf = key.split(".")
            for name in parents:
                if node.get(name) is None:
                    node[name] = {}
                node = node[name]
                if not isinstance(node, dict):
                    break  # the file's own value is not a mapping; build() reports that
            else:
                node[leaf] = _parse_env(var, key, text, hint)
                self._env_var_of[key] = var

    def _env_keys(self, cls: type, at: _At) -> Iterator[tuple[str, str, Any]]:
        for f in _keys_of(cls):
            hint, child = _hints(cls)[f.name], at.child(f)
            if dataclasses.is_dataclass(hint):
                yield from self._env_keys(hint, child)
            else:
                yield self._env_prefix + child.key.replace(".", "_").upper(), child.key, hint


def _parse_env(var: str, key: str, text: str, hint: Any) -> Any:
    """Parse by type; text that does not parse is passed on as is, so the builder reports it."""
    if hint is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        return words.get(text.strip().lower(), text)
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            return text
    if hint is str:
        return text
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{var}: {key}: not valid YAML/JSON: {_yaml_problem(exc)}") from None


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. Under YAML 1.1, `attach: off` would silently become False.
    A key given twice in one mapping is an error: PyYAML would otherwise keep the last in silence."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    problem = f"duplicate key {key_node.value!r}"
                    raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line, without the source excerpt PyYAML adds (it could quote a password)."""
    mark = getattr(error, "problem_mark", None)
    problem = " ".join(str(getattr(error, "problem", None) or "syntax error").split())
    return f"line {mark.line + 1}: invalid YAML: {problem}" if mark else f"invalid YAML: {problem}"


def read_yaml_file(path: str) -> dict:
    """The file's top-level mapping; an empty file is an empty mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of sections, got {show(data)}")
    return data
