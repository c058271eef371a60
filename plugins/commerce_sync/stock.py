"""Available-to-sell: the ERP's stock over the pairing's locations, less the buffer, never below
zero, in whole units. Pure functions, so the rule that keeps channels from overselling is tested
on its own."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import ROUND_CEILING, Decimal

from commerce_sync.models import Order, StockLevel
from commerce_sync.pairing import Buffer, StockPolicy


def total_available(levels: Iterable[StockLevel], locations: list[str]) -> dict[str, Decimal]:
    """Sum of Available per SKU over the allowed locations (exact; fractions kept for the gate)."""
    allowed = set(locations)
    totals: dict[str, Decimal] = {}
    for level in levels:
        if level.location in allowed:
            totals[level.sku] = totals.get(level.sku, Decimal("0")) + level.available
    return totals


def buffer_for(master_sku: str, policy: StockPolicy, region: str | None = None) -> Buffer:
    """A SKU's own buffer, else its region's, else the pairing's."""
    if master_sku in policy.sku_buffers:
        return policy.sku_buffers[master_sku]
    return policy.regions[region].buffer if region in policy.regions else policy.buffer


def sellable(available: Decimal, buffer: Buffer) -> int:
    """What a channel may show: available minus units minus percent (rounded up, so the buffer
    never shrinks by rounding), floored at zero. `available` must be a whole number."""
    held = Decimal(buffer.units) + (available * buffer.percent / 100).to_integral_value(rounding=ROUND_CEILING)
    return max(0, int(available - held))


def unbooked_units(orders: Mapping[str, Order], booked: Collection[str], sku_map: Mapping[str, str]) -> dict[str, int]:
    """Units per master SKU in orders captured on the channel but not booked in the master yet.

    `orders` is keyed by the channel's record key, so an order that several sources know of
    (staged, held in quarantine, still on the channel) counts once; an order whose reference is
    `booked` (linked to a sale) counts not at all: the master's availability already holds it.
    An order without a reference is held, so unbooked. A line whose SKU is unmapped holds back
    no master stock (there is none to hold), and its order waits in quarantine.
    """
    units: dict[str, int] = {}
    for order in orders.values():
        if order.channel_ref is not None and order.channel_ref in booked:
            continue
        for line in order.lines:
            master = sku_map.get(line.sku)
            if master is not None and line.quantity > 0:
                units[master] = units.get(master, 0) + line.quantity
    return units


def less_sold_since_read(target: int, read_quantity: int | None, current_quantity: int | None) -> int:
    """The quantity to set where the channel takes its own orders off the figure we set: the
    target, less what was sold on the channel between our read of it and this write (those
    orders were not yet there to count as unbooked), never below zero."""
    if read_quantity is None or current_quantity is None:
        return target
    return max(0, target - max(0, read_quantity - current_quantity))
