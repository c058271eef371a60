"""How a channel order is booked in the ERP, decided once for every step that needs to know.

- The booking rules (the orders gate) run on paid orders before loading and on waiting orders
  before the shop accepts them (`check_bookable`): one set of rules, so nothing is accepted that
  would then wait unbooked.
- The customer a sale goes to (`customer_for`): the ERP takes a sale's currency from its customer,
  so the customer is chosen per currency: customers.csv's (seller, currency) row, then its
  currency row, then the seller's customer in sellers.csv, then the pairing's `policies.customer`.
- The tax mode (`tax_inclusive`): the order's own, else the pairing's `tax_calculation`.
- The tax rules (`tax_rules`): where the pairing has a tax_codes.csv, each tax the channel names
  on a line or charge (name and rate) maps 1:1 to an ERP tax rule; an order naming a tax the file
  lacks is held by the gate. The sale's own rule is its items' one rule, else `policies.tax_rule`.
- The location: the seller's `master_location` in sellers.csv where given, else the pairing's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from commerce_sync.flows.common import load_mappings
from commerce_sync.models import Order, tax_key
from commerce_sync.pairing import Pairing
from commerce_sync.ports import SaleInstructions
from commerce_sync.runtime import FlowContext

log = logging.getLogger(__name__)

Maps = Mapping[str, Mapping[str, Mapping[str, Any]]]


def customer_for(pairing: Pairing, order: Order, maps: Maps) -> str:
    """The ERP customer for this order, by the precedence in the module docstring."""
    by_currency: dict[tuple[str | None, str], str] = {}
    for row in (maps.get("customers") or {}).values():
        by_currency[(row.get("seller_ref") or None, row["currency"])] = row["master_customer"]
    seller = (maps.get("sellers") or {}).get(order.seller_ref or "", {})
    return (
        (by_currency.get((order.seller_ref, order.currency)) if order.seller_ref else None)
        or by_currency.get((None, order.currency))
        or seller.get("master_customer")
        or pairing.policies.customer
    )


def tax_inclusive(pairing: Pairing, order: Order) -> bool:
    """The mode the sale is booked in: the order's own; the pairing's only where it states none."""
    return pairing.policies.tax_inclusive if order.tax_inclusive is None else order.tax_inclusive


def tax_mode_note(pairing: Pairing, order: Order) -> str | None:
    """'differs' when the order states a mode other than the pairing's default (booked as the
    order says), 'defaulted' when it states none (booked in the pairing's); None when they agree.
    Reported, never hidden: either may mean the pairing file is out of date."""
    if order.tax_inclusive is None:
        return "defaulted"
    return "differs" if order.tax_inclusive != pairing.policies.tax_inclusive else None


def tax_rules(maps: Maps) -> dict[tuple[str, Decimal], str]:
    """tax_codes.csv as {(channel tax name, rate): ERP tax rule}; empty where the pairing has none."""
    rules = {}
    for row in (maps.get("tax_codes") or {}).values():
        key = tax_key(row["channel_tax_code"], row["rate"])
        if key is not None:
            rules[key] = row["master_tax_rule"]
    return rules


def unmapped_taxes(order: Order, rules: Mapping[tuple[str, Decimal], str]) -> list[str]:
    """The taxes the order names that the mapping lacks ('VAT 21% at 0.21'); none without a mapping."""
    if not rules:
        return []
    missing = []
    for item in [*order.lines, *order.charges]:
        if item.tax_name is None:
            continue
        key = tax_key(item.tax_name, item.tax_rate)
        if key is None or key not in rules:
            missing.append(f"{item.tax_name} at {item.tax_rate}")
    return sorted(set(missing))


def instructions(ctx: FlowContext, order: Order, maps: Maps) -> SaleInstructions:
    p = ctx.pairing
    seller = (maps.get("sellers") or {}).get(order.seller_ref or "", {})
    rules = tax_rules(maps)
    used = {rules.get(tax_key(i.tax_name, i.tax_rate)) for i in [*order.lines, *order.charges] if i.tax_name is not None} - {None}
    return SaleInstructions(
        external_id=p.external_id(order.channel_ref),
        customer=customer_for(p, order, maps),
        # a seller (a site, a store) may ship from its own location: sellers.csv's optional column
        location=seller.get("master_location") or p.policies.location,
        # the sale's rule (and that of charges naming no tax): its items' one rule where they agree
        tax_rule=used.pop() if len(used) == 1 else p.policies.tax_rule,
        tax_rules=rules,
        tax_calculation="Inclusive" if tax_inclusive(p, order) else "Exclusive",
        status=p.policies.sale_status,
        sku_map={k: v["master_sku"] for k, v in (maps.get("skus") or {}).items()},
        source_channel=p.channel.label or ctx.channel.name.capitalize(),
        seller_label=seller.get("seller_name") or order.seller_name,
        shipping_description=p.policies.shipping_description,
        discount_description=p.policies.discount_description,
    )


def check_bookable(ctx: FlowContext, orders: dict[str, Order], *, unreadable: dict[str, list[dict[str, str]]], replayed: set[str],
                   maps: Maps | None = None):
    """The booking rules on a batch of orders: the orders gate with the pairing's mappings,
    currencies and the currency of each order's ERP customer. Returns the gate's result."""
    from commerce_sync.gates.orders import gate_orders  # GX is heavy: only the steps that gate pay for it

    maps = load_mappings(ctx) if maps is None else maps
    policy = ctx.pairing.policies
    currencies: dict[str, str | None] = {}  # one ERP lookup per customer, whatever the batch size

    def customer_of(order: Order) -> tuple[str, str | None]:
        customer = customer_for(ctx.pairing, order, maps)
        if customer not in currencies:
            currencies[customer] = ctx.master.customer_currency(customer)
        return customer, currencies[customer]

    return gate_orders(
        orders,
        unreadable=unreadable,
        mapped_skus=set(maps.get("skus", {})),
        mapped_sellers=set(maps.get("sellers", {})),
        currencies=policy.currencies,
        max_bad_share=policy.max_bad_share,
        min_records_for_share=policy.min_records_for_share,
        replayed=replayed,
        customer_of=customer_of,
        unmapped_taxes=(lambda order: unmapped_taxes(order, rules)) if (rules := tax_rules(maps)) else None,
    )
