"""Mappings as data: include/mappings/<pairing>/*.csv into the ledger, validated and audited.

Keys match exactly (no trimming, no case folding): a SKU that differs by case is a different SKU,
and a key with stray spaces is refused as the typo it surely is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from sqlalchemy import select, update

from commerce_sync.errors import MappingFileError
from commerce_sync.ledger import Ledger
from commerce_sync.ledger.bulk import insert_rows
from commerce_sync.ledger.schema import mapping, mapping_history, utcnow

__all__ = [
    "MAPPING_KINDS", "MappingDiff", "MappingFileError", "MappingSpec", "diff_mapping", "import_mapping_file", "merge_mapping_file",
    "read_mapping_file", "sync_pairing_mappings",
]


@dataclass(frozen=True)
class MappingSpec:
    key_column: str
    required_columns: tuple[str, ...]
    # an optional column that narrows a row: the key is "<key>:<qualifier>" where it is filled
    # (customers.csv: a currency's customer for one seller beside the currency's default)
    qualifier: str | None = None

    def key_of(self, values: dict[str, str]) -> str:
        narrowed = values.get(self.qualifier or "") or ""
        return f"{values[self.key_column]}:{narrowed}" if narrowed else values[self.key_column]


MAPPING_KINDS: dict[str, MappingSpec] = {
    "skus": MappingSpec("channel_sku", ("channel_sku", "master_sku")),
    "sellers": MappingSpec("channel_seller_id", ("channel_seller_id", "seller_name", "master_customer")),
    "carriers": MappingSpec("master_carrier", ("master_carrier", "channel_carrier")),
    "locations": MappingSpec("master_location", ("master_location", "include")),
    # the channel's tax (its name, at a rate: a fraction, 0.2 for 20 %) -> the ERP tax rule, 1:1
    "tax_codes": MappingSpec("channel_tax_code", ("channel_tax_code", "rate", "master_tax_rule"), qualifier="rate"),
    # the ERP customer for orders in a currency (a sale takes its customer's currency)
    "customers": MappingSpec("currency", ("currency", "master_customer"), qualifier="seller_ref"),
    # catalogue_out: the master's category -> the channel's, and a channel attribute <- the master's
    "categories": MappingSpec("master_category", ("master_category", "channel_category")),
    "attributes": MappingSpec("channel_attribute", ("channel_attribute", "master_attribute")),
}


@dataclass
class MappingDiff:
    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, dict, dict]] = field(default_factory=list)  # key, old, new
    removed: list[str] = field(default_factory=list)
    # the file's rows: what the ledger holds for this kind once the diff is applied (a flow that
    # just synced reads them from here rather than reading 100,000 rows back)
    rows: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        if not self:
            return "no changes"
        lines = [f"+ {k}" for k in self.added]
        for key, old, new in self.changed:
            delta = ", ".join(f"{c}: {old.get(c)!r} -> {new.get(c)!r}" for c in sorted(set(old) | set(new)) if old.get(c) != new.get(c))
            lines.append(f"~ {key} ({delta})")
        lines += [f"- {k}" for k in self.removed]
        return f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed\n" + "\n".join(lines)


def _spec(kind: str, header: list[str]) -> MappingSpec:
    return MAPPING_KINDS.get(kind) or MappingSpec(header[0], (header[0],))


def read_mapping_file(path: Path, kind: str) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """(rows by key, line number by key). Raises MappingFileError naming file and line."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise MappingFileError(f"{path} line 1: the file is empty; it needs a header row") from None
        spec = _spec(kind, header)
        missing = [c for c in spec.required_columns if c not in header]
        if missing:
            raise MappingFileError(f"{path} line 1: missing column(s) {', '.join(missing)}; the header is {', '.join(header)}")
        rows: dict[str, dict[str, str]] = {}
        lines: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            if len(row) != len(header):
                raise MappingFileError(f"{path} line {line}: {len(row)} fields where the header has {len(header)}")
            values = dict(zip(header, row, strict=True))
            for col in (spec.key_column, spec.qualifier):
                cell = values.get(col or "") or ""
                if cell != cell.strip():
                    raise MappingFileError(f"{path} line {line}: key {cell!r} has leading or trailing spaces")
            if not values[spec.key_column].strip():
                raise MappingFileError(f"{path} line {line}: blank key in column {spec.key_column}")
            key = spec.key_of(values)
            for col in spec.required_columns:
                if not values[col].strip():
                    raise MappingFileError(f"{path} line {line}: blank value in required column {col} (key {key!r})")
            if key in rows:
                raise MappingFileError(f"{path} line {line}: duplicate key {key!r} (first seen on line {lines[key]})")
            rows[key] = values
            lines[key] = line
    return rows, lines


def merge_mapping_file(base: dict[str, dict[str, str]], path: Path, kind: str, out: Path) -> None:
    """Write to `out` the rows of `base` with the rows of the file at `path` added or replacing
    theirs (by key): a partial file changes what it names and removes nothing.

    Written with the csv module, not the report writer: a mapping file must read back exactly as
    written, and neutralising a key that starts with '=' or '-' would change the key."""
    rows, _ = read_mapping_file(path, kind)
    merged = {**base, **rows}
    columns = list(dict.fromkeys(c for row in (*base.values(), *rows.values()) for c in row))
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(merged.values())


def diff_mapping(current: dict[str, dict], new: dict[str, dict]) -> MappingDiff:
    diff = MappingDiff()
    for key, row in new.items():
        if key not in current:
            diff.added.append(key)
        elif current[key] != row:
            diff.changed.append((key, current[key], row))
    diff.removed = [k for k in current if k not in new]
    return diff


def import_mapping_file(ledger: Ledger, pairing: str, kind: str, path: Path, dry_run: bool = False, changed_by: str = "commerce_sync") -> MappingDiff:
    rows, lines = read_mapping_file(path, kind)
    current = ledger.mapping(pairing, kind)
    diff = diff_mapping(current, rows)
    diff.rows = rows
    if dry_run or not diff:
        return diff
    now = utcnow()
    t, h = mapping, mapping_history
    history = []
    with ledger.engine.begin() as conn:
        existing = {r.key: r.id for r in conn.execute(select(t.c.key, t.c.id).where(t.c.pairing == pairing, t.c.kind == kind))}
        fresh = []
        for key in diff.added:
            if key in existing:  # was removed earlier: bring it back
                conn.execute(update(t).where(t.c.id == existing[key]).values(value=rows[key], active=True, updated_at=now))
            else:
                fresh.append({"pairing": pairing, "kind": kind, "key": key, "value": rows[key], "active": True, "updated_at": now})
            history.append({"key": key, "action": "added", "old_value": None, "new_value": rows[key], "source_line": lines[key]})
        insert_rows(conn, t, fresh)  # a 100,000-SKU first import in one COPY
        for key, old, new in diff.changed:
            conn.execute(update(t).where(t.c.id == existing[key]).values(value=new, updated_at=now))
            history.append({"key": key, "action": "changed", "old_value": old, "new_value": new, "source_line": lines[key]})
        for key in diff.removed:
            conn.execute(update(t).where(t.c.id == existing[key]).values(active=False, updated_at=now))
            history.append({"key": key, "action": "removed", "old_value": current.get(key), "new_value": None, "source_line": None})
        insert_rows(
            conn, h, [{"pairing": pairing, "kind": kind, "source_file": str(path), "changed_at": now, "changed_by": changed_by, **entry} for entry in history]
        )
    return diff


def sync_pairing_mappings(ledger: Ledger, pairing: str, folder: Path, changed_by: str = "commerce_sync") -> dict[str, MappingDiff]:
    """Load every *.csv of a pairing's mapping folder. A bad file raises before anything of it is applied."""
    return {path.stem: import_mapping_file(ledger, pairing, path.stem, path, changed_by=changed_by) for path in sorted(Path(folder).glob("*.csv"))}


def install_mapping_file(ledger: Ledger, pairing: str, kind: str, file: Path, *, merge: bool = False, apply: bool = False,
                         changed_by: str = "commerce_sync") -> tuple[MappingDiff, Path]:
    """What `mappings import` and the ops console both do with an uploaded mapping file: the
    dry-run diff against the ledger; with `apply`, the file (merged into the installed one with
    `merge`) is installed in the pairing's mapping folder, the runs' source of truth, and loaded
    (audited with `changed_by`). Returns the diff and the installed file's path."""
    import shutil
    import tempfile

    from commerce_sync.pairing import mappings_dir

    read_mapping_file(file, kind)  # a broken file stops here, naming file and line
    target = mappings_dir() / pairing / f"{kind}.csv"
    with tempfile.TemporaryDirectory() as tmp:
        source = file
        if merge:
            # the folder's file is what every run loads: the merge starts from it
            base = read_mapping_file(target, kind)[0] if target.exists() else ledger.mapping(pairing, kind)
            source = Path(tmp) / target.name
            merge_mapping_file(base, file, kind, source)
        diff = import_mapping_file(ledger, pairing, kind, source, dry_run=True)
        if not apply:
            return diff, target
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.resolve() != Path(source).resolve():
            shutil.copyfile(source, target)
    import_mapping_file(ledger, pairing, kind, target, changed_by=changed_by)
    return diff, target
