"""commercetools Query Predicates (the `where` parameter), the subset real clients send.

Grammar (docs.commercetools.com/api/predicates/query):
  expr     := term ("or" term)*
  term     := factor ("and" factor)*
  factor   := "not" "(" expr ")" | "(" expr ")" | field
  field    := NAME "(" expr ")"                      descend into an object, or any object of an array
            | NAME op value                           = != <> < > <= >=
            | NAME ["not"] "in" "(" value, ... ")"
            | NAME "is" ["not"] ("defined" | "empty")
            | NAME "contains" ("any" | "all") "(" value, ... ")"
  value    := "string" | number | true | false
Strings compare as date-times when both sides are ISO-8601 date-times (so "2026-01-01T00:00:00Z"
and "2026-01-01T00:00:00.000Z" are equal), numbers as decimals. A field the document lacks
satisfies no comparison (`is not defined` is how to ask for it). Predicate variables (`var.x`),
geo and full-text predicates are not emulated: they answer 400 like a syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),])|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*))')
KEYWORDS = {"and", "or", "not", "in", "is", "defined", "empty", "contains", "any", "all", "true", "false"}


class PredicateError(ValueError):
    pass


@dataclass
class Tok:
    kind: str
    text: str
    value: Any = None


def tokenize(source: str) -> list[Tok]:
    out, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise PredicateError(f"Invalid input '{source[pos:pos + 10].strip()}' at position {pos + 1}")
        pos = m.end()
        if m.group("string"):
            raw = m.group("string")[1:-1]
            out.append(Tok("value", raw, re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("number"):
            out.append(Tok("value", m.group("number"), Decimal(m.group("number"))))
        elif m.group("op"):
            out.append(Tok("op", m.group("op")))
        elif m.group("punct"):
            out.append(Tok(m.group("punct"), m.group("punct")))
        else:
            word = m.group("name")
            if word in ("true", "false"):
                out.append(Tok("value", word, word == "true"))
            elif word in KEYWORDS:
                out.append(Tok(word, word))
            else:
                out.append(Tok("name", word))
    return out


class _Parser:
    def __init__(self, tokens: list[Tok]):
        self.toks, self.i = tokens, 0

    def peek(self, k: int = 0) -> Tok | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, kind: str) -> Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            got = tok.text if tok else "end of input"
            raise PredicateError(f"Invalid input '{got}', expected {kind}")
        self.i += 1
        return tok

    def parse(self):
        if not self.toks:
            raise PredicateError("Empty predicate")
        node = self.expr()
        if self.peek() is not None:
            raise PredicateError(f"Invalid input '{self.peek().text}', expected 'and', 'or' or end of input")
        return node

    def expr(self):
        node = self.term()
        while self.peek() and self.peek().kind == "or":
            self.i += 1
            node = ("or", node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.peek() and self.peek().kind == "and":
            self.i += 1
            node = ("and", node, self.factor())
        return node

    def factor(self):
        tok = self.peek()
        if tok is not None and tok.kind == "not":
            self.i += 1
            self.take("(")
            inner = self.expr()
            self.take(")")
            return ("not", inner)
        if tok is not None and tok.kind == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        return self.field()

    def values(self) -> list[Any]:
        self.take("(")
        vals = [self.take("value").value]
        while self.peek() and self.peek().kind == ",":
            self.i += 1
            vals.append(self.take("value").value)
        self.take(")")
        return vals

    def field(self):
        name = self.take("name").text
        tok = self.peek()
        if tok is None:
            raise PredicateError(f"Invalid input: '{name}' needs a condition")
        if tok.kind == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return ("nested", name, inner)
        if tok.kind == "op":
            self.i += 1
            return ("cmp", name, tok.text, self.take("value").value)
        if tok.kind == "in":
            self.i += 1
            return ("in", name, self.values())
        if tok.kind == "not" and self.peek(1) is not None and self.peek(1).kind == "in":
            self.i += 2
            return ("not", ("in", name, self.values()))
        if tok.kind == "is":
            self.i += 1
            negate = False
            if self.peek() is not None and self.peek().kind == "not":
                self.i += 1
                negate = True
            what = self.peek()
            if what is None or what.kind not in ("defined", "empty"):
                raise PredicateError("Invalid input after 'is', expected 'defined' or 'empty'")
            self.i += 1
            node = (what.kind, name)
            return ("not", node) if negate else node
        if tok.kind == "contains":
            self.i += 1
            mode = self.peek()
            if mode is not None and mode.kind in ("any", "all"):
                self.i += 1
                return ("contains", name, mode.kind, self.values())
            return ("contains", name, "any", [self.take("value").value])
        raise PredicateError(f"Invalid input '{tok.text}' after field '{name}'")


def parse(source: str):
    return _Parser(tokenize(source)).parse()


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, (int, Decimal)) and isinstance(b, (int, Decimal)):
        return Decimal(a), Decimal(b)
    if isinstance(a, str) and isinstance(b, str):
        ta, tb = _when(a), _when(b)
        if ta is not None and tb is not None and (ta.tzinfo is None) == (tb.tzinfo is None):
            return ta, tb
        return a, b
    if isinstance(a, (float,)) and isinstance(b, Decimal):
        try:
            return Decimal(str(a)), b
        except InvalidOperation:
            return None
    return None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_compare(x, op, expected) for x in actual)
    pair = _comparable(actual, expected)
    if pair is None:
        return op in ("!=", "<>") and actual is not None
    a, b = pair
    try:
        return {"=": a == b, "!=": a != b, "<>": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    except TypeError:
        return False


def evaluate(node, doc: Any) -> bool:
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], doc) and evaluate(node[2], doc)
    if kind == "or":
        return evaluate(node[1], doc) or evaluate(node[2], doc)
    if kind == "not":
        return not evaluate(node[1], doc)
    if not isinstance(doc, dict):
        return False
    value = doc.get(node[1])
    if kind == "nested":
        if isinstance(value, dict):
            return evaluate(node[2], value)
        if isinstance(value, list):
            return any(evaluate(node[2], item) for item in value if isinstance(item, dict))
        return False
    if kind == "cmp":
        return value is not None and _compare(value, node[2], node[3])
    if kind == "in":
        return value is not None and any(_compare(value, "=", v) for v in node[2])
    if kind == "defined":
        return value is not None
    if kind == "empty":
        return isinstance(value, list) and not value
    if kind == "contains":
        items = value if isinstance(value, list) else []
        hits = [any(_compare(x, "=", v) for x in items) for v in node[3]]
        return all(hits) if node[2] == "all" else any(hits)
    raise PredicateError(f"unknown predicate node {kind}")  # pragma: no cover


def matches(predicates: list[str], doc: Any) -> bool:
    """Several `where` parameters must all hold."""
    return all(evaluate(parse(p), doc) for p in predicates)
