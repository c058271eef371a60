"""The dispatch_back suite: a shipment goes to the channel whole and right, or not at all."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from commerce_sync.gates.engine import RECORD_KEY, ROW_ID, Check, GateResult, expect, run_gate

COLUMNS = [RECORD_KEY, "order_channel_id", "carrier", "tracking_number", "sku", "quantity"]


def shipments_frame(shipments: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for key, sh in shipments.items():
        for line in sh["lines"]:
            rows.append({RECORD_KEY: key, "order_channel_id": sh.get("order_channel_id"), "carrier": sh.get("carrier"),
                         "tracking_number": sh.get("tracking_number"), "sku": line["sku"], "quantity": line["quantity"]})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["quantity"] = frame["quantity"].astype("int64")
    return frame


def shipment_checks(*, mapped_carriers: set[str], mapped_skus: set[str], master: str = "Cin7") -> list[Check]:
    return [
        Check("batch_columns", "the shipment frame does not have exactly the expected columns (a code change broke the gate)",
              expect.ExpectTableColumnsToMatchSet(column_set=[*COLUMNS, ROW_ID], exact_match=True), batch_level=True),
        Check("carrier_mapped", f"the {master} carrier is not in carriers.csv: the shipment is held, not sent with a guessed carrier",
              expect.ExpectColumnValuesToBeInSet(column="carrier", value_set=sorted(mapped_carriers))),
        Check("carrier_present", f"the shipment has no carrier in {master}", expect.ExpectColumnValuesToNotBeNull(column="carrier")),
        Check("tracking_present", f"the shipment has no tracking number in {master}: the customer could not follow it",
              expect.ExpectColumnValuesToNotBeNull(column="tracking_number")),
        Check("sku_mapped", f"a shipped {master} SKU has no channel SKU in skus.csv", expect.ExpectColumnValuesToBeInSet(column="sku", value_set=sorted(mapped_skus))),
        Check("quantity_positive", "a shipped quantity is not positive", expect.ExpectColumnValuesToBeBetween(column="quantity", min_value=1)),
        Check("order_linked", "the sale is not linked to a channel order", expect.ExpectColumnValuesToNotBeNull(column="order_channel_id")),
    ]


def gate_shipments(shipments: dict[str, dict], *, unreadable, mapped_carriers: set[str], mapped_skus: set[str], max_bad_share: Decimal, min_records_for_share: int, known_bad: set[str], master: str = "Cin7") -> GateResult:
    return run_gate(
        "dispatch_back",
        shipments_frame(shipments),
        lambda: shipment_checks(mapped_carriers=mapped_carriers, mapped_skus=mapped_skus, master=master),  # built (and GX imported) only for a batch with rows
        max_bad_share=max_bad_share,
        min_records_for_share=min_records_for_share,
        pre_failed=unreadable,
        known_bad=known_bad,
    )
