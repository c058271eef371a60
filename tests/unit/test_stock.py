"""Available-to-sell: the rule that keeps channels from overselling."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest

from commerce_sync.factory import full_resync_due
from commerce_sync.models import StockLevel
from commerce_sync.pairing import Buffer, StockPolicy
from commerce_sync.stock import buffer_for, sellable, total_available


@pytest.mark.parametrize(
    "available, units, percent, expected",
    [
        (10, 0, 0, 10),
        (10, 2, 0, 8),
        (10, 0, 10, 9),
        (11, 0, 10, 9),  # 10% of 11 is 1.1: two units held, the buffer never shrinks by rounding
        (10, 2, 10, 7),
        (1, 1, 0, 0),  # the buffer takes the SKU to zero
        (1, 5, 0, 0),  # ...and never below
        (0, 0, 50, 0),
    ],
)
def test_sellable_applies_units_and_percent_and_never_goes_below_zero(available, units, percent, expected):
    assert sellable(Decimal(available), Buffer(units=units, percent=Decimal(percent))) == expected


def test_totals_sum_only_the_pairings_locations_exactly():
    levels = [
        StockLevel(sku="A", location="Main Warehouse", available=Decimal("3")),
        StockLevel(sku="A", location="Sydney Store", available=Decimal("100")),
        StockLevel(sku="A", location="Overflow", available=Decimal("2")),
        StockLevel(sku="B", location="Main Warehouse", available=Decimal("0.5")),
    ]
    assert total_available(levels, ["Main Warehouse", "Overflow"]) == {"A": Decimal("5"), "B": Decimal("0.5")}


def test_per_sku_buffers_override_the_default():
    policy = StockPolicy(locations=["WH"], buffer=Buffer(units=1), sku_buffers={"CAP": Buffer(percent=Decimal("10"))})
    assert buffer_for("CAP", policy).percent == 10 and buffer_for("TEE", policy).units == 1


def test_full_resync_when_the_interval_covers_the_hour_or_when_asked():
    t = datetime(2026, 11, 22, 2, 50, tzinfo=timezone.utc)
    assert full_resync_due(t, t + timedelta(minutes=15), None, 3) is True
    assert full_resync_due(t + timedelta(minutes=15), t + timedelta(minutes=30), None, 3) is False
    assert full_resync_due(t + timedelta(minutes=15), t + timedelta(minutes=30), SimpleNamespace(conf={"full": True}), 3) is True
    assert full_resync_due(t, t + timedelta(minutes=15), None, None) is False


def _order(ref, *lines):
    from commerce_sync.models import Order, OrderLine

    return Order(channel="t", channel_ref=ref, channel_id=f"id-{ref}", placed_at=datetime(2026, 11, 30, tzinfo=timezone.utc), currency="GBP",
                 lines=[OrderLine(line_ref=f"{ref}-{i}", sku=sku, quantity=q, unit_price=Decimal("1"), line_total=Decimal(q)) for i, (sku, q) in enumerate(lines)],
                 total=Decimal(sum(q for _, q in lines)), tax_inclusive=True)


def test_unbooked_orders_are_held_back_once_each_and_booked_ones_not_at_all():
    from commerce_sync.stock import unbooked_units

    sku_map = {"ch-A": "A", "ch-B": "B"}
    # keyed by record key: an order both staged and still on the channel is one entry, so once
    orders = {"r1": _order("1", ("ch-A", 2), ("ch-B", 1)), "r2": _order("2", ("ch-A", 3)), "r3": _order(None, ("ch-A", 1)),
              "r4": _order("4", ("ch-UNMAPPED", 5))}
    assert unbooked_units(orders, booked=set(), sku_map=sku_map) == {"A": 6, "B": 1}  # a held order without a reference counts
    assert unbooked_units(orders, booked={"2"}, sku_map=sku_map) == {"A": 3, "B": 1}  # booked: the ERP's figure has it
    assert unbooked_units(orders, booked={"1", "2"}, sku_map=sku_map) == {"A": 1}
    # what the channel is told: the ERP's availability less the unbooked units, then the buffer
    assert sellable(Decimal(10) - unbooked_units(orders, set(), sku_map)["A"], Buffer(units=1)) == 3
    assert sellable(Decimal(4) - 6, Buffer(units=0)) == 0  # more captured than the ERP has: zero, never below


@pytest.mark.parametrize("target, read, current, expected", [
    (10, 12, 12, 10),  # nothing sold since the read
    (10, 12, 9, 7),  # three sold on the channel after the read: not in the target yet
    (10, 12, 15, 10),  # someone added stock: the ERP's figure wins, nothing is added
    (2, 12, 5, 0),  # never below zero
    (10, None, 3, 10),  # nothing read: the target as it is
])
def test_what_sold_on_the_channel_after_the_read_comes_off_the_target(target, read, current, expected):
    from commerce_sync.stock import less_sold_since_read

    assert less_sold_since_read(target, read, current) == expected


def test_a_region_has_its_own_buffer_and_a_sku_buffer_still_wins():
    policy = StockPolicy(locations=["Main"], buffer=Buffer(units=2), sku_buffers={"CAP": Buffer(units=9)},
                         regions={"us": {"locations": ["US"], "buffer": {"units": 3, "percent": 5}}})
    assert sellable(Decimal(40), buffer_for("TEE", policy, "us")) == 35  # 3 units and 5% of 40
    assert sellable(Decimal(40), buffer_for("TEE", policy)) == 38  # outside a region: the pairing's
    assert sellable(Decimal(40), buffer_for("CAP", policy, "us")) == 31
    levels = [StockLevel(sku="TEE", location=loc, available=Decimal(n)) for loc, n in (("Main", 10), ("US", 40))]
    assert total_available(levels, policy.regions["us"].locations) == {"TEE": Decimal(40)}
