"""The two ports every flow is written against. A system module implements one of them.

If a flow ever needs `if channel == ...`, the port is missing a method: add it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from commerce_sync.models import CatalogueProduct, CreditNoteRef, Listing, Order, PayoutLine, Refund, SaleRef, Shipment, StockLevel, TranslationError, tax_key

RawRecord = dict[str, Any]


# -- capabilities -------------------------------------------------------------------------------
# What a system can do for the flows. Each system module declares the ones it offers as
# `CAPABILITIES` (a frozenset of these names); factory.FLOW_NEEDS says what each flow asks of the
# master and of the channel, and the factory refuses to build a flow a pairing's systems cannot
# serve. A master that lacks one (Centra keeps no general ledger) says so here, never through a
# branch on its name in a flow.
# master side
SALES = "sales"  # find_sales, create_sale, complete_sale
SALE_AMOUNTS = "sale_amounts"  # sale_amounts, sale_total
AVAILABILITY = "availability"  # read_availability
FULFILMENTS = "fulfilments"  # updated_sales, read_shipments
JOURNALS = "journals"  # find_journal, post_journal (a general ledger)
CREDIT_NOTES = "credit_notes"  # find_credit_note, create_credit_note
CUSTOMER_CURRENCY = "customer_currency"  # customer_currency
CHANGE_EVENTS = "change_events"  # an event feed read now and confirmed once the step has committed (ConfirmsReads)
MASTER_RETURNS = "master_returns"  # refunds/returns started in the master can be read (MasterReturns)
CATALOGUE = "catalogue"  # products and prices can be read (the master is product master): CatalogueMaster
# channel side
ORDERS = "orders"  # fetch_orders, captured_orders, record_key, to_order, acknowledge_order
ACCEPTANCE = "acceptance"  # orders_awaiting_acceptance, accept_order
# orders are read from a queue the channel keeps until told (OrderQueue): acknowledge_order takes a
# booked order off it (so it is repeated for an order found already booked: a crash or a lost
# answer may have come between the booking and the acknowledgement), hold_order marks one the gate
# holds, so the channel's own back office shows it and the queue moves on
ORDER_QUEUE = "order_queue"
STOCK = "stock"  # read_listings, push_stock
SHIPMENTS = "shipments"  # push_shipment
REFUNDS = "refunds"  # fetch_refunds, to_refund
PAYOUTS = "payouts"  # fetch_payouts, to_payout_lines
CATALOGUE_READ = "catalogue_read"  # selling_skus: what a shopper can buy there now (CatalogueReader)
CATALOGUE_WRITE = "catalogue_write"  # find, create and update products with the master's fields (CatalogueWriter)
CATALOGUE_UNPUBLISH = "catalogue_unpublish"  # take_off_sale (CatalogueUnpublisher)
REFUND_REQUESTS = "refund_requests"  # open_refund_request: a refund made in the master reaches the channel (RefundRequester)


@runtime_checkable
class OrderQueue(Protocol):
    """A channel whose orders wait in a queue until acknowledged (ORDER_QUEUE)."""

    def hold_order(self, record_key: str, reason: str) -> None:
        """The gate holds this order (record_key as `record_key(raw)` gives it): show it as held
        on the channel, with the reason where the channel keeps one. Repeating it is harmless;
        acknowledge_order after a replay books it."""


@runtime_checkable
class ConfirmsReads(Protocol):
    """An adapter that reads from a queue the system keeps until told the reader is done with it
    (Centra's events). What it reads stays pending until `confirm_reads()`, which the runtime calls
    only after the step that read it has returned, i.e. once the step's own writes are committed: a
    worker that dies in between leaves the items queued, and they are read again."""

    def confirm_reads(self) -> None: ...


@runtime_checkable
class AvailabilityChanges(Protocol):
    """A master that says which SKUs' stock changed since its last confirmed read (an event feed:
    CHANGE_EVENTS). stock_out then reads only those between its daily full reads; what it reads
    stays queued until confirmed (ConfirmsReads)."""

    def changed_skus(self) -> set[str]:
        """Master SKUs whose stock changed since the last confirmed read."""

    def availability_of_skus(self, skus: Iterable[str]) -> Iterator[StockLevel | TranslationError]:
        """read_availability for these SKUs only."""


@dataclass(frozen=True)
class SaleInstructions:
    """How the pairing wants a channel order booked in the ERP (from its file and mappings)."""

    external_id: str
    customer: str
    location: str
    tax_rule: str
    tax_calculation: str  # "Inclusive" or "Exclusive": this sale's own mode (the order's, else the pairing's)
    status: str
    sku_map: Mapping[str, str]  # channel SKU -> master SKU
    source_channel: str
    seller_label: str | None = None  # kept on the sale so finance can see whose sale it is
    shipping_description: str = "Shipping"
    discount_description: str = "Discount"
    extra: Mapping[str, Any] = field(default_factory=dict)
    # the channel's taxes (models.tax_key) -> ERP tax rules, from tax_codes.csv; an item whose tax
    # is not here is booked with `tax_rule` (the gate has already held orders with unmapped taxes)
    tax_rules: Mapping[tuple[str, Decimal], str] = field(default_factory=dict)

    def tax_rule_for(self, item: Any) -> str:
        """The ERP tax rule for an order line or charge."""
        key = tax_key(getattr(item, "tax_name", None), getattr(item, "tax_rate", None))
        return self.tax_rules.get(key, self.tax_rule) if key else self.tax_rule

    @property
    def tax_inclusive(self) -> bool:
        return self.tax_calculation.lower() == "inclusive"


@runtime_checkable
class Channel(Protocol):
    """A sales channel: where orders are captured."""

    name: str

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Yield raw, channel-native order records created/updated in [start, end)."""

    def captured_orders(self, start: datetime, end: datetime) -> Iterator[tuple[RawRecord, bool]]:
        """Orders changed in [start, end) that the channel has taken from shoppers, whether
        bookable by the pairing's policy yet or not (awaiting payment, confirmation or the
        seller's acceptance): (raw, True) while the channel holds stock for it, (raw, False) once
        it has let it go (cancelled, refused, failed). Others (shipped, closed) need not be
        yielded. stock_out holds the units of those not booked back from what it pushes."""

    def record_key(self, raw: RawRecord) -> str:
        """A stable key for a raw record (used for staging, quarantine and replay)."""

    def to_order(self, raw: RawRecord) -> Order:
        """Translate one raw record; raise TranslationError when it cannot be read."""

    def orders_awaiting_acceptance(self) -> Iterator[RawRecord]:
        """Orders the seller must accept or refuse line by line (nothing where the channel has no
        acceptance step; only called when the pairing has an `acceptance:` section)."""

    def accept_order(self, order: Order, decisions: Mapping[str, bool]) -> None:
        """Accept (True) or refuse (False) each line, by line_ref. Repeating a decision that
        already reached the channel is not an error."""

    def acknowledge_order(self, order: Order, master_ref: SaleRef) -> None:
        """Tell the channel the order reached the ERP (no-op where the channel has no such call).
        orders_in calls it on a background thread of its load (the only user of this adapter
        while the load calls the master), and again for an order a retry of the run finds
        booked: repeating it must be harmless."""

    def read_listings(self) -> dict[str, Listing]:
        """Every listing on the channel by channel SKU, with the stock the channel shows; with
        `as_of` where the channel takes its own orders off that figure (see push_stock)."""

    def push_stock(self, updates: list[tuple[Listing, int]]) -> list[tuple[str, str | None]]:
        """Set stock for listings, batched as the API allows; (listing.key, error or None) per
        update (the key is the SKU but for a listing in a region). A listing read with `as_of`
        is set to the quantity less what sold on the channel after that read (the listing's
        `quantity` then against its figure now: stock.less_sold_since_read); one without, to the
        quantity."""

    def fetch_payouts(self, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Payouts (one per order and payment) paid in [start, end), channel-native."""

    def to_payout_lines(self, raw: RawRecord) -> list[PayoutLine]:
        """One payout as lines by kind: payment (net), commission, commission_tax, fee, refund."""

    def fetch_refunds(self, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Completed refunds updated in [start, end), channel-native."""

    def to_refund(self, raw: RawRecord) -> Refund:
        """Translate one raw refund; raise TranslationError when it cannot be read."""

    def push_shipment(self, order_channel_id: str, shipment: Shipment, carrier: str) -> str:
        """Create the shipment (lines carry channel SKUs) unless one with its tracking number is
        already there; returns the channel's shipment id. Refusals raise ClientError."""


@runtime_checkable
class Master(Protocol):
    """The ERP: master of SKUs, stock and fulfilment."""

    name: str

    def find_sales(self, external_ids: Iterable[str], created_since: datetime) -> dict[str, SaleRef]:
        """Sales already holding one of `external_ids`, keyed by external id.

        `created_since` bounds the search: a sale for an order cannot predate the order.
        """

    def create_sale(self, order: Order, how: SaleInstructions) -> SaleRef:
        """Create the sale (header and lines) for `order`."""

    def updated_sales(self, since: datetime) -> Iterator[SaleRef]:
        """Sales changed since `since` (shipping is a change)."""

    def read_shipments(self, sale: SaleRef) -> list[Shipment | TranslationError]:
        """Shipped boxes of one sale, one Shipment per box with the quantities packed in it."""

    def sale_total(self, sale_id: str) -> Decimal:
        """What the ERP booked as the sale's total."""

    def sale_amounts(self, sale_id: str) -> dict[str, Decimal]:
        """The sale's booked total and tax: {"total": ..., "tax": ...}."""

    def sale_totals(self, external_ids: Iterable[str], created_since: datetime) -> dict[str, SaleRef]:
        """Sales holding these external ids, keyed by external id, each with its booked `total`
        and `currency` (settlement matching: thousands at once, read in bulk where the ERP can).
        `created_since` is where a bulk read starts; an id not found there is still looked up."""

    def credit_notes(self, sale_id: str) -> list[CreditNoteRef]:
        """The credit notes the ERP holds on a sale, with their totals."""

    def find_journal(self, reference: str) -> str | None:
        """The journal already posted under `reference`, if any."""

    def post_journal(self, reference: str, effective: datetime, currency: str, lines: list[tuple[str, str, Decimal]]) -> str:
        """Post (debit account, credit account, amount) lines as one authorised journal."""

    def find_credit_note(self, sale_id: str, refund_ref: str) -> str | None:
        """The credit note already made for this refund, if any (a lost answer must not make two)."""

    def create_credit_note(self, sale_id: str, refund: Refund, sku_map: Mapping[str, str], tax_rule: str) -> str:
        """Credit the refunded lines and amounts on the sale, never restocking; returns its id."""

    def read_availability(self) -> Iterator[StockLevel | TranslationError]:
        """Available-to-sell per SKU and location, as the ERP reports it (all pages); a row that
        cannot be read comes back as a TranslationError in its place."""

    def complete_sale(self, sale: SaleRef, order: Order, how: SaleInstructions) -> SaleRef:
        """Finish a sale whose header exists but whose lines were never added (a crash between calls)."""

    def customer_currency(self, customer: str) -> str | None:
        """The currency the ERP books this customer's sales in (an ERP takes a sale's currency from
        its customer); None when the ERP does not know the customer or keeps no currency per
        customer. Read sparingly: cached by the adapter, never once per order."""


# -- the catalogue (catalogue_out) ------------------------------------------------------------
# Separate protocols, one per capability: a channel that can only say what it sells (a storefront
# whose products are made elsewhere) implements CatalogueReader alone, and the flow then only checks.


@dataclass(frozen=True)
class ListingInstructions:
    """How the pairing wants a master product written to the channel (from its file and mappings)."""

    fields: tuple[str, ...]  # the fields the master owns: only these are written (the SKU always)
    sku_map: Mapping[str, str] = field(default_factory=dict)  # master SKU -> channel SKU (else the same)
    publish: bool = False  # False: created unpublished, for the channel's people to enrich first
    category: str | None = None  # the channel's category of this product (categories mapping)
    attributes: Mapping[str, str] = field(default_factory=dict)  # channel attribute -> value (attributes mapping)
    item_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # master SKU -> channel attribute -> value
    price_list: str | None = None  # the master price list whose price is the channel's (when `price` is owned)

    def channel_sku(self, master_sku: str) -> str:
        return self.sku_map.get(master_sku, master_sku)


@runtime_checkable
class CatalogueMaster(Protocol):
    """A master that owns the product record (CATALOGUE)."""

    def catalogue_changes(self, since: datetime | None) -> Iterator[RawRecord]:
        """Products (with their SKUs) changed since `since`, discontinued ones included; every
        product when `since` is None. Master-native records."""

    def catalogue_key(self, raw: RawRecord) -> str:
        """A stable key for a raw product (its id in the master)."""

    def to_catalogue_product(self, raw: RawRecord) -> CatalogueProduct:
        """Translate one raw product; raise TranslationError when it cannot be read."""


@runtime_checkable
class CatalogueReader(Protocol):
    """A channel that can say what it sells (CATALOGUE_READ)."""

    def selling_skus(self) -> dict[str, Listing]:
        """Every SKU a shopper can buy on the channel now (published, orderable), by channel SKU."""


@runtime_checkable
class CatalogueWriter(Protocol):
    """A channel whose products the integration may create and update (CATALOGUE_WRITE)."""

    def find_listing(self, product: CatalogueProduct, how: ListingInstructions) -> str | None:
        """The channel's product already holding any of the product's SKUs, if any (a create whose
        answer was lost must not be made twice)."""

    def create_listing(self, product: CatalogueProduct, how: ListingInstructions) -> str:
        """Create the product with only `how.fields` (unpublished unless `how.publish`); returns
        the channel's id for it. Refusals raise ClientError (RefusedFields naming the fields)."""

    def update_listing(self, listing_id: str, product: CatalogueProduct, how: ListingInstructions) -> bool:
        """Write the owned fields that differ, nothing else; True when something changed."""


@runtime_checkable
class CatalogueUnpublisher(Protocol):
    """A channel that can take a listing off sale, keeping its data (CATALOGUE_UNPUBLISH)."""

    def take_off_sale(self, listing: Listing) -> None:
        """No shopper can buy it any more; doing it twice is not an error."""


# -- refunds started in the master (the refunds flow with `refunds.origin: master`) --------------


@runtime_checkable
class MasterReturns(Protocol):
    """A master where refunds start (MASTER_RETURNS): completed returns/refunds can be read."""

    def fetch_returns(self, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Refunds or completed returns changed in [start, end), master-native."""

    def return_key(self, raw: RawRecord) -> str:
        """A stable key for a raw return (staging, quarantine, the ledger's link)."""

    def to_refund(self, raw: RawRecord) -> Refund:
        """Translate one; `order_master_ref` names the master's sale. Raise TranslationError when unreadable."""


@runtime_checkable
class RefundRequester(Protocol):
    """A channel on which the seller can open a refund request for an order (REFUND_REQUESTS)."""

    def open_refund_request(self, order_channel_id: str, refund: Refund, reference: str) -> str:
        """Request the refund of `refund`'s lines (channel SKUs) on the order, unless a request
        carrying `reference` is already there (an attempt whose answer was lost); returns its
        id. Refusals raise ClientError."""
