"""Available-to-sell: the ERP's stock over the pairing's locations, less the buffer, never below
zero, in whole units. Pure functions, so the rule that keeps channels from overselling is tested
on its own."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from itertools import accumulate

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


class UnbookedUnits:
    """Units per master SKU in orders captured on the channel but not booked in the master yet,
    each order once, with the moment it was placed, so a listing holds back exactly the orders its
    figure does not already leave to the channel.

    `orders` is keyed by the channel's record key, so an order that several sources know of
    (staged, held in quarantine, still on the channel) counts once; an order whose reference is
    `booked` (linked to a sale the master's figure already holds) counts not at all. An order
    without a reference is held, so unbooked. A line whose SKU is unmapped holds back no master
    stock (there is none to hold), and its order waits in quarantine.
    """

    def __init__(self, orders: Mapping[str, Order], booked: Collection[str], sku_map: Mapping[str, str]) -> None:
        self._totals: dict[str, int] = {}
        lines: dict[tuple[str, str | None], list[tuple[datetime, int]]] = {}
        for order in orders.values():
            if order.channel_ref is not None and order.channel_ref in booked:
                continue
            for line in order.lines:
                master = sku_map.get(line.sku)
                if master is not None and line.quantity > 0:
                    self._totals[master] = self._totals.get(master, 0) + line.quantity
                    lines.setdefault((master, line.region), []).append((order.placed_at, line.quantity))
        # per master SKU and stock region, oldest first with running totals: a listing's share is one bisect
        self._at: dict[tuple[str, str | None], list[datetime]] = {}
        self._sums: dict[tuple[str, str | None], list[int]] = {}
        for pool, found in lines.items():
            found.sort(key=lambda item: item[0])
            self._at[pool] = [at for at, _ in found]
            self._sums[pool] = list(accumulate(units for _, units in found))

    def total(self, master: str) -> int:
        return self._totals.get(master, 0)

    def for_listing(self, master: str, as_of: datetime | None, region: str | None = None) -> int:
        """What a listing of `master` (in stock `region`) holds back: every unbooked unit where
        the listing has no `as_of` (its figure is set outright); else all but those of orders
        placed after `as_of` whose line took its units from this listing's pool (its region's,
        or the one pool): those were not in the figure as read, and the channel's write takes
        them off (it sets the target less what sold since the read: less_sold_since_read). So
        each order is counted once, by one side or the other, never by both and never by
        neither. A line of another region, or whose region is unknown, is held back whatever its
        time (in the regional design every region holds back every unbooked unit of its SKU)."""
        total = self.total(master)
        if as_of is None:
            return total
        pool = (master, region)
        sums = self._sums.get(pool)
        if not sums:
            return total
        placed_by = bisect_right(self._at[pool], as_of)
        return total - (sums[-1] - (sums[placed_by - 1] if placed_by else 0))

    def as_dict(self) -> dict[str, int]:
        return dict(self._totals)


def unbooked_units(orders: Mapping[str, Order], booked: Collection[str], sku_map: Mapping[str, str]) -> dict[str, int]:
    """Every unbooked unit per master SKU (UnbookedUnits, whatever the listing has read)."""
    return UnbookedUnits(orders, booked, sku_map).as_dict()


def less_sold_since_read(target: int, read_quantity: int | None, current_quantity: int | None) -> int:
    """The quantity to set where the channel takes its own orders off the figure we set: the
    target, less what was sold on the channel between our read of it and this write (orders
    placed after the listing's `as_of`, which UnbookedUnits.for_listing leaves to this), never
    below zero."""
    if read_quantity is None or current_quantity is None:
        return target
    return max(0, target - max(0, read_quantity - current_quantity))
