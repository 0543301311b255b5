"""Scenario files (docs/features.md §9): ordered rules, the first whose regex matches the question wins.

Besides `rules:`, one top-level option shapes the classic dialect's answer to the agent dialect's
`session/new`: `session_new: unknown` (the default, an unknown-method error) or `hang` (no answer at
all), the two ways a plugin binary may react to the dialect probe (docs/protocol.md §9).

The file is re-read whenever its mtime changes, which also resets the `times` counters. A missing
or broken file is logged and the defaults apply, so a typo never takes the simulator down.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, fields
from typing import Any

import yaml

log = logging.getLogger("lingma.sim")

# The business errors of docs/protocol.md §11.8 and a lost session: each refuses the ask with a canned error.
REFUSALS = ("queue", "quota", "daily_limit", "content_policy", "duplicate_request", "session_lost", "model_unavailable")
FAULTS = ("crash_mid_stream", "hang", "rpc_error", "logged_out", "slow_tokens", "finish_error", *REFUSALS)
THINK_STYLES = ("chat_think", "inline", "think_tag")
SESSION_NEW_BEHAVIOURS = ("unknown", "hang")


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    match: re.Pattern[str]
    model: re.Pattern[str] | None = None  # the rule applies only to asks for a model key it matches
    reply: str | None = None
    echo: bool = False
    think: str = ""
    think_style: str = "chat_think"
    chunk_chars: int | None = None
    first_token_delay_ms: int = 0
    chunk_delay_ms: int | None = None
    fault: str | None = None
    message: str | None = None
    status_code: int | None = None
    native_tool: dict[str, Any] | None = None
    times: int | None = None


_RULE_KEYS = {f.name for f in fields(Rule)}


def parse_rule(raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise ScenarioError(f"a rule must be a mapping, got {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ScenarioError(f"unknown rule keys {sorted(unknown)}")
    values = dict(raw)
    for key in ("match", "model"):
        if key == "match" or raw.get(key) is not None:
            try:
                values[key] = re.compile(str(raw.get(key, "")))
            except re.error as exc:
                raise ScenarioError(f"bad regex {raw.get(key)!r}: {exc}") from None
    if values.get("fault") is not None and values["fault"] not in FAULTS:
        raise ScenarioError(f"unknown fault {values['fault']!r}: expected one of {FAULTS}")
    if values.get("think_style", "chat_think") not in THINK_STYLES:
        raise ScenarioError(f"unknown think_style {values['think_style']!r}: expected one of {THINK_STYLES}")
    tool = values.get("native_tool")
    if tool is not None and not (isinstance(tool, dict) and tool.get("name")):
        raise ScenarioError("native_tool needs at least a name")
    if values.get("chunk_chars") is not None and int(values["chunk_chars"]) < 1:
        raise ScenarioError("chunk_chars must be at least 1")
    return Rule(**values)


def parse_scenario(text: str) -> tuple[list[Rule], str]:
    """The rules and the `session_new` behaviour of one scenario file."""
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise ScenarioError("a scenario file is a mapping with a `rules:` list")
    session_new = str(document.get("session_new") or "unknown")
    if session_new not in SESSION_NEW_BEHAVIOURS:
        raise ScenarioError(f"unknown session_new {session_new!r}: expected one of {SESSION_NEW_BEHAVIOURS}")
    return [parse_rule(raw) for raw in document.get("rules") or []], session_new


class Scenario:
    def __init__(self, path: str) -> None:
        self.path = path
        self._rules: list[Rule] = []
        self._uses: list[int] = []
        self._session_new = "unknown"
        self._loaded_stamp: tuple[int, int] | None = None

    def select(self, question: str, model: str = "") -> Rule | None:
        """The first rule matching `question` (and `model`, when the rule names one) that still has uses left;
        using it counts against `times`."""
        self._reload_if_changed()
        for index, rule in enumerate(self._rules):
            if rule.times is not None and self._uses[index] >= rule.times:
                continue
            if rule.match.search(question) and (rule.model is None or rule.model.search(model)):
                self._uses[index] += 1
                return rule
        return None

    def session_new_hangs(self) -> bool:
        self._reload_if_changed()
        return self._session_new == "hang"

    def _reload_if_changed(self) -> None:
        if not self.path:
            return
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            self._replace(([], "unknown"), stamp=(-1, -1), problem=f"cannot read scenario {self.path}: {exc}")
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._loaded_stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                loaded = parse_scenario(handle.read())
        except (OSError, yaml.YAMLError, ScenarioError, TypeError, ValueError) as exc:
            self._replace(([], "unknown"), stamp=stamp, problem=f"broken scenario {self.path}, using defaults: {exc}")
            return
        self._replace(loaded, stamp=stamp, problem=None)
        log.info("loaded scenario %s with %d rules", self.path, len(loaded[0]))

    def _replace(self, loaded: tuple[list[Rule], str], stamp: tuple[int, int], problem: str | None) -> None:
        if problem and stamp != self._loaded_stamp:
            log.error(problem)
        rules, self._session_new = loaded
        self._rules, self._uses, self._loaded_stamp = rules, [0] * len(rules), stamp
