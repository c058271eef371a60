"""Centra as the Master: product, stock and fulfilment master of the centra_marketplacer pairing.

Two APIs on one connection (host = the brand's Centra, e.g. https://<brand>.centra.com):
- the Integration API, GraphQL at /graphql with `Authorization: Bearer <token>` (connection
  password): orders are read, locked and confirmed, shipments and stock read, events read and
  confirmed there. Mutations refuse with `userErrors` in their payload (HTTP 200);
- the REST Order API at the Order API plugin's URL (`order_api_path` option), header
  `API-Authorization: <plugin secret>` (connection extra `order_api_secret`), whose create-order
  call inserts an order paid outside Centra: the only way an outside channel's order gets in.

A sale is three calls: create (REST; the order is PENDING and holds no stock), lock, confirm
(Centra allocates stock at once). A crash in between leaves a PENDING order that `find_sales`
reports unfinished (has_lines=False), so the flow completes it rather than booking it twice. The
external id (pairing prefix + the channel's order reference) is the order's externalId.

A Centra SKU is the product number + variant number + size number, or the size number alone holds
the whole SKU (a GTIN per size, say). `sku_form` (a master option, beside the SKU mapping) says which
of the two the mapping's master_sku holds: `composite` (ProductSize.SKU) or `size_number`.

Centra's events are a queue per integration: what `read_events` hands back stays queued until
`confirm_reads()`, which the runtime calls only once the step that read them has committed
(ports.ConfirmsReads). Centra keeps no general ledger and has no credit notes in the Integration
API: this module does not declare JOURNALS or CREDIT_NOTES. Refunds here start in Centra (a
completed return: MASTER_RETURNS) and go to the channel; payouts are journaled to a file for the
accounting system (the pairing's `payouts.journal: file`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from commerce_sync.errors import ClientError, MalformedResponseError
from commerce_sync.http import HttpClient, paginate_graphql_pages
from commerce_sync.models import (
    CatalogueItem,
    CatalogueProduct,
    ItemPrice,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    SaleRef,
    Shipment,
    ShipmentLine,
    StockLevel,
    TranslationError,
)
from commerce_sync.money import minor_units, parse_decimal, quantize
from commerce_sync import ports
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems.common import parse_time, translating

# No JOURNALS (Centra keeps no general ledger) and no CREDIT_NOTES (refunds are not in the
# Integration API): the factory refuses the flows' Cin7-shaped variants for a Centra master.
# Webhooks (commerce_sync/webhooks.py): signed, `X-Centra-Signature: t=<unix>,v1=<HMAC-SHA256 of
# "<t>.<body>">`, checked by verify_webhook below.
WEBHOOK_SCHEMES = ("signature",)
WEBHOOK_SIGNATURE_HEADER = "X-Centra-Signature"
CAPABILITIES = frozenset({ports.SALES, ports.SALE_AMOUNTS, ports.AVAILABILITY, ports.FULFILMENTS, ports.CUSTOMER_CURRENCY, ports.CHANGE_EVENTS, ports.MASTER_RETURNS, ports.CATALOGUE})

LIST_LIMIT = 200  # Centra's largest page: fewest calls against 60 requests per 10 s
SKU_FORMS = ("composite", "size_number")
USER_ERROR = 422  # how a `userErrors` refusal is reported (ClientError.status): the request was understood and refused

ORDERS_BY_EXTERNAL_ID = """
query OrdersByExternalId($externalIds: [String!], $limit: Int!, $page: Int!) {
  orders(where: {externalId: $externalIds}, limit: $limit, page: $page) { number externalId status isLocked }
}"""
ORDER_STATE = """
query OrderState($number: Int!) { orders(where: {number: [$number]}, limit: 1) { number externalId status isLocked } }"""
ORDER_AMOUNTS = """
query OrderAmounts($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number
    gross: grandTotal(includingTax: true) { value currency { code } }
    net: grandTotal(includingTax: false) { value }
  }
}"""
ORDER_SHIPMENTS = """
query OrderShipments($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number externalId
    shipments {
      id number isShipped shippedAt trackingNumber
      carrierInformation { carrierName serviceName }
      lines { id quantity orderLine { id productSize { SKU sizeNumber } } }
    }
  }
}"""
ORDER_LINES = """
query OrderLines($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number status
    lines { id quantity productSize { SKU sizeNumber } }
    shipments { id number isShipped trackingNumber lines { quantity orderLine { id } } }
  }
}"""
SHIPPED_SINCE = """
query ShippedSince($since: DateTimeTz!, $limit: Int!, $page: Int!) {
  shipments(where: {isShipped: true, updatedAt: {from: $since}}, limit: $limit, page: $page) { id order { number externalId status } }
}"""
LOCK_ORDERS = """
mutation LockOrders($orders: [OrderInput!]!) {
  setOrdersLock(input: {orders: $orders, isLocked: true}) { userErrors { message path } orders { number isLocked } }
}"""
CONFIRM_ORDER = """
mutation ConfirmOrder($number: Int!) {
  confirmOrder(order: {number: $number}) { userErrors { message path } order { number status } }
}"""
CREATE_SHIPMENT = """
mutation CreateShipment($input: ShipmentCreateInput!) {
  createShipment(input: $input) { userErrors { message path } shipment { id number isShipped } }
}"""
COMPLETE_SHIPMENT = """
mutation CompleteShipment($id: Int!, $input: ShipmentCompleteInput!) {
  completeShipment(id: $id, input: $input) { userErrors { message path } shipment { id number isShipped trackingNumber } }
}"""
WAREHOUSES = """
query Warehouses($limit: Int!, $page: Int!) { warehouses(limit: $limit, page: $page) { id name } }"""
WAREHOUSE_STOCK = """
query WarehouseStock($id: Int!, $sizes: [Int!], $limit: Int!, $page: Int!) {
  warehouses(where: {id: [$id]}, limit: 1) {
    stock(where: {productSizeId: $sizes}, limit: $limit, page: $page) { freeToAllocateQuantity productSize { id SKU sizeNumber } }
  }
}"""
SIZES_BY_SIZE_NUMBER = """
query SizesBySizeNumber($numbers: [String!], $limit: Int!, $page: Int!) {
  productSizes(where: {sizeNumber: $numbers}, limit: $limit, page: $page) { id SKU sizeNumber }
}"""
SIZES_BY_SKU = """
query SizesBySku($skus: [String!], $limit: Int!, $page: Int!) {
  productSizes(where: {SKU: $skus}, limit: $limit, page: $page) { id SKU sizeNumber }
}"""
PRICELISTS = """
query Pricelists($limit: Int!, $page: Int!) { pricelists(limit: $limit, page: $page) { id name currency { code } } }"""
EVENTS = """
query PendingEvents($types: [EventObjectType!], $changes: [EventChangeType!], $limit: Int!) {
  events(where: {objectType: $types, changeType: $changes}, limit: $limit) {
    id objectType changeType objectReference
    object {
      ... on DirectToConsumerShipment { id order { number externalId status } }
      ... on DirectToConsumerOrder { number externalId status }
      ... on DirectToConsumerReturn { id }
      ... on ProductSize { id SKU sizeNumber }
    }
  }
}"""
EVENT_LISTENERS = """
query EventListeners($types: [EventObjectType!]) { eventListeners(where: {objectType: $types}) { objectType changeTypes } }"""
SET_EVENT_LISTENERS = """
mutation SetEventListeners($input: [EventListenerSetInput!]!) {
  setEventListeners(input: $input) { userErrors { message path } eventListeners { objectType changeTypes } }
}"""
CONFIRM_EVENTS = """
mutation ConfirmEvents($ids: [Int!]!) { confirmEvents(input: {eventsIds: $ids}) { userErrors { message path } } }"""
RETURNS = """
query CompletedReturns($since: DateTimeTz, $until: DateTimeTz, $limit: Int!, $page: Int!) {
  returns(where: {status: [COMPLETED], updatedAt: {from: $since, to: $until}}, limit: $limit, page: $page) {
    id status createdAt updatedAt returnReason
    refundValue { value currency { code } }
    order { number externalId grandTotal { currency { code } } }
    lines { id quantity lineValue { value } shipmentLine { orderLine { id productSize { SKU sizeNumber } } } }
  }
}"""
PRODUCTS = """
query Products($since: DateTimeTz, $limit: Int!, $page: Int!) {
  products(where: {updatedAt: {from: $since}}, limit: $limit, page: $page) {
    id name productNumber status updatedAt
    brand { name } folder { name }
    attributes { type { name } elements { key ... on AttributeStringElement { value } } }
    variants {
      id name variantNumber
      prices { pricelist { name } price { value currency { code } } }
      productSizes { id SKU sizeNumber EAN size { name } }
    }
  }
}"""
# every document this module sends (the contract tests validate each against the emulator's schema)
DOCUMENTS = {name: value for name, value in dict(globals()).items() if isinstance(value, str) and value.lstrip().startswith(("query ", "mutation "))}


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat()


def _refused(payload: Any, what: str) -> None:
    """A mutation payload's userErrors become a ClientError (the flows quarantine those)."""
    if not isinstance(payload, dict):
        raise MalformedResponseError(f"Centra's {what} answered without a payload", status=200)
    errors = payload.get("userErrors") or []
    if errors:
        raise ClientError(f"Centra refused {what}: " + "; ".join(str(e.get("message")) for e in errors), status=USER_ERROR,
                          body="; ".join(str(e.get("message")) for e in errors)[:2048])


def _first(rows: Any) -> dict | None:
    return rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None


def priced_items(centra_sku: str, line: OrderLine, currency: str) -> list[dict[str, Any]]:
    """A channel line as Order API products, priced exactly as sold: one item at the unit price
    paid when the line's total divides evenly, else two (quantity - 1 at the rounded-down unit
    price, one carrying the remainder). The line's tax is shared out the same way, to the cent."""
    qty, total = line.quantity, line.line_total
    unit = quantize(total / qty, currency) if qty else total
    if unit * qty == total or qty == 1:
        parts = [(qty, unit)]
    else:
        floor = (total / qty).quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_DOWN)
        parts = [(qty - 1, floor), (1, total - floor * (qty - 1))]
    items, tax_left = [], line.tax
    for i, (n, price) in enumerate(parts):
        tax = tax_left if i == len(parts) - 1 else (quantize(line.tax * price * n / total, currency) if total else Decimal("0"))
        tax_left -= tax
        items.append({"sku": centra_sku, "qty": n, "price": price, "originalPrice": line.unit_price, "tax": tax})
    return items


def order_body(order: Order, how: SaleInstructions, centra_sku: Mapping[str, str], *, market: str | None = None,
               default_country: str | None = None) -> dict[str, Any]:
    """The Order API's create-order body for a channel order (pure; property-tested).

    `centra_sku` maps the pairing's master SKUs to Centra's SKUs (the same strings in the composite
    form). The master customer names the Centra pricelist: Centra's pricelists (and markets)
    decide an order's currency, and the order is refused when it is not the invoice's."""
    cur = order.currency
    products = [item for line in order.lines for item in priced_items(centra_sku[how.sku_map[line.sku]], line, cur)]
    shipping = sum((c.amount for c in order.charges if c.kind == "shipping"), Decimal("0"))
    shipping_tax = sum((c.tax for c in order.charges if c.kind == "shipping"), Decimal("0"))
    discount = -sum((c.amount for c in order.charges if c.kind == "discount"), Decimal("0"))
    other = sorted({c.kind for c in order.charges} - {"shipping", "discount"})
    if other:
        raise ValueError(f"charges of kind {', '.join(other)} have no place in a Centra order")
    customer = order.customer
    address = customer.shipping_address or customer.billing_address
    first, _, last = (customer.name or "").partition(" ")
    country = (address.country if address else None) or default_country
    seller = how.seller_label or order.seller_name
    body: dict[str, Any] = {
        "email": customer.email,
        "firstName": first or None,
        "lastName": last or None,
        "tele": customer.phone,
        "deliveryAddress": {
            "firstName": first or None, "lastName": last or None,
            "address": address.line1 if address else None, "coaddress": address.line2 if address else None,
            "city": address.city if address else None, "zipcode": address.postcode if address else None,
            "state": address.state if address else None, "country": country,
        },
        "country": country,
        "pricelist": how.customer,
        "currency": cur,
        "externalId": how.external_id,
        "orderDate": _iso(order.placed_at),
        "comment": f"{how.source_channel} {order.channel_ref}" + (f" (seller {seller})" if seller else ""),
        "pricesIncludingTax": order.tax_inclusive,
        "products": products,
        "shippingValue": shipping,
        "shippingTax": shipping_tax,
        "discountValue": discount,
    }
    if market:
        body["market"] = market
    return body


def verify_webhook(secret: str, header: str | None, body: bytes, *, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """Whether an `X-Centra-Signature: t=<unix>,v1=<hex>` header signs `body` with `secret`
    (HMAC-SHA256 over "<t>.<body>") and is fresh. A webhook is a wake-up call at most: the flow
    still reads from Centra, so a forged or lost one can neither book nor lose anything."""
    try:
        parts = dict(p.split("=", 1) for p in (header or "").split(","))
        stamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_seconds:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class CentraMaster:
    name = "centra"

    def __init__(self, client: HttpClient, *, order_api_path: str = "/order-api", sku_form: str = "composite", market: str | None = None,
                 default_country: str | None = None, warehouses: Iterable[str] | None = None, page_size: int = LIST_LIMIT, events_limit: int = LIST_LIMIT):
        if sku_form not in SKU_FORMS:
            raise ValueError(f"sku_form must be one of {', '.join(SKU_FORMS)}, not {sku_form!r}")
        if not 1 <= page_size <= LIST_LIMIT or not 1 <= events_limit <= LIST_LIMIT:
            raise ValueError(f"Centra pages hold 1 to {LIST_LIMIT} items")
        self.client = client
        self.order_api = "/" + order_api_path.strip("/")
        self.sku_form = sku_form
        self.market = market
        self.default_country = default_country
        self.warehouses = list(warehouses) if warehouses else None  # None: every warehouse (the flow keeps the pairing's)
        self.page_size = page_size
        self.events_limit = events_limit
        self._pending_events: list[int] = []  # read, not yet confirmed (ConfirmsReads)
        self._listening: dict[str, set[str]] = {}
        self._currencies: dict[str, str] | None = None

    def _pages(self, query: str, variables: dict | None, pick) -> Iterator[dict]:
        return paginate_graphql_pages(self.client, query, variables, pick=pick, limit=self.page_size)

    def master_sku(self, size: Any) -> str:
        """The pairing's SKU of a Centra product size, in the form the mapping holds."""
        value = (size or {}).get("SKU" if self.sku_form == "composite" else "sizeNumber") if isinstance(size, dict) else None
        if not isinstance(value, str) or not value:
            raise TranslationError(f"product size has no {'SKU' if self.sku_form == 'composite' else 'size number'}: {size!r}"[:300])
        return value

    # -- sales ----------------------------------------------------------------------------------
    def find_sales(self, external_ids: Iterable[str], created_since: datetime) -> dict[str, SaleRef]:
        """By externalId, which Centra filters on exactly (created_since is not needed to bound it)."""
        wanted = sorted(set(external_ids))
        found: dict[str, SaleRef] = {}
        for start in range(0, len(wanted), LIST_LIMIT):
            chunk = wanted[start : start + LIST_LIMIT]
            for row in self._pages(ORDERS_BY_EXTERNAL_ID, {"externalIds": chunk}, lambda d: d.get("orders")):
                if row.get("externalId") in chunk:
                    found[row["externalId"]] = self._sale_ref(row)
        return found

    @staticmethod
    def _sale_ref(row: dict) -> SaleRef:
        # a PENDING order was created but never confirmed: the flow finishes it (complete_sale)
        return SaleRef(master_id=str(row["number"]), external_id=row.get("externalId"), order_number=str(row["number"]),
                       status=row.get("status"), has_lines=row.get("status") != "PENDING")

    def create_sale(self, order: Order, how: SaleInstructions) -> SaleRef:
        skus = self._centra_skus({how.sku_map[line.sku] for line in order.lines})
        try:
            body = order_body(order, how, skus, market=self.market, default_country=self.default_country)
        except ValueError as exc:
            raise ClientError(f"the order cannot be booked in Centra: {exc}", status=USER_ERROR, body=str(exc)) from exc
        answer = self.client.post(f"{self.order_api}/order", json=body)  # not idempotent: the flow's lookup guards a retry
        if not isinstance(answer, dict) or answer.get("status") != "ok" or answer.get("order") is None:
            message = (answer or {}).get("msg") if isinstance(answer, dict) else None
            raise ClientError(f"Centra's Order API did not create the order: {message or answer!r}"[:500], status=USER_ERROR, body=str(message or answer)[:2048])
        number = str(answer["order"])
        sale = SaleRef(master_id=number, external_id=how.external_id, order_number=number, status="PENDING", has_lines=False)
        # just made: PENDING and unlocked, no need to read it back (three calls an order, not four)
        return self._lock_and_confirm(sale, {"isLocked": False, "status": "PENDING"})

    def complete_sale(self, sale: SaleRef, order: Order, how: SaleInstructions) -> SaleRef:
        """Lock the order (nobody edits a marketplace order in Centra) and confirm it, so Centra
        allocates its stock now. Each part is skipped when an earlier attempt already did it."""
        row = _first(self.client.graphql(ORDER_STATE, {"number": int(sale.master_id)}).get("orders"))
        if row is None:
            raise ClientError(f"Centra has no order {sale.master_id}", status=404)
        return self._lock_and_confirm(sale, row)

    def _lock_and_confirm(self, sale: SaleRef, row: dict) -> SaleRef:
        number = int(sale.master_id)
        if not row.get("isLocked"):
            # setting a lock is absolute: repeating it after a lost answer is harmless
            _refused(self.client.graphql(LOCK_ORDERS, {"orders": [{"number": number}]}).get("setOrdersLock"), f"the lock of order {number}")
        if row.get("status") == "PENDING":
            _refused(self.client.graphql(CONFIRM_ORDER, {"number": number}, mutation=True).get("confirmOrder"), f"the confirmation of order {number}")
        return sale.model_copy(update={"has_lines": True, "status": "CONFIRMED" if row.get("status") == "PENDING" else row.get("status")})

    def _centra_skus(self, master_skus: set[str]) -> dict[str, str]:
        """Master SKUs to the SKUs the Order API takes. Composite SKUs are Centra's own; size
        numbers are looked up (an unknown one is refused like an unknown SKU)."""
        if self.sku_form == "composite":
            return {s: s for s in master_skus}
        found = {}
        numbers = sorted(master_skus)
        for start in range(0, len(numbers), LIST_LIMIT):
            for size in self._pages(SIZES_BY_SIZE_NUMBER, {"numbers": numbers[start : start + LIST_LIMIT]}, lambda d: d.get("productSizes")):
                if size.get("sizeNumber") in master_skus and size.get("SKU"):
                    found[size["sizeNumber"]] = size["SKU"]
        missing = sorted(master_skus - set(found))
        if missing:
            raise ClientError(f"Centra has no product size with size number {', '.join(missing)}", status=USER_ERROR, body=", ".join(missing))
        return found

    def customer_currency(self, customer: str) -> str | None:
        """For Centra the master customer is a pricelist: its currency is the order's (COMMON.md decision 2)."""
        if self._currencies is None:
            self._currencies = {pl["name"]: (pl.get("currency") or {}).get("code") for pl in self._pages(PRICELISTS, {}, lambda d: d.get("pricelists"))}
        return self._currencies.get(customer)

    def sale_amounts(self, sale_id: str) -> dict[str, Decimal]:
        row = _first(self.client.graphql(ORDER_AMOUNTS, {"number": int(sale_id)}).get("orders"))
        if row is None:
            raise ClientError(f"Centra has no order {sale_id}", status=404)
        currency = row["gross"]["currency"]["code"]
        gross, net = quantize(parse_decimal(row["gross"]["value"]), currency), quantize(parse_decimal(row["net"]["value"]), currency)
        return {"total": gross, "tax": gross - net}

    def sale_total(self, sale_id: str) -> Decimal:
        return self.sale_amounts(sale_id)["total"]

    # -- fulfilment -----------------------------------------------------------------------------
    def updated_sales(self, since: datetime) -> Iterator[SaleRef]:
        """Orders with a shipment completed: from the events queue (read now, confirmed after the
        step commits) and, as the safety net, from shipments shipped or changed since `since`."""
        seen: dict[str, SaleRef] = {}
        for event in self.read_events("Shipment", ["COMPLETED"]):
            order = ((event.get("object") or {}).get("order")) or {}
            if order.get("number") is not None:
                seen.setdefault(str(order["number"]), self._sale_ref(order))
        for shipment in self._pages(SHIPPED_SINCE, {"since": _iso(since)}, lambda d: d.get("shipments")):
            order = shipment.get("order") or {}
            if order.get("number") is not None:
                seen.setdefault(str(order["number"]), self._sale_ref(order))
        yield from seen.values()

    def read_shipments(self, sale: SaleRef) -> list[Shipment | TranslationError]:
        row = _first(self.client.graphql(ORDER_SHIPMENTS, {"number": int(sale.master_id)}).get("orders")) or {}
        out: list[Shipment | TranslationError] = []
        for shipment in row.get("shipments") or []:
            if not isinstance(shipment, dict) or not shipment.get("isShipped"):
                continue
            key = f"{sale.master_id}:{shipment.get('number') or shipment.get('id')}"
            try:
                with translating(key):
                    out.append(self.to_shipment(sale, shipment, key))
            except TranslationError as exc:
                out.append(exc)
        return out

    def to_shipment(self, sale: SaleRef, shipment: dict, key: str) -> Shipment:
        lines = [ShipmentLine(line_ref=str((ln.get("orderLine") or {}).get("id")), sku=self.master_sku((ln.get("orderLine") or {}).get("productSize")),
                              quantity=ln["quantity"]) for ln in shipment.get("lines") or []]
        if not lines:
            raise TranslationError(f"shipment {key} was completed with no lines", record_key=key)
        carrier = shipment.get("carrierInformation") or {}
        return Shipment(order_channel_ref="", master_ref=sale.master_id, shipment_ref=key, carrier=carrier.get("carrierName") or None,
                        tracking_number=shipment.get("trackingNumber") or None, shipped_at=parse_time(shipment.get("shippedAt"), "shippedAt"), lines=lines)

    def ship(self, sale_id: str, lines: list[tuple[str, int]] | None, *, carrier: str | None, tracking_number: str | None,
             service: str | None = None, shipped_at: datetime | None = None) -> int:
        """Create and complete a shipment of `lines` ((master SKU, quantity); None: all left), for a
        fulfilment done outside Centra. The order's shipments are read first: one with this
        tracking number and these goods (an attempt whose answer was lost) is completed or
        returned, never made twice."""
        number = int(sale_id)
        order = _first(self.client.graphql(ORDER_LINES, {"number": number}).get("orders"))
        if order is None:
            raise ClientError(f"Centra has no order {number}", status=404)
        by_sku: dict[str, list[dict]] = {}
        for line in order.get("lines") or []:
            by_sku.setdefault(self.master_sku(line.get("productSize")), []).append(line)
        wanted = [] if lines is not None else None
        for sku, qty in lines or []:
            if sku not in by_sku:
                raise ClientError(f"order {number} has no line for {sku}", status=USER_ERROR)
            wanted.append({"orderLine": {"id": by_sku[sku][0]["id"]}, "quantity": qty})
        goods = sorted((w["orderLine"]["id"], w["quantity"]) for w in wanted or [])
        for existing in order.get("shipments") or []:
            theirs = sorted((ln["orderLine"]["id"], ln["quantity"]) for ln in existing.get("lines") or [])
            if tracking_number and existing.get("trackingNumber") == tracking_number and existing.get("isShipped") and (wanted is None or theirs == goods):
                return existing["id"]
            if not existing.get("isShipped") and wanted is not None and theirs == goods:
                return self._complete(existing["id"], carrier, service, tracking_number, shipped_at)
        payload = self.client.graphql(CREATE_SHIPMENT, {"input": {"order": {"number": number}, "lines": wanted, "isGoodToGo": True}}, mutation=True)
        _refused(payload.get("createShipment"), f"a shipment of order {number}")
        return self._complete(payload["createShipment"]["shipment"]["id"], carrier, service, tracking_number, shipped_at)

    def _complete(self, shipment_id: int, carrier, service, tracking_number, shipped_at) -> int:
        info = {"carrier": carrier, "service": service, "trackingNumber": tracking_number}
        payload = self.client.graphql(COMPLETE_SHIPMENT, {"id": shipment_id, "input": {
            "shippedAt": _iso(shipped_at) if shipped_at else None, "shipmentInfo": info, "sendEmail": False}}, mutation=True)
        _refused(payload.get("completeShipment"), f"the completion of shipment {shipment_id}")
        return shipment_id

    # -- stock ----------------------------------------------------------------------------------
    def read_availability(self) -> Iterator[StockLevel | TranslationError]:
        """Free to allocate (what can be sold now) per size and warehouse, every page."""
        yield from self._stock(None)

    def availability_of(self, size_ids: Iterable[int]) -> Iterator[StockLevel | TranslationError]:
        """The same for some sizes only (those `stock_changes` named)."""
        ids = sorted(set(size_ids))
        for start in range(0, len(ids), LIST_LIMIT):
            yield from self._stock(ids[start : start + LIST_LIMIT])

    def _stock(self, size_ids: list[int] | None) -> Iterator[StockLevel | TranslationError]:
        for warehouse in self._pages(WAREHOUSES, {}, lambda d: d.get("warehouses")):
            if self.warehouses is not None and warehouse.get("name") not in self.warehouses:
                continue
            pick = lambda d: (_first(d.get("warehouses")) or {}).get("stock")  # noqa: E731
            seen: set[Any] = set()
            for row in self._pages(WAREHOUSE_STOCK, {"id": warehouse["id"], "sizes": size_ids}, pick):
                size_id = ((row or {}).get("productSize") or {}).get("id") if isinstance(row, dict) else None
                if size_id is not None and size_id in seen:
                    continue  # one row per size and warehouse: a row met twice (pages shifted under the read) is counted once
                seen.add(size_id)
                try:
                    yield StockLevel(sku=self.master_sku(row.get("productSize")), location=warehouse["name"], available=parse_decimal(row.get("freeToAllocateQuantity")))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:  # TranslationError is a ValueError
                    # handed back in its place: one bad row must not end the read of the others
                    yield TranslationError(f"unreadable stock row in {warehouse.get('name')}: {exc}"[:300], record_key=str((row or {}).get("productSize")))

    def stock_changes(self) -> set[int]:
        """Product sizes whose stock changed (from the events queue; confirmed after commit)."""
        return {int(e["objectReference"]) for e in self._stock_events()}

    def _stock_events(self) -> list[dict]:
        return self.read_events("ProductSize", ["DEPENDENT_DATA_CHANGED", "UPDATED"])

    # the AvailabilityChanges port (stock_out between its daily full reads)
    def changed_skus(self) -> set[str]:
        skus = set()
        for event in self._stock_events():
            try:
                skus.add(self.master_sku(event.get("object")))
            except TranslationError:
                continue  # a size deleted since, or one without the SKU form the mapping holds: nothing to sell through it
        return skus

    def availability_of_skus(self, skus: Iterable[str]) -> Iterator[StockLevel | TranslationError]:
        wanted = sorted(set(skus))
        query, var, field = (SIZES_BY_SKU, "skus", "SKU") if self.sku_form == "composite" else (SIZES_BY_SIZE_NUMBER, "numbers", "sizeNumber")
        ids: set[int] = set()
        for start in range(0, len(wanted), LIST_LIMIT):
            chunk = wanted[start : start + LIST_LIMIT]
            ids |= {int(size["id"]) for size in self._pages(query, {var: chunk}, lambda d: d.get("productSizes")) if size.get(field) in chunk}
        yield from self.availability_of(ids) if ids else iter(())

    # -- events ---------------------------------------------------------------------------------
    def read_events(self, object_type: str, change_types: list[str]) -> list[dict]:
        """The oldest unconfirmed events of a kind (up to `events_limit`; the rest come next time).
        They stay queued in Centra until `confirm_reads()`."""
        self._listen(object_type, change_types)
        events = self.client.graphql(EVENTS, {"types": [object_type], "changes": change_types, "limit": self.events_limit}).get("events") or []
        self._pending_events.extend(int(e["id"]) for e in events if isinstance(e, dict) and e.get("id") is not None)
        return [e for e in events if isinstance(e, dict)]

    def _listen(self, object_type: str, change_types: list[str]) -> None:
        """Centra makes events only for what an integration listens to: listen once, then read."""
        if set(change_types) <= self._listening.get(object_type, set()):
            return
        rows = self.client.graphql(EVENT_LISTENERS, {"types": [object_type]}).get("eventListeners") or []
        have = {t for row in rows if row.get("objectType") == object_type for t in row.get("changeTypes") or []}
        if not set(change_types) <= have:
            # setting listeners is absolute: safe to repeat after a lost answer
            payload = self.client.graphql(SET_EVENT_LISTENERS, {"input": [{"objectType": object_type, "changeTypes": sorted(have | set(change_types))}]})
            _refused(payload.get("setEventListeners"), f"listening to {object_type} events")
            have |= set(change_types)
        self._listening[object_type] = have

    def confirm_reads(self) -> None:
        """Confirm every event this adapter read. Only the runtime calls this, after the step that
        read them committed its work (factory.run_step); a worker dying first leaves them queued."""
        ids = sorted(set(self._pending_events))
        for start in range(0, len(ids), LIST_LIMIT):
            # confirming is idempotent, so a lost answer may be retried like a read
            payload = self.client.graphql(CONFIRM_EVENTS, {"ids": ids[start : start + LIST_LIMIT]})
            _refused(payload.get("confirmEvents"), "the confirmation of events")
        self._pending_events.clear()

    # -- returns (what Centra exposes of refunds) -------------------------------------------------
    def fetch_returns(self, start: datetime, end: datetime) -> Iterator[dict]:
        """Completed returns changed in [start, end). Refunds themselves are not in the Integration API."""
        yield from self._pages(RETURNS, {"since": _iso(start), "until": _iso(end)}, lambda d: d.get("returns"))

    @staticmethod
    def return_key(raw: dict) -> str:
        return f"return:{raw.get('id')}"

    def to_refund(self, raw: dict) -> Refund:
        """A completed return as a canonical Refund. `order_channel_ref` is the order's externalId
        (the pairing's prefix + the channel reference), `order_master_ref` its number and
        `refund_ref` the return's id."""
        key = self.return_key(raw)
        with translating(key):
            order = raw.get("order") or {}
            currency = ((raw.get("refundValue") or {}).get("currency") or {}).get("code") or ((order.get("grandTotal") or {}).get("currency") or {}).get("code")
            if not currency:
                raise TranslationError("the return names no currency", record_key=key)
            lines = [RefundLine(line_ref=str(ln.get("id")), sku=self.master_sku(((ln.get("shipmentLine") or {}).get("orderLine") or {}).get("productSize")),
                                quantity=ln["quantity"], amount=quantize(parse_decimal((ln.get("lineValue") or {}).get("value")), currency))
                     for ln in raw.get("lines") or []]
            if not lines:
                raise TranslationError("the return has no lines", record_key=key)
            return Refund(refund_ref=str(raw["id"]), order_channel_ref=order.get("externalId"), currency=currency, lines=lines,
                          reason=raw.get("returnReason"), requested_at=parse_time(raw.get("updatedAt"), "updatedAt"),
                          order_master_ref=str(order["number"]) if order.get("number") is not None else None)

    # -- catalogue (Centra is product master) ---------------------------------------------------
    def fetch_products(self, since: datetime | None = None) -> Iterator[dict]:
        yield from self._pages(PRODUCTS, {"since": _iso(since) if since else None}, lambda d: d.get("products"))

    def to_catalogue_items(self, raw: dict) -> list[dict[str, Any]]:
        """One product as its sellable sizes: master SKU, numbers, names, EAN and prices per pricelist."""
        key = f"product:{raw.get('id')}"
        with translating(key):
            items = []
            for variant in raw.get("variants") or []:
                prices = {p["pricelist"]["name"]: (parse_decimal(p["price"]["value"]), p["price"]["currency"]["code"]) for p in variant.get("prices") or []}
                for size in variant.get("productSizes") or []:
                    items.append({"master_sku": self.master_sku(size), "product_number": raw.get("productNumber"), "variant_number": variant.get("variantNumber"),
                                  "size_number": size.get("sizeNumber"), "size": (size.get("size") or {}).get("name"), "name": raw.get("name"),
                                  "variant_name": variant.get("name"), "ean": size.get("EAN"), "status": raw.get("status"),
                                  "prices": {name: (quantize(amount, cur), cur) for name, (amount, cur) in prices.items()}})
            return items

    # the CatalogueMaster port (catalogue_out)
    def catalogue_changes(self, since: datetime | None) -> Iterator[dict]:
        return self.fetch_products(since)

    @staticmethod
    def catalogue_key(raw: dict) -> str:
        return f"product:{raw.get('id')}"

    def to_catalogue_product(self, raw: dict) -> CatalogueProduct:
        """A Centra product with its sizes as items. The product's brand, folder (its category)
        and attributes (by attribute type name) are product-level; a size's variant name,
        variant number, size name and size number are the item's."""
        key = self.catalogue_key(raw)
        with translating(key):
            attributes = {name: value for name, value in (_attribute(a) for a in raw.get("attributes") or []) if name and value}
            for field in ("brand", "folder"):
                if (raw.get(field) or {}).get("name"):
                    attributes[field] = raw[field]["name"]
            items = [
                CatalogueItem(sku=row["master_sku"], name=" ".join(p for p in (row["name"], row["variant_name"], row["size"]) if p) or None, barcode=row["ean"] or None,
                              prices=[ItemPrice(price_list=pl, amount=amount, currency=cur) for pl, (amount, cur) in row["prices"].items()],
                              attributes={k: str(row[k]) for k in ("variant_name", "variant_number", "size", "size_number") if row.get(k)})
                for row in self.to_catalogue_items(raw)
            ]
            return CatalogueProduct(product_ref=key, name=raw.get("name"), category=(raw.get("folder") or {}).get("name"), attributes=attributes, items=items,
                                    active=raw.get("status") == "ACTIVE", modified_at=parse_time(raw.get("updatedAt"), "updatedAt"))


def _attribute(raw: Any) -> tuple[str | None, str | None]:
    """(attribute type name, its text): the first string element with a value."""
    if not isinstance(raw, dict):
        return None, None
    values = [e.get("value") for e in raw.get("elements") or [] if isinstance(e, dict) and isinstance(e.get("value"), str) and e.get("value").strip()]
    return (raw.get("type") or {}).get("name"), (values[0] if values else None)


def auth_for(conn) -> dict[str, str]:
    """Password = the Integration API token (Bearer); extra `order_api_secret` = the Order API
    plugin's secret (API-Authorization). Both are redacted from every log."""
    extra = getattr(conn, "extra_dejson", None) or {}
    headers = {"Authorization": f"Bearer {conn.password or ''}"}
    if extra.get("order_api_secret"):
        headers["API-Authorization"] = extra["order_api_secret"]
    return headers


def build(client: HttpClient, ref, cache=None) -> CentraMaster:
    options = ref.options or {}
    return CentraMaster(
        client,
        order_api_path=options.get("order_api_path", "/order-api"),
        sku_form=options.get("sku_form", "composite"),
        market=options.get("market"),
        default_country=options.get("default_country"),
        warehouses=options.get("warehouses"),
        page_size=int(options.get("page_size", LIST_LIMIT)),
        events_limit=int(options.get("events_limit", LIST_LIMIT)),
    )
