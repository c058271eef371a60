"""Salesforce B2C Commerce (SFCC): the Channel port, over SCAPI and Omnichannel Inventory.

Auth: Account Manager OAuth2 client credentials (`connect(conn)`): the connection's login and
password are the API client's id and secret, its extra names the tenant (`zzxy_prd`, whence the
organisation id `f_ecom_zzxy_prd`), the token URL and the OCI tenant group. One token serves
every API family; the shared client keeps it until shortly before it expires and renews it once
on a 401.

Orders are a queue (SCAPI Orders, checkout/orders/v1): every site's orders with export status
`ready`, oldest first (limit <= 200, offset + limit <= 10,000: a deeper queue is drained over
several runs), de-duplicated on the order number. Only orders the pairing calls bookable (order,
confirmation and payment status lists) are handed on; the rest stay in the queue untouched.
Once the ERP sale exists and its ledger link is written, the export status becomes `exported`
(a PUT: repeating it after a lost answer changes nothing, so the client retries it itself); an
order found booked while still `ready` (a crash or a lost answer in between) is marked again
(ports.ORDER_QUEUE). An order the gate holds is marked `failed` (`hold_order`).

One SFCC order is one canonical Order, keyed `<siteId>/<orderNo>` (order numbers are unique per
site only); the reference the ERP keeps is the site's prefix + orderNo. Money passes through
exactly as SFCC computed it, in the site's taxation: on a gross site prices include tax
(tax_inclusive), on a net site they exclude it and the order total adds the tax on top.

Dispatch: SCAPI has no field for tracking numbers, so each shipped box is written into custom
order attributes the pairing names (`c_*`, PATCH) and the order's shipping status becomes
`part_shipped` or `shipped` (PUT) by what has been shipped of each line.

Stock: OCI file imports (inventory/impex/v1): one NDJSON file per run with a section per region
(its OCI location line, then its records), one record per SKU with its own UUID recordId (OCI applies a record id once, so a file
re-sent after a lost answer changes nothing); the import status is polled and every rejected
record comes back by listing with OCI's reason. Listings are each region's OCI records (one OCI
export for all the regions' locations) plus the SKUs orderable on the region's sites (SCAPI
Products) that have none yet, keyed `<region>:<sku>`; the pairing's stock.regions say which Cin7
locations feed a region and its safety stock.

Assumed where Salesforce publishes no machine-readable contract (OCI, see sandbox/README.md):
the paths and bodies of imports, uploads, import status and exports; validation errors naming
the recordId of the refused record.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from commerce_sync import ports
from commerce_sync.errors import ClientError, MalformedResponseError
from commerce_sync.http import HttpClient, OAuth2ClientCredentials
from commerce_sync.models import Address, Charge, Customer, Listing, Order, OrderLine, PayoutLine, Refund, SaleRef, Shipment, TranslationError
from commerce_sync.systems.common import Connected, amount, parse_time, translating

log = logging.getLogger(__name__)

ACCOUNT_MANAGER = "https://account.demandware.com/dwsso/oauth2/access_token"
SCOPES = ("sfcc.orders.rw", "sfcc.products", "sfcc.inventory.impex-inventory.rw")
ORDERS = "/checkout/orders/v1/organizations/{org}/orders"
PRODUCT_SEARCH = "/product/products/v1/organizations/{org}/product-search"
IMPEX = "/inventory/impex/v1/organizations/{org}/availability-records"
MAX_PAGE = 200  # SCAPI Orders: limit 1..200
MAX_WINDOW = 10_000  # offset + limit may not pass it
ORDERABLE_TYPES = ("item", "variant", "bundle")  # a master, a variation group or a set is not sold itself
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# server-side filters take at most this many values (SCAPI getOrders)
FILTER_LIMITS = {"status": 2, "confirmation_status": 1, "payment_status": 2}
FILTER_PARAMS = {"status": "status", "confirmation_status": "confirmationStatus", "payment_status": "paymentStatus"}
RAW_FIELDS = {"status": "status", "confirmation_status": "confirmationStatus", "payment_status": "paymentStatus"}
RELEASED = {"failed", "cancelled"}  # order statuses whose stock the site has let go


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _address(addr: Mapping[str, Any] | None) -> Address | None:
    if not addr:
        return None
    return Address(line1=addr.get("address1"), line2=addr.get("address2"), city=addr.get("city"), state=addr.get("stateCode"),
                   postcode=addr.get("postalCode"), country=addr.get("countryCode"))


def _whole(value: Any) -> int | None:
    """A count OCI reports, or None where it reports none a listing could show."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    return int(value) if value == int(value) else None


def split_channel_id(channel_id: str) -> tuple[str, str]:
    """`<siteId>/<orderNo>`: site ids never hold a slash; an order number may."""
    site, sep, order_no = channel_id.partition("/")
    if not sep or not site or not order_no:
        raise ValueError(f"{channel_id!r} is not an SFCC order id (<siteId>/<orderNo>)")
    return site, order_no


class SfccChannel:
    name = "sfcc"

    def __init__(
        self,
        client: HttpClient,
        *,
        organization_id: str,
        sites: Mapping[str, Mapping[str, Any]],
        oci_organization_id: str | None = None,
        bookable: Mapping[str, list[str]] | None = None,
        shipment_attributes: Mapping[str, str] | None = None,
        hold_reason_attribute: str | None = None,
        regions: Mapping[str, Mapping[str, Any]] | None = None,
        stock_region: str | None = None,
        listings_from_catalog: bool = True,
        page_size: int = MAX_PAGE,
        import_poll_seconds: float = 10.0,
        import_timeout_seconds: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        if not sites:
            raise ValueError("sfcc: the pairing's channel options name no sites")
        self.client = client
        self.org = organization_id
        self.oci_org = oci_organization_id or organization_id
        self.sites = {str(k): dict(v or {}) for k, v in sites.items()}
        for site, cfg in self.sites.items():
            if cfg.get("taxation") not in ("gross", "net"):
                raise ValueError(f"sfcc: site {site}: taxation must be gross or net, not {cfg.get('taxation')!r}")
            if not cfg.get("currency"):
                raise ValueError(f"sfcc: site {site}: currency is required")
        self.bookable = {k: list(v) for k, v in (bookable or {}).items() if v}
        unknown = set(self.bookable) - set(RAW_FIELDS)
        if unknown:
            raise ValueError(f"sfcc: bookable takes {', '.join(RAW_FIELDS)}; unknown {', '.join(sorted(unknown))}")
        attrs = dict(shipment_attributes or {})
        self.tracking_attr = attrs.get("tracking", "c_trackingNumbers")
        self.carrier_attr = attrs.get("carrier", "c_carriers")
        self.boxes_attr = attrs.get("boxes", "c_commerceSyncShipments")
        self.hold_reason_attr = hold_reason_attribute
        for name in (self.tracking_attr, self.carrier_attr, self.boxes_attr, *( [hold_reason_attribute] if hold_reason_attribute else [])):
            if not name.startswith("c_"):
                raise ValueError(f"sfcc: {name!r}: SCAPI writes only custom order attributes (c_...)")
        self.regions = {str(k): dict(v or {}) for k, v in (regions or {}).items()}
        self.stock_region = stock_region
        if stock_region is not None and stock_region not in self.regions:
            raise ValueError(f"sfcc: stock_region {stock_region!r} is not one of the regions ({', '.join(self.regions) or 'none'})")
        self.listings_from_catalog = listings_from_catalog
        self.page_size = min(int(page_size), MAX_PAGE)
        self.import_poll_seconds = import_poll_seconds
        self.import_timeout_seconds = import_timeout_seconds
        self._sleep = sleep
        self._clock = clock

    # -- paths ----------------------------------------------------------------------------
    def _orders(self, order_no: str | None = None, tail: str = "") -> str:
        base = ORDERS.format(org=self.org)
        return base if order_no is None else f"{base}/{quote(order_no, safe='')}{tail}"

    def _impex(self, tail: str) -> str:
        return IMPEX.format(org=self.oci_org) + tail

    # -- orders: the queue ------------------------------------------------------------------
    def queued_orders(self, site: str, *, bookable_only: bool = False) -> Iterator[dict[str, Any]]:
        """A site's orders waiting for export (`ready`), oldest first, each once. With
        `bookable_only` the pairing's status lists go to SCAPI as filters where they fit its
        limits (fewer pages read); the caller still checks each order (`is_bookable`)."""
        params: dict[str, Any] = {"siteId": site, "exportStatus": "ready", "sortBy": "creation_date", "sortOrder": "asc"}
        if bookable_only:
            for key, wanted in self.bookable.items():
                if len(wanted) <= FILTER_LIMITS[key]:
                    params[FILTER_PARAMS[key]] = ",".join(wanted)
        seen: set[str] = set()
        offset = 0
        while True:
            limit = min(self.page_size, MAX_WINDOW - offset)
            if limit <= 0:
                log.warning("sfcc: site %s has more than %d orders ready for export; the rest are read once these are exported", site, MAX_WINDOW)
                return
            body = self.client.get(self._orders(), params={**params, "limit": limit, "offset": offset}) or {}
            page = body.get("data") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise MalformedResponseError(f"GET {self._orders()}: the answer has no data list", method="GET", url=self._orders(), status=200)
            for raw in page:
                if not isinstance(raw, dict) or raw.get("orderNo") in (None, "") or raw.get("siteId") in (None, ""):
                    # an order the queue cannot name is the answer's shape changing, not one bad
                    # order: holding it would mark nothing (it has no number) and lose track of it
                    raise MalformedResponseError(f"GET {self._orders()}: an order without orderNo or siteId", method="GET", url=self._orders(), status=200)
                number = str(raw["orderNo"])
                if number in seen:
                    continue  # a page that shifted while read repeats an order: once is enough
                seen.add(number)
                yield raw
            if len(page) < limit:
                return
            offset += len(page)

    def is_bookable(self, raw: Mapping[str, Any]) -> bool:
        return all(raw.get(RAW_FIELDS[key]) in wanted for key, wanted in self.bookable.items())

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Bookable orders in every site's export queue. The queue is the state, so the window
        bounds nothing: an order waits in it until exported, whenever it was placed."""
        for site in self.sites:
            for raw in self.queued_orders(site, bookable_only=True):
                if self.is_bookable(raw):
                    yield raw

    def captured_orders(self, start: datetime, end: datetime) -> Iterator[tuple[dict[str, Any], bool]]:
        """Every order in the sites' export queues, bookable yet or not (awaiting payment or
        confirmation: exported once bookable, so its stock is promised); a failed or cancelled
        one has let its stock go. The queue is the state: the window bounds nothing."""
        for site in self.sites:
            for raw in self.queued_orders(site):
                yield raw, raw.get(RAW_FIELDS["status"]) not in RELEASED

    def record_key(self, raw: dict[str, Any]) -> str:
        return f"{raw.get('siteId')}/{raw.get('orderNo')}"

    def get_order(self, channel_id: str) -> dict[str, Any]:
        site, order_no = split_channel_id(channel_id)
        return self.client.get(self._orders(order_no), params={"siteId": site}) or {}

    def set_export_status(self, channel_id: str, status: str) -> None:
        site, order_no = split_channel_id(channel_id)
        self.client.put(self._orders(order_no, "/export-status"), json={"status": status}, params={"siteId": site})

    def acknowledge_order(self, order: Order, sale: SaleRef) -> None:
        """The sale exists and its link is written: the order leaves the export queue."""
        self.set_export_status(order.channel_id, "exported")

    def hold_order(self, record_key: str, reason: str | None = None) -> None:
        """ports.OrderQueue: an order held in quarantine is `failed` in Business Manager (it leaves
        the queue; a replay books it from the quarantine and marks it exported), with the reason
        in the pairing's hold attribute when it names one. The record key is the order's channel
        id (`<siteId>/<orderNo>`). Both calls set absolute values: repeating them is harmless."""
        channel_id = record_key
        site, order_no = split_channel_id(channel_id)
        if self.hold_reason_attr and reason:
            self.client.request("PATCH", self._orders(order_no), json={self.hold_reason_attr: reason[:4000]}, params={"siteId": site}, idempotent=True)
        self.set_export_status(channel_id, "failed")

    def orders_awaiting_acceptance(self) -> Iterator[dict[str, Any]]:
        return iter(())  # SFCC orders need no acceptance: they are placed by the shopper

    def accept_order(self, order: Order, decisions: Mapping[str, bool]) -> None:
        raise NotImplementedError("SFCC has no order acceptance step")

    # -- orders: translation (pure; property-tested) -----------------------------------------
    def to_order(self, raw: dict[str, Any]) -> Order:
        key = self.record_key(raw)
        with translating(key):
            site = raw.get("siteId")
            cfg = self.sites.get(str(site))
            if cfg is None:
                raise TranslationError(f"site {site!r} is not one of the pairing's sites ({', '.join(self.sites)})")
            currency = raw.get("currency")
            if currency != cfg["currency"]:
                raise TranslationError(f"currency {currency!r} is not the currency site {site} sells in ({cfg['currency']})")
            taxation = raw.get("taxation") or cfg["taxation"]  # the order's own policy; the site's where it states none
            if taxation not in ("gross", "net"):
                raise TranslationError(f"taxation {taxation!r} is neither gross nor net")
            basis = "grossPrice" if taxation == "gross" else "netPrice"
            if raw.get("giftCertificateItems"):
                raise TranslationError("the order sells gift certificates, which are not booked automatically; book it by hand")
            lines = [self._line(item, i, basis) for i, item in enumerate(raw.get("productItems") or [])]
            if not lines:
                raise TranslationError("the order has no product items")
            charges: list[Charge] = []
            for i, item in enumerate(raw.get("shippingItems") or []):
                where = f"shippingItems[{i}]"
                charges.append(Charge(kind="shipping", description=item.get("itemText") or "Shipping", amount=self._price(item, basis, where),
                                      tax=amount(item.get("tax") or 0, f"{where}.tax")))
                charges += self._adjustments(item.get("priceAdjustments"), basis, f"{where}.priceAdjustments", "Shipping discount")
            charges += self._adjustments(raw.get("orderPriceAdjustments"), basis, "orderPriceAdjustments", "Order discount")
            info = raw.get("customerInfo") or {}
            billing = raw.get("billingAddress") or {}
            shipping = next((s.get("shippingAddress") for s in raw.get("shipments") or [] if s.get("shippingAddress")), None)
            number = raw.get("orderNo")
            total, tax_total = amount(raw.get("orderTotal"), "orderTotal"), amount(raw.get("taxTotal"), "taxTotal")
            return Order(
                channel=self.name,
                channel_ref=f"{cfg.get('order_prefix', '')}{number}" if number not in (None, "") else None,
                channel_id=key,
                placed_at=parse_time(raw.get("creationDate"), "creationDate"),
                currency=currency,
                seller_ref=str(site),
                seller_name=cfg.get("label"),
                customer=Customer(
                    name=info.get("customerName") or billing.get("fullName"),
                    email=info.get("email"),
                    phone=billing.get("phone") or (shipping or {}).get("phone"),
                    shipping_address=_address(shipping),
                    billing_address=_address(billing),
                ),
                lines=lines,
                charges=charges,
                # as SFCC sent it, never recomputed; on a net order SFCC's total adds the tax on top,
                # and the canonical total of a tax-exclusive order is without it
                total=total if taxation == "gross" else total - tax_total,
                tax_total=tax_total,
                tax_inclusive=taxation == "gross",  # set from the order, never left to a default
            )

    @staticmethod
    def _price(item: Mapping[str, Any], basis: str, where: str) -> Decimal:
        """An item's price before adjustments in the taxation's basis (gross or net)."""
        value = item.get(basis)
        return amount(value if value is not None else item.get("basePrice"), f"{where}.{basis}")

    def _line(self, item: Mapping[str, Any], i: int, basis: str) -> OrderLine:
        where = f"productItems[{i}]"
        quantity = amount(item.get("quantity"), f"{where}.quantity")
        if quantity != quantity.to_integral_value():
            raise TranslationError(f"{where}.quantity {quantity} is not a whole number")
        unit = amount(item.get("basePrice"), f"{where}.basePrice")
        price = self._price(item, basis, where)
        adjustments = item.get("priceAdjustments") or []
        off = sum((amount(a.get(basis, a.get("basePrice")), f"{where}.priceAdjustments[{j}].{basis}") for j, a in enumerate(adjustments)), Decimal("0"))
        tax = amount(item.get("tax") or 0, f"{where}.tax") + sum((amount(a.get("tax") or 0, f"{where}.priceAdjustments[{j}].tax") for j, a in enumerate(adjustments)), Decimal("0"))
        after = item.get("priceAfterItemDiscount")
        if after is not None and amount(after, f"{where}.priceAfterItemDiscount") != price + off:
            raise TranslationError(f"{where}: priceAfterItemDiscount {after} is not its price {price} with its adjustments {off}")
        return OrderLine(
            line_ref=str(item.get("itemId") or i),
            sku=item.get("productId") if item.get("productId") is not None else "",
            name=item.get("productName") or item.get("itemText"),
            quantity=int(quantity),
            unit_price=unit,
            discount=-off,  # product-level promotions: money off the line, kept to the cent
            line_total=price + off,
            tax=tax,
        )

    @staticmethod
    def _adjustments(adjustments: Any, basis: str, where: str, label: str) -> list[Charge]:
        out = []
        for j, adj in enumerate(adjustments or []):
            text = adj.get("itemText") or adj.get("promotionId")
            out.append(Charge(kind="discount", description=f"{label}: {text}" if text else label,
                              amount=amount(adj.get(basis, adj.get("basePrice")), f"{where}[{j}].{basis}"),
                              tax=amount(adj.get("tax") or 0, f"{where}[{j}].tax")))
        return out

    # -- dispatch ---------------------------------------------------------------------------
    def push_shipment(self, order_channel_id: str, shipment: Shipment, carrier: str) -> str:
        """Record the box in the order's custom attributes (PATCH), then set the shipping status
        by what has now shipped of each line (PUT). A box already recorded (an earlier attempt
        whose answer was lost) is not recorded again; the status is set either way."""
        site, order_no = split_channel_id(order_channel_id)
        order = self.get_order(order_channel_id)
        try:
            boxes = json.loads(order.get(self.boxes_attr) or "[]")
        except ValueError:
            raise ClientError(f"order {order_no}: {self.boxes_attr} holds no readable shipment list", status=422) from None
        if not isinstance(boxes, list):
            raise ClientError(f"order {order_no}: {self.boxes_attr} holds no shipment list", status=422)
        index = next((i for i, b in enumerate(boxes) if b.get("ref") == shipment.shipment_ref), None)
        if index is None:
            ordered: dict[str, int] = {}
            for item in order.get("productItems") or []:
                ordered[str(item.get("productId"))] = ordered.get(str(item.get("productId")), 0) + int(item.get("quantity") or 0)
            shipped = self._shipped(boxes)
            for line in shipment.lines:
                left = ordered.get(line.sku, 0) - shipped.get(line.sku, 0)
                if line.quantity > left:
                    raise ClientError(f"{line.sku}: {line.quantity} shipped but only {max(left, 0)} left to ship on order {order_no}", status=422)
            boxes.append({"ref": shipment.shipment_ref, "tracking": shipment.tracking_number, "carrier": carrier,
                          "shippedAt": _iso(shipment.shipped_at), "items": {line.sku: line.quantity for line in shipment.lines}})
            body = {
                self.tracking_attr: ", ".join(str(b["tracking"]) for b in boxes if b.get("tracking")),
                self.carrier_attr: ", ".join(str(b["carrier"]) for b in boxes if b.get("carrier")),
                self.boxes_attr: json.dumps(boxes, separators=(",", ":")),
            }
            # absolute values read back just now: sending them twice leaves the same order
            self.client.request("PATCH", self._orders(order_no), json=body, params={"siteId": site}, idempotent=True)
            index = len(boxes) - 1
        shipped = self._shipped(boxes)
        complete = all(shipped.get(str(item.get("productId")), 0) >= int(item.get("quantity") or 0) for item in order.get("productItems") or [])
        self.client.put(self._orders(order_no, "/shipping-status"), json={"status": "shipped" if complete else "part_shipped"}, params={"siteId": site})
        return f"{order_channel_id}#{index + 1}"

    @staticmethod
    def _shipped(boxes: list[dict[str, Any]]) -> dict[str, int]:
        shipped: dict[str, int] = {}
        for box in boxes:
            for sku, qty in (box.get("items") or {}).items():
                shipped[sku] = shipped.get(sku, 0) + int(qty)
        return shipped

    # -- catalogue --------------------------------------------------------------------------
    def orderable_skus(self, site: str) -> set[str]:
        """SKUs a shopper can buy on the site: products online there that are sold themselves
        (items, variants, bundles; not masters, variation groups or sets). SCAPI Products search,
        200 a page."""
        skus: set[str] = set()
        offset = 0
        path = PRODUCT_SEARCH.format(org=self.org)
        while True:
            body = {"query": {"termQuery": {"fields": ["online"], "operator": "is", "values": [True]}},
                    "sorts": [{"field": "id", "sortOrder": "asc"}], "limit": MAX_PAGE, "offset": offset}
            # a search reads only: safe to repeat after a lost answer
            page = self.client.post(path, json=body, params={"siteId": site}, idempotent=True) or {}
            hits = page.get("hits") or []
            for hit in hits:
                kind = hit.get("type") or {}
                if hit.get("id") and hit.get("online", True) and any(kind.get(t) for t in ORDERABLE_TYPES):
                    skus.add(str(hit["id"]))
            offset += len(hits)
            if not hits or offset >= int(page.get("total") or 0):
                return skus

    def selling_skus(self) -> dict[str, Listing]:
        """ports.CatalogueReader: every SKU orderable on any of the pairing's sites (the product
        id is SFCC's handle for it), naming the sites it is orderable on."""
        sites_of: dict[str, list[str]] = {}
        for site in self.sites:
            for sku in self.orderable_skus(site):
                sites_of.setdefault(sku, []).append(site)
        return {sku: Listing(sku=sku, listing_id=sku, where=", ".join(sites)) for sku, sites in sorted(sites_of.items())}

    # -- stock (OCI) --------------------------------------------------------------------------
    def _stock_regions(self) -> dict[str, dict[str, Any]]:
        """The regions stock goes to: every region with an OCI location (`stock_region` narrows
        it to one)."""
        names = [self.stock_region] if self.stock_region else list(self.regions)
        regions = {name: self.regions[name] for name in names if self.regions[name].get("location")}
        if not regions:
            raise ValueError("sfcc: stock needs `regions` (each with its OCI location) in the pairing's channel options")
        return regions

    def inventory_records(self, locations: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Every OCI record at these locations, by location and SKU (one OCI export, polled until
        its file is ready)."""
        started = self.client.post(self._impex("/exports"), json={"objects": {"locations": list(locations)}}) or {}
        status = self._wait(started.get("exportStatusLink") or self._impex(f"/exports/{started.get('exportId')}/status"), "export")
        link = (status.get("download") or {}).get("downloadLink")
        if status.get("status") != "COMPLETED" or not link:
            raise MalformedResponseError(f"OCI export {started.get('exportId')} ended {status.get('status')} without a file", method="GET", url=str(link), status=200)
        raw = self.client.get(link, expect_json=False) or b""
        records: dict[str, dict[str, dict[str, Any]]] = {loc: {} for loc in locations}
        current = None
        for number, text in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                entry = json.loads(text, parse_float=Decimal)
            except ValueError:
                raise MalformedResponseError(f"OCI export {started.get('exportId')} line {number} is not JSON", method="GET", url=str(link), status=200) from None
            if "location" in entry:
                current = entry["location"]
            elif current in records and entry.get("sku"):
                records[current][str(entry["sku"])] = entry
        return records

    def read_listings(self) -> dict[str, Listing]:
        """Per region: its OCI records (what shoppers are offered now) and, with no record yet,
        the SKUs orderable on the region's sites: both are stock this pairing must keep. Keyed
        `<region>:<sku>` (Listing.key): each region is its own stock pool."""
        regions = self._stock_regions()
        by_location = self.inventory_records([r["location"] for r in regions.values()])
        listings: dict[str, Listing] = {}
        orderable: dict[str, set[str]] = {}
        for name, region in regions.items():
            location = region["location"]
            found = [Listing(sku=sku, listing_id=f"{location}:{sku}", quantity=_whole(record.get("onHand")), region=name)
                     for sku, record in by_location[location].items()]
            if self.listings_from_catalog:
                known = {l.sku for l in found}
                for site in region.get("sites") or []:
                    if site not in orderable:
                        orderable[site] = self.orderable_skus(site)
                    found += [Listing(sku=sku, listing_id=f"{location}:{sku}", quantity=None, region=name, recorded=False) for sku in sorted(orderable[site] - known)]
                    known |= orderable[site]
            listings.update((l.key, l) for l in found)
        return listings

    def push_stock(self, updates: list[tuple[Listing, int]], batch_size: int | None = None) -> list[tuple[str, str | None]]:
        """One OCI import for the run: per region, its location line, then one record per SKU
        with a fresh UUID recordId and onHand = the sellable quantity (the region's buffer is
        already taken off, so OCI's own safetyStockCount stays 0). Polled to the end; each
        validation error naming one of our record ids refuses that listing with OCI's reason."""
        if not updates:
            return []
        regions = self._stock_regions()
        effective = _iso(self._clock())
        by_record: dict[str, str] = {}
        sections: dict[str, list[str]] = {}
        for listing, quantity in updates:
            region = listing.region or next(iter(regions))
            if region not in regions:
                raise ValueError(f"sfcc: listing {listing.key}: region {region!r} is not one stock goes to ({', '.join(regions)})")
            record_id = str(uuid.uuid4())
            by_record[record_id.lower()] = listing.key
            sections.setdefault(regions[region]["location"], []).append(json.dumps(
                {"recordId": record_id, "sku": listing.sku, "onHand": int(quantity), "effectiveDate": effective, "safetyStockCount": 0, "futures": []},
                separators=(",", ":")))
        lines = [line for location, records in sections.items() for line in [json.dumps({"location": location, "mode": "UPDATE"}), *records]]
        started = self.client.post(self._impex("/imports"), json={}) or {}
        link = started.get("uploadLink")
        if not link:
            raise MalformedResponseError(f"OCI import {started.get('importId')}: no upload link", method="POST", url=self._impex("/imports"), status=200)
        # the upload is a PUT of the same bytes: a retry after a lost answer sends the same record
        # ids, which OCI applies once
        self.client.request(started.get("uploadMethod") or "PUT", link, data=("\n".join(lines) + "\n").encode(),
                            headers={"Content-Type": "application/x-ndjson"}, idempotent=True)
        status = self._wait(started.get("importStatusLink") or self._impex(f"/imports/{started.get('importId')}/status"), "import")
        refused: dict[str, str] = {}
        general: list[str] = []
        for error in status.get("validationErrors") or []:
            text = error if isinstance(error, str) else json.dumps(error, default=str)
            named = [by_record[m.lower()] for m in UUID.findall(text) if m.lower() in by_record]
            for key in named:
                refused[key] = text
            if not named:
                general.append(text)
        if general:
            log.warning("sfcc: OCI import %s: errors naming no record of ours: %s", started.get("importId"), "; ".join(general)[:1000])
        if status.get("status") != "COMPLETED":
            why = f"OCI import {started.get('importId')} ended {status.get('status')}" + (f": {'; '.join(general)[:500]}" if general else "")
            return [(listing.key, refused.get(listing.key, why)) for listing, _ in updates]
        return [(listing.key, refused.get(listing.key)) for listing, _ in updates]

    def _wait(self, status_link: str, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.import_timeout_seconds
        while True:
            status = self.client.get(status_link) or {}
            if status.get("status") in ("COMPLETED", "FAILED"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"OCI {what} still {status.get('status')} after {self.import_timeout_seconds:.0f} s ({status_link})")
            self._sleep(self.import_poll_seconds)

    # -- refunds and payouts: through the payment provider's settlement report ---------------
    def fetch_payouts(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        raise NotImplementedError("SFCC sites settle through a payment provider: payouts come from its settlement report, not SFCC")

    def to_payout_lines(self, raw: dict[str, Any]) -> list[PayoutLine]:
        raise NotImplementedError("SFCC sites settle through a payment provider: payouts come from its settlement report, not SFCC")

    def fetch_refunds(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        raise NotImplementedError("SFCC refunds are read from the payment provider's settlement report, not SFCC")

    def to_refund(self, raw: dict[str, Any]) -> Refund:
        raise NotImplementedError("SFCC refunds are read from the payment provider's settlement report, not SFCC")


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS); refunds and
# payouts come from the payment provider's settlement report, not SFCC. Products are made in SFCC
# (Business Manager, a PIM): the catalogue flow only checks what the sites sell (CATALOGUE_READ).
CAPABILITIES = frozenset({ports.ORDERS, ports.ORDER_QUEUE, ports.STOCK, ports.SHIPMENTS, ports.CATALOGUE_READ})


def connect(conn) -> Connected:
    """Connection: host = the SCAPI host (`https://<shortCode>.api.commercecloud.salesforce.com`,
    or give extra.short_code and no host), login/password = the Account Manager API client's id
    and secret; extra: `tenant` (realm_instance, e.g. zzxy_prd), `token_url` (default Account
    Manager's), `organization_id` (default f_ecom_<tenant>), `oci_tenant_group_id` (OCI's id in
    its paths; default the organisation id), `scopes` (default orders, products, OCI impex)."""
    extra = getattr(conn, "extra_dejson", None) or {}
    tenant = extra.get("tenant")
    if not tenant:
        raise ValueError(f"connection {getattr(conn, 'conn_id', '?')}: extra.tenant (the realm and instance, e.g. zzxy_prd) is required")
    scopes = extra.get("scopes") or list(SCOPES)
    scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
    # the token call shares the API client's timeouts, retries and payload log (OAuth2ClientCredentials.bind)
    auth = OAuth2ClientCredentials(extra.get("token_url") or ACCOUNT_MANAGER, conn.login or "", conn.password or "",
                                   [f"SALESFORCE_COMMERCE_API:{tenant}", *scopes])
    org = extra.get("organization_id") or f"f_ecom_{tenant}"
    base = None if conn.host else f"https://{extra['short_code']}.api.commercecloud.salesforce.com" if extra.get("short_code") else None
    return Connected(auth=auth, base_url=base, options={"organization_id": org, "oci_organization_id": extra.get("oci_tenant_group_id") or org})


def auth_for(conn) -> dict[str, str]:
    raise NotImplementedError("sfcc authenticates with OAuth2 client credentials: see connect(conn)")


def build(client: HttpClient, ref, cache=None) -> SfccChannel:
    options = dict(ref.options or {})
    if not options.get("organization_id"):
        raise ValueError(f"{ref.connection}: no organisation id (the connection's extra.tenant or extra.organization_id)")
    return SfccChannel(
        client,
        organization_id=options["organization_id"],
        oci_organization_id=options.get("oci_organization_id"),
        sites=options.get("sites") or {},
        bookable=options.get("bookable"),
        shipment_attributes=options.get("shipment_attributes"),
        hold_reason_attribute=options.get("hold_reason_attribute"),
        regions=options.get("regions"),
        stock_region=options.get("stock_region"),
        listings_from_catalog=bool(options.get("listings_from_catalog", True)),
        page_size=int(options.get("page_size", MAX_PAGE)),
        import_poll_seconds=float(options.get("import_poll_seconds", 10)),
        import_timeout_seconds=float(options.get("import_timeout_seconds", 900)),
    )
