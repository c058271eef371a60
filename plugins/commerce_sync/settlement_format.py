"""A payment provider's settlement report layout, as data, and the one parser that reads them all.

include/settlement_formats/<name>.yaml names the columns, the provider's row types and what each
means (see adyen_settlement_details.yaml). A second provider is a file there and a test, not code.
Rows come out as canonical `SettlementLine`s; a row that cannot be read comes out as a
`RowProblem` with the reason, in its place: one bad row never stops the file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from commerce_sync.models import SETTLEMENT_KINDS, SettlementLine
from commerce_sync.money import parse_decimal
from commerce_sync.pairing import PairingError, project_root

ZERO = Decimal("0")
_CURRENCY = re.compile(r"[A-Z]{3}")


def formats_dir() -> Path:
    return project_root() / "include" / "settlement_formats"


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Cfg):
    """Header names. An amount is either one signed column or a debit and a credit column."""

    batch: list[str]  # joined with "-": e.g. merchant account and batch number
    type: str
    merchant_reference: str
    psp_reference: str | None = None
    modification_reference: str | None = None
    created: str | None = None
    timezone: str | None = None
    gross_currency: str
    gross: str | None = None
    gross_debit: str | None = None
    gross_credit: str | None = None
    exchange_rate: str | None = None
    net_currency: str
    net: str | None = None
    net_debit: str | None = None
    net_credit: str | None = None

    @model_validator(mode="after")
    def _one_amount_shape(self):
        for side in ("gross", "net"):
            single = getattr(self, side) is not None
            pair = getattr(self, f"{side}_debit") is not None and getattr(self, f"{side}_credit") is not None
            if single == pair:
                raise ValueError(f"{side}: give either `{side}` (signed) or both `{side}_debit` and `{side}_credit`")
        return self


class SettlementFormat(_Cfg):
    name: str
    title: str
    spec: str | None = None
    file_pattern: str = "*.csv"
    delimiter: str = ","
    encoding: str = "utf-8-sig"  # a byte-order mark some exports start with is not part of the first header
    columns: Columns
    fees: dict[str, str] = Field(default_factory=dict)  # fee name -> column
    created_format: str = "%Y-%m-%d %H:%M:%S"
    timezones: dict[str, str] = Field(default_factory=dict)  # abbreviation in the timezone column -> "+01:00"
    fixed_timezone: str | None = None  # when every date is in one zone (no timezone column)
    types: dict[str, str]

    @model_validator(mode="after")
    def _known_kinds(self):
        unknown = sorted(set(self.types.values()) - set(SETTLEMENT_KINDS))
        if unknown:
            raise ValueError(f"types map to unknown kinds {unknown}; known: {list(SETTLEMENT_KINDS)}")
        if "other" in self.fees:
            raise ValueError("the fee name `other` is kept for batch-level fee rows")
        return self

    def required_columns(self) -> list[str]:
        cols = self.columns.model_dump(exclude={"batch"})
        return [*self.columns.batch, *(c for c in cols.values() if c), *self.fees.values()]


class FormatError(ValueError):
    """A file that is not in the format at all (missing columns, not text): nothing of it is read."""


@dataclass(frozen=True)
class RowProblem:
    line_no: int
    batch: str | None
    reason: str
    raw: dict[str, str]


@lru_cache(maxsize=16)
def _load(path: str, mtime: int) -> SettlementFormat:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    try:
        return SettlementFormat(name=Path(path).stem, **data)
    except (ValidationError, TypeError) as exc:
        raise PairingError(f"{path}: invalid settlement format: {exc}") from exc


def load_format(name: str) -> SettlementFormat:
    path = formats_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in formats_dir().glob("*.yaml"))
        raise PairingError(f"no settlement format {name!r} in {formats_dir()}; known: {known}")
    return _load(str(path), path.stat().st_mtime_ns)


def _offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


class _RowReader:
    def __init__(self, fmt: SettlementFormat):
        self.fmt = fmt
        self.cols = fmt.columns
        self.zones = {k.upper(): _offset(v) for k, v in fmt.timezones.items()}
        self.fixed = _offset(fmt.fixed_timezone) if fmt.fixed_timezone else None
        self.iso = fmt.created_format == "%Y-%m-%d %H:%M:%S"

    def amount(self, row: dict[str, str], column: str | None) -> Decimal:
        text = (row.get(column) or "").strip() if column else ""
        return parse_decimal(text) if text else ZERO

    def signed(self, row: dict[str, str], side: str) -> Decimal:
        single = getattr(self.cols, side)
        if single is not None:
            return self.amount(row, single)
        return self.amount(row, getattr(self.cols, f"{side}_credit")) - self.amount(row, getattr(self.cols, f"{side}_debit"))

    def when(self, row: dict[str, str]) -> datetime | None:
        """The row's date, or None when it is missing or its zone unknown: dates only label the
        journal and bound the ERP search; they never decide a match."""
        text = (row.get(self.cols.created) or "").strip() if self.cols.created else ""
        if not text:
            return None
        zone = self.fixed
        if self.cols.timezone:
            zone = self.zones.get((row.get(self.cols.timezone) or "").strip().upper(), zone)
        if zone is None:
            return None
        try:
            if self.iso:  # the C parser: strptime costs a third of a 100,000-row file's parse
                return datetime.fromisoformat(text).replace(tzinfo=zone)
            return datetime.strptime(text, self.fmt.created_format).replace(tzinfo=zone)
        except ValueError:
            return None

    def text(self, row: dict[str, str], column: str | None) -> str | None:
        value = (row.get(column) or "").strip() if column else ""
        return value or None

    def currency(self, row: dict[str, str], column: str) -> str | None:
        value = self.text(row, column)
        if value is None:
            return None
        if not _CURRENCY.fullmatch(value.upper()):
            raise ValueError(f"{column}: {value!r} is not a currency code")
        return value.upper()

    def line(self, row: dict[str, str], line_no: int, default_batch: str | None) -> SettlementLine:
        provider_type = self.text(row, self.cols.type) or ""
        rate = self.text(row, self.cols.exchange_rate)
        # every field is checked above as the model would check it (currencies, finite amounts,
        # zoned dates): skipping its validation halves the parse of a 100,000-row month
        return SettlementLine.model_construct(
            batch=self.batch(row) or default_batch or "",
            line_no=line_no,
            kind=self.fmt.types.get(provider_type, "unknown"),
            provider_type=provider_type,
            merchant_ref=self.text(row, self.cols.merchant_reference),
            psp_ref=self.text(row, self.cols.psp_reference),
            modification_ref=self.text(row, self.cols.modification_reference),
            booked_at=self.when(row),
            gross_currency=self.currency(row, self.cols.gross_currency),
            gross=self.signed(row, "gross"),
            exchange_rate=parse_decimal(rate) if rate else None,
            net_currency=self.currency(row, self.cols.net_currency),
            net=self.signed(row, "net"),
            fees={name: self.amount(row, column) for name, column in self.fmt.fees.items()},
        )

    def batch(self, row: dict[str, str]) -> str | None:
        parts = [self.text(row, c) for c in self.cols.batch]
        return "-".join(parts) if all(parts) else None


def parse(fmt: SettlementFormat, data: bytes, default_batch: str | None = None) -> list[SettlementLine | RowProblem]:
    """Every data row of a settlement file, in order. Raises FormatError when the file is not in
    this format (not text, or a required column missing). A row whose batch columns are empty
    belongs to `default_batch` (the file's name: a file is one batch for Adyen), if given."""
    try:
        text = data.decode(fmt.encoding)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not {fmt.encoding} text: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in fmt.required_columns() if c not in header]
    if missing:
        raise FormatError(f"not a {fmt.title}: missing column(s) {missing}")
    reader.fieldnames = header
    rows = _RowReader(fmt)
    out: list[SettlementLine | RowProblem] = []
    for line_no, raw in enumerate(reader, start=2):
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue  # a blank line (some exports end with one)
        try:
            if None in raw:
                raise ValueError(f"{len(raw[None])} value(s) more than the header has columns")
            line = rows.line(raw, line_no, default_batch)
            if not line.batch:
                raise ValueError(f"no batch: {' / '.join(fmt.columns.batch)} empty")
            out.append(line)
        except (ValueError, ValidationError, ArithmeticError) as exc:
            reason = str(exc) if not isinstance(exc, ValidationError) else "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            out.append(RowProblem(line_no, rows.batch(raw) or default_batch, reason[:300],
                                  {k: v for k, v in raw.items() if isinstance(k, str)}))
    return out
