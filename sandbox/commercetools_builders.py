"""Builders of commercetools resources for tests and the demo: plain JSON, ready to POST to the
emulator's `/_sandbox/...` endpoints, with the money worked out the way commercetools does it
(line level tax, half-even rounding to the currency's cents), so an order's figures agree with
each other unless a test breaks them on purpose."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sandbox.wire import json_number

MINOR = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}


def digits_of(currency: str) -> int:
    return MINOR.get(currency, 2)


def ct_time(dt: datetime | None = None) -> str:
    dt = (dt or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def cents(amount: Any, currency: str) -> int:
    return int((Decimal(str(amount)).scaleb(digits_of(currency))).to_integral_value(rounding=ROUND_HALF_EVEN))


def money(amount: Any, currency: str = "GBP") -> dict[str, Any]:
    """CentPrecisionMoney for a decimal amount (rounded half-even to the currency's cents)."""
    return {"type": "centPrecision", "currencyCode": currency, "centAmount": cents(amount, currency), "fractionDigits": digits_of(currency)}


def precise(amount: Any, currency: str, fraction_digits: int) -> dict[str, Any]:
    """HighPrecisionMoney: preciseAmount in 10^-fraction_digits, centAmount rounded from it."""
    value = Decimal(str(amount))
    return {"type": "highPrecision", "currencyCode": currency, "preciseAmount": int(value.scaleb(fraction_digits)),
            "fractionDigits": fraction_digits, "centAmount": cents(value, currency)}


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-digits_of(currency)), rounding=ROUND_HALF_EVEN)


def _split(total: Decimal, rate: Decimal, included: bool, currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(net, gross, tax) of a price, as commercetools' line-level tax does it."""
    if included:
        net = _round(total / (1 + rate), currency)
        return net, total, total - net
    tax = _round(total * rate, currency)
    return total, total + tax, tax


def _taxed(net: Decimal, gross: Decimal, tax: Decimal, rate: Decimal, currency: str, name: str) -> dict[str, Any]:
    return {"totalNet": money(net, currency), "totalGross": money(gross, currency), "totalTax": money(tax, currency),
            "taxPortions": [{"name": name, "rate": json_number(rate), "amount": money(tax, currency)}] if tax or rate else []}


def _rate(rate: Decimal, included: bool, country: str) -> dict[str, Any]:
    return {"id": f"rate-{rate}", "name": f"VAT {rate * 100:.0f}%", "amount": json_number(rate), "includedInPrice": included, "country": country}


def make_order(
    order_number: str | None,
    lines: list[dict[str, Any]],
    *,
    currency: str = "GBP",
    included: bool = True,
    tax_rate: Any = "0.20",
    tax_mode: str = "Platform",
    shipping: Any = None,
    shipping_name: str = "Standard delivery",
    shipping_discount: Any = None,
    order_discount: Any = None,
    custom_lines: list[dict[str, Any]] | None = None,
    created: datetime | None = None,
    order_state: str = "Open",
    payment_state: str | None = "Paid",
    shipment_state: str | None = None,
    store: str | None = None,
    payments: list[str] = (),
    inventory_mode: str | None = None,
    country: str = "GB",
    order_id: str | None = None,
) -> dict[str, Any]:
    """An Order as the API returns it. A line: {"sku", "quantity", "price" (unit), optional
    "product_discount" and "cart_discount" (per unit), "tax_rate", "name", "supply_channel" (id),
    "precise": (amount, fraction_digits) for a high-precision unit price}. Prices are gross when
    `included`, net otherwise; `order_discount` comes off the total (discountOnTotalPrice)."""
    rate_default = Decimal(str(tax_rate))
    taxed = tax_mode != "Disabled"
    nets = grosses = taxes = Decimal(0)
    portions: dict[Decimal, Decimal] = {}
    line_items, total = [], Decimal(0)
    for i, spec in enumerate(lines):
        qty = int(spec.get("quantity", 1))
        rate = Decimal(str(spec.get("tax_rate", rate_default)))
        if spec.get("precise"):
            amount, digits = spec["precise"]
            unit, value = Decimal(str(amount)), precise(amount, currency, digits)
        else:
            unit = Decimal(str(spec["price"]))
            value = money(unit, currency)
        after_product = unit - Decimal(str(spec.get("product_discount") or 0))
        after_cart = after_product - Decimal(str(spec.get("cart_discount") or 0))
        line_total = _round(after_cart * qty, currency)
        total += line_total
        price: dict[str, Any] = {"id": str(uuid.uuid4()), "value": value}
        if spec.get("product_discount"):
            price["discounted"] = {"value": money(after_product, currency), "discount": {"typeId": "product-discount", "id": "pd-1"}}
        item: dict[str, Any] = {
            "id": spec.get("id") or f"li-{i + 1}-{uuid.uuid4().hex[:8]}",
            "productId": f"prod-{spec['sku']}", "productType": {"typeId": "product-type", "id": "pt-default"},
            "name": {"en-GB": spec.get("name", spec["sku"])}, "variant": {"id": 1, "sku": spec["sku"]},
            "price": price, "quantity": qty, "totalPrice": money(line_total, currency),
            "discountedPricePerQuantity": [], "taxedPricePortions": [], "perMethodTaxRate": [],
            "state": [{"quantity": qty, "state": {"typeId": "state", "id": "initial"}}],
            "priceMode": "Platform", "lineItemMode": "Standard", "lastModifiedAt": ct_time(created), "addedAt": ct_time(created),
        }
        if spec.get("cart_discount"):
            item["discountedPricePerQuantity"] = [{"quantity": qty, "discountedPrice": {
                "value": money(after_cart, currency),
                "includedDiscounts": [{"discount": {"typeId": "cart-discount", "id": "cd-1"}, "discountedAmount": money(after_product - after_cart, currency)}]}}]
        if spec.get("supply_channel"):
            item["supplyChannel"] = {"typeId": "channel", "id": spec["supply_channel"]}
        if taxed:
            net, gross, tax = _split(line_total, rate, included, currency)
            item["taxRate"] = _rate(rate, included, country)
            item["taxedPrice"] = _taxed(net, gross, tax, rate, currency, item["taxRate"]["name"])
            nets, grosses, taxes = nets + net, grosses + gross, taxes + tax
            portions[rate] = portions.get(rate, Decimal(0)) + tax
        line_items.append(item)
    custom_items = []
    for j, spec in enumerate(custom_lines or []):
        amount = Decimal(str(spec["amount"]))
        total += amount
        cli: dict[str, Any] = {"id": f"cli-{j + 1}", "name": {"en-GB": spec.get("name", "Gift wrap")}, "money": money(amount, currency),
                               "slug": spec.get("slug", f"custom-{j + 1}"), "quantity": 1, "totalPrice": money(amount, currency),
                               "discountedPricePerQuantity": [], "state": [], "taxedPricePortions": [], "perMethodTaxRate": [], "priceMode": "Standard"}
        if taxed:
            net, gross, tax = _split(amount, rate_default, included, currency)
            cli["taxRate"] = _rate(rate_default, included, country)
            cli["taxedPrice"] = _taxed(net, gross, tax, rate_default, currency, cli["taxRate"]["name"])
            nets, grosses, taxes = nets + net, grosses + gross, taxes + tax
            portions[rate_default] = portions.get(rate_default, Decimal(0)) + tax
        custom_items.append(cli)
    shipping_info = None
    if shipping is not None:
        ship = Decimal(str(shipping))
        charged = ship - Decimal(str(shipping_discount or 0))
        total += charged
        shipping_info = {"shippingMethodName": shipping_name, "price": money(ship, currency), "shippingRate": {"price": money(ship, currency), "tiers": []},
                         "shippingMethodState": "MatchesCart", "deliveries": [], "shippingMethod": {"typeId": "shipping-method", "id": "sm-standard"}}
        if shipping_discount:
            shipping_info["discountedPrice"] = {"value": money(charged, currency), "includedDiscounts": []}
        if taxed:
            net, gross, tax = _split(charged, rate_default, included, currency)
            shipping_info["taxRate"] = _rate(rate_default, included, country)
            shipping_info["taxedPrice"] = _taxed(net, gross, tax, rate_default, currency, shipping_info["taxRate"]["name"])
            nets, grosses, taxes = nets + net, grosses + gross, taxes + tax
            portions[rate_default] = portions.get(rate_default, Decimal(0)) + tax
    order: dict[str, Any] = {
        "id": order_id or str(uuid.uuid4()), "version": 1, "createdAt": ct_time(created), "lastModifiedAt": ct_time(created),
        "lineItems": line_items, "customLineItems": custom_items, "refusedGifts": [], "shipping": [], "shippingMode": "Single",
        "syncInfo": [], "returnInfo": [], "origin": "Customer", "orderState": order_state, "taxMode": tax_mode,
        "taxRoundingMode": "HalfEven", "taxCalculationMode": "LineItemLevel", "priceRoundingMode": "HalfEven",
        "customerEmail": "shopper@example.com", "country": country,
        "shippingAddress": {"firstName": "Sam", "lastName": "Lee", "streetName": "Oxford Street", "streetNumber": "1",
                            "postalCode": "W1D 1AN", "city": "London", "country": country, "phone": "+44 20 7946 0000"},
    }
    if shipping_info is not None:
        order["shippingInfo"] = shipping_info
    if order_discount:
        off = Decimal(str(order_discount))
        total -= off
        discount: dict[str, Any] = {"discountedAmount": money(off, currency), "includedDiscounts": []}
        if taxed:
            net, gross, tax = _split(off, rate_default, included, currency)
            discount["discountedNetAmount"], discount["discountedGrossAmount"] = money(net, currency), money(gross, currency)
            nets, grosses, taxes = nets - net, grosses - gross, taxes - tax
            portions[rate_default] = portions.get(rate_default, Decimal(0)) - tax
        order["discountOnTotalPrice"] = discount
    order["totalPrice"] = money(total, currency)
    if taxed:
        order["taxedPrice"] = {"totalNet": money(nets, currency), "totalGross": money(grosses, currency), "totalTax": money(taxes, currency),
                               "taxPortions": [{"name": f"VAT {r * 100:.0f}%", "rate": json_number(r), "amount": money(a, currency)} for r, a in sorted(portions.items())]}
    if order_number is not None:
        order["orderNumber"] = order_number
    if payment_state is not None:
        order["paymentState"] = payment_state
    if shipment_state is not None:
        order["shipmentState"] = shipment_state
    if store:
        order["store"] = {"typeId": "store", "key": store}
    if payments:
        order["paymentInfo"] = {"payments": [{"typeId": "payment", "id": pid} for pid in payments]}
    if inventory_mode:
        order["inventoryMode"] = inventory_mode
    return order


def transaction(kind: str, amount: Any, currency: str = "GBP", *, state: str = "Success", at: datetime | None = None,
                interaction_id: str | None = None) -> dict[str, Any]:
    """A TransactionDraft (type Charge, Refund, Authorization, Chargeback...)."""
    draft = {"type": kind, "amount": {"currencyCode": currency, "centAmount": cents(amount, currency)}, "state": state, "timestamp": ct_time(at)}
    if interaction_id:
        draft["interactionId"] = interaction_id
    return draft


def payment(payment_id: str, amount: Any, currency: str = "GBP", transactions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A PaymentDraft with a fixed id (the emulator's seed keeps it, so orders can point at it)."""
    return {"id": payment_id, "amountPlanned": {"currencyCode": currency, "centAmount": cents(amount, currency)},
            "paymentMethodInfo": {"paymentInterface": "psp", "method": "card"}, "transactions": transactions or []}
