"""Centra emulator: the Integration API (GraphQL, `Authorization: Bearer <token>`, schema in
centra_schema.graphql executed by graphql-core) and the REST Order API's create-order call
(`POST <order-api base>/order`, header `API-Authorization`).

What it keeps to (sandbox/README.md lists what is confirmed and what is assumed):
- token buckets per environment: 60 requests and 20 mutations per 10 s by default; an empty
  bucket answers 429 with Retry-After (seconds until a token is back);
- lists take `limit` (1 - 200) and `page`; events take `limit` only and hand back the oldest
  unconfirmed events, which stay queued until `confirmEvents` names them;
- events are made only for object types someone listens to (`setEventListeners`), and each may be
  posted to a webhook URL signed with HMAC-SHA256 (`X-Centra-Signature: t=<unix>,v1=<hex>` over
  "<t>.<body>"), 5 s timeout, no retries unless configured (at most 3);
- orders created through the Order API are PENDING and allocate nothing until `confirmOrder`;
  a shipment takes stock out of the warehouses it was allocated from when it is completed;
- mutations refuse with `userErrors` in the payload, never with HTTP errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from graphql import GraphQLError, OperationDefinitionNode, OperationType, build_schema, graphql_sync, parse

from sandbox.common import MoneyJSONResponse, SandboxState, install_sandbox, json_body, now

SCHEMA = build_schema((Path(__file__).with_name("centra_schema.graphql")).read_text())
MAX_LIMIT = 200
INTEGRATION = "commerce-sync"  # one integration (token) per emulator: one event queue
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _decimal(value: Any, field: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except Exception:  # noqa: BLE001 - any unreadable amount is the caller's error
        raise ValueError(f"{field} is not an amount: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{field} is not an amount: {value!r}")
    return result


def _cents(amount: Decimal, currency: str) -> int:
    return int((amount * (10 ** MINOR_UNITS.get(currency, 2))).to_integral_value(rounding=ROUND_HALF_UP))


def money(amount: Decimal, currency: str) -> dict[str, Any]:
    exp = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    amount = amount.quantize(exp, rounding=ROUND_HALF_UP)
    return {"value": amount, "currency": {"id": 1, "code": currency}, "formattedValue": f"{amount} {currency}",
            "valueInCents": _cents(amount, currency), "conversionRate": 1.0}


def page_of(items: list, limit: int | None, page: int | None) -> list:
    limit = 20 if limit is None else limit
    page = 1 if page is None else page
    if not 1 <= limit <= MAX_LIMIT:
        raise GraphQLError(f"Limit must be in range 1 - {MAX_LIMIT}")
    if page < 1:
        raise GraphQLError("Page must be 1 or more")
    return items[(page - 1) * limit : page * limit]


def in_range(value: datetime | None, rng: dict | None) -> bool:
    if not rng:
        return True
    start, end = _time(rng.get("from")), _time(rng.get("to"))
    return value is not None and (start is None or value >= start) and (end is None or value < end)


def matching(items, where: dict | None, *, within=(), equal=(), ranges=()) -> list[dict]:
    """What a Centra filter keeps: a list field holds the item's value, a Boolean equals it, a
    DateRange contains it. Each pair names the filter's field and the item's key."""
    w = where or {}
    return [item for item in items
            if all(w.get(f) is None or item[k] in w[f] for f, k in within)
            and all(w.get(f) is None or item[k] == w[f] for f, k in equal)
            and all(in_range(item[k], w.get(f)) for f, k in ranges)]


class TokenBucket:
    """`capacity` tokens, refilled continuously over `per_seconds`."""

    def __init__(self, capacity: int, per_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.capacity, self.rate, self.clock = capacity, capacity / per_seconds, clock
        self.tokens, self.stamp = float(capacity), clock()

    def wait_for(self, n: int) -> float:
        """Seconds until `n` tokens are there (0 when they are)."""
        current = self.clock()
        self.tokens = min(self.capacity, self.tokens + (current - self.stamp) * self.rate)
        self.stamp = current
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate

    def take(self, n: int) -> None:
        self.tokens -= n


class CentraData:
    """One Centra environment's data. Every change goes through `emit` for its events."""

    def __init__(self):
        self.lock = threading.RLock()
        self.webhook: dict[str, Any] | None = None
        self.deliveries: list[dict[str, Any]] = []
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.products: dict[int, dict] = {}
            self.variants: dict[int, dict] = {}
            self.sizes: dict[int, dict] = {}
            self.warehouses: dict[int, dict] = {}
            self.stock: dict[tuple[int, int], dict[str, int]] = {}  # (warehouse id, size id) -> physical, allocated
            self.pricelists: dict[int, dict] = {}
            self.markets: dict[int, dict] = {}
            self.orders: dict[int, dict] = {}  # by number
            self.shipments: dict[int, dict] = {}
            self.returns: dict[int, dict] = {}
            self.listeners: dict[str, dict] = {}
            self.events: list[dict] = []
            self.allocation_warehouses: list[str] | None = None  # None: every warehouse, by id
            self.webhook = None
            self.deliveries = []
            self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- events --------------------------------------------------------------------------------
    def emit(self, object_type: str, change_type: str, reference: int) -> None:
        listener = self.listeners.get(object_type)
        if listener is None or change_type not in listener["changeTypes"]:
            return  # Centra makes events only for what someone listens to
        event = {"id": len(self.events) + 1, "objectType": object_type, "changeType": change_type, "objectReference": reference,
                 "createdAt": now(), "confirmed": False}
        self.events.append(event)
        if self.webhook:
            threading.Thread(target=deliver_webhook, args=(self, dict(self.webhook), event), daemon=True).start()

    # -- catalogue and stock -------------------------------------------------------------------
    def seed(self, body: dict[str, Any]) -> dict[str, int]:
        """{"warehouses": [name], "pricelists": [{"name", "currency"}], "markets": [name],
        "products": [{"productNumber", "name", "variants": [{"variantNumber", "name", "prices": {pricelist: "45.00"},
        "sizes": [{"name", "sizeNumber", "EAN"}]}]}], "stock": [{"warehouse", "sku", "quantity"}]}
        A size's SKU is productNumber + variantNumber + sizeNumber, as Centra builds it."""
        with self.lock:
            for name in body.get("warehouses") or []:
                if not any(w["name"] == name for w in self.warehouses.values()):
                    wid = self.next_id()
                    self.warehouses[wid] = {"id": wid, "name": name}
            for pl in body.get("pricelists") or []:
                pid = self.next_id()
                self.pricelists[pid] = {"id": pid, "name": pl["name"], "currency": pl["currency"]}
            for name in body.get("markets") or []:
                mid = self.next_id()
                self.markets[mid] = {"id": mid, "name": name}
            for p in body.get("products") or []:
                pid = self.next_id()
                product = {"id": pid, "name": p.get("name") or p.get("productNumber"), "productNumber": p.get("productNumber") or "",
                           "status": p.get("status", "ACTIVE"), "updatedAt": now(), "variants": [],
                           "brand": p.get("brand"), "folder": p.get("folder"), "attributes": dict(p.get("attributes") or {})}
                self.products[pid] = product
                for v in p.get("variants") or []:
                    vid = self.next_id()
                    variant = {"id": vid, "name": v.get("name"), "variantNumber": v.get("variantNumber") or "", "product": pid, "sizes": [],
                               "prices": {name: _decimal(amount, "price") for name, amount in (v.get("prices") or {}).items()}}
                    self.variants[vid] = variant
                    product["variants"].append(vid)
                    for s in v.get("sizes") or []:
                        sid = self.next_id()
                        number = s.get("sizeNumber") or ""
                        self.sizes[sid] = {"id": sid, "name": s.get("name") or number, "sizeNumber": number, "EAN": s.get("EAN"), "UPC": s.get("UPC"),
                                           "variant": vid, "SKU": f"{product['productNumber']}{variant['variantNumber']}{number}"}
                        variant["sizes"].append(sid)
            for row in body.get("stock") or []:
                self.set_stock(self.warehouse_named(row["warehouse"]), self.size_by_sku(row["sku"]), int(row["quantity"]))
            return {"products": len(self.products), "sizes": len(self.sizes), "warehouses": len(self.warehouses)}

    def change_products(self, changes: list[dict[str, Any]]) -> list[int]:
        """Products edited in Centra: [{"productNumber", "set": {"name", "status", "brand", "folder",
        "attributes": {type name: text}}, "prices": {variantNumber: {pricelist: "49.00"}}}]; each
        one's updatedAt moves to now, as an edit in Centra does."""
        with self.lock:
            changed = []
            for change in changes:
                product = next((p for p in self.products.values() if p["productNumber"] == change["productNumber"]), None)
                if product is None:
                    raise ValueError(f"no product {change['productNumber']!r}")
                for k, v in (change.get("set") or {}).items():
                    product[k] = dict(v) if k == "attributes" else v
                for number, prices in (change.get("prices") or {}).items():
                    variant = next(self.variants[v] for v in product["variants"] if self.variants[v]["variantNumber"] == number)
                    variant["prices"].update({name: _decimal(amount, "price") for name, amount in prices.items()})
                product["updatedAt"] = now()
                changed.append(product["id"])
            return changed

    def warehouse_named(self, name: str) -> dict:
        found = next((w for w in self.warehouses.values() if w["name"] == name), None)
        if found is None:
            raise ValueError(f"no warehouse {name!r}")
        return found

    def size_by_sku(self, sku: str) -> dict:
        found = next((s for s in self.sizes.values() if s["SKU"] == sku), None)
        if found is None:
            raise ValueError(f"no product size with SKU {sku!r}")
        return found

    def set_stock(self, warehouse: dict, size: dict, physical: int) -> None:
        row = self.stock.setdefault((warehouse["id"], size["id"]), {"physical": 0, "allocated": 0})
        row["physical"] = physical
        self.emit("StockChange", "CREATED", self.next_id())
        self.emit("ProductSize", "DEPENDENT_DATA_CHANGED", size["id"])

    def allocation_order(self) -> list[dict]:
        if self.allocation_warehouses is None:
            return sorted(self.warehouses.values(), key=lambda w: w["id"])
        return [self.warehouse_named(name) for name in self.allocation_warehouses]

    # -- orders ----------------------------------------------------------------------------------
    def find_order(self, ref: dict) -> dict | None:
        given = {k: v for k, v in (ref or {}).items() if v is not None}
        if len(given) != 1:
            raise GraphQLError("OrderInput: exactly one input field should be provided")
        (field, value), = given.items()
        return next((o for o in self.orders.values() if o[field] == value), None)

    def create_order(self, body: dict[str, Any]) -> dict:
        """The Order API's create: validates like Centra would, allocates nothing (PENDING)."""
        with self.lock:
            for required in ("email", "country"):
                if not body.get(required):
                    raise ValueError(f"{required} is required")
            country = str(body["country"])
            if len(country) != 2 or not country.isalpha() or not country.isupper():
                raise ValueError(f"country must be ISO-Alpha-2, got {country!r}")
            pricelist = self._named(self.pricelists, body.get("pricelistId"), body.get("pricelist"), "pricelist")
            market = self._named(self.markets, body.get("marketId"), body.get("market"), "market") if (body.get("marketId") or body.get("market")) else None
            currency = pricelist["currency"]
            if body.get("currency") and body["currency"] != currency:
                raise ValueError(f"currency {body['currency']} does not match pricelist {pricelist['name']} ({currency})")
            items = body.get("products") or []
            if not items:
                raise ValueError("products: at least one product is required")
            including = body.get("pricesIncludingTax", True)
            lines = []
            for i, item in enumerate(items):
                size = next((s for s in self.sizes.values() if s["SKU"] == item.get("sku")), None)
                if size is None:
                    raise ValueError(f"products[{i}]: no product with sku {item.get('sku')!r}")
                qty = item.get("qty")
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                    raise ValueError(f"products[{i}]: qty must be a whole number of at least 1")
                lines.append({"id": self.next_id(), "size": size["id"], "quantity": qty, "price": _decimal(item.get("price"), f"products[{i}].price"),
                              "tax": _decimal(item.get("tax", 0), f"products[{i}].tax")})
            number = max(self.orders, default=1000) + 1
            created = now()
            order = {
                "id": hashlib.sha1(f"order-{number}".encode()).hexdigest()[:32], "number": number, "externalId": body.get("externalId") or None,
                "status": "PENDING", "isLocked": False, "createdAt": created, "updatedAt": created,
                "orderDate": _time(body.get("orderDate")) or created, "otherComment": body.get("comment"), "currency": currency,
                "pricelist": pricelist["id"], "market": market["id"] if market else None, "email": body["email"], "country": country,
                "address": body.get("deliveryAddress") or body.get("address"), "lines": lines, "pricesIncludingTax": bool(including),
                "shippingValue": _decimal(body.get("shippingValue", 0), "shippingValue"), "shippingTax": _decimal(body.get("shippingTax", 0), "shippingTax"),
                "discountValue": _decimal(body.get("discountValue", 0), "discountValue"), "allocations": {},
            }
            self.orders[number] = order
            self.emit("Order", "CREATED", number)
            return order

    def _named(self, table: dict[int, dict], id_: Any, name: Any, what: str) -> dict:
        found = table.get(id_) if id_ is not None else next((r for r in table.values() if r["name"] == name), None)
        if found is None:
            raise ValueError(f"no {what} {id_ if id_ is not None else name!r}")
        return found

    def touch(self, order: dict, change: str = "UPDATED") -> None:
        order["updatedAt"] = now()
        self.emit("Order", change, order["number"])

    def confirm(self, order: dict) -> None:
        """PENDING -> CONFIRMED, allocating each line from the warehouses in allocation order."""
        for line in order["lines"]:
            need = line["quantity"]
            for wh in self.allocation_order():
                row = self.stock.get((wh["id"], line["size"]))
                free = (row["physical"] - row["allocated"]) if row else 0
                take = min(need, max(free, 0))
                if take:
                    row["allocated"] += take
                    order["allocations"].setdefault(line["id"], []).append([wh["id"], take])
                    self.emit("ProductSize", "DEPENDENT_DATA_CHANGED", line["size"])
                    need -= take
            line["demand"] = need
        order["status"] = "CONFIRMED"
        self.touch(order)

    def shipped_quantity(self, order: dict, line_id: int) -> int:
        return sum(sl["quantity"] for sh in self.shipments.values() if sh["order"] == order["number"] for sl in sh["lines"] if sl["orderLine"] == line_id)

    def create_shipment(self, order: dict, lines: list[dict] | None, good_to_go: bool = True, paid: bool = False) -> dict:
        if order["status"] not in ("CONFIRMED", "PROCESSING"):
            raise ValueError(f"Order {order['number']} is {order['status']}: only a confirmed order can be shipped")
        by_id = {line["id"]: line for line in order["lines"]}
        wanted = lines if lines is not None else [{"orderLine": {"id": lid}, "quantity": line["quantity"] - self.shipped_quantity(order, lid)}
                                                   for lid, line in by_id.items()]
        shipment_lines = []
        for item in wanted:
            lid = (item.get("orderLine") or {}).get("id")
            if lid not in by_id:
                raise ValueError(f"Order line {lid} is not on order {order['number']}")
            left = by_id[lid]["quantity"] - self.shipped_quantity(order, lid)
            if item["quantity"] < 1 or item["quantity"] > left:
                raise ValueError(f"Quantity {item['quantity']} of order line {lid} exceeds what is left to ship ({left})")
            if item["quantity"]:
                shipment_lines.append({"id": self.next_id(), "orderLine": lid, "quantity": item["quantity"]})
        if not shipment_lines:
            raise ValueError(f"Order {order['number']} has nothing left to ship")
        sid = self.next_id()
        count = sum(1 for sh in self.shipments.values() if sh["order"] == order["number"])
        created = now()
        shipment = {"id": sid, "number": f"{order['number']}-{count + 1}", "order": order["number"], "lines": shipment_lines, "isShipped": False,
                    "isGoodToGo": good_to_go, "isPaid": paid, "createdAt": created, "updatedAt": created, "shippedAt": None, "trackingNumber": None,
                    "returnTrackingNumber": None, "numberOfPackages": 1, "additionalMessage": None, "carrier": None, "service": None}
        self.shipments[sid] = shipment
        order["status"] = "PROCESSING"
        self.emit("Shipment", "CREATED", sid)
        self.touch(order)
        return shipment

    def complete_shipment(self, shipment: dict, info: dict[str, Any]) -> None:
        if shipment["isShipped"]:
            raise ValueError(f"Shipment {shipment['number']} is already shipped")
        order = self.orders[shipment["order"]]
        details = info.get("shipmentInfo") or {}
        shipment.update(isShipped=True, shippedAt=_time(info.get("shippedAt")) or now(), updatedAt=now(),
                        trackingNumber=details.get("trackingNumber"), returnTrackingNumber=details.get("returnTrackingNumber"),
                        carrier=details.get("carrier"), service=details.get("service"), numberOfPackages=details.get("packagesNumber") or 1,
                        additionalMessage=info.get("additionalMessage"))
        for sl in shipment["lines"]:  # the goods leave the warehouses they were allocated in
            need = sl["quantity"]
            for alloc in order["allocations"].get(sl["orderLine"], []):
                take = min(need, alloc[1])
                if take:
                    row = self.stock[(alloc[0], next(line["size"] for line in order["lines"] if line["id"] == sl["orderLine"]))]
                    row["physical"] -= take
                    row["allocated"] -= take
                    alloc[1] -= take
                    need -= take
                    self.emit("ProductSize", "DEPENDENT_DATA_CHANGED", next(line["size"] for line in order["lines"] if line["id"] == sl["orderLine"]))
        self.emit("Shipment", "COMPLETED", shipment["id"])
        done = all(self.shipped_quantity(order, line["id"]) >= line["quantity"] for line in order["lines"])
        done = done and all(sh["isShipped"] for sh in self.shipments.values() if sh["order"] == order["number"])
        if done:
            order["status"] = "SHIPPED"
            self.touch(order, "COMPLETED")

    def add_return(self, body: dict[str, Any]) -> dict:
        """{"order": number, "lines": [{"sku", "quantity"}], "refund": "12.50", "reason", "status"}: a return the
        warehouse took in (made in Centra's back office: the Integration API is not what makes it here)."""
        with self.lock:
            order = self.orders[int(body["order"])]
            lines = []
            for item in body.get("lines") or []:
                size = self.size_by_sku(item["sku"])
                line = next(ln for ln in order["lines"] if ln["size"] == size["id"])
                sline = next(sl for sh in self.shipments.values() if sh["order"] == order["number"] for sl in sh["lines"] if sl["orderLine"] == line["id"])
                lines.append({"id": self.next_id(), "quantity": int(item["quantity"]), "shipmentLine": sline["id"],
                              "value": _decimal(item.get("value", line["price"] * int(item["quantity"])), "value")})
            rid = self.next_id()
            created = now()
            ret = {"id": rid, "order": order["number"], "lines": lines, "status": body.get("status", "COMPLETED"), "createdAt": created, "updatedAt": created,
                   "refund": _decimal(body["refund"], "refund") if body.get("refund") is not None else None, "reason": body.get("reason")}
            self.returns[rid] = ret
            self.emit("Return", "CREATED", rid)
            if ret["status"] == "COMPLETED":
                self.emit("Return", "COMPLETED", rid)
            return ret


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """X-Centra-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver_webhook(data: CentraData, hook: dict[str, Any], event: dict[str, Any]) -> None:
    """POST one event to the configured URL, signed; 5 s timeout; `retries` more tries (at most 3)."""
    body = json.dumps({"events": [{k: (_iso(v) if isinstance(v, datetime) else v) for k, v in event.items() if k != "confirmed"}]}).encode()
    attempts, status, error = 0, None, None
    for attempts in range(1, 2 + min(int(hook.get("retries", 0)), 3)):
        request = urllib.request.Request(hook["url"], data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Centra-Signature": sign(hook["secret"], int(time.time()), body)})
        try:
            with urllib.request.urlopen(request, timeout=float(hook.get("timeout", 5))) as answer:  # noqa: S310 - a test URL
                status, error = answer.status, None
            break
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            status, error = None, type(exc).__name__
    with data.lock:
        data.deliveries.append({"event": event["id"], "url": hook["url"], "status": status, "attempts": attempts, "error": error})


# -- GraphQL views: dicts whose callables take the field's arguments ---------------------------------
def _views(data: CentraData):
    def order_view(o: dict) -> dict:
        cur = o["currency"]

        def total(_info=None, includingTax=True):
            gross = sum((ln["price"] * ln["quantity"] for ln in o["lines"]), Decimal("0")) + o["shippingValue"] - o["discountValue"]
            tax = sum((ln["tax"] for ln in o["lines"]), Decimal("0")) + o["shippingTax"]
            if not o["pricesIncludingTax"]:
                gross += tax
            return money(gross if includingTax else gross - tax, cur)

        return {
            "__typename": "DirectToConsumerOrder", "id": o["id"], "number": o["number"], "externalId": o["externalId"], "status": o["status"],
            "isLocked": o["isLocked"], "otherComment": o["otherComment"], "currencyBaseRate": 1.0,
            "createdAt": lambda _i, format=None: _iso(o["createdAt"]), "updatedAt": lambda _i, format=None: _iso(o["updatedAt"]),
            "orderDate": lambda _i, format=None: _iso(o["orderDate"]), "grandTotal": total,
            "lines": [line_view(o, ln) for ln in o["lines"]],
            "shipments": lambda _i: [shipment_view(s) for s in sorted(data.shipments.values(), key=lambda s: s["id"]) if s["order"] == o["number"]],
            "market": data.markets.get(o["market"]), "pricelist": pricelist_view(data.pricelists[o["pricelist"]]),
        }

    def line_view(o: dict, ln: dict) -> dict:
        cur = o["currency"]
        net = ln["price"] - (ln["tax"] / ln["quantity"] if o["pricesIncludingTax"] else 0)
        return {"__typename": "ProductOrderLine", "id": ln["id"], "quantity": ln["quantity"], "productSize": size_view(data.sizes[ln["size"]]),
                "unitPrice": lambda _i, includingTax=True: money(ln["price"] if includingTax else net, cur),
                "lineValue": lambda _i, includingTax=True: money(ln["price"] * ln["quantity"] - (0 if includingTax else ln["tax"]), cur)}

    def shipment_view(s: dict) -> dict:
        o = data.orders[s["order"]]
        lines_by_id = {ln["id"]: ln for ln in o["lines"]}
        return {
            "__typename": "DirectToConsumerShipment", **{k: s[k] for k in ("id", "number", "isShipped", "isGoodToGo", "isPaid", "trackingNumber",
                                                                            "returnTrackingNumber", "numberOfPackages", "additionalMessage")},
            "createdAt": lambda _i, format=None: _iso(s["createdAt"]), "updatedAt": lambda _i, format=None: _iso(s["updatedAt"]),
            "shippedAt": lambda _i, format=None: _iso(s["shippedAt"]),
            "carrierInformation": {"carrierName": s["carrier"], "serviceName": s["service"]} if s["carrier"] or s["service"] else None,
            "lines": [{"id": sl["id"], "quantity": sl["quantity"], "orderLine": line_view(o, lines_by_id[sl["orderLine"]])} for sl in s["lines"]],
            "order": lambda _i: order_view(o),
        }

    def size_view(s: dict) -> dict:
        def stock(_i, where=None, limit=None, page=None):
            rows = [stock_view(data.warehouses[w], s) for (w, sid) in sorted(data.stock) if sid == s["id"]]
            return page_of(rows, limit, page)

        return {"__typename": "ProductSize", **{k: s[k] for k in ("id", "SKU", "sizeNumber", "EAN", "UPC")}, "size": {"id": s["id"], "name": s["name"]},
                "productVariant": lambda _i: variant_view(data.variants[s["variant"]]), "stock": stock}

    def stock_view(w: dict, s: dict) -> dict:
        row = data.stock[(w["id"], s["id"])]
        fta = max(row["physical"] - row["allocated"], 0)
        return {"productSize": lambda _i: size_view(s), "warehouse": lambda _i: warehouse_view(w), "physicalQuantity": row["physical"],
                "allocatedQuantity": row["allocated"], "freeToAllocateQuantity": fta, "availableNowQuantity": fta, "demandQuantity": 0}

    def warehouse_view(w: dict) -> dict:
        def stock(_i, where=None, limit=None, page=None):
            wanted = set((where or {}).get("productSizeId") or [])
            rows = [stock_view(w, data.sizes[sid]) for (wid, sid) in sorted(data.stock) if wid == w["id"] and (not wanted or sid in wanted)]
            return page_of(rows, limit, page)

        return {"id": w["id"], "name": w["name"], "stock": stock}

    def variant_view(v: dict) -> dict:
        cur_of = {pl["name"]: pl for pl in data.pricelists.values()}
        return {"id": v["id"], "name": v["name"], "variantNumber": v["variantNumber"], "product": lambda _i: product_view(data.products[v["product"]]),
                "productSizes": lambda _i: [size_view(data.sizes[s]) for s in v["sizes"]],
                "prices": [{"pricelist": pricelist_view(cur_of[name]), "price": money(amount, cur_of[name]["currency"])}
                           for name, amount in v["prices"].items() if name in cur_of]}

    def product_view(p: dict) -> dict:
        return {"__typename": "Product", "id": p["id"], "name": p["name"], "productNumber": p["productNumber"], "status": p["status"],
                "updatedAt": lambda _i, format=None: _iso(p["updatedAt"]), "variants": lambda _i: [variant_view(data.variants[v]) for v in p["variants"]],
                "brand": {"id": 1, "name": p["brand"]} if p.get("brand") else None, "folder": {"id": 1, "name": p["folder"]} if p.get("folder") else None,
                "attributes": [attribute_view(name, value) for name, value in sorted((p.get("attributes") or {}).items())]}

    def attribute_view(name: str, value: str) -> dict:
        return {"__typename": "DynamicAttribute", "description": name, "type": {"name": name},
                "elements": [{"__typename": "AttributeStringElement", "key": "text", "description": name, "kind": "INPUT", "value": value}]}

    def pricelist_view(pl: dict) -> dict:
        return {"id": pl["id"], "name": pl["name"], "currency": {"id": pl["id"], "code": pl["currency"]}}

    def return_view(r: dict) -> dict:
        o = data.orders[r["order"]]
        slines = {sl["id"]: (sh, sl) for sh in data.shipments.values() for sl in sh["lines"]}

        def line(rl: dict) -> dict:
            sh, sl = slines[rl["shipmentLine"]]
            lines_by_id = {ln["id"]: ln for ln in o["lines"]}
            return {"id": rl["id"], "quantity": rl["quantity"], "lineValue": lambda _i, includingTax=True: money(rl["value"], o["currency"]),
                    "shipmentLine": {"id": sl["id"], "quantity": sl["quantity"], "orderLine": line_view(o, lines_by_id[sl["orderLine"]])}}

        return {"__typename": "DirectToConsumerReturn", "id": r["id"], "status": r["status"], "order": lambda _i: order_view(o),
                "createdAt": lambda _i, format=None: _iso(r["createdAt"]), "updatedAt": lambda _i, format=None: _iso(r["updatedAt"]),
                "lines": [line(rl) for rl in r["lines"]], "returnReason": r["reason"],
                "refundValue": money(r["refund"], o["currency"]) if r["refund"] is not None else None}

    def event_view(e: dict) -> dict:
        def target(_i):
            ref = e["objectReference"]
            if e["objectType"] == "Order" and ref in data.orders:
                return order_view(data.orders[ref])
            if e["objectType"] == "Shipment" and ref in data.shipments:
                return shipment_view(data.shipments[ref])
            if e["objectType"] == "Return" and ref in data.returns:
                return return_view(data.returns[ref])
            if e["objectType"] == "ProductSize" and ref in data.sizes:
                return size_view(data.sizes[ref])
            return None

        return {"id": e["id"], "objectType": e["objectType"], "changeType": e["changeType"], "objectReference": e["objectReference"],
                "createdAt": lambda _i, format=None: _iso(e["createdAt"]), "store": None, "market": None, "object": target}

    return order_view, shipment_view, size_view, warehouse_view, product_view, pricelist_view, return_view, event_view


def create_app(token: str = "demo-centra-token", order_api_secret: str = "demo-centra-order-secret", order_api_path: str = "/order-api",
               requests_per_10s: int = 60, mutations_per_10s: int = 20) -> FastAPI:
    app = FastAPI(title="Centra sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    data = CentraData()
    state = SandboxState()
    app.state.data = data
    limits = {"requests": TokenBucket(requests_per_10s), "mutations": TokenBucket(mutations_per_10s)}

    def reset() -> None:
        data.reset()
        limits.update(requests=TokenBucket(requests_per_10s), mutations=TokenBucket(mutations_per_10s))

    install_sandbox(app, state, reset, fault_body=lambda status: {"errors": [{"message": f"sandbox fault (HTTP {status})"}]})
    order_view, shipment_view, size_view, warehouse_view, product_view, pricelist_view, return_view, event_view = _views(data)

    def refusal(payload: dict, message: str, path: list[str] | None = None) -> dict:
        return {**payload, "userErrors": [{"message": message, "path": path}], "userWarnings": []}

    # -- queries ----------------------------------------------------------------------------------
    def orders(_info, where=None, sort=None, limit=None, page=None):
        with data.lock:
            items = matching(data.orders.values(), where, within=(("id", "id"), ("number", "number"), ("externalId", "externalId"), ("status", "status"),
                                                                 ("marketId", "market"), ("pricelistId", "pricelist")),
                             equal=(("isLocked", "isLocked"),), ranges=(("createdAt", "createdAt"), ("updatedAt", "updatedAt")))
        order = (sort or ["number_ASC"])[0]
        items.sort(key=(lambda o: (o["updatedAt"], o["number"])) if order == "updatedAt_ASC" else (lambda o: o["number"]), reverse=order == "number_DESC")
        return [order_view(o) for o in page_of(items, limit, page)]

    def listed(table: Callable[[], dict], view: Callable[[dict], dict], **filters):
        """A root list of one table, by id, filtered and paged as Centra's lists are."""
        def resolve(_info, where=None, limit=None, page=None):
            with data.lock:
                items = sorted(matching(table().values(), where, **filters), key=lambda x: x["id"])
            return [view(x) for x in page_of(items, limit, page)]

        return resolve

    shipments = listed(lambda: data.shipments, shipment_view, within=(("id", "id"),), equal=(("isShipped", "isShipped"),), ranges=(("updatedAt", "updatedAt"),))
    returns = listed(lambda: data.returns, return_view, within=(("id", "id"), ("status", "status")), ranges=(("updatedAt", "updatedAt"),))
    warehouses = listed(lambda: data.warehouses, warehouse_view, within=(("id", "id"), ("name", "name")))
    products = listed(lambda: data.products, product_view, within=(("id", "id"),), ranges=(("updatedAt", "updatedAt"),))
    product_sizes = listed(lambda: data.sizes, size_view, within=(("id", "id"), ("SKU", "SKU"), ("sizeNumber", "sizeNumber")))

    def pricelists(_info, limit=None, page=None):
        return [pricelist_view(pl) for pl in page_of(sorted(data.pricelists.values(), key=lambda p: p["id"]), limit, page)]

    def events(_info, where=None, limit=None):
        w = where or {}
        with data.lock:
            items = [e for e in data.events if not e["confirmed"]]
        if w.get("objectType") is not None:
            items = [e for e in items if e["objectType"] in w["objectType"]]
        if w.get("changeType") is not None:
            items = [e for e in items if e["changeType"] in w["changeType"]]
        return [event_view(e) for e in page_of(items, limit, 1)]

    def listener_view(obj_type: str, listener: dict) -> dict:
        return {"integrationName": INTEGRATION, "objectType": obj_type, "changeTypes": sorted(listener["changeTypes"]),
                "createdAt": lambda _i, format=None: _iso(listener["createdAt"]), "updatedAt": lambda _i, format=None: _iso(listener["updatedAt"])}

    def event_listeners(_info, where=None):
        wanted = set((where or {}).get("objectType") or data.listeners)
        return [listener_view(t, ln) for t, ln in sorted(data.listeners.items()) if t in wanted]

    # -- mutations --------------------------------------------------------------------------------
    def set_orders_lock(_info, input):
        with data.lock:
            found, missing = [], []
            for ref in input["orders"]:
                order = data.find_order(ref)
                (found if order else missing).append(order or ref)
            if missing:
                return refusal({"orders": []}, f"Orders not found: {missing}", ["input", "orders"])
            for order in found:
                if order["isLocked"] != input["isLocked"]:
                    order["isLocked"] = input["isLocked"]
                    data.touch(order)
            return {"orders": [order_view(o) for o in found], "userErrors": [], "userWarnings": []}

    def confirm_order(_info, order):
        with data.lock:
            found = data.find_order(order)
            if found is None:
                return refusal({"order": None}, "Order not found", ["order"])
            if found["status"] != "PENDING":
                return refusal({"order": order_view(found)}, f"Order {found['number']} is {found['status']}, not PENDING: it cannot be confirmed again", ["order"])
            data.confirm(found)
            return {"order": order_view(found), "userErrors": [], "userWarnings": []}

    def create_shipment(_info, input):
        with data.lock:
            order = data.find_order(input["order"])
            if order is None:
                return refusal({"shipment": None}, "Order not found", ["input", "order"])
            try:
                shipment = data.create_shipment(order, input.get("lines"), input.get("isGoodToGo", True), bool(input.get("isPaid")))
            except ValueError as exc:
                return refusal({"shipment": None}, str(exc), ["input", "lines"])
            return {"shipment": shipment_view(shipment), "userErrors": [], "userWarnings": []}

    def complete_shipment(_info, id, input):
        with data.lock:
            shipment = data.shipments.get(id)
            if shipment is None:
                return refusal({"shipment": None}, f"Shipment {id} not found", ["id"])
            try:
                data.complete_shipment(shipment, input)
            except ValueError as exc:
                return refusal({"shipment": shipment_view(shipment)}, str(exc), ["id"])
            return {"shipment": shipment_view(shipment), "userErrors": [], "userWarnings": []}

    def set_stock(_info, input):
        with data.lock:
            wh_ref = input["warehouse"]
            warehouse = data.warehouses.get(wh_ref.get("id")) if wh_ref.get("id") is not None else next(
                (w for w in data.warehouses.values() if w["name"] == wh_ref.get("name")), None)
            if warehouse is None:
                return refusal({}, "Warehouse not found", ["input", "warehouse"])
            changes: list[tuple[dict, int]] = []
            for item in input.get("productSizes") or []:
                ref = {k: v for k, v in item["productSize"].items() if v is not None}
                size = next((s for s in data.sizes.values() if any(s.get(k) == v or (k == "any" and v in (s["SKU"], s["EAN"], s["UPC"])) for k, v in ref.items())), None)
                if size is None:
                    return refusal({}, f"Product size not found: {ref}", ["input", "productSizes"])
                changes.append((size, item["quantity"]))
            for item in input.get("productVariants") or []:
                variant = data.variants.get(item["productVariant"].get("id"))
                if variant is None:
                    return refusal({}, "Product variant not found", ["input", "productVariants"])
                for level in item["sizeStockLevels"]:
                    size = next((data.sizes[s] for s in variant["sizes"] if data.sizes[s]["name"] == level["size"]["name"]), None)
                    if size is None:
                        return refusal({}, f"Size {level['size']['name']} is not on variant {variant['id']}", ["input", "productVariants"])
                    changes.append((size, level["quantity"]))
            if any(qty < 0 for _, qty in changes):
                return refusal({}, "Stock value must be greater or equal to 0", ["input"])
            for size, qty in changes:
                row = data.stock.get((warehouse["id"], size["id"]), {"allocated": 0})
                data.set_stock(warehouse, size, qty + (row["allocated"] if input["stockQuantityType"] == "FREE_TO_ALLOCATE" else 0))
            return {"userErrors": [], "userWarnings": []}

    def set_event_listeners(_info, input):
        with data.lock:
            for item in input:
                current = data.listeners.get(item["objectType"])
                kinds = set(item.get("changeTypes") or ["CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED"])
                if current is None:
                    data.listeners[item["objectType"]] = {"changeTypes": kinds, "createdAt": now(), "updatedAt": now()}
                else:
                    current.update(changeTypes=current["changeTypes"] | kinds, updatedAt=now())
            return {"eventListeners": event_listeners(_info), "userErrors": [], "userWarnings": []}

    def unset_event_listeners(_info, input):
        with data.lock:
            for item in input:
                current = data.listeners.get(item["objectType"])
                if current is not None:
                    current["changeTypes"] -= set(item.get("changeTypes") or current["changeTypes"])
                    if not current["changeTypes"]:
                        del data.listeners[item["objectType"]]  # and its queued events go with it
                        data.events = [e for e in data.events if e["objectType"] != item["objectType"]]
            return {"eventListeners": event_listeners(_info), "userErrors": [], "userWarnings": []}

    def confirm_events(_info, input):
        with data.lock:
            wanted = set(input["eventsIds"])
            for event in data.events:
                if event["id"] in wanted:
                    event["confirmed"] = True
            return {"userErrors": [], "userWarnings": []}

    root = {"orders": orders, "shipments": shipments, "returns": returns, "warehouses": warehouses, "products": products, "productSizes": product_sizes,
            "pricelists": pricelists, "events": events, "eventListeners": event_listeners,
            "setOrdersLock": set_orders_lock, "confirmOrder": confirm_order, "createShipment": create_shipment, "completeShipment": complete_shipment,
            "setStock": set_stock, "setEventListeners": set_event_listeners, "unsetEventListeners": unset_event_listeners, "confirmEvents": confirm_events}
    for name in ("Order", "OrderLine", "Shipment", "Return", "EventTarget"):
        SCHEMA.get_type(name).resolve_type = lambda obj, _info, _type: obj["__typename"]
    for name in ("Attribute", "AttributeElement"):
        SCHEMA.get_type(name).resolve_type = lambda obj, _info, _type: obj["__typename"]

    def mutation_count(query: str) -> int:
        try:
            doc = parse(query)
        except GraphQLError:
            return 0
        return sum(len(d.selection_set.selections) for d in doc.definitions if isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION)

    @app.post("/graphql")
    async def graphql_endpoint(request: Request):
        if request.headers.get("authorization") != f"Bearer {token}":
            return MoneyJSONResponse({"errors": [{"message": "Unauthorized: a valid integration API token is required"}]}, status_code=401)
        body = await json_body(request) or {}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return MoneyJSONResponse({"errors": [{"message": "No query string was present"}]}, status_code=400)
        mutations = mutation_count(body["query"])
        with data.lock:
            wait = max(limits["requests"].wait_for(1), limits["mutations"].wait_for(mutations) if mutations else 0.0)
            if wait > 0:
                return MoneyJSONResponse({"errors": [{"message": "Too many requests", "extensions": {"code": "RATE_LIMITED"}}]},
                                         status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
            limits["requests"].take(1)
            limits["mutations"].take(mutations)
        result = graphql_sync(SCHEMA, body["query"], root_value={k: (lambda f: (lambda info, **kw: f(info, **kw)))(v) for k, v in root.items()},
                              variable_values=body.get("variables") or {}, operation_name=body.get("operationName"))
        out: dict[str, Any] = {"data": result.data, "extensions": {"complexity": 1, "permissionsUsed": []}}
        if result.errors:
            out["errors"] = [{"message": e.message, "locations": [loc._asdict() for loc in e.locations or []], "path": e.path} for e in result.errors]
        return MoneyJSONResponse(out)

    @app.post(f"{order_api_path}/order")
    async def create_order(request: Request):
        if request.headers.get("api-authorization") != order_api_secret:
            return MoneyJSONResponse({"status": "no", "msg": "Unauthorized"}, status_code=401)
        body = await json_body(request)
        if not isinstance(body, dict):
            return MoneyJSONResponse({"status": "no", "msg": "the body must be a JSON object"}, status_code=400)
        try:
            order = data.create_order(body)
        except (ValueError, KeyError, TypeError) as exc:
            return MoneyJSONResponse({"status": "no", "msg": str(exc)}, status_code=400)
        return MoneyJSONResponse({"status": "ok", "order": order["number"]})

    # -- /_sandbox ----------------------------------------------------------------------------------
    @app.post("/_sandbox/seed")
    async def seed(request: Request):
        try:
            return data.seed(await json_body(request) or {})
        except (ValueError, KeyError) as exc:
            return MoneyJSONResponse({"error": str(exc)}, status_code=400)

    @app.post("/_sandbox/products")
    async def change_products(request: Request):
        try:
            return {"changed": data.change_products(await json_body(request) or [])}
        except (ValueError, KeyError, StopIteration) as exc:
            return MoneyJSONResponse({"error": str(exc) or "no such variant"}, status_code=400)

    @app.post("/_sandbox/config")
    async def config(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            if "requests_per_10s" in body:
                limits["requests"] = TokenBucket(int(body["requests_per_10s"]))
            if "mutations_per_10s" in body:
                limits["mutations"] = TokenBucket(int(body["mutations_per_10s"]))
            if "allocation_warehouses" in body:
                data.allocation_warehouses = body["allocation_warehouses"]
        return {"ok": True}

    @app.get("/_sandbox/orders")
    def all_orders():
        with data.lock:
            return MoneyJSONResponse({"orders": [{**{k: v for k, v in o.items() if k != "allocations"},
                                                  "lines": [{**ln, "sku": data.sizes[ln["size"]]["SKU"]} for ln in o["lines"]]} for o in data.orders.values()]})

    @app.get("/_sandbox/events")
    def all_events():
        with data.lock:
            return MoneyJSONResponse({"events": list(data.events), "listeners": {t: sorted(ln["changeTypes"]) for t, ln in data.listeners.items()}})

    @app.get("/_sandbox/stock")
    def all_stock():
        with data.lock:
            return {data.warehouses[w]["name"] + "/" + data.sizes[s]["SKU"]: dict(row, freeToAllocate=row["physical"] - row["allocated"])
                    for (w, s), row in sorted(data.stock.items())}

    @app.post("/_sandbox/stock")
    async def put_stock(request: Request):
        """[{"warehouse", "sku", "quantity"}]: physical stock counted in the warehouse (makes events)."""
        with data.lock:
            for row in await json_body(request) or []:
                data.set_stock(data.warehouse_named(row["warehouse"]), data.size_by_sku(row["sku"]), int(row["quantity"]))
        return {"ok": True}

    @app.post("/_sandbox/ship")
    async def ship(request: Request):
        """The warehouse ships in Centra: {"order": number, "lines": [{"sku", "quantity"}] (all left if absent),
        "carrier", "service", "trackingNumber", "shippedAt", "complete": true}."""
        body = await json_body(request) or {}
        with data.lock:
            order = data.orders.get(int(body["order"]))
            if order is None:
                return MoneyJSONResponse({"error": "order not found"}, status_code=404)
            lines = None
            if body.get("lines") is not None:
                lines = []
                for item in body["lines"]:
                    size = data.size_by_sku(item["sku"])
                    line = next(ln for ln in order["lines"] if ln["size"] == size["id"])
                    lines.append({"orderLine": {"id": line["id"]}, "quantity": int(item["quantity"])})
            try:
                shipment = data.create_shipment(order, lines)
                if body.get("complete", True):
                    data.complete_shipment(shipment, {"shippedAt": body.get("shippedAt"), "shipmentInfo": {
                        "carrier": body.get("carrier"), "service": body.get("service"), "trackingNumber": body.get("trackingNumber")}})
            except ValueError as exc:
                return MoneyJSONResponse({"error": str(exc)}, status_code=400)
            return MoneyJSONResponse({k: v for k, v in shipment.items()})

    @app.post("/_sandbox/returns")
    async def add_return(request: Request):
        try:
            return MoneyJSONResponse(data.add_return(await json_body(request) or {}))
        except (ValueError, KeyError, StopIteration) as exc:
            return MoneyJSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)

    @app.post("/_sandbox/webhooks")
    async def webhooks(request: Request):
        """{"url", "secret", "retries": 0..3, "timeout": 5}; {} switches them off."""
        body = await json_body(request) or {}
        with data.lock:
            data.webhook = {"url": body["url"], "secret": body["secret"], "retries": min(int(body.get("retries", 0)), 3),
                            "timeout": float(body.get("timeout", 5))} if body.get("url") else None
        return {"webhook": bool(data.webhook)}

    @app.get("/_sandbox/webhooks")
    def webhook_deliveries():
        with data.lock:
            return {"deliveries": list(data.deliveries)}

    return app
