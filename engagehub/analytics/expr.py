"""A small, safe filter language for goal ``--where`` clauses (parsed by hand, never eval'd).

    expr   := or ;  or := and ("or" and)* ;  and := not ("and" not)* ;  not := "not" not | cmp
    cmp    := value [("==" | "!=" | "<" | ">" | "<=" | ">=" | "in") value] | "(" expr ")"
    value  := path | 'string' | "string" | number | true | false | null | "[" value, ... "]"
    path   := ("properties" | "traits") ("." name)+

Comparisons of values of different kinds (a string with a number, a missing field) are false,
so a filter never raises on data, only on its own syntax; errors name the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engagehub.errors import PayloadError

__all__ = ["Expr", "parse"]

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>-?\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_$-]+)*)
  | (?P<bad>\S)
)""",
    re.VERBOSE,
)
_ROOTS = ("properties", "traits")
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
_COMPARE = {"==", "!=", "<", ">", "<=", ">="}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup or "bad"
        text = m.group(kind)
        if kind == "bad":
            raise _error(source, f"unexpected character {text!r}", text, m.start(kind))
        out.append(_Token(kind, text, m.start(kind)))
        pos = m.end()
    return out


def _error(source: str, message: str, token: str, pos: int) -> PayloadError:
    return PayloadError(
        f"invalid where expression: {message} at position {pos}",
        field="where",
        value=source,
        token=token,
        position=pos,
    )


Node = tuple[Any, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokens(source)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise _error(self.source, "unexpected end", "", len(self.source))
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text.lower() == word

    def parse(self) -> Node:
        if not self.toks:
            raise _error(self.source, "empty expression", "", 0)
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise _error(self.source, f"unexpected token {tok.text!r}", tok.text, tok.pos)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.is_word("or"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.is_word("and"):
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.is_word("not"):
            self.take()
            return ("not", self.not_())
        return self.cmp()

    def cmp(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            node = self.or_()
            close = self.take()
            if close.text != ")":
                raise _error(self.source, f"expected ')' not {close.text!r}", close.text, close.pos)
            return node
        left = self.value()
        op = self.peek()
        if op is not None and (op.text in _COMPARE or self.is_word("in")):
            self.take()
            return ("cmp", op.text.lower(), left, self.value())
        if left[0] != "path":
            raise _error(
                self.source,
                "a literal alone is not a condition",
                tok.text if tok else "",
                tok.pos if tok else 0,
            )
        return ("truthy", left)

    def value(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return ("lit", float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "str":
            body = tok.text[1:-1]
            return ("lit", re.sub(r"\\(.)", r"\1", body))
        if tok.text == "[":
            items: list[Node] = []
            while True:
                nxt = self.peek()
                if nxt is not None and nxt.text == "]" and not items:
                    self.take()
                    break
                item = self.value()
                if item[0] != "lit":
                    raise _error(self.source, "lists hold literals only", tok.text, tok.pos)
                items.append(item)
                sep = self.take()
                if sep.text == "]":
                    break
                if sep.text != ",":
                    raise _error(
                        self.source, f"expected ',' or ']' not {sep.text!r}", sep.text, sep.pos
                    )
            return ("lit", [i[1] for i in items])
        if tok.kind == "name":
            low = tok.text.lower()
            if low in _CONSTANTS:
                return ("lit", _CONSTANTS[low])
            if low in _KEYWORDS:
                raise _error(self.source, f"unexpected keyword {tok.text!r}", tok.text, tok.pos)
            parts = tok.text.split(".")
            if parts[0] not in _ROOTS or len(parts) < 2:
                raise _error(
                    self.source,
                    f"unknown name {tok.text!r} (use properties.x or traits.x)",
                    tok.text,
                    tok.pos,
                )
            return ("path", tuple(parts))
        raise _error(self.source, f"unexpected token {tok.text!r}", tok.text, tok.pos)


def _resolve(node: Node, ctx: dict[str, Any]) -> Any:
    if node[0] == "lit":
        return node[1]
    value: Any = ctx
    for part in node[1]:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return op == "!=" and not (a is _MISSING and b is _MISSING)
    if op == "in":
        return isinstance(b, list | str) and (
            a in b if isinstance(b, list) else isinstance(a, str) and a in b
        )
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    numeric = isinstance(a, int | float) and isinstance(b, int | float)
    if not numeric and not (isinstance(a, str) and isinstance(b, str)):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return bool({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])


def _eval(node: Node, ctx: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "or":
        return _eval(node[1], ctx) or _eval(node[2], ctx)
    if kind == "and":
        return _eval(node[1], ctx) and _eval(node[2], ctx)
    if kind == "not":
        return not _eval(node[1], ctx)
    if kind == "truthy":
        value = _resolve(node[1], ctx)
        return value is not _MISSING and bool(value)
    return _compare(node[1], _resolve(node[2], ctx), _resolve(node[3], ctx))


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed filter; ``matches`` evaluates it against an event's properties and traits."""

    source: str
    tree: Node

    def matches(self, properties: dict[str, Any], traits: dict[str, Any] | None = None) -> bool:
        """Whether the event satisfies the filter."""
        return _eval(self.tree, {"properties": properties, "traits": traits or {}})


MAX_NESTING = 64
"""Deepest expression accepted: evaluation recurses once per level, for every event."""


def parse(source: str) -> Expr:
    """Parse a where clause; a PayloadError names the offending token and its position."""
    try:
        node = _Parser(source).parse()
    except RecursionError:
        node = None
    if node is None or _too_deep(node):
        raise PayloadError(
            f"where expression nests deeper than {MAX_NESTING} levels (not, parentheses, "
            "and/or chains, lists)",
            field="where",
            value=source[:200],
            limit=MAX_NESTING,
        )
    return Expr(source, node)


def _too_deep(node: Node) -> bool:
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        stack.extend((part, depth + 1) for part in item if isinstance(part, tuple | list))
    return False
