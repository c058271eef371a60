"""commercetools payloads to canonical models: money, orders, refunds and payouts.

Pure functions (property-tested in tests/unit/test_commercetools_translation.py); the HTTP side
is systems/commercetools.py. Field names follow the commercetools HTTP API (specs/commercetools.openapi.yaml).

Money is TypedMoney: an integer `centAmount` (or, for `highPrecision` money, `preciseAmount`) in
units of 10^-fractionDigits, turned into Decimal exactly, never through float.

How an order's money maps (all amounts as commercetools states them, never recomputed):
- a line: `price.value` is the unit price; product discounts (`price.discounted`) and cart
  discounts (`discountedPricePerQuantity`) together are the line's discount; `totalPrice` is
  the line total; the line's tax is its `taxedPrice.totalTax`.
- custom line items (fees, gift wrap): a charge each (a negative one is a discount).
- shipping (`shippingInfo`, or each `shipping[].shippingInfo`): a shipping charge at its price,
  its tax, and a shipping discount charge when `discountedPrice` is set.
- `discountOnTotalPrice`: one negative order-discount charge.
- `totalPrice` is the order total; `taxedPrice.totalTax` its tax. Whether prices include tax
  is each TaxRate's `includedInPrice`: all true is tax-inclusive, all false exclusive (then
  `totalPrice` is net, as commercetools itself says), a mix cannot be booked as one sale. So in
  both modes lines + charges = total, and the tax stands beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce_sync.models import Address, Charge, Customer, Order, OrderLine, PayoutLine, Refund, RefundLine, TranslationError
from commerce_sync.money import minor_units, quantize
from commerce_sync.systems.common import parse_time, translating

ZERO = Decimal("0")
MONEY_TYPES = ("centPrecision", "highPrecision")
# a refund is money returned: chargebacks too; a charge is money captured
CAPTURED, RETURNED = ("Charge",), ("Refund", "Chargeback")
# return items whose money the shop keeps: never on a credit note
NOT_REFUNDED = {"NonRefundable", "NotRefunded"}


# -- money --------------------------------------------------------------------------------------
def _whole(value: Any, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise TranslationError(f"{field} is missing")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)  # 1000.0 in JSON is still a whole number of cents
    raise TranslationError(f"{field} is not a whole number: {value!r}")


def money(value: Any, field: str, currency: str | None = None) -> Decimal:
    """TypedMoney (or plain Money) to Decimal, exactly. With `currency`, the amount must be in it."""
    if not isinstance(value, Mapping):
        raise TranslationError(f"{field} is missing or not money: {value!r}")
    code = value.get("currencyCode")
    if not isinstance(code, str) or len(code) != 3:
        raise TranslationError(f"{field}.currencyCode is missing or not a currency: {code!r}")
    if currency is not None and code != currency:
        raise TranslationError(f"{field} is in {code}, the order in {currency}")
    kind = value.get("type", "centPrecision")
    if kind not in MONEY_TYPES:
        raise TranslationError(f"{field}.type {kind!r} is not one of {', '.join(MONEY_TYPES)}")
    # plain Money has no fractionDigits: the currency's own minor unit is the definition
    digits = _whole(value["fractionDigits"], f"{field}.fractionDigits") if "fractionDigits" in value else minor_units(code)
    if not 0 <= digits <= 20:
        raise TranslationError(f"{field}.fractionDigits {digits} is out of range")
    units = _whole(value.get("preciseAmount" if kind == "highPrecision" else "centAmount"), f"{field}.{'preciseAmount' if kind == 'highPrecision' else 'centAmount'}")
    return Decimal(units).scaleb(-digits)


def _taxed_amounts(taxed: Any, field: str, currency: str) -> tuple[Decimal, Decimal, Decimal] | None:
    """(net, gross, tax) of a TaxedPrice / TaxedItemPrice; tax from totalTax, else gross - net."""
    if not isinstance(taxed, Mapping):
        return None
    net = money(taxed.get("totalNet"), f"{field}.totalNet", currency)
    gross = money(taxed.get("totalGross"), f"{field}.totalGross", currency)
    tax = money(taxed["totalTax"], f"{field}.totalTax", currency) if taxed.get("totalTax") is not None else gross - net
    if gross != net + tax:
        raise TranslationError(f"{field}: totalGross {gross} is not totalNet {net} + totalTax {tax} ({currency})")
    return net, gross, tax


def localized(value: Any, locale: str | None = None) -> str | None:
    """A LocalizedString in the pairing's locale, else its first language."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or not value:
        return None
    if locale and isinstance(value.get(locale), str):
        return value[locale]
    return next((v for v in value.values() if isinstance(v, str)), None)


# -- orders -------------------------------------------------------------------------------------
def _address(addr: Any) -> Address | None:
    if not isinstance(addr, Mapping) or not addr:
        return None
    street = " ".join(str(p) for p in (addr.get("streetNumber"), addr.get("streetName")) if p) or None
    return Address(
        line1=street or addr.get("additionalStreetInfo"),
        line2=addr.get("additionalStreetInfo") if street else addr.get("additionalAddressInfo"),
        city=addr.get("city"),
        state=addr.get("state") or addr.get("region"),
        postcode=addr.get("postalCode"),
        country=addr.get("country"),
    )


def _shipping_infos(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Single shipping mode keeps one `shippingInfo`; Multiple keeps one per `shipping[]` entry."""
    if raw.get("shippingMode") == "Multiple":
        return [s["shippingInfo"] for s in raw.get("shipping") or [] if isinstance(s, Mapping) and isinstance(s.get("shippingInfo"), Mapping)]
    info = raw.get("shippingInfo")
    return [info] if isinstance(info, Mapping) else []


def _tax_of(item: Mapping[str, Any], field: str, currency: str) -> Decimal:
    taxed = _taxed_amounts(item.get("taxedPrice"), f"{field}.taxedPrice", currency)
    return taxed[2] if taxed else ZERO


def _tax_named(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item's TaxRate as the tax mapping keys it: its name and rate (`amount`, a fraction)."""
    rate = item.get("taxRate")
    if not isinstance(rate, Mapping) or rate.get("name") is None:
        return {}
    try:
        value = Decimal(str(rate.get("amount"))) if rate.get("amount") is not None else None
    except ArithmeticError:
        value = None  # unreadable: nothing maps it, so the gate holds the order
    return {"tax_name": str(rate["name"]), "tax_rate": value}


def order_from(raw: Mapping[str, Any], *, channel: str, default_seller: str | None, locale: str | None = None) -> Order:
    """One commercetools Order as the canonical Order (see the module docstring for the money)."""
    key = str(raw.get("id"))
    with translating(key):
        total_price = raw.get("totalPrice")
        currency = (total_price or {}).get("currencyCode") if isinstance(total_price, Mapping) else None
        if not isinstance(currency, str):
            raise TranslationError("totalPrice.currencyCode is missing")
        included: list[bool] = []  # each TaxRate's includedInPrice, wherever there is one
        lines: list[OrderLine] = []
        for i, li in enumerate(raw.get("lineItems") or []):
            where = f"lineItems[{i}]"
            qty = li.get("quantity")
            price = li.get("price") or {}
            unit = money(price.get("value"), f"{where}.price.value", currency)
            discounted = price.get("discounted")
            # product discount: the unit price before and after it
            unit_after = money(discounted.get("value"), f"{where}.price.discounted.value", currency) if isinstance(discounted, Mapping) else unit
            discount = (unit - unit_after) * qty if isinstance(qty, int) else ZERO
            for j, part in enumerate(li.get("discountedPricePerQuantity") or []):
                # cart discounts: what each discounted unit costs now, for that many units
                value = money((part.get("discountedPrice") or {}).get("value"), f"{where}.discountedPricePerQuantity[{j}].discountedPrice.value", currency)
                discount += (unit_after - value) * _whole(part.get("quantity"), f"{where}.discountedPricePerQuantity[{j}].quantity")
            if isinstance(li.get("taxRate"), Mapping):
                included.append(bool(li["taxRate"].get("includedInPrice")))
            sku = (li.get("variant") or {}).get("sku")
            lines.append(
                OrderLine(
                    line_ref=str(li.get("id")),
                    sku=sku if isinstance(sku, str) else "",  # no SKU: the gate holds it as unmapped
                    name=localized(li.get("name"), locale),
                    quantity=qty,
                    unit_price=unit,
                    discount=discount,
                    line_total=money(li.get("totalPrice"), f"{where}.totalPrice", currency),
                    tax=_tax_of(li, where, currency),
                    **_tax_named(li),
                )
            )
        if not lines:
            raise TranslationError("order has no line items")
        charges: list[Charge] = []
        for i, cli in enumerate(raw.get("customLineItems") or []):
            where = f"customLineItems[{i}]"
            amount = money(cli.get("totalPrice"), f"{where}.totalPrice", currency)
            if isinstance(cli.get("taxRate"), Mapping):
                included.append(bool(cli["taxRate"].get("includedInPrice")))
            charges.append(Charge(kind="discount" if amount < 0 else "fee", description=localized(cli.get("name"), locale) or "Charge",
                                  amount=amount, tax=_tax_of(cli, where, currency), **_tax_named(cli)))
        for i, info in enumerate(_shipping_infos(raw)):
            where = f"shippingInfo[{i}]"
            price = money(info.get("price"), f"{where}.price", currency)
            if isinstance(info.get("taxRate"), Mapping):
                included.append(bool(info["taxRate"].get("includedInPrice")))
            charges.append(Charge(kind="shipping", description=info.get("shippingMethodName") or "Shipping", amount=price, tax=_tax_of(info, where, currency), **_tax_named(info)))
            if isinstance(info.get("discountedPrice"), Mapping):
                after = money(info["discountedPrice"].get("value"), f"{where}.discountedPrice.value", currency)
                if after != price:
                    charges.append(Charge(kind="discount", description="Shipping discount", amount=after - price))
        on_total = raw.get("discountOnTotalPrice")
        if isinstance(on_total, Mapping):
            off = money(on_total.get("discountedAmount"), "discountOnTotalPrice.discountedAmount", currency)
            tax_off = ZERO
            if on_total.get("discountedGrossAmount") is not None and on_total.get("discountedNetAmount") is not None:
                tax_off = money(on_total["discountedGrossAmount"], "discountOnTotalPrice.discountedGrossAmount", currency) - money(
                    on_total["discountedNetAmount"], "discountOnTotalPrice.discountedNetAmount", currency)
            if off:
                charges.append(Charge(kind="discount", description="Order discount", amount=-off, tax=-tax_off))
        total = money(total_price, "totalPrice", currency)
        tax_inclusive, tax_total = _tax_mode(raw, included, total, currency)
        shipping, billing = raw.get("shippingAddress") or {}, raw.get("billingAddress") or {}
        person = shipping or billing
        number = raw.get("orderNumber")
        store = raw.get("store") if isinstance(raw.get("store"), Mapping) else {}
        return Order(
            channel=channel,
            channel_ref=str(number) if number not in (None, "") else None,  # no orderNumber: the gate holds it
            channel_id=key,
            placed_at=parse_time(raw.get("createdAt"), "createdAt"),
            currency=currency,
            # a store is the storefront a brand sells through: sellers.csv names its Cin7 customer
            seller_ref=store.get("key") or default_seller,
            customer=Customer(
                name=" ".join(p for p in (person.get("firstName"), person.get("lastName")) if p) or None,
                email=raw.get("customerEmail") or person.get("email"),
                phone=person.get("phone") or person.get("mobile"),
                shipping_address=_address(shipping),
                billing_address=_address(billing),
            ),
            lines=lines,
            charges=charges,
            total=total,
            tax_total=tax_total,
            tax_inclusive=tax_inclusive,
        )


def _tax_mode(raw: Mapping[str, Any], included: list[bool], total: Decimal, currency: str) -> tuple[bool, Decimal]:
    """(tax_inclusive, tax_total), stated by the order itself; anything ambiguous is refused."""
    mode = raw.get("taxMode") or "Platform"
    taxed = _taxed_amounts(raw.get("taxedPrice"), "taxedPrice", currency)
    if mode == "Disabled":
        # no tax at all: the price is the price (booked as tax-exclusive with nothing to add)
        if taxed is not None and taxed[2]:
            raise TranslationError(f"taxMode is Disabled but taxedPrice carries {taxed[2]} {currency} of tax")
        return False, ZERO
    if taxed is None:
        raise TranslationError(f"taxMode {mode} but the order has no taxedPrice: its tax is not known yet")
    if not included:
        raise TranslationError(f"taxMode {mode} but no line states a tax rate: cannot tell whether prices include tax")
    if len(set(included)) > 1:
        raise TranslationError("the order mixes tax-inclusive and tax-exclusive prices; it cannot be booked as one sale")
    net, gross, tax = taxed
    inclusive = included[0]
    if total != (gross if inclusive else net):
        which = "totalGross" if inclusive else "totalNet"
        raise TranslationError(f"totalPrice {total} differs from taxedPrice.{which} {gross if inclusive else net} ({currency})")
    return inclusive, tax


def tax_portions(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every tax portion the order states, for a tax-rule mapping: scope (`order`, a line item
    id, `shipping`), name, rate and amount (Decimal). Empty where the order has no taxedPrice."""
    currency = ((raw.get("totalPrice") or {}).get("currencyCode")) if isinstance(raw.get("totalPrice"), Mapping) else None
    out: list[dict[str, Any]] = []

    def add(scope: str, taxed: Any, field: str) -> None:
        for i, portion in enumerate((taxed or {}).get("taxPortions") or [] if isinstance(taxed, Mapping) else []):
            rate = portion.get("rate")
            out.append({"scope": scope, "name": portion.get("name"), "rate": Decimal(str(rate)) if rate is not None else None,
                        "amount": money(portion.get("amount"), f"{field}.taxPortions[{i}].amount", currency), "currency": currency})

    add("order", raw.get("taxedPrice"), "taxedPrice")
    for li in raw.get("lineItems") or []:
        add(str(li.get("id")), li.get("taxedPrice"), f"lineItems[{li.get('id')}].taxedPrice")
    for info in _shipping_infos(raw):
        add("shipping", info.get("taxedPrice"), "shippingInfo.taxedPrice")
    return out


# -- payments -----------------------------------------------------------------------------------
def successful(payment: Mapping[str, Any], types: tuple[str, ...]) -> list[Mapping[str, Any]]:
    return [t for t in payment.get("transactions") or [] if t.get("type") in types and t.get("state") == "Success"]


def payout_lines_from(raw: Mapping[str, Any]) -> list[PayoutLine]:
    """One order's payments as payout lines: `payment` = what was captured net of what went back,
    `refund` = what went back (refunds, chargebacks). Their sum is what the customer paid, which
    the ERP's sale total must equal. A storefront keeps no commission; PSP fees are the
    settlement reports' (not here)."""
    key = str(raw.get("id"))
    with translating(key):
        order = raw.get("order") or {}
        currency = order.get("currency")
        captured = returned = ZERO
        stamps: list[datetime] = []
        for p in raw.get("payments") or []:
            for t in successful(p, CAPTURED + RETURNED):
                amount = money(t.get("amount"), f"payment {p.get('id')} transaction {t.get('id')}.amount", currency)
                currency = currency or t["amount"]["currencyCode"]
                if t["type"] in CAPTURED:
                    captured += amount
                    stamps.append(parse_time(t.get("timestamp") or p.get("lastModifiedAt"), f"transaction {t.get('id')}.timestamp"))
                else:
                    returned += amount
        if not stamps:
            raise TranslationError("no successful Charge transaction: nothing was captured")
        number = order.get("orderNumber")
        ref = str(number) if number not in (None, "") else None
        lines = [PayoutLine(payout_ref=key, order_channel_ref=ref, kind="payment", amount=captured - returned, currency=currency, booked_at=max(stamps))]
        if returned:
            lines.append(PayoutLine(payout_ref=key, order_channel_ref=ref, kind="refund", amount=returned, currency=currency, booked_at=max(stamps)))
        return lines


def refund_from(raw: Mapping[str, Any]) -> Refund:
    """One successful Refund transaction as a canonical Refund. Its lines come from the order's
    return info: the return whose `returnTrackingId` is the transaction's `interactionId`; else the
    only return when there is one refund; else the one return whose items are worth exactly the
    amount. The amount is spread over the returned items by their paid price (exact, the last
    item takes the remainder). With no return to match, one line without a SKU stands for the
    money: the gate holds it for a person to credit by hand, never a guess."""
    key = str(raw.get("id"))
    with translating(key):
        tx, order = raw.get("transaction") or {}, raw.get("order") or {}
        currency = order.get("currency") or (tx.get("amount") or {}).get("currencyCode")
        amount = money(tx.get("amount"), "transaction.amount", currency)
        items = {str(li.get("id")): li for li in order.get("lineItems") or []}
        returns = [r for r in order.get("returnInfo") or [] if isinstance(r, Mapping)]
        chosen = _matching_return(returns, tx, amount, items, currency, int(raw.get("refunds_on_order") or 1))
        number = order.get("orderNumber")
        lines = _spread(amount, chosen, currency) if chosen else [RefundLine(amount=amount)]
        return Refund(
            refund_ref=key,
            order_channel_ref=str(number) if number not in (None, "") else None,
            currency=currency,
            lines=lines,
            reason=f"{tx.get('type', 'Refund')} {tx.get('interactionId') or ''}".strip(),
            requested_at=parse_time(tx.get("timestamp") or raw.get("modified"), "transaction.timestamp"),
        )


def _returned_items(ret: Mapping[str, Any], items: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], int]]:
    out = []
    for item in ret.get("items") or []:
        if item.get("paymentState") in NOT_REFUNDED or str(item.get("lineItemId")) not in items:
            continue  # custom line items and kept money have no SKU to credit
        out.append((items[str(item["lineItemId"])], _whole(item.get("quantity"), "returnInfo.items.quantity")))
    return out


def _worth(li: Mapping[str, Any], qty: int, currency: str) -> Decimal:
    """What `qty` units of a line cost the customer: its total's share (discounts included)."""
    total = money(li.get("totalPrice"), f"lineItems[{li.get('id')}].totalPrice", currency)
    return total * qty / li["quantity"] if li.get("quantity") else total


def _matching_return(returns, tx, amount, items, currency, refunds_on_order) -> list[tuple[Mapping[str, Any], int]] | None:
    interaction = tx.get("interactionId")
    for ret in returns:
        if interaction and ret.get("returnTrackingId") == interaction and _returned_items(ret, items):
            return _returned_items(ret, items)
    if len(returns) == 1 and refunds_on_order == 1 and _returned_items(returns[0], items):
        return _returned_items(returns[0], items)
    exact = [r for r in returns if _returned_items(r, items) and sum(_worth(li, q, currency) for li, q in _returned_items(r, items)) == amount]
    return _returned_items(exact[0], items) if len(exact) == 1 else None


def _spread(amount: Decimal, returned: list[tuple[Mapping[str, Any], int]], currency: str) -> list[RefundLine]:
    worth = [_worth(li, qty, currency) for li, qty in returned]
    whole = sum(worth, ZERO)
    lines, left = [], amount
    for i, ((li, qty), w) in enumerate(zip(returned, worth, strict=True)):
        share = left if i == len(returned) - 1 else quantize((amount * w / whole) if whole else amount / len(returned), currency)
        left -= share
        lines.append(RefundLine(line_ref=str(li.get("id")), sku=(li.get("variant") or {}).get("sku"), quantity=qty, amount=share))
    return lines
