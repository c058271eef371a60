"""Channel-native test records with totals that add up, so each test breaks exactly one thing."""

from __future__ import annotations

import base64
from datetime import datetime, timezone


def marketplacer_invoice(
    legacy_id: int | None,
    lines: list[tuple[str, int, int]],  # (sku, quantity, unit price in cents)
    *,
    seller_id: int = 1,
    seller_name: str = "Castore AU",
    postage_cents: int = 995,
    created_at: datetime | None = None,
    currency: str = "AUD",
    total_adjust_cents: int = 0,
) -> dict:
    created = (created_at or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")
    items = []
    for i, (sku, qty, price) in enumerate(lines):
        items.append(
            {
                "legacyId": (legacy_id or 0) * 100 + i,
                "variantSku": sku,
                "variantName": f"Product {sku}",
                "quantity": qty,
                "unitPriceCents": price,
                "discountCents": 0,
                "taxCents": round(qty * price / 11),  # GST inclusive, 1/11th
                "totalCents": qty * price,
            }
        )
    subtotal = sum(i["totalCents"] for i in items)
    invoice = {
        "legacyId": legacy_id,
        "createdAt": created,
        "updatedAt": created,
        "paidAt": created,
        "currency": currency,
        "buyerFirstName": "Alex",
        "buyerSurname": "Buyer",
        "buyerEmailAddress": "alex.buyer@example.com",
        "buyerPhone": "+61 400 000 000",
        "shippingAddress": {"address": "1 Test St", "city": "Sydney", "postcode": "2000", "state": {"short": "NSW"}, "country": {"code": "AU"}},
        "seller": {"legacyId": seller_id, "businessName": seller_name},
        "lineItems": items,
        "subtotalCents": subtotal,
        "postageCents": postage_cents,
        "discountCents": 0,
        "taxCents": sum(i["taxCents"] for i in items),
        "totalCents": subtotal + postage_cents + total_adjust_cents,
    }
    return invoice


def with_relay_ids(invoice: dict) -> dict:
    """What the API returns: the stored invoice plus Relay ids."""
    out = dict(invoice)
    out["id"] = base64.b64encode(f"Invoice-{invoice.get('legacyId')}-{id(invoice)}".encode()).decode()
    out["lineItems"] = [dict(li, id=base64.b64encode(f"LineItem-{li['legacyId']}".encode()).decode()) for li in invoice["lineItems"]]
    return out
