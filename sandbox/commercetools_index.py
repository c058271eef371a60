"""Indexes of the commercetools emulator's stores, so queries over 100,000s of resources (the
stock benchmark's inventory entries) answer in time. An implementation detail: the index only
narrows which resources a query looks at, and the query predicate still decides each one, so an
answer is exactly what a scan of the whole store gives.

- Field indexes (`id`, `sku`, `supplyChannel.id`): `field = "x"` and `field in ("x", ...)`
  (also inside `supplyChannel(...)`) look up the resources holding that string. A resource whose
  value there is not a plain string (a list, a number) is looked at by every such lookup; a
  value that reads as a date-time is not looked up (it may equal a differently written one).
- The keyset order (`lastModifiedAt`, `id`): resources sorted as `sort=lastModifiedAt asc&sort=id
  asc` sorts them; a `lastModifiedAt >`, `>=` or `=` bound says where to start reading, and a
  page without a total stops once full. Stamps not in the emulator's own form
  (`2026-11-30T10:00:00.000Z`) are merged in from a small side list, never skipped.
Anything else (`not`, `<`, other fields) narrows nothing: the query scans, as it did before.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterator, Mapping
from datetime import timezone
from decimal import Decimal
from typing import Any

from sandbox.commercetools_predicates import _when

FIELDS = ("id", "sku", "supplyChannel.id")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")  # what Clock.stamp writes: text order is time order
_MISSING, _LOOSE = object(), object()


def sort_key(value: Any) -> tuple:
    """Missing values sort last; numbers by value; everything else as text (ISO times sort right)."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return (0, Decimal(str(value)))
    return (1, str(value))


def _field(doc: Any, path: str) -> Any:
    """The string at `path`; _MISSING where nothing there can match `=` or `in`; _LOOSE where a
    list or a non-string value might (a list is matched by any of its items)."""
    for part in path.split("."):
        if isinstance(doc, list):
            return _LOOSE
        doc = doc.get(part) if isinstance(doc, dict) else None
        if doc is None:
            return _MISSING
    return doc if isinstance(doc, str) else _LOOSE


def _lookup_value(value: Any) -> str | None:
    """A predicate value the field index can look up exactly, else None."""
    return value if isinstance(value, str) and _when(value) is None else None


def _lower_bound(value: Any) -> str | None:
    """The smallest stored stamp that can compare >= this date-time (floored to the millisecond)."""
    when = _when(value)
    if when is None or when.tzinfo is None:
        return None
    try:
        when = when.astimezone(timezone.utc)
    except OverflowError:  # year 1 east of UTC: no bound
        return None
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}."
            f"{when.microsecond // 1000:03d}Z")


class StoreIndex:
    def __init__(self):
        self.values: dict[str, dict[str, set[str]]] = {path: {} for path in FIELDS}
        self.loose: dict[str, set[str]] = {path: set() for path in FIELDS}
        self.order: list[tuple[str, str]] = []  # (lastModifiedAt, id) of resources stamped as Clock stamps
        self.unordered: set[str] = set()  # ids of the others
        self.held: dict[str, tuple[tuple[Any, ...], str | None]] = {}  # id -> what is indexed for it

    # -- upkeep: every change to a stored resource goes through add/remove ------------------
    def add(self, doc: Mapping[str, Any]) -> None:
        ident = doc["id"]
        if ident in self.held:
            self.remove(ident)
        found = tuple(_field(doc, path) for path in FIELDS)
        for path, value in zip(FIELDS, found):
            if value is _LOOSE:
                self.loose[path].add(ident)
            elif value is not _MISSING:
                self.values[path].setdefault(value, set()).add(ident)
        stamp = doc.get("lastModifiedAt")
        stamp = stamp if isinstance(stamp, str) and STAMP.fullmatch(stamp) else None
        if stamp is None:
            self.unordered.add(ident)
        else:
            bisect.insort(self.order, (stamp, ident))
        self.held[ident] = (found, stamp)

    def remove(self, ident: str) -> None:
        found, stamp = self.held.pop(ident, ((), None))
        for path, value in zip(FIELDS, found):
            if value is _LOOSE:
                self.loose[path].discard(ident)
            elif value is not _MISSING:
                self.values[path][value].discard(ident)
                if not self.values[path][value]:
                    del self.values[path][value]
        if stamp is None:
            self.unordered.discard(ident)
        else:
            at = bisect.bisect_left(self.order, (stamp, ident))
            del self.order[at]

    def having(self, path: str, value: str) -> set[str]:
        """Ids of the resources that may hold `value` at `path` (the loose ones too)."""
        return self.values[path].get(value, set()) | self.loose[path]

    # -- narrowing ---------------------------------------------------------------------------
    def narrow(self, node: Any, prefix: str = "") -> tuple[set[str] | None, str | None]:
        """(ids that can match, None: any; the lowest lastModifiedAt that can match, None: any)
        for a parsed predicate: always a superset of what it matches."""
        kind = node[0]
        if kind in ("and", "or"):
            (ids_a, low_a), (ids_b, low_b) = self.narrow(node[1], prefix), self.narrow(node[2], prefix)
            if kind == "and":
                ids = ids_a if ids_b is None else ids_b if ids_a is None else ids_a & ids_b
                return ids, max(low_a, low_b) if low_a and low_b else low_a or low_b
            ids = ids_a | ids_b if ids_a is not None and ids_b is not None else None
            return ids, min(low_a, low_b) if low_a and low_b else None
        if kind == "nested":
            ids, _ = self.narrow(node[2], f"{prefix}{node[1]}.")  # a bound inside is not the resource's stamp
            return ids, None
        if kind not in ("cmp", "in"):
            return None, None  # not, defined, empty, contains
        path = prefix + node[1]
        if kind == "cmp" and path == "lastModifiedAt" and node[2] in ("=", ">", ">="):
            return None, _lower_bound(node[3])
        if path not in FIELDS or (kind == "cmp" and node[2] != "="):
            return None, None
        wanted = [_lookup_value(v) for v in ([node[3]] if kind == "cmp" else node[2])]
        if any(v is None for v in wanted):
            return None, None
        found = [ids for ids in (*(self.values[path].get(v) for v in wanted), self.loose[path]) if ids]
        return (found[0] if len(found) == 1 else set().union(*found)), None  # the index's own set: read, never changed

    def in_keyset_order(self, docs: Mapping[str, dict[str, Any]], low: str | None) -> Iterator[dict[str, Any]]:
        """The store's resources as `sort=lastModifiedAt asc&sort=id asc` orders them, from the
        first whose stamp can be `low` or later (those stamped otherwise: all, merged in)."""
        start = bisect.bisect_left(self.order, (low, "")) if low else 0
        ordered = (((1, self.order[i][0]), self.order[i][1]) for i in range(start, len(self.order)))
        others = sorted((sort_key(docs[i].get("lastModifiedAt")), i) for i in self.unordered)
        for _, ident in heapq.merge(ordered, others):
            yield docs[ident]
