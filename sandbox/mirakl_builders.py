"""Spec-valid Mirakl seller API objects for tests and the demo: orders (OR11), offers (OF21),
transaction lines (TL02), carriers (SH21). Pure functions; `sandbox.mirakl` re-exports them.

Money is given as Decimal or str and computed in Decimal; the result is plain JSON data (money
as a JSON number whose shortest form is the exact decimal: 94.95, never 94.94999...), so it can
be posted with `requests`' `json=` as it is and the emulator reads it back as Decimal. Dates
are Mirakl's UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` strings. Every field the seller OpenAPI file marks
required is filled, so the contract tests can check the emulator's answers against the spec.
"""

from __future__ import annotations

import copy
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sandbox.wire import wire

# -- time and money ---------------------------------------------------------------------------


def mirakl_time(dt: datetime) -> str:
    """Mirakl's date-time form, UTC with milliseconds: 2019-04-02T14:58:22.460Z."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime:
    """A date-time query value or stored field as an aware datetime (ValueError if it is not one)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a date-time: {value!r}")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _when(value: datetime | str | None, default: datetime) -> datetime:
    return default if value is None else parse_time(value)


def money(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def offer_id_for(shop_sku: str) -> int:
    """A stable offer id for a SKU, so an order line and its offer agree without a shared store."""
    return 100_000 + zlib.crc32(shop_sku.encode()) % 900_000


# -- carriers (SH21) -------------------------------------------------------------------------------

# What a UK operator typically registers; `{trackingId}` is Mirakl's tracking-URL placeholder.
DEFAULT_CARRIERS: list[dict[str, str]] = [
    {"code": "DPD", "label": "DPD UK", "standard_code": "DPD", "tracking_url": "https://track.dpd.co.uk/parcels/{trackingId}"},
    {"code": "EVRI", "label": "Evri", "tracking_url": "https://www.evri.com/track/parcel/{trackingId}"},
    {"code": "PARCELFORCE", "label": "Parcelforce Worldwide", "standard_code": "PFW"},
    {"code": "ROYAL_MAIL", "label": "Royal Mail", "standard_code": "RM", "tracking_url": "https://www.royalmail.com/track-your-item#/tracking-results/{trackingId}"},
]


def default_carriers() -> list[dict[str, str]]:
    return copy.deepcopy(DEFAULT_CARRIERS)


# -- orders (OR11) ---------------------------------------------------------------------------------

ORDER_STATES = (
    "STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED",
    "TO_COLLECT", "RECEIVED", "CLOSED", "REFUSED", "CANCELED",
)
_ACCEPTED = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
_DEBITED = {"SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
_SHIPPED = {"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
_RECEIVED = {"RECEIVED", "CLOSED"}
_LINE_KEYS = {"offer_sku", "quantity", "price_unit", "tax", "tax_rate", "shipping_price", "shipping_tax", "commission_fee", "commission_vat", "state"}
VAT_RATE = Decimal("20")  # UK standard rate: what a builder line's tax is, unless it says otherwise


def _address(first: str, last: str) -> dict[str, str]:
    return {
        "firstname": first,
        "lastname": last,
        "street_1": "171 Victoria Street",
        "city": "London",
        "zip_code": "SW1E 5NN",
        "country": "United Kingdom",
        "country_iso_code": "GBR",
        "phone": "+44 20 7828 1000",
    }


def default_customer(commercial_id: str | None) -> dict[str, Any]:
    return {
        "customer_id": f"CUST-{commercial_id or 'UNKNOWN'}",
        "civility": "MS",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "locale": "en_GB",
        "billing_address": _address("Ada", "Lovelace"),
        "shipping_address": _address("Ada", "Lovelace"),
    }


def _tax(amount: Decimal, rate: Decimal) -> dict[str, Any]:
    return {"amount": amount, "code": "VAT", "rate": rate, "tax_calculation_rule": "PROPORTIONAL_TO_AMOUNT"}


def make_order(
    order_id: str,
    commercial_id: str | None,
    lines: list[dict[str, Any]],
    *,
    state: str = "WAITING_ACCEPTANCE",
    created: datetime | str | None = None,
    currency: str = "GBP",
    shipping_price: Decimal | str = "0",
    customer: dict[str, Any] | None = None,
    shipping_deadline: datetime | str | None = None,
    tax_mode: str | None = "TAX_INCLUDED",
) -> dict[str, Any]:
    """A complete OR11 order in `state` (every line in the same state unless a line says `state`).

    `tax_mode` is the order's `order_tax_mode`: with TAX_EXCLUDED every price given (price_unit,
    shipping_price) is without tax and a line's `tax` comes on top; None leaves the field out.

    A line is {"offer_sku", "quantity", "price_unit", "tax"?: VAT amount of the line (inside the
    prices under TAX_INCLUDED, on top of them under TAX_EXCLUDED), "tax_rate"?: 20, "shipping_price"?, "shipping_tax"?,
    "commission_fee"?, "commission_vat"?, "state"?}; any other key is laid over the built line as
    is (to make a deliberately inconsistent one). `shipping_price` of the order goes on the first
    line when no line names its own. Every date (accepted, debited, shipped, last updated) is
    `created`: the order as it stands at that moment. `commercial_id=None` leaves the customer
    order number out, as a broken order would."""
    if state not in ORDER_STATES:
        raise ValueError(f"unknown order state {state!r}")
    if not lines:
        raise ValueError("an order has at least one line")
    at = mirakl_time(_when(created, datetime.now(timezone.utc)))
    deadline = mirakl_time(_when(shipping_deadline, parse_time(at) + timedelta(days=2)))
    order_shipping = money(shipping_price)
    lines_name_shipping = any("shipping_price" in line for line in lines)
    if lines_name_shipping and order_shipping and order_shipping != sum(money(line.get("shipping_price", 0)) for line in lines):
        raise ValueError("shipping_price of the order differs from the sum of the lines' shipping_price")

    built = []
    for n, spec in enumerate(lines, start=1):
        line_state = spec.get("state", state)
        quantity = int(spec["quantity"])
        unit = money(spec["price_unit"])
        price = unit * quantity
        if lines_name_shipping:
            ship = money(spec.get("shipping_price", 0))
        else:
            ship = order_shipping if n == 1 else Decimal("0")
        fee = money(spec.get("commission_fee", 0))
        vat = money(spec.get("commission_vat", 0))
        vat_rate = VAT_RATE if vat else Decimal("0")
        rate = money(spec.get("tax_rate", VAT_RATE))
        sku = spec["offer_sku"]
        line: dict[str, Any] = {
            "order_line_id": f"{order_id}-{n}",
            "order_line_index": n,
            "order_line_state": line_state,
            "offer_id": offer_id_for(sku),
            "offer_sku": sku,
            "offer_state_code": "11",
            "product_sku": f"MKP-{sku}",
            "product_shop_sku": sku,
            "product_title": f"Product {sku}",
            "product_medias": [],
            "category_code": "GENERAL",
            "category_label": "General",
            "description": "",
            "quantity": quantity,
            "price_unit": unit,
            "price": price,
            "shipping_price": ship,
            "total_price": price + ship,
            "taxes": [_tax(money(spec["tax"]), rate)] if spec.get("tax") is not None else [],
            "shipping_taxes": [_tax(money(spec["shipping_tax"]), rate)] if spec.get("shipping_tax") is not None else [],
            "commission_fee": fee,
            "commission_vat": vat,
            "commission_rate_vat": vat_rate,
            "commission_taxes": [{"amount": vat, "code": "VAT", "rate": vat_rate}] if vat else [],
            "total_commission": fee + vat,
            "fees": [],
            "refunds": [],
            "cancelations": [],
            "order_line_additional_fields": [],
            "can_refund": line_state in _DEBITED,
            "created_date": at,
            "last_updated_date": at,
        }
        if line_state in _DEBITED:
            line["debited_date"] = at
        if line_state in _SHIPPED:
            line["shipped_date"] = at
        if line_state in _RECEIVED:
            line["received_date"] = at
        line.update({k: v for k, v in spec.items() if k not in _LINE_KEYS})
        built.append(line)

    price = sum((money(line["price"]) for line in built), Decimal("0"))
    shipping = sum((money(line["shipping_price"]) for line in built), Decimal("0"))
    order: dict[str, Any] = {
        "order_id": order_id,
        "commercial_id": commercial_id,
        "order_state": state,
        "created_date": at,
        "last_updated_date": at,
        "currency_iso_code": currency,
        "order_tax_mode": tax_mode,
        "price": price,
        "shipping_price": shipping,
        "total_price": price + shipping,
        "total_commission": sum((money(line["total_commission"]) for line in built), Decimal("0")),
        "customer": {**default_customer(commercial_id), **(customer or {})},
        "customer_notification_email": f"notification+{order_id.lower()}@notification.mirakl.net",
        "customer_directly_pays_seller": False,
        "references": {"order_reference_for_customer": commercial_id},
        "order_lines": built,
        "can_cancel": state in _DEBITED - _SHIPPED,
        "can_shop_ship": state == "SHIPPING",
        "fulfillment": {"center": {"code": "DEFAULT"}},
        "fully_refunded": False,
        "has_customer_message": False,
        "has_incident": False,
        "has_invoice": False,
        "leadtime_to_ship": 2,
        "shipping_deadline": deadline,
        "shipping_type_code": "STD",
        "shipping_type_label": "Standard delivery",
        "shipping_zone_code": "UK",
        "shipping_zone_label": "United Kingdom",
        "payment_type": "CARD",
        "paymentType": "CARD",  # deprecated but still required by the spec
        "payment_workflow": "PAY_ON_ACCEPTANCE",
        "order_additional_fields": [],
    }
    if tax_mode is None:
        del order["order_tax_mode"]
    if commercial_id is None:
        del order["commercial_id"]
        del order["references"]
    if state in _ACCEPTED or state == "REFUSED":
        order["acceptance_decision_date"] = at
    if state in _DEBITED:
        order["customer_debited_date"] = at
    return wire(order)


# -- offers (OF21) ---------------------------------------------------------------------------------


def make_offer(shop_sku: str, quantity: int, offer_id: int | None = None, product_sku: str | None = None, price: Decimal | str = "10.00") -> dict[str, Any]:
    """An active OF21 offer of the shop, new condition (state 11), free standard shipping."""
    amount = money(price)
    pricing = {"price": amount, "unit_origin_price": amount, "volume_prices": []}
    return wire({
        "offer_id": offer_id if offer_id is not None else offer_id_for(shop_sku),
        "shop_sku": shop_sku,
        "product_sku": product_sku or f"MKP-{shop_sku}",
        "product_title": f"Product {shop_sku}",
        "product_references": [],
        "quantity": int(quantity),
        "state_code": "11",
        "active": True,
        "price": amount,
        "total_price": amount,
        "all_prices": [dict(pricing)],
        "applicable_pricing": dict(pricing),
        "currency_iso_code": "GBP",
        "category_code": "GENERAL",
        "category_label": "General",
        "channels": [],
        "description": "",
        "fulfillment": {"center": {"code": "DEFAULT"}},
        "leadtime_to_ship": 2,
        "logistic_class": {"code": "STANDARD", "label": "Standard"},
        "min_order_quantity": 1,
        "max_order_quantity": 999,
        "min_quantity_alert": 0,
        "package_quantity": 1,
        "min_shipping_price": Decimal("0"),
        "min_shipping_price_additional": Decimal("0"),
        "min_shipping_type": "STD",
        "min_shipping_zone": "UK",
        "shipping_deadline": mirakl_time(datetime.now(timezone.utc) + timedelta(days=2)),
        "warehouses": [],
    })


# -- transaction lines (TL02) ----------------------------------------------------------------------


def make_transaction(
    id: str,
    type: str,
    amount: Decimal | str,
    *,
    order_id: str | None = None,
    commercial_id: str | None = None,
    order_line_id: str | None = None,
    cycle: str | None = "C1",
    transaction_date: datetime | str | None = None,
    currency: str = "GBP",
    payment_state: str = "PAYABLE",
) -> dict[str, Any]:
    """One TL02 line. `amount` is signed from the seller's side (sales +, commission -), and
    split into amount_credited / amount_debited as Mirakl does. Created = transaction date."""
    value = money(amount)
    at = mirakl_time(_when(transaction_date, datetime.now(timezone.utc)))
    entities: dict[str, Any] = {"domain": "PRODUCT"}
    if order_id is not None:
        order: dict[str, Any] = {"id": order_id, "creation_date": at}
        if commercial_id is not None:
            order["commercial_id"] = commercial_id
            order["references"] = {"order_reference_for_customer": commercial_id}
        entities["order"] = order
    if order_line_id is not None:
        entities["order_line"] = {"id": order_line_id}
    tx: dict[str, Any] = {
        "id": id,
        "type": type,
        "amount": value,
        "amount_credited": value if value > 0 else Decimal("0"),
        "amount_debited": -value if value < 0 else Decimal("0"),
        "currency_iso_code": currency,
        "date_created": at,
        "last_updated": at,
        "transaction_date": at,
        "payment_state": payment_state,
        "pay_out_psp_code": "NOT_SPECIFIED",
        "entities": entities,
    }
    if cycle is not None:
        tx["seller_billing_cycle_id"] = cycle
    return wire(tx)
