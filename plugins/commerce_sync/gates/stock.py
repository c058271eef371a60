"""The stock_out suite: a channel listing gets stock only if it maps to an ERP SKU and the ERP's
availability for it is a whole, non-negative number."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate

COLUMNS = [RECORD_KEY, "master_sku", "available_whole", "available_units", "available"]


def stock_frame(rows: list[dict]) -> pd.DataFrame:
    data = []
    for row in rows:
        available = Decimal(row["available"]) if row.get("available") is not None else Decimal("0")
        data.append(
            {
                RECORD_KEY: row["channel_sku"],
                "master_sku": row.get("master_sku"),
                "available_whole": available == available.to_integral_value(),
                "available_units": int(available),  # truncated toward zero: the sign survives for the check
                "available": str(available),  # as the ERP reported it, for the reason's sentence
            }
        )
    frame = pd.DataFrame(data, columns=COLUMNS)
    frame["available_units"] = frame["available_units"].astype("int64")
    frame["available_whole"] = frame["available_whole"].astype(bool)
    return frame


def stock_checks(master: str = "Cin7") -> list[Check]:
    return [
        Check("batch_columns", "the stock frame does not have exactly the expected columns (a code change broke the gate)",
              expect.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, ROW_ID], exact_match=True), batch_level=True),
        Check("listing_mapped", f"this channel listing has no {master} SKU in skus.csv: it is given no stock until it is mapped",
              expect.ExpectColumnValuesToNotBeNull(column="master_sku")),
        Check("available_whole", f"{master} reports a fractional quantity available; stock is sent in whole units only",
              expect.ExpectColumnValuesToBeInSet(column="available_whole", value_set=[True]),
              explain=lambda r: f"{master} reports {r['available']} available, a fraction; stock is sent in whole units only"),
        Check("available_not_negative", f"{master} reports negative availability; check the stock record in {master}",
              expect.ExpectColumnValuesToBeBetween(column="available_units", min_value=0),
              explain=lambda r: f"{master} reports {r['available']} available, less than nothing; check the stock record in {master}"),
    ]


def gate_stock(rows: list[dict], *, unreadable: dict[str, list[dict[str, str]]], max_bad_share: Decimal, min_records_for_share: int, known_bad: set[str],
               master: str = "Cin7") -> GateResult:
    return run_gate(
        "stock_out",
        stock_frame(rows),
        lambda: stock_checks(master),  # built (and GX imported) only for a batch with rows
        max_bad_share=max_bad_share,
        min_records_for_share=min_records_for_share,
        pre_failed=unreadable,
        known_bad=known_bad,
    )
