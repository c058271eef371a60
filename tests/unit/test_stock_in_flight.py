"""Orders captured on the channel and not booked in the master are held back exactly once, for any
interleaving of shoppers placing, paying and cancelling orders, orders_in booking them, Cin7
restocking, and a stock_out run's reads and write. The model is the contract of the ports:

- the ledger's link sequence is read (K) before the master's stock (R); the listings (L) before
  the captured orders (O); the write (W) comes last;
- a channel that takes its orders off its own figure (commercetools) gives each listing an
  `as_of` (the figure's last change: an order placed at or before it is in the figure, a later
  one is not) and its write sets the target less what sold since the read;
- a channel whose figure is set outright gives none, and counts nothing of its own.

After every write: the channel shows no more than sellable(master - unbooked), and exactly that
unless the interleaving itself leaves no single right answer (a booking between K and R, a
cancellation between L and W: those are counted twice, i.e. the channel shows less, never more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.models import Order, OrderLine
from commerce_sync.pairing import Buffer
from commerce_sync.stock import UnbookedUnits, less_sold_since_read, sellable

T0 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
SKU_MAP = {"ch-A": "A", "ch-B": "B"}


@dataclass
class Placed:
    key: str
    qty: int
    sku: str  # the master SKU; the channel sells it as ch-<sku>
    at: datetime  # on the channel's clock
    seq: int  # position in the interleaving
    paid: bool
    link: int | None = None  # the ledger link's sequence number once booked
    booked_seq: int | None = None
    cancelled_seq: int | None = None

    def order(self) -> Order:
        return Order(channel="model", channel_ref=self.key, channel_id=self.key, placed_at=self.at, currency="GBP",
                     lines=[OrderLine(line_ref=f"{self.key}-1", sku=f"ch-{self.sku}", quantity=self.qty, unit_price=Decimal(1), line_total=Decimal(self.qty))],
                     total=Decimal(self.qty), tax_inclusive=True)


class World:
    """One SKU `A` on the channel (plus orders for `B`, which must not touch it), Cin7 behind."""

    def __init__(self, self_decrementing: bool, on_hand: int, figure: int, buffer: Buffer) -> None:
        self.self_decrementing, self.buffer = self_decrementing, buffer
        self.tick = 0
        self.figure, self.stamp = figure, self.now()  # the channel's figure for A and its last change
        self.on_hand, self.allocated = on_hand, 0
        self.orders: list[Placed] = []
        self.links = 0
        self.seq = 0
        self.checked = self.exact = 0

    def now(self) -> datetime:
        self.tick += 1
        return T0 + timedelta(milliseconds=self.tick)

    # -- what happens outside stock_out ---------------------------------------------------------
    def place(self, qty: int, sku: str, paid: bool) -> None:
        at = self.now()
        self.orders.append(Placed(f"o{len(self.orders)}", qty, sku, at, self.seq, paid))
        if self.self_decrementing and sku == "A":
            self.figure -= qty  # placing it takes its units off the entry, at that same moment
            self.stamp = at

    def pay(self, i: int) -> None:
        if self.orders:
            self.orders[i % len(self.orders)].paid = True

    def book(self) -> None:
        """orders_in books the oldest paid order: Cin7 allocates it, then the link is written."""
        for o in self.orders:
            if o.paid and o.link is None and o.cancelled_seq is None:
                if o.sku == "A":
                    self.allocated += o.qty
                self.links += 1
                o.link, o.booked_seq = self.links, self.seq
                return

    def cancel(self, i: int) -> None:
        """The shopper cancels an order not booked yet; the channel does not put its units back."""
        if self.orders:
            o = self.orders[i % len(self.orders)]
            if o.link is None and o.cancelled_seq is None:
                o.cancelled_seq = self.seq

    def restock(self, n: int) -> None:
        self.on_hand += n

    # -- one stock_out run, its steps interleaved with the above ----------------------------------
    def run(self, schedule: list) -> None:
        steps: dict[str, int] = {}
        for item in schedule:
            self.seq += 1
            if isinstance(item, str):
                steps[item] = self.seq
                getattr(self, f"_{item}")()
                if item == "W":
                    self._check(steps)  # what the channel shows the moment the write lands
            else:
                getattr(self, item[0])(*item[1:])

    def _K(self) -> None:
        self.mark = self.links

    def _R(self) -> None:
        self.master = self.on_hand - self.allocated

    def _L(self) -> None:
        self.read, self.as_of = self.figure, (self.stamp if self.self_decrementing else None)

    def _O(self) -> None:
        # the sources (ledger and channel) together: every order placed, less those cancelled
        self.captured = {o.key: o.order() for o in self.orders if o.cancelled_seq is None}
        self.linked = {o.key: o.link for o in self.orders if o.link is not None}

    def _W(self) -> None:
        booked = {ref for ref, link in self.linked.items() if link <= self.mark}
        held = UnbookedUnits(self.captured, booked, SKU_MAP).for_listing("A", self.as_of)
        target = sellable(Decimal(self.master - held), self.buffer)
        self.figure = less_sold_since_read(target, self.read, self.figure) if self.self_decrementing else target
        self.stamp = self.now()

    def _check(self, at: dict[str, int]) -> None:
        # the truth at the write: every order of A placed by then (by the orders read, where the
        # channel counts nothing of its own), not booked before Cin7's stock was read
        last = at["W"] if self.self_decrementing else at["O"]
        unbooked = sum(o.qty for o in self.orders if o.sku == "A" and o.seq < last and (o.booked_seq is None or o.booked_seq > at["R"])
                       and (o.cancelled_seq is None or o.cancelled_seq > at["O"]))
        expected = sellable(Decimal(self.master - unbooked), self.buffer)
        assert self.figure <= expected, f"the channel shows {self.figure}, more than Cin7 can ship less unbooked orders ({expected})"
        ambiguous = any(o.booked_seq is not None and at["K"] < o.booked_seq < at["R"] for o in self.orders) or any(
            o.cancelled_seq is not None and at["L"] < o.cancelled_seq < at["W"] for o in self.orders)
        self.checked += 1
        if not ambiguous and self.buffer.percent == 0:
            # exactly once: no order both in what was held back and in what the write took off
            assert self.figure == expected, f"the channel shows {self.figure}, not {expected}: an order counted twice"
            self.exact += 1


events = st.one_of(
    st.tuples(st.just("place"), st.integers(1, 3), st.sampled_from(["A", "A", "A", "B"]), st.booleans()),
    st.tuples(st.just("pay"), st.integers(0, 50)),
    st.tuples(st.just("book")),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("restock"), st.integers(1, 5)),
)


@st.composite
def runs(draw):
    """A stock_out run: its steps in the flow's order (the ledger mark, then the master's stock and
    the listings in either order, then the orders, then the write), events anywhere among them."""
    middle = ["R", "L"] if draw(st.booleans()) else ["L", "R"]
    steps = ["K", *middle, "O", "W"]
    schedule: list = []
    for step in steps:
        schedule += draw(st.lists(events, max_size=4))
        schedule.append(step)
    return schedule + draw(st.lists(events, max_size=3))


@settings(max_examples=300, deadline=None)
@given(self_decrementing=st.booleans(), on_hand=st.integers(0, 40), figure=st.integers(0, 40), units=st.integers(0, 2), percent=st.sampled_from([0, 0, 10]),
       schedule=st.lists(runs(), min_size=1, max_size=4))
def test_unbooked_orders_are_held_back_exactly_once_in_any_interleaving(self_decrementing, on_hand, figure, units, percent, schedule):
    world = World(self_decrementing, on_hand, figure, Buffer(units=units, percent=Decimal(percent)))
    for run in schedule:
        world.run(run)
    assert world.checked == len(schedule)


def test_an_order_placed_between_the_listings_read_and_the_orders_read_is_counted_once():
    """The gap left before: the order is in the orders read and also sold after the listing's
    read, so the write takes it off; the listing must not hold it back as well."""
    world = World(True, on_hand=20, figure=19, buffer=Buffer(units=1))
    world.run(["K", "R", "L", ("place", 2, "A", True), "O", "W"])
    assert world.figure == 20 - 2 - 1 and world.exact == 1
    # the channel that sets its figure outright counts nothing itself: the listing holds it back
    world = World(False, on_hand=20, figure=19, buffer=Buffer(units=1))
    world.run(["K", "R", "L", ("place", 2, "A", True), "O", "W"])
    assert world.figure == 17


def test_an_order_booked_after_the_stock_read_still_counts_and_one_booked_before_does_not():
    world = World(True, on_hand=20, figure=19, buffer=Buffer(units=1))
    world.run([("place", 3, "A", True), ("place", 2, "A", True), ("book",), "K", "R", ("book",), "L", "O", "W"])
    # o0 was in Cin7's stock when read (allocated); o1 was booked after it: not in that read, held back
    assert world.master == 20 - 3 and world.figure == 20 - 3 - 2 - 1 and world.exact == 1


def test_an_unpaid_order_is_held_back_and_a_cancelled_one_no_more():
    world = World(True, on_hand=20, figure=19, buffer=Buffer(units=1))
    world.run([("place", 4, "A", False), "K", "R", "L", "O", "W"])
    assert world.figure == 20 - 4 - 1  # taken, not bookable until paid: its units are promised
    world.run([("cancel", 0), "K", "R", "L", "O", "W"])
    assert world.figure == 20 - 1  # cancelled: back on sale


def test_the_listing_holds_back_the_orders_its_figure_already_reflects():
    from commerce_sync.stock import unbooked_units

    def placed(ref, at, qty, sku="A"):
        return Placed(ref, qty, sku, at, 0, True).order()

    orders = {k: placed(k, T0 + timedelta(seconds=s), q) for k, s, q in (("a", 1, 2), ("b", 2, 3), ("c", 3, 1))}
    orders["d"] = placed("d", T0, 7, sku="B")
    units = UnbookedUnits(orders, booked={"b"}, sku_map=SKU_MAP)
    assert units.for_listing("A", None) == 3 and units.total("A") == 3 and units.for_listing("B", None) == 7
    assert units.for_listing("A", T0) == 0  # none of A's placed by then
    assert units.for_listing("A", T0 + timedelta(seconds=1)) == 2  # at the moment counts: it is in the figure
    assert units.for_listing("A", T0 + timedelta(seconds=2, milliseconds=500)) == 2  # b is booked
    assert units.for_listing("A", T0 + timedelta(days=1)) == 3
    assert unbooked_units(orders, {"b"}, SKU_MAP) == {"A": 3, "B": 7}


def test_in_a_region_only_the_lines_that_took_that_regions_stock_are_left_to_the_channels_write():
    """Where the channel keeps stock per region, an order placed after a listing's read took its
    units off its own region's entry only: another region's listing never sees it taken off, so
    holds it back whatever its time, as does any listing for a line whose region is unknown."""
    def line_in(ref, at, qty, region):
        return Order(channel="model", channel_ref=ref, channel_id=ref, placed_at=at, currency="GBP", total=Decimal(qty), tax_inclusive=True,
                     lines=[OrderLine(line_ref=f"{ref}-1", sku="ch-A", quantity=qty, unit_price=Decimal(1), line_total=Decimal(qty), region=region)])

    read = T0 + timedelta(seconds=10)
    orders = {"early": line_in("early", T0, 1, "uk"), "late-uk": line_in("late-uk", read + timedelta(seconds=1), 2, "uk"),
              "late-eu": line_in("late-eu", read + timedelta(seconds=1), 4, "eu"), "late-unknown": line_in("late-unknown", read + timedelta(seconds=2), 8, None)}
    units = UnbookedUnits(orders, booked=set(), sku_map=SKU_MAP)
    assert units.total("A") == 15
    assert units.for_listing("A", read, "uk") == 15 - 2  # the uk write takes late-uk off
    assert units.for_listing("A", read, "eu") == 15 - 4
    assert units.for_listing("A", read, "us") == 15  # nothing of us sold after the read
    assert units.for_listing("A", read, None) == 15 - 8  # one pool: a line of unknown region is that pool's
    assert units.for_listing("A", None, "uk") == 15  # set outright: every unbooked unit
