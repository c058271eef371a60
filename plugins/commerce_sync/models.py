"""Canonical models: what every flow speaks, whatever the vendor.

No vendor field names here. Money is Decimal with an ISO currency; times are timezone-aware.
Rounding lives in `money.py` and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt


class TranslationError(ValueError):
    """A vendor payload could not be turned into a canonical model (or back).

    Raised by systems/ adapters; flows turn it into a quarantine row with `reason`.
    """

    def __init__(self, reason: str, *, record_key: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.record_key = record_key


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value


def _no_float(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite number")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Amount = Annotated[Decimal, AfterValidator(_no_float)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class _Model(BaseModel):
    # strict on types that matter for money: a float never becomes a Decimal silently
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Address(_Model):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None


class ShipTo(Address):
    """Where a box goes and to whom, as the ERP holds it for the warehouse (packing slips)."""

    name: str | None = None
    company: str | None = None

    def lines(self) -> list[str]:
        """As printed on a label: name, company, street, town with postcode, country."""
        town = " ".join(p for p in (self.city, self.state, self.postcode) if p)
        return [p for p in (self.name, self.company, self.line1, self.line2, town, self.country) if p]


class Customer(_Model):
    """Personal data: carried to the ERP, redacted in every log."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None


class OrderLine(_Model):
    line_ref: str
    sku: str
    name: str | None = None
    quantity: StrictInt
    unit_price: Amount
    discount: Amount = Decimal("0")  # money off this line, positive number
    line_total: Amount  # what the customer pays for the line, after discount
    tax: Amount = Decimal("0")
    # the channel's own tax on this line (its name and rate, a fraction), for the pairing's tax
    # mapping (tax_codes.csv); None where the channel names none (the pairing's tax_rule applies)
    tax_name: str | None = None
    tax_rate: Decimal | None = None
    # the channel's stock pool (Listing.region) the line took its units from, where the channel
    # keeps stock per region and says so; None where unknown or the channel has one pool
    region: str | None = None


class Charge(_Model):
    """Shipping, handling and other order-level charges (positive) or discounts (negative)."""

    kind: str  # "shipping", "discount", "fee"
    description: str
    amount: Amount
    tax: Amount = Decimal("0")  # the tax inside `amount`, as the channel stated it
    tax_name: str | None = None  # as on OrderLine
    tax_rate: Decimal | None = None


class Order(_Model):
    """One channel order as the ERP should receive it.

    For Marketplacer this is one invoice (one seller's share of a marketplace order).
    """

    channel: str
    channel_ref: str | None  # the reference the ERP keeps as ExternalID; None fails the gate
    channel_id: str  # the channel's own id (for acknowledgements and shipments)
    placed_at: AwareDatetime
    currency: Currency
    seller_ref: str | None = None
    seller_name: str | None = None
    customer: Customer = Customer()
    lines: list[OrderLine]
    charges: list[Charge] = []
    total: Amount  # in the order's own tax mode: with tax when tax_inclusive, without it when not
    tax_total: Amount = Decimal("0")
    # The order's tax mode as the channel states it: True = prices and total include tax, False =
    # they exclude it (tax is added on top), None = the channel states no mode (the pairing's
    # `tax_calculation` decides). Required: every adapter must say, never lean on a default.
    tax_inclusive: bool | None
    note: str | None = None
    ship_by: AwareDatetime | None = None  # the channel's dispatch deadline while it still awaits dispatch


class StockLevel(_Model):
    """What the ERP says can be sold of a SKU at a location. Decimal, because ERPs hold
    fractional stock (and the gate must see it to refuse it), never rounded here."""

    sku: str
    location: str | None = None
    available: Amount


class Listing(_Model):
    """A sellable item on a channel: its SKU there, the channel's handle for it, its stock."""

    sku: str
    listing_id: str
    quantity: int | None = None
    where: str | None = None  # where it sells, for people reading a report (the sites it is orderable on)
    # the channel's stock pool it draws from, where a channel keeps stock per region (the pairing's
    # stock.regions say which ERP locations and buffer feed it); None: the pairing's one pool
    region: str | None = None
    # False: sold there (orderable, priced) but the channel keeps no stock record for it yet, so
    # its stock is unknown to shoppers (drift_monitor reports it as `no_inventory_record`)
    recorded: bool = True
    # where the channel takes its own orders off `quantity` and its push_stock takes off what sold
    # after this read (stock.less_sold_since_read): the moment, on the channel's clock, up to which
    # `quantity` holds its orders (an order placed at or before it is in the figure, a later one
    # is not). None where the channel's figure is set outright: every unbooked order is held back
    as_of: AwareDatetime | None = None

    @property
    def key(self) -> str:
        """Its key in stock_out (snapshot, quarantine): the SKU, `<region>:<SKU>` in a region."""
        return f"{self.region}:{self.sku}" if self.region else self.sku


class ItemPrice(_Model):
    """A selling price the product master holds for a SKU, in one of its price lists."""

    price_list: str
    amount: Amount
    currency: Currency


class CatalogueItem(_Model):
    """One SKU as the product master holds it. Only what the master owns is here: descriptions,
    images and merchandising belong to the channel's people."""

    sku: str
    name: str | None = None
    barcode: str | None = None
    weight: Amount | None = None
    weight_unit: str | None = None
    prices: list[ItemPrice] = []
    attributes: dict[str, str] = {}  # the SKU's own (size, colour), by the master's attribute name


class CatalogueProduct(_Model):
    """A product of the master with its SKUs (one, for an ERP whose products are SKUs)."""

    product_ref: str  # the master's id for the product: stable while names and SKUs change
    name: str | None = None
    category: str | None = None  # the master's category (a folder, a product category)
    attributes: dict[str, str] = {}  # product-level (brand, material), by the master's attribute name
    items: list[CatalogueItem]
    active: bool = True  # False: discontinued in the master (deprecated, inactive): nothing new is made of it
    modified_at: AwareDatetime


class ShipmentLine(_Model):
    line_ref: str | None = None
    sku: str
    quantity: StrictInt


class Shipment(_Model):
    order_channel_ref: str
    master_ref: str
    shipment_ref: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: AwareDatetime
    lines: list[ShipmentLine]
    # personal data: under a key the ledger seals, shown only on the packing slip, never logged
    shipping_address: ShipTo | None = None


class PayoutLine(_Model):
    payout_ref: str
    order_channel_ref: str | None
    kind: str  # "sale", "commission", "commission_tax", "fee", "refund", "payment"
    amount: Amount
    currency: Currency
    booked_at: AwareDatetime


class RefundLine(_Model):
    line_ref: str | None = None
    sku: str | None = None
    quantity: StrictInt = 0
    amount: Amount


class Refund(_Model):
    refund_ref: str
    order_channel_ref: str | None
    currency: Currency
    lines: list[RefundLine]
    reason: str | None = None
    requested_at: AwareDatetime
    order_master_ref: str | None = None  # the master's sale, where the refund started there


class SaleRef(_Model):
    """What the ERP says about a sale it holds."""

    master_id: str
    external_id: str | None
    order_number: str | None = None
    status: str | None = None
    has_lines: bool = True
    total: Amount | None = None  # the booked total, where the lookup read it (settlement matching)
    currency: Currency | None = None  # the sale's currency, where the lookup read it


class CreditNoteRef(_Model):
    """A credit note the ERP holds on a sale."""

    master_id: str
    total: Amount
    memo: str | None = None


SETTLEMENT_KINDS = ("settled", "refunded", "chargeback", "chargeback_reversed", "refund_reversed", "fee", "payout", "adjustment")


class SettlementLine(_Model):
    """One row of a payment provider's settlement report, whatever the provider.

    Signs are the merchant's: money to the merchant is positive (a settled payment), money taken
    back negative (a refund, a chargeback, the payout to the bank). `fees` are the costs withheld
    on the row in the net currency, positive when charged.
    """

    batch: str
    line_no: int  # in its file, the header being line 1
    kind: str  # one of SETTLEMENT_KINDS, or "unknown" for a type the format does not list
    provider_type: str
    merchant_ref: str | None = None  # the shop's order number
    psp_ref: str | None = None
    modification_ref: str | None = None  # the capture's or refund's own reference
    booked_at: AwareDatetime | None = None
    gross_currency: Currency | None = None
    gross: Amount = Decimal("0")
    exchange_rate: Amount | None = None  # gross to net currency, as the provider applied it
    net_currency: Currency | None = None
    net: Amount = Decimal("0")
    fees: dict[str, Amount] = {}


def order_line_sum(order: Order) -> Decimal:
    return sum((line.line_total for line in order.lines), Decimal("0"))


def order_charge_sum(order: Order) -> Decimal:
    return sum((c.amount for c in order.charges), Decimal("0"))


def tax_key(name: str | None, rate: Decimal | str | None) -> tuple[str, Decimal] | None:
    """A channel tax as the tax mapping keys it: (name, rate), the rate normalised (0.20 == 0.2).
    None where the channel names no tax or gives an unreadable rate (then nothing maps it)."""
    if name is None or rate is None:
        return None
    try:
        return name, Decimal(str(rate)).normalize()
    except ArithmeticError:
        return None


def order_tax_sum(order: Order) -> Decimal:
    """The tax the lines and charges carry (must equal the order's tax_total to be bookable)."""
    return sum((line.tax for line in order.lines), Decimal("0")) + sum((c.tax for c in order.charges), Decimal("0"))


def amount_due(order: Order, tax_inclusive: bool) -> Decimal:
    """What the customer pays for the order, tax included, read in the mode it is booked in."""
    return order.total if tax_inclusive else order.total + order.tax_total
