"""Cin7 Core External API v2: the Master port.

A sale is two calls (POST /sale for the header, POST /sale/order for the lines); a crash between
them leaves a header with no lines, which `find_sales` reports (has_lines=False) so the flow can
finish it instead of creating a second sale. ExternalID carries the channel reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from commerce_sync.http import HttpClient, paginate_page_limit
from commerce_sync.models import (
    CatalogueItem,
    CatalogueProduct,
    CreditNoteRef,
    Order,
    Refund,
    SaleRef,
    Shipment,
    ShipmentLine,
    ShipTo,
    StockLevel,
    TranslationError,
)
from commerce_sync.money import parse_decimal, quantize
from commerce_sync import ports
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.common import describe_problem, describe_validation_error, parse_time, translating

NEW_TASK = "00000000-0000-0000-0000-000000000000"  # Cin7: an empty TaskID asks for a new task
PAGE_LIMIT = 1000  # Cin7's maximum page size: fewest calls against the 60/minute budget
# Beyond this age a paged list of everything created since is dearer than one lookup per id.
LIST_LOOKBACK_LIMIT = timedelta(days=3)
# OrderStatus values Cin7 shows while a sale has no order lines yet
_NO_ORDER = {"", "NOT AVAILABLE", "NOTAVAILABLE", None}
# A customer's currency rarely changes: read once per customer every 15 minutes, shared by every
# task and run through the ledger (the 60-calls-a-minute budget is for sales), yet a correction
# made in Cin7 shows within a quarter of an hour.
CUSTOMER_CACHE_AGE = timedelta(minutes=15)


def _refund_memo(refund_ref: str) -> str:
    return f"Refund {refund_ref}"


def _cin7_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000")


def _sale_ref(item: dict[str, Any]) -> SaleRef:
    return SaleRef(
        master_id=str(item.get("SaleID") or item.get("ID")),
        external_id=item.get("ExternalID"),
        order_number=item.get("OrderNumber"),
        status=item.get("Status"),
        has_lines=item.get("OrderStatus") not in _NO_ORDER,
    )


def _address(addr) -> dict[str, Any] | None:
    if addr is None:
        return None
    return {
        "Line1": addr.line1,
        "Line2": addr.line2,
        "City": addr.city,
        "State": addr.state,
        "Postcode": addr.postcode,
        "Country": addr.country,
    }


def _ship_to(addr, name: str | None) -> dict[str, Any] | None:
    """The sale's shipping address with the buyer as its Contact (the warehouse's ship-to name).
    ShipToOther: a marketplace buyer's address is this sale's only; without it Cin7 would add
    every buyer's address to the channel customer's address book."""
    base = _address(addr)
    return None if base is None else {**base, "Contact": name, "ShipToOther": True}


def _ship_to_of(fulfilment: dict[str, Any]) -> ShipTo | None:
    """Ship.ShippingAddress of a fulfilment (Sale Shipping Address Model), or None if unreadable."""
    addr = (fulfilment.get("Ship") or {}).get("ShippingAddress") if isinstance(fulfilment.get("Ship"), dict) else None
    if not isinstance(addr, dict):
        return None

    def text(key: str) -> str | None:
        value = addr.get(key)
        return str(value).strip() or None if value is not None else None

    ship_to = ShipTo(name=text("Contact"), company=text("Company"), line1=text("Line1"), line2=text("Line2"), city=text("City"),
                     state=text("State"), postcode=text("Postcode"), country=text("Country"))
    return ship_to if ship_to.lines() else None


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS)
# Webhooks (commerce_sync/webhooks.py): Cin7 Core sends what the webhook's settings say
# (ExternalAuthorizationType: basic auth, a bearer token, or custom headers).
WEBHOOK_SCHEMES = ("basic", "bearer", "header")
CAPABILITIES = frozenset({ports.SALES, ports.SALE_AMOUNTS, ports.AVAILABILITY, ports.FULFILMENTS, ports.JOURNALS, ports.CREDIT_NOTES,
                          ports.CUSTOMER_CURRENCY, ports.CATALOGUE})
# product fields read as attributes (a channel's attribute mapping may name them); the rest of a
# Cin7 product (costs, suppliers, BOM, reorder levels) is the ERP's own business
PRODUCT_ATTRIBUTES = ("Brand", "Category", "UOM", "Type", "HSCode", "CountryOfOrigin", *(f"AdditionalAttribute{n}" for n in range(1, 11)))

class Cin7CoreMaster:
    name = "cin7_core"

    def __init__(self, client: HttpClient, page_size: int = PAGE_LIMIT, read_workers: int = 2, cache=None):
        self.client = client
        self.page_size = page_size  # smaller only in tests that need several pages
        self.read_workers = read_workers  # availability pages in flight at once (the limiter still gates each)
        self.cache = cache  # the ledger's reference cache (shared by tasks and runs), if the pairing has one
        self._currencies: dict[str, str | None] = {}

    # -- customers ----------------------------------------------------------------------------
    def customer_currency(self, customer: str) -> str | None:
        """GET /customer?Name=: Cin7 books a sale in its customer's currency. The Name filter may
        match more than one customer: only an exact name counts."""
        if customer not in self._currencies:

            def load() -> str | None:
                body = self.client.get("/customer", params={"Name": customer, "Page": 1, "Limit": 100}) or {}
                for item in body.get("CustomerList") or []:
                    if item.get("Name") == customer:
                        return item.get("Currency") or None
                return None

            self._currencies[customer] = self.cache(f"customer_currency:{customer}", CUSTOMER_CACHE_AGE, load) if self.cache else load()
        return self._currencies[customer]

    # -- reading sales ------------------------------------------------------------------------
    def find_sales(self, external_ids: Iterable[str], created_since: datetime) -> dict[str, SaleRef]:
        wanted = set(external_ids)
        if not wanted:
            return {}
        now = datetime.now(timezone.utc)
        if now - created_since > LIST_LOOKBACK_LIMIT:
            return self._find_one_by_one(wanted)
        found: dict[str, SaleRef] = {}
        for item in paginate_page_limit(
            self.client,
            "/saleList",
            list_key="SaleList",
            params={"CreatedSince": _cin7_time(created_since)},
            limit=self.page_size,
        ):
            ext = item.get("ExternalID")
            if ext in wanted:
                found[ext] = _sale_ref(item)
        return found

    def _find_one_by_one(self, wanted: set[str]) -> dict[str, SaleRef]:
        return {ext: _sale_ref(item) for ext, item in self._list_items_one_by_one(wanted).items()}

    def _list_items_one_by_one(self, wanted: set[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for ext in sorted(wanted):
            page = self.client.get("/saleList", params={"ExternalID": ext, "Page": 1, "Limit": 1}) or {}
            for item in page.get("SaleList") or []:
                if item.get("ExternalID") == ext:
                    found[ext] = item
        return found

    def sale_totals(self, external_ids: Iterable[str], created_since: datetime) -> dict[str, SaleRef]:
        """One paged saleList read from `created_since` when that takes fewer calls than a lookup
        per id (a probe of one row tells the count), then a lookup for each id it did not hold.
        An invoiced sale's total is the list's InvoiceAmount; only a sale not invoiced yet costs
        a GET /sale for its order total."""
        wanted = {e for e in external_ids if e}
        if not wanted:
            return {}
        since = {"CreatedSince": _cin7_time(created_since)}
        probe = self.client.get("/saleList", params={**since, "Page": 1, "Limit": 1}) or {}
        items: dict[str, dict[str, Any]] = {}
        if -(-int(probe.get("Total") or 0) // self.page_size) < len(wanted):
            for item in paginate_page_limit(self.client, "/saleList", list_key="SaleList", params=since, limit=self.page_size, workers=self.read_workers):
                if item.get("ExternalID") in wanted:
                    items[item["ExternalID"]] = item
        items.update(self._list_items_one_by_one(wanted - set(items)))
        out: dict[str, SaleRef] = {}
        for ext, item in items.items():
            invoiced = str(item.get("CombinedInvoiceStatus") or "").startswith("INVOICED") and item.get("InvoiceAmount") is not None
            total = parse_decimal(item["InvoiceAmount"]) if invoiced else self.sale_amounts(str(item.get("SaleID")))["total"]
            currency = item.get("CustomerCurrency") or None
            out[ext] = _sale_ref(item).model_copy(update={"total": total, "currency": currency})
        return out

    # -- money: sale totals and journals ------------------------------------------------------
    def sale_amounts(self, sale_id: str) -> dict[str, Decimal]:
        order = (self.client.get("/sale", params={"ID": sale_id}) or {}).get("Order") or {}
        return {"total": parse_decimal(order.get("Total")), "tax": parse_decimal(order.get("Tax") or 0)}

    def sale_total(self, sale_id: str) -> Decimal:
        return self.sale_amounts(sale_id)["total"]

    def find_journal(self, reference: str) -> str | None:
        for journal in paginate_page_limit(self.client, "/journal", list_key="Journals", params={"Search": reference}, limit=100):
            if any(line.get("Reference") == reference for line in journal.get("Lines") or []):
                return journal.get("TaskID")
        return None

    def post_journal(self, reference: str, effective: datetime, currency: str, lines: list[tuple[str, str, Decimal]]) -> str:
        body = {
            "Status": "AUTHORISED",
            "EffectiveDate": _cin7_time(effective),
            "Narration": f"Marketplace charges {reference}",
            "Currency": currency,
            "Lines": [{"Debit": debit, "Credit": credit, "Reference": reference, "Amount": amount} for debit, credit, amount in lines],
        }
        return self.client.post("/journal", json=body)["Journals"][0]["TaskID"]

    # -- credit notes -------------------------------------------------------------------------
    def _credit_note_list(self, sale_id: str) -> list[dict[str, Any]]:
        body = self.client.get("/sale/creditnote", params={"SaleID": sale_id}) or {}
        return body.get("CreditNotes") or []

    def credit_notes(self, sale_id: str) -> list[CreditNoteRef]:
        return [CreditNoteRef(master_id=str(note.get("TaskID")), total=parse_decimal(note.get("Total")), memo=note.get("Memo"))
                for note in self._credit_note_list(sale_id)]

    def find_credit_note(self, sale_id: str, refund_ref: str) -> str | None:
        for note in self._credit_note_list(sale_id):
            memo = note.get("Memo") or ""
            if memo == _refund_memo(refund_ref) or memo.startswith(_refund_memo(refund_ref) + " - "):
                return note.get("TaskID")
        return None

    def create_credit_note(self, sale_id: str, refund: Refund, sku_map: Mapping[str, str], tax_rule: str) -> str:
        note = self.client.post("/sale/creditnote", json=self.credit_note(sale_id, refund, sku_map, tax_rule))
        return note["TaskID"]

    @staticmethod
    def credit_note(sale_id: str, refund: Refund, sku_map: Mapping[str, str], tax_rule: str) -> dict[str, Any]:
        lines = []
        for line in refund.lines:
            qty = line.quantity or 1
            per_unit = line.amount / qty
            if quantize(per_unit, refund.currency) != per_unit:
                # the amount does not split into equal unit prices: book it as one line, exactly
                qty, per_unit = 1, line.amount
            lines.append({"SKU": sku_map[line.sku], "Quantity": qty, "Price": per_unit, "Discount": Decimal("0"), "Tax": Decimal("0"),
                          "TaxRule": tax_rule, "Total": line.amount, "Comment": f"{line.quantity} unit(s) refunded"})
        return {
            "SaleID": sale_id,
            "TaskID": NEW_TASK,
            "Memo": f"{_refund_memo(refund.refund_ref)}{' - ' + refund.reason if refund.reason else ''}",
            "Status": "AUTHORISED",
            "CreditNoteDate": _cin7_time(refund.requested_at),
            "Lines": lines,
            "Restock": [],  # never: stock comes back only when the warehouse has received and checked it
        }

    # -- fulfilments --------------------------------------------------------------------------
    def updated_sales(self, since: datetime) -> Iterator[SaleRef]:
        for item in paginate_page_limit(self.client, "/saleList", list_key="SaleList", params={"UpdatedSince": _cin7_time(since)}, limit=self.page_size):
            yield _sale_ref(item)

    def read_shipments(self, sale: SaleRef) -> list[Shipment | TranslationError]:
        body = self.client.get("/sale/fulfilment", params={"SaleID": sale.master_id}) or {}
        out: list[Shipment | TranslationError] = []
        for f in body.get("Fulfilments") or []:
            out.extend(shipments_of_fulfilment(sale, f))
        return out

    # -- the product record (catalogue_out) ------------------------------------------------------
    def catalogue_changes(self, since: datetime | None) -> Iterator[dict[str, Any]]:
        """GET /product, modified since `since` (UTC; every product when None), deprecated ones
        included so that a product taken out of use in Cin7 is seen as such."""
        params = {"IncludeDeprecated": "true", **({"ModifiedSince": _cin7_time(since)} if since is not None else {})}
        yield from paginate_page_limit(self.client, "/product", list_key="Products", params=params, limit=self.page_size)

    @staticmethod
    def catalogue_key(raw: dict[str, Any]) -> str:
        return str(raw.get("ID") or raw.get("SKU"))

    def to_catalogue_product(self, raw: dict[str, Any]) -> CatalogueProduct:
        """A Cin7 product is one SKU: one product with one item. Weight 0 is Cin7's "not set"."""
        key = self.catalogue_key(raw)
        with translating(key):
            sku = raw.get("SKU")
            if not isinstance(sku, str) or not sku.strip():
                raise TranslationError(f"product {key} has no SKU", record_key=key)
            weight = parse_decimal(raw["Weight"]) if raw.get("Weight") not in (None, "") else None
            if weight is not None and weight < 0:
                raise TranslationError(f"product {sku} weighs {weight}: a weight cannot be negative", record_key=key)
            item = CatalogueItem(sku=sku, name=raw.get("Name") or None, barcode=str(raw["Barcode"]).strip() or None if raw.get("Barcode") is not None else None,
                                 weight=weight or None, weight_unit=raw.get("WeightUnits") or None)
            attributes = {name: str(raw[name]) for name in PRODUCT_ATTRIBUTES if raw.get(name) not in (None, "")}
            return CatalogueProduct(product_ref=key, name=raw.get("Name") or None, category=raw.get("Category") or None, attributes=attributes,
                                    items=[item], active=(raw.get("Status") or "Active") == "Active",
                                    modified_at=parse_time(raw.get("LastModifiedOn"), "LastModifiedOn"))

    # -- stock ------------------------------------------------------------------------------
    def read_availability(self) -> Iterator[StockLevel | TranslationError]:
        for row in paginate_page_limit(
            self.client, "/ref/productavailability", list_key="ProductAvailabilityList", limit=self.page_size, workers=self.read_workers
        ):
            try:
                yield StockLevel(sku=row["SKU"], location=row.get("Location"), available=parse_decimal(row.get("Available")))
            except (KeyError, ValueError) as exc:
                # handed back, not raised: one bad row must not end the read of the other 99,999
                yield TranslationError(f"unreadable availability row: {exc}", record_key=str(row.get("SKU")))

    # -- writing sales ------------------------------------------------------------------------
    def create_sale(self, order: Order, how: SaleInstructions) -> SaleRef:
        header = self.client.post("/sale", json=self.sale_header(order, how))
        sale = SaleRef(
            master_id=str(header["ID"]),
            external_id=how.external_id,
            order_number=header.get("OrderNumber") or (header.get("Order") or {}).get("SaleOrderNumber"),
            status=header.get("Status"),
            has_lines=False,
        )
        return self.complete_sale(sale, order, how)

    def complete_sale(self, sale: SaleRef, order: Order, how: SaleInstructions) -> SaleRef:
        self.client.post("/sale/order", json=self.sale_order(sale.master_id, order, how))
        return sale.model_copy(update={"has_lines": True})

    # -- translation (pure; property-tested) -------------------------------------------------
    @staticmethod
    def sale_header(order: Order, how: SaleInstructions) -> dict[str, Any]:
        customer = order.customer
        seller = how.seller_label or order.seller_name
        return {
            "Customer": how.customer,
            "Contact": customer.name,
            "Email": customer.email,
            "Phone": customer.phone,
            "ShippingAddress": _ship_to(customer.shipping_address, customer.name),
            "BillingAddress": _address(customer.billing_address),
            "Location": how.location,
            "TaxRule": how.tax_rule,
            # per sale, in the order's own mode: Cin7 reads every price of the sale in it
            "TaxCalculation": "Inclusive" if how.tax_inclusive else "Exclusive",
            "ExternalID": how.external_id,
            "SkipQuote": True,
            "SourceChannel": how.source_channel,
            "CustomerReference": order.channel_ref,
            "SaleOrderDate": _cin7_time(order.placed_at),
            "Note": f"{how.source_channel} seller: {seller}" if seller else None,
            "AdditionalAttributes": {"AdditionalAttribute1": seller} if seller else None,
        }

    @staticmethod
    def sale_order(sale_id: str, order: Order, how: SaleInstructions) -> dict[str, Any]:
        cur = order.currency
        lines = []
        discounts = Decimal("0")
        for line in order.lines:
            gross = quantize(line.unit_price * line.quantity, cur)
            discounts += line.discount
            lines.append(
                {
                    "SKU": how.sku_map[line.sku],
                    "Name": line.name,
                    "Quantity": line.quantity,
                    "Price": line.unit_price,
                    "Discount": Decimal("0"),
                    "Tax": line.tax,
                    "TaxRule": how.tax_rule_for(line),
                    "Total": gross,
                }
            )
        charges = []
        for charge in order.charges:
            description = how.shipping_description if charge.kind == "shipping" else how.discount_description
            charges.append(_charge(description, charge.amount, how.tax_rule_for(charge), charge.tax))
        if discounts:
            # Cin7 line discounts are percentages; channel discounts are amounts. Booking them as
            # one negative charge keeps every cent exact instead of rounding a percentage.
            charges.append(_charge(how.discount_description, -discounts, how.tax_rule))
        total = sum((l["Total"] for l in lines), Decimal("0")) + sum((c["Total"] for c in charges), Decimal("0"))
        if not how.tax_inclusive:
            total += order.tax_total  # Cin7's arithmetic: an exclusive sale's Total is its lines and charges plus tax
        return {
            "SaleID": sale_id,
            "Status": how.status,
            "Memo": f"{how.source_channel} {order.channel_ref}",
            "Lines": lines,
            "AdditionalCharges": charges,
            "Tax": order.tax_total,
            "Total": total,
        }


def shipments_of_fulfilment(sale: SaleRef, fulfilment: dict[str, Any]) -> list[Shipment | TranslationError]:
    """Cin7 keeps carrier and tracking per box (Ship lines) and quantities per pack line: join
    them by box, so each shipped box becomes one shipment with exactly what was packed in it."""
    task = fulfilment.get("TaskID")
    packed: dict[str, dict[str, Decimal]] = {}
    unreadable: dict[str, str] = {}  # box -> why one of its pack lines cannot be read
    for i, line in enumerate(_lines_of(fulfilment, "Pack")):
        box = str(line.get("Box") or "") if isinstance(line, dict) else ""
        try:
            sku, qty = line["SKU"], parse_decimal(line.get("Quantity") or 0)
            if not isinstance(sku, str) or not sku:
                raise ValueError(f"SKU {sku!r} is not a SKU")
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            # one bad pack line spoils its box, never the whole sale's dispatch
            unreadable[box] = f"pack line {i} of box {box or '?'} is unreadable: {describe_problem(exc)}"[:300]
            continue
        per_sku = packed.setdefault(box, {})
        per_sku[sku] = per_sku.get(sku, Decimal("0")) + qty
    out: list[Shipment | TranslationError] = []
    ship_to = _ship_to_of(fulfilment)
    for ship in _lines_of(fulfilment, "Ship"):
        if not isinstance(ship, dict) or not ship.get("IsShipped"):
            continue
        boxes = [b.strip() for b in str(ship.get("Boxes") or ship.get("Box") or "").split(",")]
        key = f"{task}:{','.join(boxes)}"
        try:
            for box in boxes:
                if box in unreadable:
                    raise TranslationError(unreadable[box], record_key=key)
            quantities: dict[str, Decimal] = {}
            for box in boxes:
                for sku, qty in packed.get(box, {}).items():
                    quantities[sku] = quantities.get(sku, Decimal("0")) + qty
            if not quantities:
                raise TranslationError(f"box {','.join(boxes)} was shipped but nothing was packed in it", record_key=key)
            lines = []
            for sku, qty in quantities.items():
                if qty != qty.to_integral_value():
                    raise TranslationError(f"{sku}: packed quantity {qty} is not a whole number", record_key=key)
                lines.append(ShipmentLine(sku=sku, quantity=int(qty)))
            out.append(
                Shipment(
                    order_channel_ref="",  # the flow knows the order; Cin7 knows the sale
                    master_ref=sale.master_id,
                    shipment_ref=key,
                    carrier=ship.get("Carrier") or None,
                    tracking_number=ship.get("TrackingNumber") or None,
                    shipped_at=parse_time(ship.get("ShipmentDate"), "ShipmentDate"),
                    lines=lines,
                    shipping_address=ship_to,
                )
            )
        except TranslationError as exc:
            exc.record_key = key
            out.append(exc)
        except ValidationError as exc:
            out.append(TranslationError(describe_validation_error(exc), record_key=key))
    return out


def _lines_of(fulfilment: dict[str, Any], part: str) -> list[Any]:
    section = fulfilment.get(part)
    lines = section.get("Lines") if isinstance(section, dict) else None
    return lines if isinstance(lines, list) else []


def _charge(description: str, amount: Decimal, tax_rule: str, tax: Decimal = Decimal("0")) -> dict[str, Any]:
    return {
        "Description": description,
        "Price": amount,
        "Quantity": 1,
        "Discount": Decimal("0"),
        "Tax": tax,  # passed through as the channel stated it, never recalculated
        "TaxRule": tax_rule,
        "Total": amount,
    }


def auth_for(conn) -> dict[str, str]:
    """Connection login = AccountID, password = API application key (both Cin7 headers)."""
    return {"api-auth-accountid": conn.login or "", "api-auth-applicationkey": conn.password or ""}


def build(client: HttpClient, ref, cache=None) -> Cin7CoreMaster:
    options = ref.options or {}
    return Cin7CoreMaster(client, page_size=int(options.get("page_size", PAGE_LIMIT)), read_workers=int(options.get("read_workers", 2)), cache=cache)
