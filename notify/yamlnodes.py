"""Strict reading of a YAML document, with the line of every error.

``yaml.safe_load`` forgets where a value came from and keeps the last of two duplicate keys
without a word. Here the document is composed into nodes, which carry their position, and
every value is read through a typed accessor that records a :class:`Problem` with the line
and carries on, so that one run reports every mistake in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

import yaml

STR: Final = "tag:yaml.org,2002:str"
INT: Final = "tag:yaml.org,2002:int"
NULL: Final = "tag:yaml.org,2002:null"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class Invalid(Exception):
    """A value could not be read; its problem is already recorded."""


@dataclass(slots=True)
class Reader:
    """Typed accessors over composed nodes; problems accumulate in ``problems``."""

    problems: list[Problem] = field(default_factory=list)

    def compose(self, text: str) -> yaml.Node | None:
        """The root node, or None (with a problem recorded) for a syntax error or no content."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            self.problems.append(Problem(line, f"YAML syntax error: {exc.problem}"))
            return None
        except yaml.YAMLError as exc:
            self.problems.append(Problem(1, f"YAML error: {exc}"))
            return None
        if node is None:
            self.problems.append(Problem(1, "the file is empty"))
        return node

    def fail(self, node: yaml.Node, reason: str) -> Invalid:
        """Record a problem at ``node`` and return the exception to raise."""
        self.problems.append(Problem(line_of(node), reason))
        return Invalid(reason)

    def mapping(
        self,
        node: yaml.Node,
        what: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        any_keys: bool = False,
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The entries of a mapping as ``key -> (key node, value node)``.

        Unknown keys (unless ``any_keys``), duplicate and missing required keys are recorded
        as problems; unknown and duplicate entries are left out of the result.
        Raises :class:`Invalid` when ``node`` is not a mapping.
        """
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        required = tuple(required)
        allowed = set(required) | set(optional)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR:
                self.fail(key_node, f"{what}: a key must be a plain name")
                continue
            key = str(key_node.value)
            if key in out:
                self.fail(key_node, f"{what}: duplicate key {key!r}")
                continue
            if not any_keys and key not in allowed:
                self.fail(
                    key_node,
                    f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                )
                continue
            out[key] = (key_node, value_node)
        for key in required:
            if key not in out:
                self.fail(node, f"{what}: missing key {key!r}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        """The items of a sequence; raises :class:`Invalid` otherwise."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: yaml.Node, what: str, *, pattern: re.Pattern[str] | None = None) -> str:
        """A non-empty string (quoted or plain); raises :class:`Invalid` otherwise."""
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR:
            raise self.fail(node, f"{what} must be text")
        value = str(node.value)
        if not value.strip():
            raise self.fail(node, f"{what} must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(node, f"{what}: {value!r} is not allowed here")
        return value

    def choice(self, node: yaml.Node, what: str, allowed: Iterable[str]) -> str:
        options = tuple(allowed)
        value = self.text(node, what)
        if value not in options:
            raise self.fail(node, f"{what} must be one of {', '.join(options)}, got {value!r}")
        return value

    def integer(self, node: yaml.Node, what: str, lo: int, hi: int) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != INT:
            raise self.fail(node, f"{what} must be a whole number")
        value = int(str(node.value).replace("_", ""), 0)
        if not lo <= value <= hi:
            raise self.fail(node, f"{what} must be between {lo} and {hi}, got {value}")
        return value

    def duration(self, node: yaml.Node, what: str, *, minimum: float = 0.0) -> timedelta:
        """A duration written ``90s``, ``15m``, ``1h30m`` or as whole seconds (``0``)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == INT:
            seconds = float(self.integer(node, what, 0, 366 * 86400))
        elif isinstance(node, yaml.ScalarNode) and node.tag == STR:
            match = _DURATION.fullmatch(str(node.value).strip())
            if not match or not any(match.groups()):
                raise self.fail(
                    node, f"{what} must be a duration like 30s, 15m or 1h30m, got {node.value!r}"
                )
            h, m, s = (int(g) if g else 0 for g in match.groups())
            seconds = float(h * 3600 + m * 60 + s)
        else:
            raise self.fail(node, f"{what} must be a duration like 30s, 15m or 1h30m")
        if seconds < minimum:
            raise self.fail(node, f"{what} must be at least {minimum:g}s")
        return timedelta(seconds=seconds)

    def string_map(self, node: yaml.Node, what: str) -> dict[str, str]:
        """A mapping of names to text values (HTTP headers)."""
        entries = self.mapping(node, what, any_keys=True)
        return {key: self.text(value, f"{what}.{key}") for key, (_, value) in entries.items()}


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
