"""Salesforce B2C Commerce orders as SCAPI Orders returns them, built with B2C Commerce's own
arithmetic for both taxation policies (plain JSON data, ready to post to /_sandbox/orders).

Gross taxation (UK/EU sites): prices include tax; the tax in a price is price - price / (1 + rate).
Net taxation (US sites): prices exclude tax; tax = price x rate, added on top of the order.
Every amount is rounded half-up to the cent where B2C Commerce rounds it (per line, per shipping
item, per adjustment), so an order's fields add up the way the platform's do:

    orderTotal = sum(priceAfterItemDiscount) + sum(order adjustments) + shippingTotal [+ taxTotal when net]
    taxTotal   = sum(line adjustedTax) + sum(shipping adjustedTax) + sum(order adjustment tax)

Price adjustments (promotions) are negative amounts in the taxation's basis: `grossPrice` on a
gross site, `netPrice` on a net one, with their own `tax`. Amounts are Decimals, as the adapter
reads them off the wire; `plain(order)` makes them numbers for requests' json=.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.common import _plain

CENT = Decimal("0.01")


def plain(obj: Any) -> Any:
    """JSON-ready: each amount a number that reads back as the same Decimal (what requests' json=
    and the emulator's store take)."""
    return json.loads(json.dumps(obj, default=_plain))


def money(value: Any) -> Decimal:
    return (value if isinstance(value, Decimal) else Decimal(str(value))).quantize(CENT, rounding=ROUND_HALF_UP)


def sfcc_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _split(amount: Decimal, rate: Decimal, taxation: str) -> dict[str, Decimal]:
    """One priced thing in B2C Commerce's three views: basis (what the site shows), net, gross, tax."""
    if taxation == "gross":
        tax = money(amount - amount / (1 + rate))
        return {"basis": amount, "grossPrice": amount, "netPrice": amount - tax, "tax": tax}
    tax = money(amount * rate)
    return {"basis": amount, "grossPrice": amount + tax, "netPrice": amount, "tax": tax}


def _adjustments(specs: list[dict] | None, rate: Decimal, taxation: str, prefix: str) -> list[dict[str, Any]]:
    out = []
    for i, spec in enumerate(specs or []):
        amount = money(spec["amount"])
        parts = _split(amount, Decimal(str(spec.get("tax_rate", rate))), taxation)
        out.append(
            {
                "priceAdjustmentId": f"{prefix}-adj{i + 1}",
                "promotionId": spec.get("promotion", f"PROMO-{i + 1}"),
                "itemText": spec.get("text", "Promotion"),
                "basePrice": parts["basis"],
                "grossPrice": parts["grossPrice"],
                "netPrice": parts["netPrice"],
                "tax": parts["tax"],
                "manual": False,
                "custom": False,
            }
        )
    return out


def make_order(
    order_no: str,
    site: str,
    lines: list[dict[str, Any]],
    *,
    currency: str = "GBP",
    taxation: str = "gross",
    created: datetime | None = None,
    shipping: Any = "4.95",
    shipping_tax_rate: Any | None = None,
    shipping_adjustments: list[dict] | None = None,
    order_adjustments: list[dict] | None = None,
    status: str = "new",
    export_status: str = "ready",
    confirmation_status: str = "confirmed",
    payment_status: str = "paid",
    shipping_status: str = "not_shipped",
    customer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An order with `lines` of {"sku", "quantity", "price" (unit, in the taxation's basis),
    "tax_rate" (default 0.2), "name", "adjustments": [{"amount": "-5.00", "promotion"}]};
    `shipping` in the basis (0 for none); order adjustments like line adjustments."""
    created = created or datetime.now(timezone.utc) - timedelta(minutes=5)
    customer = customer or {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000",
                            "address1": "1 Analytical Row", "city": "London", "postalCode": "N1 9GU", "countryCode": "GB"}
    first, _, last = customer["name"].partition(" ")
    address = {"firstName": first, "lastName": last, "fullName": customer["name"], "address1": customer.get("address1"),
               "city": customer.get("city"), "postalCode": customer.get("postalCode"), "countryCode": customer.get("countryCode"),
               "phone": customer.get("phone")}
    address = {k: v for k, v in address.items() if v}
    items, product_tax, sub_total = [], Decimal("0"), Decimal("0")
    rates = []
    for i, line in enumerate(lines):
        rate = Decimal(str(line.get("tax_rate", "0.2")))
        rates.append(rate)
        qty = int(line["quantity"])
        unit = money(line["price"])
        parts = _split(money(unit * qty), rate, taxation)
        item_id = line.get("item_id", f"{order_no}-pli{i + 1}")
        adjustments = _adjustments(line.get("adjustments"), rate, taxation, item_id)
        after = parts["basis"] + sum((a["basePrice"] for a in adjustments), Decimal("0"))
        adjusted_tax = parts["tax"] + sum((a["tax"] for a in adjustments), Decimal("0"))
        items.append(
            {
                "itemId": item_id,
                "productId": line["sku"],
                "productName": line.get("name", line["sku"]),
                "itemText": line.get("name", line["sku"]),
                "quantity": qty,
                "basePrice": unit,
                "grossPrice": parts["grossPrice"],
                "netPrice": parts["netPrice"],
                "tax": parts["tax"],
                "taxBasis": parts["basis"],
                "taxRate": rate,
                "adjustedTax": adjusted_tax,
                "priceAfterItemDiscount": after,
                "priceAfterOrderDiscount": after,
                "priceAdjustments": adjustments,
                "shipmentId": "me",
                "position": i + 1,
                "bonusProductLineItem": False,
                "gift": False,
            }
        )
        product_tax += adjusted_tax
        sub_total += after
    ship_rate = Decimal(str(shipping_tax_rate)) if shipping_tax_rate is not None else (rates[0] if rates else Decimal("0.2"))
    shipping_items, shipping_total, shipping_tax = [], Decimal("0"), Decimal("0")
    if money(shipping) or shipping_adjustments:
        parts = _split(money(shipping), ship_rate, taxation)
        adjustments = _adjustments(shipping_adjustments, ship_rate, taxation, f"{order_no}-ship")
        after = parts["basis"] + sum((a["basePrice"] for a in adjustments), Decimal("0"))
        adjusted = parts["tax"] + sum((a["tax"] for a in adjustments), Decimal("0"))
        shipping_items.append(
            {
                "itemId": f"{order_no}-ship1",
                "itemText": "Shipping",
                "basePrice": parts["basis"],
                "grossPrice": parts["grossPrice"],
                "netPrice": parts["netPrice"],
                "tax": parts["tax"],
                "taxBasis": parts["basis"],
                "taxRate": ship_rate,
                "adjustedTax": adjusted,
                "priceAfterItemDiscount": after,
                "priceAdjustments": adjustments,
                "shipmentId": "me",
                "type": "fixed_price",
            }
        )
        shipping_total, shipping_tax = after, adjusted
    order_adj = _adjustments(order_adjustments, rates[0] if rates else Decimal("0.2"), taxation, f"{order_no}-order")
    order_adj_amount = sum((a["basePrice"] for a in order_adj), Decimal("0"))
    order_adj_tax = sum((a["tax"] for a in order_adj), Decimal("0"))
    tax_total = product_tax + shipping_tax + order_adj_tax
    product_total = sub_total + order_adj_amount
    order_total = product_total + shipping_total + (tax_total if taxation == "net" else Decimal("0"))
    stamp = sfcc_time(created)
    return {
        "orderNo": order_no,
        "siteId": site,
        "status": status,
        "exportStatus": export_status,
        "confirmationStatus": confirmation_status,
        "paymentStatus": payment_status,
        "shippingStatus": shipping_status,
        "currency": currency,
        "taxation": taxation,
        "creationDate": stamp,
        "placeDate": stamp,
        "lastModified": stamp,
        "createdBy": "Customer",
        "channelType": "storefront",
        "customerInfo": {"customerName": customer["name"], "email": customer.get("email"), "customerNo": customer.get("customerNo", "0000001"), "guest": False},
        "billingAddress": address,
        "productItems": items,
        "shippingItems": shipping_items,
        "orderPriceAdjustments": order_adj,
        "shipments": [
            {
                "shipmentId": "me",
                "shipmentNo": f"{order_no}-1",
                "shippingAddress": address,
                "shippingMethod": {"id": "standard"},
                "shippingStatus": "not_shipped",
                "shippingTotal": shipping_total,
                "shippingTotalTax": shipping_tax,
                "productSubTotal": sub_total,
                "productTotal": product_total,
                "taxTotal": tax_total,
                "shipmentTotal": order_total,
            }
        ],
        "productSubTotal": sub_total,
        "productTotal": product_total,
        "shippingTotal": shipping_total,
        "shippingTotalTax": shipping_tax,
        "merchandizeTotalTax": product_tax,
        "adjustedMerchandizeTotalTax": product_tax + order_adj_tax,
        "adjustedShippingTotalTax": shipping_tax,
        "taxTotal": tax_total,
        "orderTotal": order_total,
        "paymentInstruments": [
            {"paymentInstrumentId": f"{order_no}-pi1", "paymentMethodId": "CREDIT_CARD",
             "paymentTransaction": {"amount": order_total, "transactionId": f"{order_no}-tx1"}}
        ],
    }


def make_product(sku: str, online: dict[str, bool], *, name: str | None = None, kind: str = "variant") -> dict[str, Any]:
    """A catalogue product: `online` by site id; `kind` one of item, variant, master, set, bundle."""
    return {"id": sku, "name": name or sku, "type": kind, "online": dict(online)}
