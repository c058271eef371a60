"""commercetools Composable Commerce HTTP API: the Channel port (and what the catalogue flow will
need), through the shared HTTP client.

- Auth: OAuth 2 client credentials against the auth host (`http.OAuth2ClientCredentials`; the
  connection's login/password are the API client's id and secret, its extra names `auth_url`,
  `project_key` and `scopes`). The API lives at `<host>/<projectKey>`.
- Reads page by a keyset on (lastModifiedAt, id): `where` + `sort=lastModifiedAt asc&sort=id asc`,
  `withTotal=false`, `limit`; never an offset (the API refuses one past 10,000).
- Every update sends the resource's `version`. A 409 ConcurrentModification is never replayed
  as it was: the resource is read again, the change computed again from what it now holds (it
  may be there already), and sent again, a bounded number of times; then ConflictError, which
  the flows hold with its reason. Because a change is computed from the state it applies to, a
  write whose answer was lost is safe to send again: the version refuses the second one.
- Money and order translation: systems/commercetools_orders.py.

A commercetools Order is one canonical Order: `orderNumber` is the channel reference (the ERP's
ExternalID; an order without one is held by the gate), `id` the channel id. Which orders are
bookable is the pairing's: `bookable_order_states` and `bookable_payment_states` in
`channel.options`. Once booked, the order says so itself: a SyncInfo entry whose channel stands
for the ERP (`sync_channel`, created with the OrderExport role if missing) and whose externalId
is the ERP's sale id.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from hashlib import sha1
from typing import Any

from commerce_sync import ports
from commerce_sync.errors import ClientError, ConflictError
from commerce_sync.http import HttpClient, OAuth2ClientCredentials, paginate_keyset
from commerce_sync.models import CatalogueItem, CatalogueProduct, Listing, Order, PayoutLine, Refund, SaleRef, Shipment
from commerce_sync.stock import less_sold_since_read
from commerce_sync.systems.commercetools_orders import (
    CAPTURED,
    localized,
    order_from,
    payout_lines_from,
    refund_from,
    successful,
    tax_portions,
)
from commerce_sync.systems.common import Connected, parse_time

log = logging.getLogger(__name__)

MAX_PAGE = 500  # the API's largest `limit`
IDS_PER_QUERY = 100  # ids in one `id in (...)` predicate: the URL (keyset and all) stays under 5 KB, well under 8 KB
KEYSET_SORT = ["lastModifiedAt asc", "id asc"]
SHIPPED_STATES = {"Shipped", "Delivered"}
PAIRING_DEFAULT: Any = object()  # "the pairing's supply channel", where None means "no supply channel"


def _iso(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def q(value: str) -> str:
    """A string literal in a query predicate (JSON escaping: quotes and backslashes)."""
    return json.dumps(str(value))


def _in(field: str, values: Iterable[str]) -> str:
    return f"{field} in ({', '.join(q(v) for v in values)})"


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _error_message(exc: ClientError) -> str:
    """commercetools' own words from an error body, else the client's message."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc)
    if isinstance(body, dict):
        messages = [e.get("message") for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")]
        return "; ".join(messages) or str(body.get("message") or exc)
    return str(exc)


def _codes(exc: ClientError) -> set[str]:
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return set()
    return {e.get("code") for e in (body.get("errors") or []) if isinstance(e, dict)} if isinstance(body, dict) else set()


def delivery_key(shipment_ref: str) -> str:
    """A Delivery key from the ERP's box reference (keys allow only [A-Za-z0-9_-], 2..256)."""
    return "erp-" + sha1(shipment_ref.encode()).hexdigest()[:32]


def deliveries_of(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    infos = [s.get("shippingInfo") or {} for s in order.get("shipping") or []] + [order.get("shippingInfo") or {}]
    return [d for info in infos if isinstance(info, dict) for d in info.get("deliveries") or []]


class CommercetoolsChannel:
    name = "commercetools"

    def __init__(
        self,
        client: HttpClient,
        *,
        bookable_order_states: Iterable[str] = ("Open", "Confirmed"),
        bookable_payment_states: Iterable[str] = ("Paid",),
        seller_ref: str = "storefront",
        sync_channel: str = "cin7-core",
        sync_channel_name: str = "Cin7 Core",
        supply_channel: str | None = None,
        supply_channels: Iterable[str] | None = None,
        locale: str | None = None,
        page_size: int = MAX_PAGE,
        conflict_retries: int = 5,
        product_type: str | None = None,
        attributes: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cache: Callable[..., Any] | None = None,
    ):
        self.client = client
        self.order_states = list(bookable_order_states or [])
        self.payment_states = list(bookable_payment_states or [])
        self.seller_ref = seller_ref
        self.sync_channel = sync_channel
        self.sync_channel_name = sync_channel_name
        # stock per supply channel: each is a stock region (the pairing's stock.regions, keyed by
        # the channel key, say which Cin7 locations feed it); without them, the one supply_channel
        self.supply_channels = list(dict.fromkeys(supply_channels or []))
        self.supply_channel = supply_channel if supply_channel is not None or not self.supply_channels else self.supply_channels[0]
        self.locale = locale
        self.page_size = min(int(page_size), MAX_PAGE)
        self.conflict_retries = max(1, int(conflict_retries))
        self.product_type = product_type
        self.attributes = dict(attributes or {})  # master field -> product type attribute (barcode -> ean)
        self._sleep = sleep
        self.cache = cache
        self._channel_ids: dict[str, str] = {}

    # -- reading ---------------------------------------------------------------------------
    def _query(self, path: str, where: str | None = None, *, expand: Iterable[str] = (), params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every resource matching `where`, by a keyset on (lastModifiedAt, id)."""
        extra = {**(params or {}), **({"expand": list(expand)} if expand else {})}

        def after(last: dict | None) -> dict[str, Any]:
            parts = [f"({where})"] if where else []
            if last is not None:
                t, i = q(last["lastModifiedAt"]), q(last["id"])
                parts.append(f"(lastModifiedAt > {t} or (lastModifiedAt = {t} and id > {i}))")
            return {**extra, "sort": KEYSET_SORT, "withTotal": "false", **({"where": " and ".join(parts)} if parts else {})}

        yield from paginate_keyset(self.client, path, list_key="results", after=after, limit=self.page_size,
                                   cursor=lambda item: (parse_time(item.get("lastModifiedAt"), "lastModifiedAt"), str(item.get("id"))))

    def _by_ids(self, path: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(ids)), IDS_PER_QUERY):
            found.update((r["id"], r) for r in self._query(path, _in("id", chunk)))
        return found

    # -- versioned updates -----------------------------------------------------------------
    def update(self, path: str, compute: Callable[[dict[str, Any]], list[dict[str, Any]]], current: dict[str, Any] | None = None,
               *, state_based: bool = True) -> dict[str, Any]:
        """Apply `compute(resource)` (update actions; none means nothing to do) at the resource's
        version. On 409 ConcurrentModification: read it again, compute again, send again, at most
        `conflict_retries` times. `state_based` says the actions are computed from the state
        alone (set to, add if missing): then a write whose answer was lost may be sent again,
        since the version refuses a second copy and the re-read finds it done. A delta (add 3)
        is not: it is never sent twice after a lost answer."""
        last: ClientError | None = None
        for attempt in range(self.conflict_retries):
            if current is None:
                current = self.client.get(path)
            actions = compute(current)
            if not actions:
                return current
            try:
                return self.client.post(path, json={"version": current["version"], "actions": actions}, idempotent=state_based)
            except ClientError as exc:
                if exc.status != 409 or "ConcurrentModification" not in _codes(exc):
                    raise
                last, current = exc, None  # someone changed it first: recompute from what is there now
                self._sleep(random.uniform(0, 0.05 * (attempt + 1)))  # two writers must not retry in step
        raise ConflictError(f"{path}: changed by someone else on each of {self.conflict_retries} attempts; last: {_error_message(last)}",
                            method="POST", url=last.url if last else path, status=409, body=last.body if last else None)

    # -- channels (references) -------------------------------------------------------------
    def channel_id(self, key: str, *, create_role: str | None = None, name: str | None = None) -> str:
        """A Channel's id by key (read once per adapter); created with `create_role` if missing."""
        if key in self._channel_ids:
            return self._channel_ids[key]
        try:
            found = self.client.get(f"/channels/key={key}")
        except ClientError as exc:
            if exc.status != 404 or create_role is None:
                if exc.status == 404:
                    raise ClientError(f"commercetools has no channel with key {key!r}: create it (or fix the pairing's options)", status=404) from None
                raise
            try:
                found = self.client.post("/channels", json={"key": key, "roles": [create_role], "name": {"en": name or key}})
            except ClientError as dup:
                if "DuplicateField" not in _codes(dup):
                    raise
                found = self.client.get(f"/channels/key={key}")  # made by a parallel run meanwhile
        self._channel_ids[key] = found["id"]
        return found["id"]

    # -- orders ------------------------------------------------------------------------------
    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Bookable orders changed in [start, end): an order becomes bookable by a change (paid,
        confirmed), so it is seen in the window of that change, and again, harmlessly, later."""
        where = [f"lastModifiedAt >= {q(_iso(start))}", f"lastModifiedAt < {q(_iso(end))}"]
        if self.order_states:
            where.append(_in("orderState", self.order_states))
        if self.payment_states:
            where.append(_in("paymentState", self.payment_states))
        yield from self._query("/orders", " and ".join(where))

    def captured_orders(self, start: datetime, end: datetime) -> Iterator[tuple[dict[str, Any], bool]]:
        """Orders changed in [start, end) whatever their payment: those in a bookable order state
        hold their stock (placing one took its units off the inventory entry; it is booked once
        paid), a cancelled one has let it go."""
        where = f"lastModifiedAt >= {q(_iso(start))} and lastModifiedAt < {q(_iso(end))}"
        if self.order_states:  # completed orders are none of stock_out's business: not read
            where += f" and {_in('orderState', [*self.order_states, 'Cancelled'])}"
        for raw in self._query("/orders", where):
            state = raw.get("orderState")
            if state == "Cancelled":
                yield raw, False
            elif not self.order_states or state in self.order_states:
                yield raw, True

    def record_key(self, raw: dict[str, Any]) -> str:
        return str(raw.get("id"))

    def to_order(self, raw: dict[str, Any]) -> Order:
        order = order_from(raw, channel=self.name, default_seller=self.seller_ref, locale=self.locale)
        if not self.supply_channels:
            return order
        # each line's stock region: its supply channel, where it is one of ours and its id known
        # (read_listings looks them up): stock_out matches the line to that region's entry
        regions = {cid: key for key, cid in self._channel_ids.items() if key in self.supply_channels}
        by_line = {str(li.get("id")): regions.get(((li.get("supplyChannel") or {}).get("id"))) for li in raw.get("lineItems") or []}
        if not any(by_line.values()):
            return order
        return order.model_copy(update={"lines": [line.model_copy(update={"region": by_line.get(line.line_ref)}) for line in order.lines]})

    @staticmethod
    def tax_portions(raw: dict[str, Any]) -> list[dict[str, Any]]:
        """The order's tax portions (order, per line item, shipping): name, rate, amount; for a
        gate that maps them to ERP tax rules."""
        return tax_portions(raw)

    def orders_awaiting_acceptance(self) -> Iterator[dict[str, Any]]:
        return iter(())  # a storefront's orders need no seller acceptance

    def accept_order(self, order: Order, decisions) -> None:
        raise NotImplementedError("commercetools has no order acceptance; remove `acceptance:` from the pairing")

    def acknowledge_order(self, order: Order, sale: SaleRef) -> None:
        """SyncInfo on the order: the ERP's channel and sale id, once (an entry already there
        for that channel and sale is left alone, so a repeat adds nothing)."""
        channel = self.channel_id(self.sync_channel, create_role="OrderExport", name=self.sync_channel_name)

        def compute(current: dict[str, Any]) -> list[dict[str, Any]]:
            for info in current.get("syncInfo") or []:
                if (info.get("channel") or {}).get("id") == channel and info.get("externalId") == sale.master_id:
                    return []
            return [{"action": "updateSyncInfo", "channel": {"typeId": "channel", "id": channel}, "externalId": sale.master_id,
                     "syncedAt": _iso(datetime.now(timezone.utc))}]

        self.update(f"/orders/{order.channel_id}", compute)

    def synced_sale(self, raw: dict[str, Any]) -> str | None:
        """The ERP sale id the order's SyncInfo names for the ERP's channel, if any."""
        channel = self.channel_id(self.sync_channel, create_role="OrderExport", name=self.sync_channel_name)
        return next((i.get("externalId") for i in raw.get("syncInfo") or [] if (i.get("channel") or {}).get("id") == channel), None)

    # -- dispatch ----------------------------------------------------------------------------
    def mark_ready(self, order_channel_id: str) -> dict[str, Any]:
        """Shipment state Ready (picked in the warehouse), unless it is already further along."""
        return self.update(f"/orders/{order_channel_id}", lambda o: [] if o.get("shipmentState") in {"Ready", "Partial"} | SHIPPED_STATES
                           else [{"action": "changeShipmentState", "shipmentState": "Ready"}])

    def push_shipment(self, order_channel_id: str, shipment: Shipment, carrier: str) -> str:
        """One Delivery per ERP box: its line items and quantities, and one parcel with the carrier
        and tracking number; shipment state Partial, or Shipped once every line is delivered. A
        delivery already there for this box (its key, or the same tracking number and goods) is
        the answer, never a second one. Returns the delivery id."""
        key = delivery_key(shipment.shipment_ref)
        found: dict[str, str] = {}

        wanted: dict[str, int] = {}
        for line in shipment.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity

        def compute(order: dict[str, Any]) -> list[dict[str, Any]]:
            found.clear()
            existing = deliveries_of(order)
            sku_of = {li.get("id"): (li.get("variant") or {}).get("sku") for li in order.get("lineItems") or []}
            for d in existing:
                same_parcel = bool(shipment.tracking_number) and any((p.get("trackingData") or {}).get("trackingId") == shipment.tracking_number
                                                                     for p in d.get("parcels") or []) and _goods(d.get("items"), sku_of) == wanted
                if d.get("key") == key or same_parcel:
                    found["id"] = d["id"]
                    return []
            items = self._delivery_items(order, existing, shipment)
            if items is None:
                raise self._short(order, existing, shipment)
            tracking = {k: v for k, v in (("trackingId", shipment.tracking_number), ("carrier", carrier)) if v}
            delivery: dict[str, Any] = {"action": "addDelivery", "deliveryKey": key, "items": items, "parcels": [{"trackingData": tracking, "items": items}]}
            if order.get("shippingMode") == "Multiple":
                keys = [s.get("shippingKey") for s in order.get("shipping") or []]
                if len(keys) != 1:
                    raise ClientError(f"order {order.get('orderNumber') or order.get('id')} ships by {len(keys)} shipping methods: "
                                      "which one this box belongs to is not known", status=422)
                delivery["shippingKey"] = keys[0]
            delivered = _delivered(existing)
            for item in items:
                delivered[item["id"]] = delivered.get(item["id"], 0) + item["quantity"]
            whole = all(delivered.get(li["id"], 0) >= li.get("quantity", 0) for li in order.get("lineItems") or [])
            actions = [delivery]
            state = "Shipped" if whole else "Partial"
            if order.get("shipmentState") != state and order.get("shipmentState") not in ({"Delivered"} if whole else SHIPPED_STATES):
                actions.append({"action": "changeShipmentState", "shipmentState": state})
            return actions

        result = self.update(f"/orders/{order_channel_id}", compute)
        if "id" in found:
            return found["id"]
        return next(d["id"] for d in deliveries_of(result) if d.get("key") == key)

    @staticmethod
    def _delivery_items(order: dict[str, Any], existing: list[dict[str, Any]], shipment: Shipment) -> list[dict[str, Any]] | None:
        """The box's SKUs onto line items, never beyond what is left to deliver on a line; None
        when the order has too little left (the box ships more than was ordered)."""
        delivered = _delivered(existing)
        out: dict[str, int] = {}
        for line in shipment.lines:
            need = line.quantity
            for li in order.get("lineItems") or []:
                if need and (li.get("variant") or {}).get("sku") == line.sku:
                    take = min(need, int(li.get("quantity") or 0) - delivered.get(li["id"], 0) - out.get(li["id"], 0))
                    if take > 0:
                        out[li["id"]] = out.get(li["id"], 0) + take
                        need -= take
            if need:
                return None
        return [{"id": i, "quantity": n} for i, n in out.items()]

    @staticmethod
    def _short(order: dict[str, Any], existing: list[dict[str, Any]], shipment: Shipment) -> ClientError:
        delivered = _delivered(existing)
        left = {}
        for li in order.get("lineItems") or []:
            sku = (li.get("variant") or {}).get("sku")
            left[sku] = left.get(sku, 0) + int(li.get("quantity") or 0) - delivered.get(li["id"], 0)
        detail = ", ".join(f"{line.sku}: {line.quantity} in the box, {left.get(line.sku, 0)} left to deliver" for line in shipment.lines)
        return ClientError(f"order {order.get('orderNumber') or order.get('id')}: the box holds more than is left to deliver ({detail})", status=422)

    # -- stock -------------------------------------------------------------------------------
    def _inventory_where(self, supply_channel: Any) -> str:
        if supply_channel is None:
            return "supplyChannel is not defined"
        return f"supplyChannel(id = {q(self.channel_id(supply_channel))})"

    def read_inventory(self, supply_channel: str | None | object = PAIRING_DEFAULT) -> Iterator[dict[str, Any]]:
        """Every inventory entry of a supply channel (key; None: entries without one; default:
        the pairing's), as the API gives it (quantityOnStock and availableQuantity)."""
        channel = self.supply_channel if supply_channel is PAIRING_DEFAULT else supply_channel
        yield from self._query("/inventory", self._inventory_where(channel))

    def read_listings(self) -> dict[str, Listing]:
        """The inventory entries stock_out sets, by Listing.key. The quantity is `quantityOnStock`,
        the figure this integration sets (orders placed on the storefront take theirs off it).
        With `supply_channels`, each channel's entries, region = the channel key (`<key>:<SKU>`);
        otherwise the one supply channel's, by SKU."""
        if not self.supply_channels:
            return {e["sku"]: Listing(sku=e["sku"], listing_id=e["id"], quantity=e.get("quantityOnStock"), as_of=_as_of(e)) for e in self.read_inventory() if e.get("sku")}
        found = (Listing(sku=e["sku"], listing_id=e["id"], quantity=e.get("quantityOnStock"), region=key, as_of=_as_of(e))
                 for key in self.supply_channels for e in self.read_inventory(key) if e.get("sku"))
        return {listing.key: listing for listing in found}

    def push_stock(self, updates: list[tuple[Listing, int]], batch_size: int = 50) -> list[tuple[str, str | None]]:
        """Set each entry's quantityOnStock (changeQuantity) at its current version; the entries
        are read back a batch at a time first (one call per `batch_size`), and one left as it is
        already needs no write. Orders placed since the flow read the entry (`listing.quantity`)
        took their units off it and are not in the target yet: they come off the target too. A 409
        (an order or another writer meanwhile) re-reads that entry and computes it again. A
        listing's entry is that of its supply channel; results are by Listing.key."""
        results: list[tuple[str, str | None]] = []
        for chunk in _chunks(list(updates), max(1, min(int(batch_size), IDS_PER_QUERY))):
            current = self._by_ids("/inventory", [listing.listing_id for listing, _ in chunk])
            for listing, qty in chunk:
                try:
                    self.update(f"/inventory/{listing.listing_id}", _set_less_sold(qty, listing.quantity), current=current.get(listing.listing_id),
                                state_based=False)
                    results.append((listing.key, None))
                except ClientError as exc:
                    results.append((listing.key, _error_message(exc)))
        return results

    def set_stock(self, sku: str, quantity: int, supply_channel: str | None | object = PAIRING_DEFAULT) -> dict[str, Any]:
        """Set a SKU's quantityOnStock in a supply channel, creating the entry if there is none."""
        channel = self.supply_channel if supply_channel is PAIRING_DEFAULT else supply_channel
        where = f"sku = {q(sku)} and {self._inventory_where(channel)}"
        entry = next(iter(self._query("/inventory", where)), None)
        if entry is None:
            draft: dict[str, Any] = {"sku": sku, "quantityOnStock": quantity}
            if channel is not None:
                draft["supplyChannel"] = {"typeId": "channel", "id": self.channel_id(channel)}
            try:
                return self.client.post("/inventory", json=draft)
            except ClientError as exc:
                if "DuplicateField" not in _codes(exc):
                    raise
                entry = next(iter(self._query("/inventory", where)))  # created by someone else meanwhile
        return self.update(f"/inventory/{entry['id']}", _set_to(quantity), current=entry)

    def adjust_stock(self, entry_id: str, delta: int) -> dict[str, Any]:
        """Add (or, negative, remove) units at the entry's version; a 409 re-reads and adds again
        (the refused write changed nothing). Never re-sent after a lost answer: a delta cannot
        tell whether it landed."""
        action = {"action": "addQuantity", "quantity": delta} if delta >= 0 else {"action": "removeQuantity", "quantity": -delta}
        return self.update(f"/inventory/{entry_id}", lambda _entry: [action] if delta else [], state_based=False)

    # -- payments: refunds and payouts -------------------------------------------------------
    def _payments_changed(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        yield from self._query("/payments", f"lastModifiedAt >= {q(_iso(start))} and lastModifiedAt < {q(_iso(end))}")

    def _orders_paid_by(self, payment_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Orders holding any of these payments, with every payment of theirs expanded."""
        seen: set[str] = set()
        for chunk in _chunks(sorted(set(payment_ids)), IDS_PER_QUERY):
            for order in self._query("/orders", f"paymentInfo(payments({_in('id', chunk)}))", expand=["paymentInfo.payments[*]"]):
                if order["id"] not in seen:
                    seen.add(order["id"])
                    yield order

    @staticmethod
    def _payments_of(order: dict[str, Any]) -> list[dict[str, Any]]:
        return [ref["obj"] for ref in (order.get("paymentInfo") or {}).get("payments") or [] if isinstance(ref.get("obj"), dict)]

    def fetch_refunds(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Successful Refund transactions of payments changed in the window, one record each, with
        the order's line items and return info (to know what was returned)."""
        changed = [p for p in self._payments_changed(start, end) if successful(p, ("Refund",))]
        for order in self._orders_paid_by(p["id"] for p in changed):
            payments = self._payments_of(order)
            refunds = [(p, t) for p in payments for t in successful(p, ("Refund",))]
            trimmed = {"id": order["id"], "orderNumber": order.get("orderNumber"), "currency": (order.get("totalPrice") or {}).get("currencyCode"),
                       "returnInfo": order.get("returnInfo") or [],
                       "lineItems": [{"id": li.get("id"), "quantity": li.get("quantity"), "totalPrice": li.get("totalPrice"),
                                      "variant": {"sku": (li.get("variant") or {}).get("sku")}} for li in order.get("lineItems") or []]}
            for payment, tx in refunds:
                yield {"id": str(tx["id"]), "transaction": tx, "payment": {"id": payment["id"]}, "modified": payment.get("lastModifiedAt"),
                       "refunds_on_order": len(refunds), "order": trimmed}

    def to_refund(self, raw: dict[str, Any]) -> Refund:
        return refund_from(raw)

    def fetch_payouts(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """One record per order whose payment was captured (a successful Charge) in the window,
        holding every payment of the order: what the customer paid, to match to the sale."""

        def captured_in_window(p: dict[str, Any]) -> bool:
            return any(start <= parse_time(t.get("timestamp") or p.get("lastModifiedAt"), "timestamp") < end for t in successful(p, CAPTURED))

        changed = [p["id"] for p in self._payments_changed(start, end) if captured_in_window(p)]
        for order in self._orders_paid_by(changed):
            yield {"id": order["id"], "order": {"id": order["id"], "orderNumber": order.get("orderNumber"),
                                               "currency": (order.get("totalPrice") or {}).get("currencyCode")},
                   "payments": self._payments_of(order)}

    def to_payout_lines(self, raw: dict[str, Any]) -> list[PayoutLine]:
        return payout_lines_from(raw)

    # -- catalogue (for the catalogue_out flow) ----------------------------------------------
    def find_product(self, sku: str, *, staged: bool = True) -> dict[str, Any] | None:
        """The product projection holding a variant with this SKU (staged: what ecommerce edits)."""
        where = f"masterVariant(sku = {q(sku)}) or variants(sku = {q(sku)})"
        return next(iter(self._query("/product-projections", where, params={"staged": "true" if staged else "false"})), None)

    def _attribute_values(self, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"name": self.attributes[f], "value": v} for f, v in fields.items() if f in self.attributes and v is not None]

    def create_product(self, sku: str, fields: Mapping[str, Any]) -> str:
        """A product with one variant of this SKU, unpublished, holding only the given master
        fields: `name` (the product name, in the pairing's locale) and the fields the pairing maps
        to product-type attributes. The slug (required) is made from the SKU. A product already
        holding the SKU is the answer (a create whose answer was lost is not made twice)."""
        existing = self.find_product(sku)
        if existing is not None:
            return existing["id"]
        if not self.product_type:
            raise ClientError("the pairing names no product type (channel.options.product_type) for new products", status=422)
        locale = self.locale or "en"
        slug = re.sub(r"[^a-z0-9_-]+", "-", sku.lower()).strip("-") or "sku"
        draft = {"productType": {"typeId": "product-type", "key": self.product_type}, "name": {locale: fields.get("name") or sku},
                 "slug": {locale: slug}, "masterVariant": {"sku": sku, "attributes": self._attribute_values(fields)}, "publish": False}
        try:
            return self.client.post("/products", json=draft)["id"]
        except ClientError as exc:
            if "DuplicateField" in _codes(exc) and (found := self.find_product(sku)) is not None:
                return found["id"]
            raise

    def update_product(self, sku: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write changed master fields on the staged product (name, mapped attributes), nothing
        else; None when no product holds the SKU."""
        existing = self.find_product(sku)
        if existing is None:
            return None
        return self.update(f"/products/{existing['id']}", self._owned_changes(sku, fields))

    def _owned_changes(self, sku: str, fields: Mapping[str, Any]) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
        """The staged product's changes that bring the master's fields (name, mapped attributes)
        to `fields`, computed from the product's state (so safe to send again)."""
        locale = self.locale or "en"

        def compute(product: dict[str, Any]) -> list[dict[str, Any]]:
            staged = product["masterData"]["staged"]
            actions: list[dict[str, Any]] = []
            if fields.get("name") and localized(staged.get("name"), locale) != fields["name"]:
                actions.append({"action": "changeName", "name": {**(staged.get("name") or {}), locale: fields["name"]}, "staged": True})
            variant = next((v for v in [staged["masterVariant"], *staged.get("variants", [])] if v.get("sku") == sku), {})
            now = {a["name"]: a.get("value") for a in variant.get("attributes") or []}
            for attr in self._attribute_values(fields):
                if now.get(attr["name"]) != attr["value"]:
                    actions.append({"action": "setAttribute", "sku": sku, "name": attr["name"], "value": attr["value"], "staged": True})
            return actions

        return compute

    def published_variants(self) -> Iterator[tuple[str, str]]:
        """(SKU, product id) of every variant on sale (published, current data)."""
        for projection in self._query("/product-projections", params={"staged": "false"}):
            for variant in [projection.get("masterVariant") or {}, *(projection.get("variants") or [])]:
                if variant.get("sku"):
                    yield variant["sku"], projection["id"]

    def unpublish(self, product_id: str) -> dict[str, Any]:
        """Take a product off sale (its data stays for ecommerce to fix)."""
        return self.update(f"/products/{product_id}", lambda p: [{"action": "unpublish"}] if p["masterData"].get("published") else [])

    # -- the catalogue ports (ports.CatalogueReader, CatalogueWriter, CatalogueUnpublisher) --------
    def selling_skus(self) -> dict[str, Listing]:
        """Every SKU of a published product, with the product's id."""
        return {sku: Listing(sku=sku, listing_id=product_id) for sku, product_id in self.published_variants()}

    @staticmethod
    def _single(product: CatalogueProduct) -> CatalogueItem:
        # a master product here is one SKU (an ERP's product); products of several SKUs would need
        # addVariant, which this adapter does not send
        if len(product.items) != 1:
            raise ClientError(f"product {product.product_ref} has {len(product.items)} SKUs: this adapter makes one commercetools product per SKU", status=422)
        return product.items[0]

    @staticmethod
    def _owned(product: CatalogueProduct, item: CatalogueItem, how: ports.ListingInstructions) -> dict[str, Any]:
        values = {"name": item.name or product.name, "barcode": item.barcode, "weight": item.weight}
        return {f: values[f] for f in how.fields if f in values and values[f] is not None}

    def find_listing(self, product: CatalogueProduct, how: ports.ListingInstructions) -> str | None:
        found = self.find_product(how.channel_sku(self._single(product).sku))
        return found["id"] if found is not None else None

    def create_listing(self, product: CatalogueProduct, how: ports.ListingInstructions) -> str:
        """Unpublished, holding only the owned fields (`create_product`); published at once only
        when the pairing says so."""
        item = self._single(product)
        product_id = self.create_product(how.channel_sku(item.sku), self._owned(product, item, how))
        if how.publish:
            self.update(f"/products/{product_id}", lambda p: [] if p["masterData"].get("published") else [{"action": "publish"}])
        return product_id

    def update_listing(self, listing_id: str, product: CatalogueProduct, how: ports.ListingInstructions) -> bool:
        item = self._single(product)
        before = self.client.get(f"/products/{listing_id}")
        after = self.update(f"/products/{listing_id}", self._owned_changes(how.channel_sku(item.sku), self._owned(product, item, how)), current=before)
        return after.get("version") != before.get("version")

    def take_off_sale(self, listing: Listing) -> None:
        self.unpublish(listing.listing_id)


def _as_of(entry: dict[str, Any]) -> datetime | None:
    """The entry's lastModifiedAt: placing an order takes its units off the entry and so moves it,
    so every order placed (createdAt) at or before it is in quantityOnStock, and a later one is
    not (push_stock takes those off). None (hold back every unbooked order) where it is unreadable."""
    try:
        at = datetime.fromisoformat(str(entry["lastModifiedAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return at if at.tzinfo is not None else None


def _set_less_sold(target: int, read: int | None) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """Set to the target less what sold since `read` (stock.less_sold_since_read). Computed from
    the entry's state but not re-sent after a lost answer: had it landed, the re-read would take
    our own write for a sale (the next run sets it right)."""

    def compute(entry: dict[str, Any]) -> list[dict[str, Any]]:
        on_stock = entry.get("quantityOnStock")
        quantity = less_sold_since_read(target, read, on_stock if isinstance(on_stock, int) else None)
        return [] if on_stock == quantity else [{"action": "changeQuantity", "quantity": quantity}]

    return compute


def _set_to(quantity: int) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda entry: [] if entry.get("quantityOnStock") == quantity else [{"action": "changeQuantity", "quantity": quantity}]


def _delivered(deliveries: list[dict[str, Any]]) -> dict[str, int]:
    done: dict[str, int] = {}
    for d in deliveries:
        for item in d.get("items") or []:
            done[item["id"]] = done.get(item["id"], 0) + int(item.get("quantity") or 0)
    return done


def _goods(items: Any, sku_of: Mapping[str, Any]) -> dict[str, int]:
    """A delivery's items as quantities by SKU."""
    out: dict[str, int] = {}
    for item in items or []:
        sku = sku_of.get(item.get("id"))
        out[sku] = out.get(sku, 0) + int(item.get("quantity") or 0)
    return out


# -- wiring ---------------------------------------------------------------------------------------
def _extra(conn) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None) or {}
    missing = [k for k in ("project_key", "auth_url") if not extra.get(k)]
    if missing:
        raise ValueError(f"connection {getattr(conn, 'conn_id', '?')}: its extra needs {', '.join(missing)} (see airflow_settings.yaml)")
    return extra


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS)
# Webhooks (commerce_sync/webhooks.py): commercetools Subscriptions push to queues (SQS, SNS,
# EventBridge, Pub/Sub, Azure), never straight to a URL; a queue's HTTP push (an EventBridge API
# destination, a Pub/Sub push subscription) sends the basic auth or the header it is given.
WEBHOOK_SCHEMES = ("basic", "header")
CAPABILITIES = frozenset({ports.ORDERS, ports.STOCK, ports.SHIPMENTS, ports.REFUNDS, ports.PAYOUTS, ports.CATALOGUE_READ, ports.CATALOGUE_WRITE,
                          ports.CATALOGUE_UNPUBLISH})


def connect(conn) -> Connected:
    """Connection host = the API host (e.g. https://api.europe-west1.gcp.commercetools.com), login =
    the API client's id, password = its secret; extra: `auth_url` (e.g.
    https://auth.europe-west1.gcp.commercetools.com), `project_key`, `scopes` (a list, or one
    string; a scope without `:<projectKey>` gets it). Every call is addressed under /<projectKey>."""
    extra = _extra(conn)
    project = extra["project_key"]
    scopes = extra.get("scopes") or []
    scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
    auth = OAuth2ClientCredentials(f"{extra['auth_url'].rstrip('/')}/oauth/token", conn.login or "", conn.password or "",
                                   [s if ":" in s else f"{s}:{project}" for s in scopes])
    return Connected(auth=auth, base_path=f"/{project}")


def build(client: HttpClient, ref, cache=None) -> CommercetoolsChannel:
    options = dict(ref.options or {})
    return CommercetoolsChannel(
        client,
        bookable_order_states=options.get("bookable_order_states", ("Open", "Confirmed")),
        bookable_payment_states=options.get("bookable_payment_states", ("Paid",)),
        seller_ref=options.get("seller_ref", "storefront"),
        sync_channel=options.get("sync_channel", "cin7-core"),
        sync_channel_name=options.get("sync_channel_name", "Cin7 Core"),
        supply_channel=options.get("supply_channel"),
        supply_channels=options.get("supply_channels"),
        locale=options.get("locale"),
        page_size=int(options.get("page_size", MAX_PAGE)),
        conflict_retries=int(options.get("conflict_retries", 5)),
        product_type=options.get("product_type"),
        attributes=options.get("attributes"),
        cache=cache,
    )
