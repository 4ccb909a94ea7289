"""Strict reading of YAML documents with line numbers for every error.

``yaml.safe_load`` forgets where a value came from and silently keeps the last of two
duplicate keys; here the document is composed into nodes (which carry their position) and
every value is read through a typed accessor that raises :class:`YamlError` with the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import yaml

from simulator.timefmt import parse_duration, parse_instant

_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"


class YamlError(ValueError):
    """A document is malformed or a value is wrong; ``str()`` is ``source:line: reason``."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Doc:
    """A source name, used in every error message."""

    source: str

    def compose(self, text: str) -> yaml.Node:
        """The root node; raises YamlError for a syntax error or an empty document."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            raise YamlError(self.source, line, f"YAML syntax: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise YamlError(self.source, 1, f"YAML: {exc}") from None
        if node is None:
            raise YamlError(self.source, 1, "the document is empty")
        return node

    def fail(self, node: yaml.Node, reason: str) -> YamlError:
        return YamlError(self.source, node.start_mark.line + 1, reason)

    def mapping(
        self,
        node: yaml.Node,
        what: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> dict[str, yaml.Node]:
        """The keys of a mapping; unknown, duplicate or missing keys are refused."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        required = tuple(required)
        allowed = set(required) | set(optional)
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise self.fail(key_node, f"{what}: keys must be plain words")
            key = str(key_node.value)
            if key in out:
                raise self.fail(key_node, f"{what}: duplicate key {key!r}")
            if key not in allowed:
                raise self.fail(
                    key_node,
                    f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                )
            out[key] = value_node
        missing = [k for k in required if k not in out]
        if missing:
            raise self.fail(node, f"{what}: missing key {missing[0]!r}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def _scalar(self, node: yaml.Node, what: str) -> yaml.ScalarNode:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            raise self.fail(node, f"{what} must be a single value")
        return node

    def text(self, node: yaml.Node, what: str, *, max_len: int = 200) -> str:
        scalar = self._scalar(node, what)
        if scalar.tag in (_INT, _FLOAT, _BOOL):
            raise self.fail(node, f"{what} must be text, got {scalar.value!r}")
        value = str(scalar.value)
        if not value.strip():
            raise self.fail(node, f"{what} must not be empty")
        if len(value) > max_len:
            raise self.fail(node, f"{what} is longer than {max_len} characters")
        return value

    def integer(self, node: yaml.Node, what: str, *, lo: int, hi: int) -> int:
        scalar = self._scalar(node, what)
        if scalar.tag != _INT:
            raise self.fail(node, f"{what} must be a whole number, got {scalar.value!r}")
        value = int(str(scalar.value).replace("_", ""), 0)
        if not lo <= value <= hi:
            raise self.fail(node, f"{what} must be between {lo} and {hi}, got {value}")
        return value

    def number(self, node: yaml.Node, what: str, *, lo: float, hi: float) -> float:
        scalar = self._scalar(node, what)
        if scalar.tag not in (_INT, _FLOAT):
            raise self.fail(node, f"{what} must be a number, got {scalar.value!r}")
        value = float(str(scalar.value).replace("_", ""))
        if not lo <= value <= hi:
            raise self.fail(node, f"{what} must be between {lo:g} and {hi:g}, got {value:g}")
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        scalar = self._scalar(node, what)
        if scalar.tag != _BOOL:
            raise self.fail(node, f"{what} must be true or false, got {scalar.value!r}")
        return str(scalar.value).lower() in ("true", "yes", "on")

    def duration(self, node: yaml.Node, what: str, *, minimum: int = 0) -> int:
        """Milliseconds of a duration such as ``15m``; at least ``minimum``."""
        scalar = self._scalar(node, what)
        try:
            value = parse_duration(str(scalar.value))
        except ValueError as exc:
            raise self.fail(node, f"{what}: {exc}") from None
        if value < minimum:
            raise self.fail(node, f"{what} must be at least {minimum} ms, got {scalar.value!r}")
        return value

    def duration_range(self, node: yaml.Node, what: str) -> tuple[int, int]:
        """``[low, high]`` durations with low <= high."""
        items = self.sequence(node, what)
        if len(items) != 2:
            raise self.fail(node, f"{what} must be [shortest, longest]")
        low = self.duration(items[0], f"{what}[0]")
        high = self.duration(items[1], f"{what}[1]")
        if low > high:
            raise self.fail(node, f"{what}: {items[0].value} is longer than {items[1].value}")
        return low, high

    def instant(self, node: yaml.Node, what: str) -> int:
        """Milliseconds since the epoch of an RFC 3339 timestamp with its offset."""
        scalar = self._scalar(node, what)
        try:
            return parse_instant(str(scalar.value))
        except ValueError as exc:
            raise self.fail(node, f"{what}: {exc}") from None
