"""commercetools Composable Commerce HTTP API emulator (paths, fields, error bodies and rules from
specs/commercetools.openapi.yaml and docs.commercetools.com; API-FACTS 4).

One server stands for both hosts: the auth host's `POST /oauth/token` and the API's
`/{projectKey}/...`, as `python -m sandbox` serves it on one port.

Resources: channels, product types, products (staged/current, publish, unpublish) and product
projections, orders, inventory entries, payments. Rules enforced:
- Auth: `POST /oauth/token` with the client id and secret as HTTP Basic and a form body
  `grant_type=client_credentials` (`scope` optional: a subset of the client's scopes) gives
  `{access_token, token_type, expires_in, scope}`; every API call needs `Authorization: Bearer`
  with a live token (401 `invalid_token`) whose scopes allow it (403 `insufficient_scope`):
  view_/manage_ of orders, payments, products (inventory, product types, projections), channels;
  manage_project allows everything. Scopes are `<permission>:<projectKey>`; a client holding
  manage_project may ask for any narrower scope of its project.
- Errors: `{"statusCode", "message", "errors": [{"code", "message", ...}]}` (ErrorResponse); 400
  InvalidInput / InvalidOperation / DuplicateField / ReferencedResourceNotFound, 404
  ResourceNotFound, 409 ConcurrentModification with `currentVersion`.
- Queries: `where` (Query Predicates, sandbox/commercetools_predicates.py; several `where` are
  all applied), `sort` (`<field path> asc|desc`, repeatable, `id asc` breaking ties), `limit`
  1..500 (default 20), `offset` 0..10,000 (over: 400), `withTotal` (default true), `expand`
  (`paymentInfo.payments[*]` on orders). Answer: `{limit, offset, count, total?, results}`.
  Stores are indexed (sandbox/commercetools_index.py) so 300,000 entries answer in time; the
  index narrows what a query looks at, the predicate still decides each resource.
- Updates: `POST /{resource}/{id}` with `{version, actions}`: a version other than the current
  one is 409 ConcurrentModification (`currentVersion` in the error); each applied action adds
  one to the version; `lastModifiedAt` moves on every change and never repeats.
- Order actions: updateSyncInfo, addDelivery (items and parcels with trackingData; deliveries
  live on shippingInfo, or on the named `shipping[]` entry in Multiple mode; quantities are not
  checked against the order, as commercetools does not), changeShipmentState, changeOrderState,
  changePaymentState, setOrderNumber (once), addReturnInfo, setReturnPaymentState,
  setReturnShipmentState. Inventory: changeQuantity, addQuantity, removeQuantity (an entry is
  unique per SKU and supply channel). Payments: addTransaction, changeTransactionState.
  Products: publish, unpublish, changeName, setAttribute (staged by default).

Assumed (not in the spec, or not knowable from it):
- The 401/403 bodies: the spec's AuthErrorResponse with `error` = the code (`invalid_token`,
  `insufficient_scope`, `invalid_client`); the token lifetime (48 hours here, `POST
  /_sandbox/config {"token_ttl_seconds": N}` to shorten it).
- updateSyncInfo appends an entry each time (the adapter checks before adding).
- Each applied update action adds one to the version (commercetools guarantees only that it grows).
- Unknown predicate fields match nothing rather than failing the request.
- An order injected with inventoryMode TrackOnly or ReserveOnOrder takes its quantities off the
  matching inventory entries (ReserveOnOrder refuses it, OutOfStock, when too few are available).
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.common import MoneyJSONResponse, SandboxState, install_sandbox, json_body
from sandbox.commercetools_builders import digits_of
from sandbox.commercetools_index import StoreIndex, sort_key
from sandbox.commercetools_predicates import PredicateError, evaluate, parse

DEFAULT_CONFIG = {"token_ttl_seconds": 172800}
MAX_LIMIT, MAX_OFFSET = 500, 10000
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
SHIPMENT_STATES = ("Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder", "Canceled")
PAYMENT_STATES = ("BalanceDue", "Failed", "Pending", "CreditOwed", "Paid")
RETURN_SHIPMENT_STATES = ("Advised", "Returned", "BackInStock", "Unusable")
RETURN_PAYMENT_STATES = ("NonRefundable", "Initial", "Refunded", "NotRefunded")
TRANSACTION_TYPES = ("Authorization", "CancelAuthorization", "Charge", "Refund", "Chargeback")
TRANSACTION_STATES = ("Initial", "Pending", "Success", "Failure")
CHANNEL_ROLES = ("InventorySupply", "ProductDistribution", "OrderExport", "OrderImport", "Primary")
# resource path -> (store name, permission family); a scope `view_<family>` reads, `manage_<family>` writes
RESOURCES = {
    "orders": ("orders", "orders"), "inventory": ("inventory", "products"), "payments": ("payments", "payments"),
    "channels": ("channels", "channels"), "product-types": ("product_types", "products"), "products": ("products", "products"),
    "product-projections": ("products", "products"),
}
TYPE_IDS = {"orders": "order", "inventory": "inventory-entry", "payments": "payment", "channels": "channel", "product_types": "product-type", "products": "product"}


class ApiError(Exception):
    """Raised in a handler; answered as commercetools' ErrorResponse."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message, "errors": [{"code": self.code, "message": self.message, **self.extra}]}


def auth_error(status: int, code: str, message: str) -> MoneyJSONResponse:
    return MoneyJSONResponse({"statusCode": status, "message": message, "errors": [{"code": code, "message": message}], "error": code,
                              "error_description": message}, status_code=status)


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "ResourceNotFound", f"The Resource with {what} '{ident}' was not found.")


def invalid(message: str, code: str = "InvalidInput", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def _typed(m: Any, field: str) -> dict[str, Any]:
    """Money (or TypedMoney) from a draft as the API answers it: TypedMoney with fractionDigits."""
    if not isinstance(m, dict) or not isinstance(m.get("currencyCode"), str) or not isinstance(m.get("centAmount"), int) or isinstance(m.get("centAmount"), bool):
        raise invalid(f"Request body does not contain valid JSON: {field} must be Money with currencyCode and an integer centAmount")
    out = {"type": m.get("type", "centPrecision"), "currencyCode": m["currencyCode"], "centAmount": m["centAmount"],
           "fractionDigits": m.get("fractionDigits", digits_of(m["currencyCode"]))}
    if "preciseAmount" in m:
        out["preciseAmount"] = m["preciseAmount"]
    return out


def _path_value(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


class Clock:
    """lastModifiedAt values that only ever grow, at least a millisecond apart (keyset readers
    rely on a resource's timestamp changing when it changes)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last = datetime(2000, 1, 1, tzinfo=timezone.utc)

    def stamp(self) -> str:
        with self.lock:
            now = datetime.now(timezone.utc)
            if now <= self.last:
                now = self.last + timedelta(milliseconds=1)
            now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
            if now <= self.last:
                now = self.last + timedelta(milliseconds=1)
            self.last = now
            return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class CommercetoolsData:
    def __init__(self):
        self.lock = threading.RLock()
        self.clock = Clock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.stores: dict[str, dict[str, dict]] = {name: {} for name in ("orders", "inventory", "payments", "channels", "product_types", "products")}
            # kept in step with every change to a stored resource (new, apply_update, delete, an order's stock)
            self.indexes: dict[str, StoreIndex] = {name: StoreIndex() for name in self.stores}
            self.tokens: dict[str, dict[str, Any]] = {}
            self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
            self.reserved: dict[str, int] = {}  # inventory entry id -> units reserved (availableQuantity = onStock - reserved)

    # -- resources --------------------------------------------------------------------------
    def new(self, store: str, resource: dict[str, Any], *, keep_stamps: bool = False) -> dict[str, Any]:
        stamp = self.clock.stamp()
        resource.setdefault("id", str(uuid.uuid4()))
        resource["version"] = int(resource.get("version") or 1)
        if not keep_stamps or "createdAt" not in resource:
            resource["createdAt"] = stamp
        if not keep_stamps or "lastModifiedAt" not in resource:
            resource["lastModifiedAt"] = stamp
        self.stores[store][resource["id"]] = resource
        self.indexes[store].add(resource)
        return resource

    def remove(self, store: str, ident: str) -> None:
        del self.stores[store][ident]
        self.indexes[store].remove(ident)

    def entry_for(self, sku: Any, channel: str | None) -> dict[str, Any] | None:
        """The inventory entry of a SKU in a supply channel (None: the one without a channel)."""
        candidates = self.indexes["inventory"].having("sku", sku) if isinstance(sku, str) else self.stores["inventory"]
        return next((e for e in map(self.stores["inventory"].get, candidates)
                     if e["sku"] == sku and (e.get("supplyChannel") or {}).get("id") == channel), None)

    def get(self, store: str, ident: str) -> dict[str, Any]:
        found = self.stores[store].get(ident)
        if found is None:
            raise not_found("ID", ident)
        return found

    def by_key(self, store: str, key: str) -> dict[str, Any]:
        found = next((r for r in self.stores[store].values() if r.get("key") == key), None)
        if found is None:
            raise not_found("key", key)
        return found

    def resolve(self, store: str, ident: Any, field: str) -> dict[str, Any]:
        """A ResourceIdentifier ({typeId, id} or {typeId, key}) to the resource, or 400."""
        if not isinstance(ident, dict) or not (ident.get("id") or ident.get("key")):
            raise invalid(f"{field} must be a ResourceIdentifier with an id or a key")
        try:
            return self.get(store, ident["id"]) if ident.get("id") else self.by_key(store, ident["key"])
        except ApiError:
            what = f"id '{ident['id']}'" if ident.get("id") else f"key '{ident['key']}'"
            raise invalid(f"The {TYPE_IDS[store]} with {what} does not exist.", "ReferencedResourceNotFound",
                          typeId=TYPE_IDS[store], **({"id": ident["id"]} if ident.get("id") else {"key": ident["key"]})) from None

    def touch(self, resource: dict[str, Any], changes: int) -> None:
        resource["version"] += max(1, changes)
        resource["lastModifiedAt"] = self.clock.stamp()

    def available(self, entry: dict[str, Any]) -> int:
        return int(entry["quantityOnStock"]) - self.reserved.get(entry["id"], 0)


# -- drafts -------------------------------------------------------------------------------------
def _require(draft: Any, fields: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(draft, dict):
        raise invalid(f"Request body does not contain valid JSON: {what} must be an object", "InvalidJsonInput")
    for f in fields:
        if draft.get(f) in (None, ""):
            raise invalid(f"Request body does not contain valid JSON: {what}: Missing required value for '{f}'", "InvalidJsonInput",
                          detailedErrorMessage=f"{f}: Missing required value")
    return draft


def _transaction(data: CommercetoolsData, draft: Any) -> dict[str, Any]:
    _require(draft, ("type", "amount"), "TransactionDraft")
    if draft["type"] not in TRANSACTION_TYPES:
        raise invalid(f"TransactionType '{draft['type']}' is not one of {', '.join(TRANSACTION_TYPES)}")
    state = draft.get("state", "Initial")
    if state not in TRANSACTION_STATES:
        raise invalid(f"TransactionState '{state}' is not one of {', '.join(TRANSACTION_STATES)}")
    tx = {"id": draft.get("id") or str(uuid.uuid4()), "type": draft["type"], "amount": _typed(draft["amount"], "transaction.amount"), "state": state,
          "timestamp": draft.get("timestamp") or data.clock.stamp()}
    if draft.get("interactionId"):
        tx["interactionId"] = draft["interactionId"]
    return tx


def create_resource(data: CommercetoolsData, store: str, draft: Any) -> dict[str, Any]:
    """A draft as the API creates it (POST /{resource}); seeds go the same way."""
    if store == "channels":
        _require(draft, ("key",), "ChannelDraft")
        if any(c.get("key") == draft["key"] for c in data.stores["channels"].values()):
            raise invalid(f"A duplicate value '\"{draft['key']}\"' exists for field 'key'.", "DuplicateField", field="key", duplicateValue=draft["key"])
        roles = draft.get("roles") or ["InventorySupply"]
        if any(r not in CHANNEL_ROLES for r in roles):
            raise invalid(f"Channel roles must be among {', '.join(CHANNEL_ROLES)}")
        return data.new(store, {"id": draft.get("id") or str(uuid.uuid4()), "key": draft["key"], "roles": roles,
                                **{k: draft[k] for k in ("name", "description", "address") if k in draft}})
    if store == "product_types":
        _require(draft, ("name", "description"), "ProductTypeDraft")
        attributes = [{"name": a["name"], "type": a.get("type") or {"name": "text"}, "label": a.get("label") or {"en-GB": a["name"]},
                       "isRequired": bool(a.get("isRequired")), "attributeConstraint": a.get("attributeConstraint", "None"),
                       "isSearchable": a.get("isSearchable", True), "inputHint": a.get("inputHint", "SingleLine"), "level": a.get("level", "Variant")} for a in draft.get("attributes") or []]
        return data.new(store, {"id": draft.get("id") or str(uuid.uuid4()), **({"key": draft["key"]} if draft.get("key") else {}),
                                "name": draft["name"], "description": draft["description"], "attributes": attributes})
    if store == "inventory":
        _require(draft, ("sku",), "InventoryEntryDraft")
        qty = draft.get("quantityOnStock")
        if not isinstance(qty, int) or isinstance(qty, bool):
            raise invalid("Request body does not contain valid JSON: InventoryEntryDraft: quantityOnStock must be an integer", "InvalidJsonInput")
        channel = data.resolve("channels", draft["supplyChannel"], "supplyChannel")["id"] if draft.get("supplyChannel") else None
        if data.entry_for(draft["sku"], channel) is not None:
            raise invalid(f"An inventory entry for SKU '{draft['sku']}' and this supply channel already exists.", "DuplicateField",
                          field="sku", duplicateValue=draft["sku"])
        entry = {"id": draft.get("id") or str(uuid.uuid4()), "sku": draft["sku"], "quantityOnStock": qty, "availableQuantity": qty}
        if draft.get("key"):
            entry["key"] = draft["key"]
        if channel:
            entry["supplyChannel"] = {"typeId": "channel", "id": channel}
        return data.new(store, entry)
    if store == "payments":
        _require(draft, ("amountPlanned",), "PaymentDraft")
        payment = {"id": draft.get("id") or str(uuid.uuid4()), "amountPlanned": _typed(draft["amountPlanned"], "amountPlanned"),
                   "paymentMethodInfo": draft.get("paymentMethodInfo") or {}, "paymentStatus": draft.get("paymentStatus") or {},
                   "transactions": [_transaction(data, t) for t in draft.get("transactions") or []], "interfaceInteractions": []}
        if draft.get("key"):
            payment["key"] = draft["key"]
        return data.new(store, payment)
    if store == "products":
        return data.new(store, _product(data, draft))
    raise invalid(f"{store} cannot be created here")  # orders: from carts, which are not emulated (seed them)


def _product(data: CommercetoolsData, draft: Any) -> dict[str, Any]:
    _require(draft, ("productType", "name", "slug"), "ProductDraft")
    ptype = data.resolve("product_types", draft["productType"], "productType")
    names = {a["name"]: a for a in ptype.get("attributes") or []}
    variants_in = [draft.get("masterVariant") or {}] + list(draft.get("variants") or [])
    skus = {v.get("sku") for p in data.stores["products"].values() for d in (p["masterData"]["current"], p["masterData"]["staged"])
            for v in [d["masterVariant"], *d["variants"]]}
    for slug in (draft.get("slug") or {}).values():
        if any(slug in (p["masterData"]["staged"].get("slug") or {}).values() for p in data.stores["products"].values()):
            raise invalid(f"A duplicate value '\"{slug}\"' exists for field 'slug'.", "DuplicateField", field="slug", duplicateValue=slug)
    variants = []
    for i, v in enumerate(variants_in, start=1):
        if v.get("sku") and v["sku"] in skus:
            raise invalid(f"A duplicate value '\"{v['sku']}\"' exists for field 'sku'.", "DuplicateField", field="sku", duplicateValue=v["sku"])
        for attr in v.get("attributes") or []:
            _check_attribute(names, attr.get("name"), attr.get("value"))
        variants.append({"id": i, **({"sku": v["sku"]} if v.get("sku") else {}), **({"key": v["key"]} if v.get("key") else {}),
                         "attributes": [{"name": a["name"], "value": a["value"]} for a in v.get("attributes") or []], "prices": [], "images": [], "assets": []})
    staged = {"name": draft["name"], "slug": draft["slug"], "categories": [], "searchKeywords": {}, "masterVariant": variants[0], "variants": variants[1:],
              "attributes": [],  # product-level attributes: none are written here
              **({"description": draft["description"]} if draft.get("description") else {})}
    published = bool(draft.get("publish"))
    return {"id": str(uuid.uuid4()), **({"key": draft["key"]} if draft.get("key") else {}), "productType": {"typeId": "product-type", "id": ptype["id"]},
            "masterData": {"published": published, "hasStagedChanges": False, "current": copy.deepcopy(staged), "staged": staged}}


def _check_attribute(names: dict[str, Any], name: Any, value: Any) -> None:
    if name not in names:
        raise invalid(f"The attribute with name '{name}' does not exist in the product type.", "AttributeNameDoesNotExist", invalidAttributeName=str(name))
    kind = (names[name].get("type") or {}).get("name")
    ok = {"number": isinstance(value, (int, Decimal)) and not isinstance(value, bool), "text": isinstance(value, str),
          "boolean": isinstance(value, bool)}.get(kind, True)
    if not ok:
        raise invalid(f"The value '{value}' is not valid for field '{name}' ({kind}).", "InvalidField", field=name, invalidValue=str(value))


def product_projection(product: dict[str, Any], staged: bool) -> dict[str, Any]:
    data = product["masterData"]["staged" if staged else "current"]
    return {"id": product["id"], "version": product["version"], **({"key": product["key"]} if product.get("key") else {}),
            "productType": product["productType"], "createdAt": product["createdAt"], "lastModifiedAt": product["lastModifiedAt"],
            "published": product["masterData"]["published"], "hasStagedChanges": product["masterData"]["hasStagedChanges"],
            **copy.deepcopy(data)}


# -- update actions -----------------------------------------------------------------------------
Handler = Callable[[CommercetoolsData, dict[str, Any], dict[str, Any]], None]


def _enum(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise invalid(f"Request body does not contain valid JSON: {field}: '{value}' is not one of {', '.join(allowed)}", "InvalidJsonInput")
    return value


def _deliveries(order: dict[str, Any], shipping_key: str | None) -> list[dict[str, Any]]:
    if order.get("shippingMode") == "Multiple":
        found = next((s for s in order.get("shipping") or [] if s.get("shippingKey") == shipping_key), None)
        if found is None:
            raise invalid(f"A shipping method with key '{shipping_key}' does not exist on the order.", "InvalidOperation")
        return found["shippingInfo"].setdefault("deliveries", [])
    if not isinstance(order.get("shippingInfo"), dict):
        raise invalid("The order has no shippingInfo: a delivery needs a shipping method.", "InvalidOperation")
    return order["shippingInfo"].setdefault("deliveries", [])


def _all_deliveries(order: dict[str, Any]) -> list[dict[str, Any]]:
    infos = [s.get("shippingInfo") or {} for s in order.get("shipping") or []] + [order.get("shippingInfo") or {}]
    return [d for info in infos for d in info.get("deliveries") or []]


def _items(order: dict[str, Any], items: Any, field: str) -> list[dict[str, Any]]:
    ids = {li["id"] for li in order.get("lineItems") or []} | {c["id"] for c in order.get("customLineItems") or []}
    out = []
    for item in items or []:
        if not isinstance(item, dict) or item.get("id") not in ids or not isinstance(item.get("quantity"), int):
            raise invalid(f"{field}: the item {item!r} is not a line item of the order with a whole quantity.", "InvalidOperation")
        out.append({"id": item["id"], "quantity": item["quantity"]})
    return out


def add_delivery(data: CommercetoolsData, order: dict[str, Any], a: dict[str, Any]) -> None:
    target = _deliveries(order, a.get("shippingKey"))
    key = a.get("deliveryKey")
    if key and any(d.get("key") == key for d in _all_deliveries(order)):
        raise invalid(f"A delivery with key '{key}' already exists on the order.", "DuplicateField", field="deliveryKey", duplicateValue=key)
    stamp = data.clock.stamp()
    parcels = []
    for p in a.get("parcels") or []:
        parcel: dict[str, Any] = {"id": str(uuid.uuid4()), "createdAt": stamp, "items": _items(order, p.get("items"), "parcels.items")}
        for k in ("key", "measurements", "trackingData", "custom"):
            if p.get(k) is not None:
                parcel[k] = p[k]
        parcels.append(parcel)
    delivery: dict[str, Any] = {"id": str(uuid.uuid4()), "createdAt": stamp, "items": _items(order, a.get("items"), "items"), "parcels": parcels}
    if key:
        delivery["key"] = key
    if a.get("address"):
        delivery["address"] = a["address"]
    target.append(delivery)


def add_return_info(data: CommercetoolsData, order: dict[str, Any], a: dict[str, Any]) -> None:
    stamp = data.clock.stamp()
    lines = {li["id"] for li in order.get("lineItems") or []}
    items = []
    for it in a.get("items") or []:
        if it.get("lineItemId") not in lines or not isinstance(it.get("quantity"), int):
            raise invalid(f"items: the return item {it!r} names no line item of the order.", "InvalidOperation")
        items.append({"type": "LineItemReturnItem", "id": str(uuid.uuid4()), "lineItemId": it["lineItemId"], "quantity": it["quantity"],
                      "shipmentState": _enum(it.get("shipmentState", "Advised"), RETURN_SHIPMENT_STATES, "shipmentState"),
                      "paymentState": "Initial", "createdAt": stamp, "lastModifiedAt": stamp, **({"comment": it["comment"]} if it.get("comment") else {}),
                      **({"key": it["key"]} if it.get("key") else {})})
    info: dict[str, Any] = {"items": items}
    for k in ("returnTrackingId", "returnDate"):
        if a.get(k):
            info[k] = a[k]
    order.setdefault("returnInfo", []).append(info)


def _return_item(order: dict[str, Any], item_id: Any) -> dict[str, Any]:
    for info in order.get("returnInfo") or []:
        for item in info.get("items") or []:
            if item.get("id") == item_id:
                return item
    raise invalid(f"A return item with id '{item_id}' does not exist on the order.", "InvalidOperation")


def set_return_state(field: str, allowed: tuple[str, ...]) -> Handler:
    def handler(data: CommercetoolsData, order: dict[str, Any], a: dict[str, Any]) -> None:
        item = _return_item(order, a.get("returnItemId"))
        item[field] = _enum(a.get(field), allowed, field)
        item["lastModifiedAt"] = data.clock.stamp()
    return handler


def update_sync_info(data: CommercetoolsData, order: dict[str, Any], a: dict[str, Any]) -> None:
    channel = data.resolve("channels", a.get("channel"), "channel")
    entry: dict[str, Any] = {"channel": {"typeId": "channel", "id": channel["id"]}, "syncedAt": a.get("syncedAt") or data.clock.stamp()}
    if a.get("externalId"):
        entry["externalId"] = a["externalId"]
    order.setdefault("syncInfo", []).append(entry)


def set_order_number(data: CommercetoolsData, order: dict[str, Any], a: dict[str, Any]) -> None:
    if order.get("orderNumber"):
        raise invalid("The order already has an order number; it cannot be changed.", "InvalidOperation")
    if any(o.get("orderNumber") == a.get("orderNumber") for o in data.stores["orders"].values()):
        raise invalid(f"A duplicate value '\"{a.get('orderNumber')}\"' exists for field 'orderNumber'.", "DuplicateField", field="orderNumber",
                      duplicateValue=a.get("orderNumber"))
    order["orderNumber"] = a.get("orderNumber")


def _state_setter(field: str, allowed: tuple[str, ...]) -> Handler:
    def handler(data: CommercetoolsData, resource: dict[str, Any], a: dict[str, Any]) -> None:
        resource[field] = _enum(a.get(field), allowed, field)
    return handler


def _quantity(a: dict[str, Any]) -> int:
    q = a.get("quantity")
    if not isinstance(q, int) or isinstance(q, bool):
        raise invalid("Request body does not contain valid JSON: quantity must be an integer", "InvalidJsonInput")
    return q


def _set_stock(data: CommercetoolsData, entry: dict[str, Any], on_stock: int) -> None:
    entry["quantityOnStock"] = on_stock
    entry["availableQuantity"] = data.available(entry)


def add_transaction(data: CommercetoolsData, payment: dict[str, Any], a: dict[str, Any]) -> None:
    payment["transactions"].append(_transaction(data, a.get("transaction")))


def change_transaction_state(data: CommercetoolsData, payment: dict[str, Any], a: dict[str, Any]) -> None:
    tx = next((t for t in payment["transactions"] if t["id"] == a.get("transactionId")), None)
    if tx is None:
        raise invalid(f"A transaction with id '{a.get('transactionId')}' does not exist on the payment.", "InvalidOperation")
    tx["state"] = _enum(a.get("state"), TRANSACTION_STATES, "state")


def _publish(published: bool) -> Handler:
    def handler(data: CommercetoolsData, product: dict[str, Any], a: dict[str, Any]) -> None:
        md = product["masterData"]
        if published:
            md["current"] = copy.deepcopy(md["staged"])
            md["hasStagedChanges"] = False
        md["published"] = published
    return handler


def _staged(product: dict[str, Any], a: dict[str, Any]) -> list[dict[str, Any]]:
    md = product["masterData"]
    if a.get("staged", True):
        md["hasStagedChanges"] = True
        return [md["staged"]]
    return [md["staged"], md["current"]]


def change_name(data: CommercetoolsData, product: dict[str, Any], a: dict[str, Any]) -> None:
    if not isinstance(a.get("name"), dict):
        raise invalid("Request body does not contain valid JSON: name must be a LocalizedString", "InvalidJsonInput")
    for target in _staged(product, a):
        target["name"] = a["name"]


def set_attribute(data: CommercetoolsData, product: dict[str, Any], a: dict[str, Any]) -> None:
    ptype = data.get("product_types", product["productType"]["id"])
    _check_attribute({x["name"]: x for x in ptype.get("attributes") or []}, a.get("name"), a.get("value"))
    for target in _staged(product, a):
        variant = next((v for v in [target["masterVariant"], *target["variants"]] if (a.get("sku") and v.get("sku") == a["sku"]) or v["id"] == a.get("variantId")), None)
        if variant is None:
            raise invalid(f"A variant with sku '{a.get('sku')}' or id '{a.get('variantId')}' does not exist.", "InvalidOperation")
        attrs = [x for x in variant.get("attributes") or [] if x["name"] != a["name"]]
        if a.get("value") is not None:
            attrs.append({"name": a["name"], "value": a["value"]})
        variant["attributes"] = attrs


ACTIONS: dict[str, dict[str, Handler]] = {
    "orders": {
        "updateSyncInfo": update_sync_info, "addDelivery": add_delivery, "addReturnInfo": add_return_info, "setOrderNumber": set_order_number,
        "changeShipmentState": _state_setter("shipmentState", SHIPMENT_STATES), "changeOrderState": _state_setter("orderState", ORDER_STATES),
        "changePaymentState": _state_setter("paymentState", PAYMENT_STATES),
        "setReturnPaymentState": set_return_state("paymentState", RETURN_PAYMENT_STATES),
        "setReturnShipmentState": set_return_state("shipmentState", RETURN_SHIPMENT_STATES),
    },
    "inventory": {
        "changeQuantity": lambda d, e, a: _set_stock(d, e, _quantity(a)),
        "addQuantity": lambda d, e, a: _set_stock(d, e, e["quantityOnStock"] + _quantity(a)),
        "removeQuantity": lambda d, e, a: _set_stock(d, e, e["quantityOnStock"] - _quantity(a)),
    },
    "payments": {"addTransaction": add_transaction, "changeTransactionState": change_transaction_state},
    "products": {"publish": _publish(True), "unpublish": _publish(False), "changeName": change_name, "setAttribute": set_attribute},
    "channels": {}, "product_types": {},
}


def apply_update(data: CommercetoolsData, store: str, resource: dict[str, Any], body: Any) -> dict[str, Any]:
    """All the actions or none, on a copy: an action that fails leaves the resource as it was."""
    if not isinstance(body, dict) or not isinstance(body.get("version"), int) or not isinstance(body.get("actions"), list):
        raise invalid("Request body does not contain valid JSON: an update needs version (integer) and actions (array)", "InvalidJsonInput")
    if body["version"] != resource["version"]:
        raise ApiError(409, "ConcurrentModification",
                       f"Object {resource['id']} has a different version than expected. Expected: {body['version']} - Actual: {resource['version']}.",
                       currentVersion=resource["version"])
    work = copy.deepcopy(resource)
    for action in body["actions"]:
        name = action.get("action") if isinstance(action, dict) else None
        handler = ACTIONS[store].get(name)
        if handler is None:
            raise invalid(f"Request body does not contain valid JSON: actions -> action: Unknown update action '{name}'", "InvalidJsonInput")
        handler(data, work, action)
    if body["actions"]:
        data.touch(work, len(body["actions"]))
    resource.clear()
    resource.update(work)
    data.indexes[store].add(resource)
    return resource


# -- queries ------------------------------------------------------------------------------------
def _int_param(query: list[tuple[str, str]], name: str, default: int, low: int, high: int) -> int:
    values = [v for k, v in query if k == name]
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise invalid(f"Malformed parameter: {name}: Invalid int.") from None
    if not low <= value <= high:
        raise invalid(f"The value of the parameter '{name}' must be between {low} and {high}." if name == "limit"
                      else f"The value of the parameter '{name}' must not exceed {high}." if value > high else f"Malformed parameter: {name}: must be >= {low}.")
    return value


def _sorts(query: list[tuple[str, str]]) -> list[tuple[str, bool]]:
    out = []
    for k, v in query:
        if k != "sort":
            continue
        parts = v.split()
        if len(parts) != 2 or parts[1] not in ("asc", "desc"):
            raise invalid(f"Malformed parameter: sort: Invalid sort expression '{v}': expected '<field> asc' or '<field> desc'.")
        out.append((parts[0], parts[1] == "desc"))
    return out


FEW = 2000  # candidates from a field index read one by one; more, and a keyset page walks the order instead
KEYSET_SORTS = ([("lastModifiedAt", False)], [("lastModifiedAt", False), ("id", False)])


def run_query(items: list[dict[str, Any]] | dict[str, dict[str, Any]], query: list[tuple[str, str]], index: StoreIndex | None = None) -> dict[str, Any]:
    """A page of `items` (a list; or a store by id, with its index) as the API answers a query."""
    limit = _int_param(query, "limit", 20, 1, MAX_LIMIT)
    offset = _int_param(query, "offset", 0, 0, MAX_OFFSET)
    with_total = next((v for k, v in reversed(query) if k == "withTotal"), "true").lower() != "false"
    try:
        predicates = [parse(v) for k, v in query if k == "where"]
    except PredicateError as exc:
        raise invalid(f"Malformed parameter: where: Syntax error while parsing 'where'. {exc}") from None
    sorts = _sorts(query)
    docs: Any = items
    if index is not None:  # the index picks which resources to look at; the predicates still decide
        ids, low = index.narrow(functools.reduce(lambda a, b: ("and", a, b), predicates)) if predicates else (None, None)
        if sorts in KEYSET_SORTS and not with_total and (ids is None or len(ids) > FEW):
            walk = (r for r in index.in_keyset_order(items, low) if (ids is None or r["id"] in ids) and all(evaluate(p, r) for p in predicates))
            page = list(itertools.islice(walk, offset, offset + limit))
            return {"limit": limit, "offset": offset, "count": len(page), "results": page}
        docs = [items[i] for i in ids] if ids is not None else items.values()
    picked = [r for r in docs if all(evaluate(p, r) for p in predicates)]
    picked.sort(key=lambda r: r["id"])  # ties end in id order, whatever the sort
    for field, desc in reversed(sorts):
        picked.sort(key=lambda r, f=field: sort_key(_path_value(r, f)), reverse=desc)
    page = picked[offset : offset + limit]
    body: dict[str, Any] = {"limit": limit, "offset": offset, "count": len(page), "results": page}
    if with_total:
        body["total"] = len(picked)
    return body


def _expand(data: CommercetoolsData, order: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    if "paymentInfo.payments[*]" not in expand or not (order.get("paymentInfo") or {}).get("payments"):
        return order
    out = copy.deepcopy(order)
    for ref in out["paymentInfo"]["payments"]:
        found = data.stores["payments"].get(ref.get("id"))
        if found is not None:
            ref["obj"] = copy.deepcopy(found)
    return out


# -- orders injected by the sandbox (they come from carts, which are not emulated) --------------
def inject_order(data: CommercetoolsData, order: dict[str, Any]) -> dict[str, Any]:
    order = copy.deepcopy(order)
    for field, default in (("lineItems", []), ("customLineItems", []), ("syncInfo", []), ("returnInfo", []), ("refusedGifts", []),
                           ("shipping", []), ("shippingMode", "Single"), ("origin", "Customer"), ("orderState", "Open")):
        order.setdefault(field, default)
    mode = order.get("inventoryMode")
    if mode in ("TrackOnly", "ReserveOnOrder"):
        wanted = []
        for li in order["lineItems"]:
            channel = (li.get("supplyChannel") or {}).get("id")
            entry = data.entry_for((li.get("variant") or {}).get("sku"), channel)
            if entry is None and mode == "ReserveOnOrder":
                raise invalid(f"Some line items are out of stock at the time of placing the order: {(li.get('variant') or {}).get('sku')}.", "OutOfStock")
            if entry is not None:
                if mode == "ReserveOnOrder" and data.available(entry) < li["quantity"]:
                    raise invalid(f"Some line items are out of stock at the time of placing the order: {entry['sku']}.", "OutOfStock", skus=[entry["sku"]])
                wanted.append((entry, li["quantity"]))
        for entry, qty in wanted:  # the order takes its units off the stock, as placing it does
            _set_stock(data, entry, entry["quantityOnStock"] - qty)
            data.touch(entry, 1)
            data.indexes["inventory"].add(entry)
    return data.new("orders", order, keep_stamps=True)


# -- the app ------------------------------------------------------------------------------------
def create_app(project_key: str = "demo-shop", client_id: str = "demo-client", client_secret: str = "demo-secret",
               scopes: tuple[str, ...] | None = None) -> FastAPI:
    app = FastAPI(title="commercetools sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    data = CommercetoolsData()
    state = SandboxState()
    app.state.data = data
    allowed_scopes = set(scopes or [f"manage_project:{project_key}"])
    install_sandbox(app, state, data.reset, fault_body=lambda status: {
        "statusCode": status, "message": "sandbox fault",
        "errors": [{"code": {503: "OverCapacity", 502: "BadGateway"}.get(status, "General"), "message": "sandbox fault"}]})

    def answer(body: Any, status: int = 200) -> MoneyJSONResponse:
        return MoneyJSONResponse(body, status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return answer(exc.body(), exc.status)

    # -- auth host ------------------------------------------------------------------------------
    @app.post("/oauth/token")
    async def token(request: Request):
        basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if request.headers.get("Authorization") != basic:
            return auth_error(401, "invalid_client", "Please provide valid client credentials using HTTP Basic Authentication.")
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return auth_error(400, "unsupported_grant_type", f"Unsupported grant type '{form.get('grant_type')}'.")
        asked = set((form.get("scope") or "").split()) or allowed_scopes
        # a client with manage_project may ask for any narrower scope of the project
        everything = f"manage_project:{project_key}" in allowed_scopes
        refused = {s for s in asked if s not in allowed_scopes and not (everything and s.endswith(f":{project_key}"))}
        if refused:
            return auth_error(400, "invalid_scope", f"Invalid scopes: {' '.join(sorted(refused))}.")
        ttl = int(data.config["token_ttl_seconds"])
        access = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        with data.lock:
            data.tokens[access] = {"expires": time.time() + ttl, "scopes": asked}
        return answer({"access_token": access, "token_type": "Bearer", "expires_in": ttl, "scope": " ".join(sorted(asked))})

    def authorise(request: Request, family: str, write: bool) -> None:
        header = request.headers.get("Authorization") or ""
        with data.lock:
            grant = data.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
            if grant is None or grant["expires"] <= time.time():
                raise _Refused(auth_error(401, "invalid_token", "invalid_token"))
        needed = {f"manage_{family}:{project_key}", f"manage_project:{project_key}"}
        if not write:
            needed |= {f"view_{family}:{project_key}"}
            if family == "channels":
                needed |= {f"view_products:{project_key}", f"manage_products:{project_key}"}
        elif family == "channels":
            needed |= {f"manage_products:{project_key}"}
        if not grant["scopes"] & needed:
            raise _Refused(auth_error(403, "insufficient_scope", f"Insufficient scope. One of the following scopes is missing: {', '.join(sorted(needed))}"))

    class _Refused(Exception):
        def __init__(self, response):
            self.response = response

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused):
        return exc.response

    # -- sandbox control ------------------------------------------------------------------------
    def seed(store: str, payload: Any) -> list[dict[str, Any]]:
        items = payload if isinstance(payload, list) else [payload]
        with data.lock:
            return [copy.deepcopy(create_resource(data, store, item)) for item in items]

    @app.post("/_sandbox/config")
    async def set_config(request: Request):
        with data.lock:
            data.config.update(await json_body(request) or {})
            return dict(data.config)

    @app.post("/_sandbox/orders")
    async def add_orders(request: Request):
        body = await json_body(request)
        with data.lock:
            return answer({"orders": [copy.deepcopy(inject_order(data, o)) for o in (body if isinstance(body, list) else [body])]})

    @app.get("/_sandbox/orders")
    def all_orders():
        with data.lock:
            return answer({"items": copy.deepcopy(list(data.stores["orders"].values()))})

    @app.get("/_sandbox/orders/{order_id}")
    def get_order(order_id: str):
        with data.lock:
            return answer(copy.deepcopy(data.get("orders", order_id)))

    for path, store in (("channels", "channels"), ("inventory", "inventory"), ("payments", "payments"), ("product-types", "product_types"), ("products", "products")):
        def make(store=store):
            async def add(request: Request):
                return answer({"created": seed(store, await json_body(request))})

            def show():
                with data.lock:
                    return answer({"items": copy.deepcopy(list(data.stores[store].values()))})
            return add, show
        add, show = make()
        app.post(f"/_sandbox/{path}")(add)
        app.get(f"/_sandbox/{path}")(show)

    @app.post("/_sandbox/orders/{order_id}/update")
    async def sandbox_update(order_id: str, request: Request):
        """An order changed by someone else (the merchant center, a storefront job): actions
        applied at the current version, bypassing auth."""
        actions = await json_body(request) or []
        with data.lock:
            order = data.get("orders", order_id)
            return answer(copy.deepcopy(apply_update(data, "orders", order, {"version": order["version"], "actions": actions})))

    @app.post("/_sandbox/inventory/{entry_id}/reserve")
    async def reserve(entry_id: str, request: Request):
        """Units held by carts (ReserveOnCart): availableQuantity = quantityOnStock - reserved."""
        body = await json_body(request) or {}
        with data.lock:
            entry = data.get("inventory", entry_id)
            data.reserved[entry_id] = int(body.get("quantity", 0))
            entry["availableQuantity"] = data.available(entry)
            return answer(copy.deepcopy(entry))

    @app.post("/_sandbox/tokens/expire")
    def expire_tokens():
        """Every token issued so far stops working (revoked, or its 48 hours ran out)."""
        with data.lock:
            count = len(data.tokens)
            data.tokens.clear()
        return {"expired": count}

    @app.get("/_sandbox/health")
    def health():
        return Response(status_code=204)

    # -- the API ----------------------------------------------------------------------------------
    def route(request: Request, project: str, rest: str) -> tuple[str, str, str | None, str | None]:
        """(store, family, id, key-ish selector) from `/{project}/{resource}[/{selector}]`."""
        if project != project_key:
            raise not_found("key", project)
        parts = rest.strip("/").split("/")
        if not parts or parts[0] not in RESOURCES or len(parts) > 2:
            raise ApiError(404, "ResourceNotFound", f"The endpoint '/{project}/{rest}' does not exist.")
        store, family = RESOURCES[parts[0]]
        return store, family, parts[0], parts[1] if len(parts) == 2 else None

    def one(store: str, selector: str) -> dict[str, Any]:
        if selector.startswith("key="):
            return data.by_key(store, selector[4:])
        if selector.startswith("order-number=") and store == "orders":
            found = next((o for o in data.stores["orders"].values() if o.get("orderNumber") == selector[13:]), None)
            if found is None:
                raise not_found("orderNumber", selector[13:])
            return found
        return data.get(store, selector)

    @app.get("/{project}/{rest:path}")
    def read(project: str, rest: str, request: Request):
        store, family, resource, selector = route(request, project, rest)
        authorise(request, family, write=False)
        query = list(request.query_params.multi_items())
        expand = [v for k, v in query if k == "expand"]
        with data.lock:
            if resource == "product-projections":
                staged = next((v for k, v in reversed(query) if k == "staged"), "false").lower() == "true"
                if selector:
                    product = one(store, selector)
                    if not staged and not product["masterData"]["published"]:
                        raise not_found("ID", selector)
                    return answer(product_projection(product, staged))
                items = [product_projection(p, staged) for p in data.stores[store].values() if staged or p["masterData"]["published"]]
                return answer(copy.deepcopy(run_query(items, query)))
            if selector:
                found = one(store, selector)
                return answer(copy.deepcopy(_expand(data, found, expand) if store == "orders" else found))
            body = run_query(data.stores[store], query, data.indexes[store])
            if store == "orders":
                body["results"] = [_expand(data, o, expand) for o in body["results"]]
            return answer(body)  # rendered to bytes here, under the lock: nothing to copy

    @app.post("/{project}/{rest:path}")
    async def write(project: str, rest: str, request: Request):
        store, family, resource, selector = route(request, project, rest)
        authorise(request, family, write=True)
        if resource == "product-projections":
            raise ApiError(405, "MethodNotAllowed", "Product projections are read-only.")
        try:
            body = await json_body(request)
        except ValueError:
            raise invalid("Request body does not contain valid JSON.", "InvalidJsonInput") from None
        with data.lock:
            if selector is None:
                return answer(copy.deepcopy(create_resource(data, store, body)), 201)
            return answer(copy.deepcopy(apply_update(data, store, one(store, selector), body)))

    @app.delete("/{project}/{rest:path}")
    def delete(project: str, rest: str, request: Request):
        store, family, resource, selector = route(request, project, rest)
        authorise(request, family, write=True)
        if selector is None or resource == "product-projections":
            raise ApiError(405, "MethodNotAllowed", "Only a single resource can be deleted.")
        with data.lock:
            found = one(store, selector)
            version = request.query_params.get("version")
            if version is None or not version.isdigit():
                raise invalid("Missing required query parameter: version")
            if int(version) != found["version"]:
                raise ApiError(409, "ConcurrentModification",
                               f"Object {found['id']} has a different version than expected. Expected: {version} - Actual: {found['version']}.",
                               currentVersion=found["version"])
            data.remove(store, found["id"])
            return answer(copy.deepcopy(found))

    return app
