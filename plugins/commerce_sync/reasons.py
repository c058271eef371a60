"""What each quarantine reason (a gate check's name) means and what to do about it, in plain words.

One table for the ops console (each held record's reasons) and the DAG runbooks (factory.py's
doc_md): README's "Reading a quarantine" says the same for engineers. A check not listed here
is shown with its own sentence (every reason carries one) and a pointer to docs/operations.md.
"""

from __future__ import annotations

# check -> (what it means, what to do). "The ERP" / "the channel": the pairing's two systems.
REASONS: dict[str, tuple[str, str]] = {
    "sku_mapped": ("A SKU of the order is not in the pairing's SKU mapping (matching is exact).",
                   "Add the SKU to the skus mapping (Mappings page), or fix the listing; the order is booked on the next run."),
    "sku_near_match": ("A SKU differs from a mapped one only by case or spaces.",
                       "Fix the listing on the channel, or map that spelling explicitly."),
    "sku_present": ("A line of the record carries no SKU.", "Check the record on the channel."),
    "sku_in_master": ("The SKU is not a product of the ERP.", "Create the product in the ERP or correct the mapping."),
    "seller_mapped": ("The seller is not in the pairing's sellers mapping.",
                      "Add the seller with the ERP customer to book to (Mappings page, kind sellers)."),
    "seller_present": ("The order names no seller.", "Check the order on the channel."),
    "order_total_adds_up": ("Line totals plus charges do not make the order total; the detail gives the difference.",
                            "Check the order on the channel; it is never booked with wrong money. Raise it with the marketplace."),
    "line_total_adds_up": ("A line's total is not unit price times quantity less discount.", "As for the order total: check it on the channel."),
    "tax_adds_up": ("The tax of the lines and charges differs from the order's tax.",
                    "Check the order on the channel; it is never booked with wrong tax."),
    "channel_ref_present": ("The order has no channel reference, so it cannot be deduplicated.", "Raise it with the channel."),
    "quantity_positive": ("A quantity is zero or less.", "Check the record on the channel."),
    "unit_price_not_negative": ("A unit price is negative.", "Check the order on the channel."),
    "line_total_not_negative": ("A line total is negative.", "Check the order on the channel."),
    "currency_allowed": ("The order's currency is not one the pairing books.", "Check the order; add the currency to the pairing only if finance agrees."),
    "customer_currency": ("The ERP customer the order would be booked to trades in another currency.",
                          "Name a customer of the order's currency in the customers mapping, or fix the customer's currency in the ERP."),
    "payload_readable": ("The channel sent something the integration cannot read (a missing or mistyped field).",
                         "Usually a channel API change: tell engineering. Do not edit the ledger."),
    "erp_refused": ("The ERP refused the record; the detail carries its message.",
                    "Fix it in the ERP (a product or customer missing, say); the record replays on the next run."),
    "channel_refused": ("The channel refused the update; the detail carries its message.", "Act on the message (e.g. more shipped than ordered)."),
    "listing_mapped": ("A channel listing has no ERP SKU in the SKU mapping; it gets no stock.", "Map it, or take the listing down."),
    "available_whole": ("The ERP reports a fractional availability.", "Correct the stock record in the ERP."),
    "available_not_negative": ("The ERP reports negative availability.", "Correct the stock record in the ERP."),
    "carrier_mapped": ("The ERP's carrier is not in the carriers mapping; the shipment is not sent.",
                       "Add the carrier to the carriers mapping (ERP name to channel carrier)."),
    "carrier_present": ("The shipped box names no carrier.", "Set the carrier in the ERP; the shipment goes on the next run."),
    "tracking_present": ("The shipped box has no tracking number.", "Add it in the ERP; the shipment goes on the next run."),
    "order_known": ("The refund is for an order this integration never booked.", "Check the order; it may predate the integration."),
    "order_linked": ("The payout names an order that is not booked in the ERP.", "Find the order: it may be in the orders_in quarantine."),
    "amount_positive": ("A refunded amount is not positive.", "Check the refund on the channel."),
    "category_mapped": ("The product's category is not in the categories mapping.", "Add the category to the mapping."),
    "name_present": ("The product has no name.", "Name it in the ERP."),
    "price_present": ("The product has no price in the price list the channel gets.", "Set the price in the ERP."),
    "barcode_gtin": ("The barcode is not a valid GTIN.", "Correct the barcode in the ERP."),
    "weight_not_negative": ("The product's weight is negative.", "Correct it in the ERP."),
    "sku_unique": ("Two records share a SKU.", "Make the SKU unique in the ERP."),
    "quantity_not_negative": ("A quantity is negative.", "Check the record on the channel."),
}

UNKNOWN = ("See the detail.", "See docs/operations.md, 'An order is in quarantine'.")


def explain(check: str) -> tuple[str, str]:
    """(what it means, what to do) for a reason's check name."""
    return REASONS.get(check, UNKNOWN)


def plain(reason: dict) -> dict:
    """A stored reason ({"check", "detail"}) with its meaning and the action, for people."""
    meaning, action = explain(str(reason.get("check", "")))
    return {"check": reason.get("check"), "detail": reason.get("detail"), "meaning": meaning, "action": action}


# What each flow promises and the checks that can hold its records: the DAG runbooks (factory.py).
FLOWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders_in": ("Every channel order becomes one ERP sale exactly once, or waits in quarantine with a reason; held orders are "
                  "gated again on every run and booked once they pass.",
                  ("sku_mapped", "sku_near_match", "seller_mapped", "seller_present", "order_total_adds_up", "line_total_adds_up",
                   "tax_adds_up", "channel_ref_present", "currency_allowed", "customer_currency", "payload_readable", "erp_refused")),
    "stock_out": ("The channel never shows more than the ERP can ship (buffer applied, never below zero); only changed SKUs are "
                  "sent; a daily full resync heals drift.", ("listing_mapped", "available_whole", "available_not_negative", "channel_refused")),
    "dispatch_back": ("Every shipped ERP box becomes one channel shipment with the mapped carrier and its tracking number, never "
                      "sent half-right, never twice.", ("carrier_mapped", "carrier_present", "tracking_present", "channel_refused", "payload_readable")),
    "refunds": ("Every completed channel refund is one ERP credit note for the refunded lines and amounts, without restock.",
                ("order_known", "amount_positive", "sku_mapped", "payload_readable", "erp_refused")),
    "drift_monitor": ("Stock, orders never booked nor held, shipments never sent and totals that differ are found and e-mailed; "
                      "nothing is sent when all is in step.", ()),
    "payout_reconciliation": ("Every payout is matched to its ERP sale to the cent; commission, its tax and fees are posted once as "
                              "an ERP journal; an exception report per period goes to finance.", ("order_linked", "payload_readable")),
    "settlement_reconciliation": ("Every payment provider settlement line is matched to its sale; fees are journalled once per "
                                  "batch and currency; exceptions are reported to finance.", ("payload_readable",)),
    "catalogue_out": ("The ERP's products reach the channel (where it can take them); every listing on sale is checked against "
                      "the ERP's SKUs.", ("sku_present", "name_present", "price_present", "barcode_gtin", "weight_not_negative",
                                           "category_mapped", "sku_unique", "channel_refused")),
}
