"""Available-to-sell: the ERP's stock over the pairing's locations, less the buffer, never below
zero, in whole units. Pure functions, so the rule that keeps channels from overselling is tested
on its own."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from commerce_sync.models import StockLevel
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
