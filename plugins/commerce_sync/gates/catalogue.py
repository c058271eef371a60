"""The catalogue_out suite: a master product reaches the channel only if every SKU of it is there
and unique, and the fields the pairing says the master owns are fit to write (a name, a GTIN
barcode, a price in the named price list, a category the channel's mapping knows).

One row per SKU; a product with one bad SKU is held whole (a half-made product on the channel is
worse than a late one). Each check's column holds the offending value, or nothing, so the reason
an operator reads names what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate
from commerce_sync.models import CatalogueProduct

COLUMNS = [RECORD_KEY, "sku", "name", "bad_weight", "bad_barcode", "missing_price", "unmapped_category"]
GTIN_LENGTHS = (8, 12, 13, 14)


def gtin_valid(code: str) -> bool:
    """GTIN-8/12/13/14: digits only, and the last one the GS1 check digit of the others."""
    if not code.isascii() or not code.isdigit() or len(code) not in GTIN_LENGTHS:
        return False
    body = [int(c) for c in code[:-1]]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(code[-1])


def catalogue_frame(products: Mapping[str, CatalogueProduct], fields: Iterable[str], price_list: str | None, categories: set[str]) -> pd.DataFrame:
    owned = set(fields)
    rows = []
    for key, product in products.items():
        unmapped = None
        if "category" in owned and (product.category or "") not in categories:
            unmapped = product.category or "(the product has no category)"
        for item in product.items or [None]:
            if item is None:  # a product with no SKU at all: one row that fails sku_present
                rows.append({RECORD_KEY: key, "sku": None, "name": product.name or "-", "bad_weight": None, "bad_barcode": None, "missing_price": None,
                             "unmapped_category": unmapped})
                continue
            name = item.name or product.name
            has_price = any(p.price_list == price_list and p.amount > 0 for p in item.prices)
            rows.append({
                RECORD_KEY: key,
                "sku": item.sku if item.sku and item.sku.strip() else None,
                "name": (name if name and name.strip() else None) if "name" in owned else "-",
                "bad_weight": str(item.weight) if "weight" in owned and item.weight is not None and item.weight < Decimal("0") else None,
                "bad_barcode": item.barcode if "barcode" in owned and item.barcode and not gtin_valid(item.barcode) else None,
                "missing_price": f"{item.sku}: no price in {price_list!r}" if "price" in owned and not has_price else None,
                "unmapped_category": unmapped,
            })
    return pd.DataFrame(rows, columns=COLUMNS).astype(object)


def catalogue_checks(master: str, channel: str) -> list[Check]:
    return [
        Check("batch_columns", "the catalogue frame does not have exactly the expected columns (a code change broke the gate)",
              expect.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, ROW_ID], exact_match=True), batch_level=True),
        Check("sku_present", f"a SKU of this product has no SKU code in {master}", expect.ExpectColumnValuesToNotBeNull(column="sku")),
        Check("sku_unique", f"this SKU belongs to two {master} products read in this run: fix it in {master}",
              expect.ExpectColumnValuesToBeUnique(column="sku")),
        Check("name_present", f"the product has no name in {master}, and the name is {master}'s to give", expect.ExpectColumnValuesToNotBeNull(column="name")),
        Check("weight_not_negative", f"{master} gives a negative weight", expect.ExpectColumnValuesToBeNull(column="bad_weight")),
        Check("barcode_gtin", f"the barcode in {master} is not a valid GTIN (8, 12, 13 or 14 digits with a correct check digit)",
              expect.ExpectColumnValuesToBeNull(column="bad_barcode")),
        Check("price_present", f"a SKU has no price in the pairing's {master} price list (catalogue.price_list)",
              expect.ExpectColumnValuesToBeNull(column="missing_price")),
        Check("category_mapped", f"the product's {master} category has no {channel} category in categories.csv",
              expect.ExpectColumnValuesToBeNull(column="unmapped_category")),
    ]


def gate_catalogue(products: Mapping[str, CatalogueProduct], *, unreadable: dict[str, list[dict[str, str]]], fields: Iterable[str], price_list: str | None,
                   categories: set[str], master: str, channel: str, max_bad_share: Decimal, min_records_for_share: int, known_bad: set[str]) -> GateResult:
    return run_gate(
        "catalogue_out",
        catalogue_frame(products, fields, price_list, categories),
        lambda: catalogue_checks(master, channel),  # built (and GX imported) only for a batch with rows
        max_bad_share=max_bad_share,
        min_records_for_share=min_records_for_share,
        pre_failed=unreadable,
        known_bad=known_bad,
    )
