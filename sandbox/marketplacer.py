"""Marketplacer Seller API emulator: GraphQL (graphql-core, so unknown fields are real GraphQL
errors) with Relay paging; `marketplacer-api-key` header, else HTTP 401 "API Token has expired".

Invoices are injected channel-native through `POST /_sandbox/invoices` and stored exactly as
given (inconsistent totals, a null legacyId, an unknown seller all stay as they are): the
emulator is the marketplace, and marketplaces send bad data too.
"""

from __future__ import annotations

import base64
import copy
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from graphql import build_schema, graphql_sync

from sandbox.common import MoneyJSONResponse, SandboxState, WebhookPush, install_sandbox, install_webhooks, json_body
from sandbox.faults import REFUSAL

SCHEMA = build_schema((Path(__file__).with_name("marketplacer_schema.graphql")).read_text())
DEFAULT_PAGE, MAX_PAGE = 50, 500
CARRIERS = ["Australia Post", "StarTrack", "DHL Express", "Couriers Please"]


def relay_id(kind: str, legacy: Any) -> str:
    return base64.b64encode(f"{kind}-{legacy}".encode()).decode()


def _cursor(i: int) -> str:
    return base64.b64encode(f"cursor:{i}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().split(":")[1]) + 1
    except (ValueError, IndexError):
        raise ValueError(f"invalid cursor {cursor!r}") from None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def connection(items: list, first: int | None, after: str | None) -> dict:
    first = DEFAULT_PAGE if first is None else first
    if first < 0 or first > MAX_PAGE:
        raise ValueError(f"first must be between 0 and {MAX_PAGE}")
    start = _offset(after)
    page = items[start : start + first]
    edges = [{"cursor": _cursor(start + i), "node": node} for i, node in enumerate(page)]
    return {
        "totalCount": len(items),
        "nodes": page,
        "edges": edges,
        "pageInfo": {
            "hasNextPage": start + len(page) < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


class MarketplacerData:
    def __init__(self):
        self.lock = threading.RLock()
        self.hooks = WebhookPush()  # a new invoice (order) pushes {"event": "invoice.created", ...}
        self.reset()

    def reset(self) -> None:
        self.hooks.clear()
        with self.lock:
            self.invoices: list[dict] = []
            self.next_legacy = 10_000
            self.adverts: list[dict] = []
            self.variants: dict[str, dict] = {}  # by Relay id
            self.stock_updates: list[dict] = []
            self.refunds: list[dict] = []
            self.advices: list[dict] = []
            self.taxons: dict[str, dict] = {}  # by Relay id: the categories, each with its prototype
            self.option_types: dict[str, dict] = {}  # by Relay id
            self.upserts: list[dict] = []  # every advertUpsert input, as received

    def add_advice(self, raw: dict) -> dict:
        """{paidAt, paymentReference, currency, remittances: [{invoiceLegacyId, amountCents, commissionAmountCents, ...}]}"""
        with self.lock:
            n = len(self.advices) + 1
            remittances = []
            for k, r in enumerate(raw.get("remittances", [])):
                invoice = next((i for i in self.invoices if i.get("legacyId") == r.get("invoiceLegacyId")), None)
                remittances.append({"__typename": "Remittance", "id": relay_id("Remittance", f"{n}-{k}"), "legacyId": n * 100 + k,
                                    "createdAt": raw.get("paidAt"), "invoice": invoice or {"id": relay_id("Invoice", r.get("invoiceLegacyId")), "legacyId": r.get("invoiceLegacyId"), "lineItems": [], "shipments": []},
                                    **{f: r.get(f) for f in ("amountCents", "commissionAmountCents", "commissionTaxCents", "feeCents", "refundCents")}})
            advice = {"__typename": "RemittanceAdvice", "id": relay_id("RemittanceAdvice", n), "legacyId": n, "paidAt": raw.get("paidAt"),
                      "paymentReference": raw.get("paymentReference"), "currency": raw.get("currency"), "remittances": remittances,
                      "totalCents": sum(r.get("amountCents") or 0 for r in remittances),
                      "commissionAmountTotalCents": sum(r.get("commissionAmountCents") or 0 for r in remittances)}
            self.advices.append(advice)
            return advice

    def add_refund(self, raw: dict) -> dict:
        """{invoiceLegacyId, status, createdAt, reason, lineItems: [{sku, quantity, amountCents}]}"""
        with self.lock:
            invoice = next((i for i in self.invoices if i.get("legacyId") == raw.get("invoiceLegacyId")), None)
            n = len(self.refunds) + 1
            lines = []
            for k, item in enumerate(raw.get("lineItems", [])):
                li = next((x for x in (invoice or {}).get("lineItems") or [] if x.get("variantSku") == item.get("sku")), None)
                lines.append({"id": relay_id("RefundRequestLineItem", f"{n}-{k}"), "quantity": item.get("quantity"), "amountCents": item.get("amountCents"),
                              "lineItem": li or {"id": relay_id("LineItem", f"unknown-{n}-{k}"), "variantSku": item.get("sku")}})
            refund = {"__typename": "RefundRequest", "id": relay_id("RefundRequest", n), "legacyId": n, "status": raw.get("status", "REFUNDED"),
                      "createdAt": raw.get("createdAt"), "updatedAt": raw.get("updatedAt") or raw.get("createdAt"), "reason": raw.get("reason"),
                      "invoice": invoice if invoice is not None else ({"id": relay_id("Invoice", raw.get("invoiceLegacyId")), "legacyId": raw.get("invoiceLegacyId"), "lineItems": [], "shipments": []}),
                      "lineItems": lines, "externalIds": []}
            self.refunds.append(refund)
            return refund

    def add_advert(self, raw: dict) -> dict:
        with self.lock:
            n = len(self.adverts) + 1
            advert = {"__typename": "Advert", "id": relay_id("Advert", n), "legacyId": n, "title": raw.get("title"), "variants": {"nodes": []},
                      "published": raw.get("published", True), "price": raw.get("price"), "externalId": raw.get("externalId"), "taxon": None, "advertOptionValues": []}
            for v in raw.get("variants", []):
                self.add_variant(advert, v)
            self.adverts.append(advert)
            return advert

    def add_variant(self, advert: dict, v: dict) -> dict:
        vid = relay_id("Variant", f"{advert['legacyId']}-{len(self.variants)}")
        variant = {"__typename": "Variant", "id": vid, "legacyId": len(self.variants) + 1, "sku": v.get("sku"), "countOnHand": v.get("countOnHand", 0),
                   "barcode": v.get("barcode"), "price": v.get("price"), "variantOptionValues": []}
        self.variants[vid] = variant
        advert["variants"]["nodes"].append(variant)
        return variant

    def add_taxon(self, raw: dict) -> dict:
        """{"displayName", "treeName"?, "prototype": {"name", "optionTypes": [{"name", "appliedTo": ADVERT|VARIANT,
        "fieldType": FREE_TEXT|SINGLE_SELECT|MULTI_SELECT, "optional": bool, "values": [name]}]}}"""
        with self.lock:
            n = len(self.taxons) + 1
            types = []
            for k, t in enumerate((raw.get("prototype") or {}).get("optionTypes") or []):
                tid = relay_id("OptionType", f"{n}-{k}")
                values = [{"__typename": "OptionValue", "id": relay_id("OptionValue", f"{n}-{k}-{j}"), "name": v, "displayName": v} for j, v in enumerate(t.get("values") or [])]
                option_type = {"__typename": "OptionType", "id": tid, "name": t["name"], "appliedTo": t.get("appliedTo", "ADVERT"),
                               "fieldType": t.get("fieldType", "FREE_TEXT"), "optional": bool(t.get("optional", True)), "optionValues": {"nodes": values}}
                self.option_types[tid] = option_type
                types.append(option_type)
            prototype = {"__typename": "Prototype", "id": relay_id("Prototype", n), "name": (raw.get("prototype") or {}).get("name") or raw.get("displayName"),
                         "optionTypes": {"nodes": types}}
            taxon = {"__typename": "Taxon", "id": raw.get("id") or relay_id("Taxon", n), "displayName": raw.get("displayName"),
                     "treeName": raw.get("treeName") or raw.get("displayName"), "prototype": prototype, "children": {"nodes": []}}
            self.taxons[taxon["id"]] = taxon
            return taxon

    def upsert_advert(self, input_: dict) -> dict:
        """advertUpsert: every rule checked before anything changes; the payload's `errors` name
        the field and say why, as Marketplacer's ValidationError does."""
        attrs = input_.get("attributes") or {}
        self.upserts.append(copy.deepcopy(input_))
        errors: list[tuple[str, str]] = []
        advert = None
        if input_.get("advertId"):
            advert = next((a for a in self.adverts if a["id"] == input_["advertId"]), None)
            if advert is None:
                return _refused([("advertId", "Advert not found")])
        taxon_id = attrs.get("taxonId") or ((advert or {}).get("taxon") or {}).get("id")
        title = attrs.get("title") or (advert or {}).get("title")
        if not title:
            errors.append(("title", "can't be blank"))
        taxon = self.taxons.get(taxon_id) if taxon_id else None
        if taxon is None:
            errors.append(("taxonId", "can't be blank" if not taxon_id else f"Taxon {taxon_id} not found"))
        types = {t["id"]: t for t in ((taxon or {}).get("prototype") or {}).get("optionTypes", {}).get("nodes", [])}

        def values_of(given: list | None, applied_to: str, field: str) -> list[dict] | None:
            if given is None:
                return None
            out = []
            for value in given:
                if value.get("optionValueId"):
                    found = next(((t, v) for t in types.values() for v in t["optionValues"]["nodes"] if v["id"] == value["optionValueId"]), None)
                    if found is None or found[0]["appliedTo"] != applied_to:
                        errors.append((field, f"Option value {value['optionValueId']} is not available for this category"))
                        continue
                    out.append({"optionType": found[0], "optionValue": found[1], "textValue": None})
                else:
                    t = types.get(value.get("optionTypeId"))
                    if t is None or t["appliedTo"] != applied_to or t["fieldType"] != "FREE_TEXT" or not value.get("textValue"):
                        errors.append((field, f"Option type {value.get('optionTypeId')} takes no text value here"))
                        continue
                    out.append({"optionType": t, "optionValue": None, "textValue": value["textValue"]})
            return out

        def missing(values: list[dict], applied_to: str, field: str) -> None:
            have = {v["optionType"]["id"] for v in values}
            for t in types.values():
                if t["appliedTo"] == applied_to and not t["optional"] and t["id"] not in have:
                    errors.append((field, f"{t['name']} is required for {taxon['displayName']}"))

        advert_values = values_of(attrs.get("advertOptionValues"), "ADVERT", "advertOptionValues")
        if taxon is not None:
            missing(advert_values if advert_values is not None else (advert or {}).get("advertOptionValues") or [], "ADVERT", "advertOptionValues")
        variants_in = attrs.get("variants")
        if advert is None and not variants_in:
            errors.append(("variants", "must have at least one variant"))
        planned = []
        for i, v in enumerate(variants_in or []):
            current = self.variants.get(v["id"]) if v.get("id") else None
            if v.get("id") and (current is None or current not in (advert or {}).get("variants", {}).get("nodes", [])):
                errors.append((f"variants[{i}].id", "Variant not found on this advert"))
                continue
            sku = v.get("sku") or (current or {}).get("sku")
            holder = next((a for a in self.adverts for x in a["variants"]["nodes"] if x.get("sku") == sku and x is not current), None)
            if sku and holder is not None:
                errors.append((f"variants[{i}].sku", "has already been taken"))
            values = values_of(v.get("variantOptionValues"), "VARIANT", f"variants[{i}].variantOptionValues")
            if taxon is not None:
                missing(values if values is not None else (current or {}).get("variantOptionValues") or [], "VARIANT", f"variants[{i}].variantOptionValues")
            planned.append((current, v, values))
        if errors:
            return _refused(errors)
        if advert is None:
            advert = self.add_advert({"title": title, "published": bool(attrs.get("attemptAutoPublish")), "variants": []})
        elif attrs.get("attemptAutoPublish"):
            advert["published"] = True
        advert["title"] = title
        advert["taxon"] = taxon
        for k in ("price", "externalId"):
            if attrs.get(k) is not None:
                advert[k] = attrs[k]
        if advert_values is not None:
            advert["advertOptionValues"] = advert_values
        for current, v, values in planned:
            variant = current or self.add_variant(advert, v)
            for k in ("sku", "barcode", "countOnHand"):
                if v.get(k) is not None:
                    variant[k] = v[k]
            if v.get("price") is not None:
                variant["price"] = str(v["price"])
            if values is not None:
                variant["variantOptionValues"] = values
        return {"advert": advert, "errors": [], "status": 200}

    def add_invoice(self, raw: dict) -> dict:
        with self.lock:
            inv = copy.deepcopy(raw)  # a private copy, exactly as given
            if "legacyId" not in inv:
                self.next_legacy += 1
                inv["legacyId"] = self.next_legacy
            inv["__typename"] = "Invoice"
            inv.setdefault("id", relay_id("Invoice", inv["legacyId"] if inv["legacyId"] is not None else f"x{len(self.invoices)}"))
            for i, item in enumerate(inv.get("lineItems") or []):
                item.setdefault("legacyId", (inv["legacyId"] or 0) * 100 + i)
                item.setdefault("id", relay_id("LineItem", f"{inv['id']}-{i}"))
            seller = inv.get("seller")
            if seller is not None:
                seller.setdefault("id", relay_id("Seller", seller.get("legacyId")))
            inv.setdefault("updatedAt", inv.get("createdAt"))
            inv.setdefault("statusFlags", [])
            inv.setdefault("shipments", [])
            self.invoices.append(inv)
        self.hooks.push({"event": "invoice.created", "id": inv["id"], "legacyId": inv["legacyId"]})
        return inv


def _invoice_refund_requests(invoice: dict, info) -> list[dict]:
    """Invoice.refundRequests, from the app's own data (the graph's context): no cycle stored."""
    data = (info.context or {}).get("data")
    with data.lock:
        return [r for r in data.refunds if (r.get("invoice") or {}).get("id") == invoice.get("id")]


SCHEMA.get_type("Invoice").fields["refundRequests"].resolve = _invoice_refund_requests


def _refused(errors: list[tuple[str, str]]) -> dict:
    return {"advert": None, "errors": [{"field": f, "messages": [m]} for f, m in errors], "status": 422}


def create_app(api_key: str = "demo-marketplacer-key") -> FastAPI:
    app = FastAPI(title="Marketplacer sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    data = MarketplacerData()
    state = SandboxState()
    app.state.data = data  # the demo's order generator and tests reach the store directly
    install_webhooks(app, data.hooks)
    install_sandbox(app, state, data.reset, fault_body=lambda status, message: {"errors": [{"message": message}]},
                    # mutations refuse in their payload's `errors`, inside a 200 answer
                    in_band=lambda method, path, fields: method == "POST" and bool(fields & {"variantUpdate", "shipmentCreate", "advertUpsert"}))

    def resolve_invoices(_root, _info, first=None, after=None, filters=None, sort=None, **_):
        filters = filters or {}
        with data.lock:
            items = list(data.invoices)
        since, until, updated = _time(filters.get("createdSince")), _time(filters.get("createdUntil")), _time(filters.get("updatedSince"))
        if since:
            items = [i for i in items if _time(i.get("createdAt")) and _time(i["createdAt"]) >= since]
        if until:
            items = [i for i in items if _time(i.get("createdAt")) and _time(i["createdAt"]) < until]
        if updated:
            items = [i for i in items if _time(i.get("updatedAt")) and _time(i["updatedAt"]) >= updated]
        if filters.get("notDispatched"):
            items = [i for i in items if "DISPATCHED" not in (i.get("statusFlags") or [])]
        sort = sort or {}
        field = {"UPDATED_AT": "updatedAt", "PAID_AT": "paidAt"}.get((sort.get("fields") or ["CREATED_AT"])[0], "createdAt")
        items.sort(key=lambda i: (i.get(field) or "", str(i.get("legacyId"))), reverse=sort.get("ordering") == "DESCENDING")
        return connection(items, first, after)

    def resolve_node(_root, _info, id):
        with data.lock:
            return next((i for i in data.invoices if i["id"] == id), None) or data.taxons.get(id) or next((a for a in data.adverts if a["id"] == id), None)

    def resolve_nodes(_root, info, ids):
        return [resolve_node(_root, info, i) for i in ids]

    def resolve_taxons(_root, _info, first=None, after=None):
        with data.lock:
            return connection(list(data.taxons.values()), first, after)

    def advert_upsert(_root, info, input):
        if (info.context or {}).get("refuse"):  # an injected fault
            return {**_refused([("advert", info.context["refuse"])]), "clientMutationId": input.get("clientMutationId")}
        with data.lock:
            return {**data.upsert_advert(input), "clientMutationId": input.get("clientMutationId")}

    def resolve_carriers(_root, _info, first=None, after=None):
        nodes = [{"id": relay_id("ShipmentCarrier", n), "name": name} for n, name in enumerate(CARRIERS, 1)]
        return connection(nodes, first, after)

    def resolve_adverts(_root, _info, first=None, after=None):
        with data.lock:
            return connection(list(data.adverts), first, after)

    def variant_update(_root, info, input):
        refusal = (info.context or {}).get("refuse")
        if refusal:  # an injected fault
            return {"variant": None, "errors": [{"field": "countOnHand", "messages": [refusal]}], "clientMutationId": input.get("clientMutationId")}
        with data.lock:
            variant = data.variants.get(input["variantId"])
            if variant is None:
                return {"variant": None, "errors": [{"field": "variantId", "messages": ["Variant not found"]}], "clientMutationId": input.get("clientMutationId")}
            count = (input.get("attributes") or {}).get("countOnHand")
            if count is not None and count < 0:
                return {"variant": variant, "errors": [{"field": "countOnHand", "messages": ["must be greater than or equal to 0"]}], "clientMutationId": input.get("clientMutationId")}
            if count is not None:
                variant["countOnHand"] = count
                data.stock_updates.append({"variantId": variant["id"], "sku": variant["sku"], "countOnHand": count})
            return {"variant": variant, "errors": [], "clientMutationId": input.get("clientMutationId")}

    carriers_by_id = {relay_id("ShipmentCarrier", n): name for n, name in enumerate(CARRIERS, 1)}

    def shipment_create(_root, info, input):
        def refuse(field, message):
            return {"shipment": None, "errors": [{"field": field, "messages": [message]}], "status": 422, "clientMutationId": input.get("clientMutationId")}

        if (info.context or {}).get("refuse"):  # an injected fault
            return refuse("shippedItems", info.context["refuse"])
        with data.lock:
            invoice = next((i for i in data.invoices if i["id"] == input["invoiceId"]), None)
            if invoice is None:
                return refuse("invoiceId", "Invoice not found")
            carrier_id = input.get("postageCarrierId")
            if carrier_id is not None and carrier_id not in carriers_by_id:
                return refuse("postageCarrierId", "Postage carrier not found")
            if _time(input["dispatchedAt"]) < _time(invoice.get("createdAt")):
                return refuse("dispatchedAt", "Dispatched at is before shipped items were ordered")
            lines = {li["id"]: li for li in invoice.get("lineItems") or []}
            shipped_before: dict[str, int] = {}
            for sh in invoice["shipments"]:
                for item in sh["shippedItems"]:
                    shipped_before[item["lineItem"]["id"]] = shipped_before.get(item["lineItem"]["id"], 0) + item["quantity"]
            items = []
            for n, item in enumerate(input["shippedItems"]):
                line = lines.get(item["lineItemId"])
                if line is None:
                    return refuse("shippedItems", f"Line item {item['lineItemId']} is not on this invoice")
                if item["quantity"] <= 0 or shipped_before.get(line["id"], 0) + item["quantity"] > (line.get("quantity") or 0):
                    return refuse("shippedItems", f"Quantity {item['quantity']} exceeds what is left to ship of line item {line['id']}")
                items.append({"id": relay_id("ShippedItem", f"{invoice['id']}-{len(invoice['shipments'])}-{n}"), "lineItem": line, "quantity": item["quantity"]})
            shipment = {
                "__typename": "Shipment",
                "id": relay_id("Shipment", f"{invoice['id']}-{len(invoice['shipments']) + 1}"),
                "trackingNumber": input.get("trackingNumber"),
                "trackingLink": None,
                "carrier": carriers_by_id.get(carrier_id),
                "dispatchedAt": input["dispatchedAt"],
                "postageCarrier": {"id": carrier_id, "name": carriers_by_id[carrier_id]} if carrier_id else None,
                "shippedItems": items,
            }
            invoice["shipments"].append(shipment)
            return {"shipment": shipment, "errors": [], "status": 200, "clientMutationId": input.get("clientMutationId")}

    def refund_request_create(_root, info, input):
        """Opens an AWAITING request; an invoice line item needs a reason and cannot be asked back
        beyond its quantity (over all open requests); a custom line needs amountPerItemCents."""
        def refuse(field, message):
            return {"refundRequest": None, "errors": [{"field": field, "messages": [message]}], "clientMutationId": input.get("clientMutationId")}

        if (info.context or {}).get("refuse"):  # an injected fault
            return refuse("lineItems", info.context["refuse"])
        with data.lock:
            invoice = next((i for i in data.invoices if i["id"] == input["invoiceId"]), None)
            if invoice is None:
                return refuse("invoiceId", "Invoice not found")
            if not input["lineItems"]:
                return refuse("lineItems", "Line items can't be blank")
            lines = {li["id"]: li for li in invoice.get("lineItems") or []}
            asked: dict[str, int] = {}
            for r in data.refunds:
                if (r.get("invoice") or {}).get("id") == invoice["id"] and r.get("status") not in ("REJECTED", "CANCELLED"):
                    for item in r["lineItems"]:
                        key = (item.get("lineItem") or {}).get("id")
                        asked[key] = asked.get(key, 0) + (item.get("quantity") or 0)
            n = len(data.refunds) + 1
            items = []
            for k, item in enumerate(input["lineItems"]):
                qty = item["quantity"]
                if qty <= 0:
                    return refuse("lineItems", "Quantity must be greater than 0")
                if item.get("lineItemId"):
                    line = lines.get(item["lineItemId"])
                    if line is None:
                        return refuse("lineItems", f"Line item {item['lineItemId']} is not on this invoice")
                    if not item.get("reason"):
                        return refuse("lineItems", "Reason can't be blank")
                    if item.get("custom") or item.get("amountPerItemCents") is not None:
                        return refuse("lineItems", "A line item refund cannot have a custom description or amount")
                    if asked.get(line["id"], 0) + qty > (line.get("quantity") or 0):
                        return refuse("lineItems", f"Quantity {qty} exceeds what is left to refund of line item {line['id']}")
                    asked[line["id"]] = asked.get(line["id"], 0) + qty
                    unit = line.get("unitPriceCents") if line.get("unitPriceCents") is not None else (line.get("totalCents") or 0) // max(line.get("quantity") or 1, 1)
                    items.append({"id": relay_id("RefundRequestLineItem", f"{n}-{k}"), "quantity": qty, "amountCents": unit * qty, "lineItem": line,
                                  "reason": item["reason"], "dispatched": item.get("dispatched")})
                elif item.get("custom") and item.get("amountPerItemCents") is not None:
                    items.append({"id": relay_id("RefundRequestLineItem", f"{n}-{k}"), "quantity": qty, "amountCents": item["amountPerItemCents"] * qty,
                                  "lineItem": None, "custom": item["custom"]})
                else:
                    return refuse("lineItems", "Supply a line item ID and a reason, or custom and amountPerItemCents")
            stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
            refund = {"__typename": "RefundRequest", "id": relay_id("RefundRequest", n), "legacyId": n, "status": "AWAITING", "createdAt": stamp,
                      "updatedAt": stamp, "reason": None, "invoice": invoice, "lineItems": items,
                      "externalIds": [{"key": x["key"], "value": x["value"]} for x in input.get("externalIds") or []],
                      "notes": [x.get("note") for x in input.get("notes") or []]}
            data.refunds.append(refund)
            return {"refundRequest": refund, "errors": [], "clientMutationId": input.get("clientMutationId")}

    def resolve_refunds(_root, _info, first=None, after=None, updatedSince=None, updatedUntil=None):
        with data.lock:
            items = list(data.refunds)
        since, until = _time(updatedSince), _time(updatedUntil)
        if since:
            items = [r for r in items if _time(r.get("updatedAt")) and _time(r["updatedAt"]) >= since]
        if until:
            items = [r for r in items if _time(r.get("updatedAt")) and _time(r["updatedAt"]) < until]
        return connection(items, first, after)

    def resolve_advices(_root, _info, first=None, after=None, paidSince=None, paidUntil=None):
        with data.lock:
            items = list(data.advices)
        since, until = _time(paidSince), _time(paidUntil)
        if since:
            items = [a for a in items if _time(a.get("paidAt")) and _time(a["paidAt"]) >= since]
        if until:
            items = [a for a in items if _time(a.get("paidAt")) and _time(a["paidAt"]) < until]
        return connection(items, first, after)

    root = {
        "remittanceAdvices": resolve_advices,
        "refundRequests": resolve_refunds,
        "shipmentCreate": shipment_create,
        "refundRequestCreate": refund_request_create,
        "invoices": resolve_invoices,
        "node": resolve_node,
        "shipmentCarriers": resolve_carriers,
        "allAdverts": resolve_adverts,
        "variantUpdate": variant_update,
        "nodes": resolve_nodes,
        "taxons": resolve_taxons,
        "advertUpsert": advert_upsert,
    }

    def resolve_type(obj, _info, _type):
        return obj.get("__typename", "Invoice")

    SCHEMA.get_type("Node").resolve_type = resolve_type

    @app.post("/graphql")
    async def graphql_endpoint(request: Request):
        if request.headers.get("marketplacer-api-key") != api_key:
            return MoneyJSONResponse({"errors": [{"message": "API Token has expired"}]}, status_code=401)
        body = await json_body(request) or {}
        if not isinstance(body, dict) or not body.get("query"):
            return MoneyJSONResponse({"errors": [{"message": "No query string was present"}]}, status_code=400)
        result = graphql_sync(
            SCHEMA,
            body["query"],
            root_value={k: (lambda f: (lambda info, **kw: f(None, info, **kw)))(v) for k, v in root.items()},
            variable_values=body.get("variables") or {},
            operation_name=body.get("operationName"),
            context_value={"refuse": request.scope.get(REFUSAL), "data": data},
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message, "locations": [loc._asdict() for loc in e.locations or []], "path": e.path} for e in result.errors]
        return MoneyJSONResponse(out)

    @app.post("/_sandbox/invoices")
    async def inject(request: Request):
        body = await json_body(request) or {}
        stored = [data.add_invoice(inv) for inv in body.get("invoices", [])]
        return MoneyJSONResponse({"invoices": stored})

    @app.post("/_sandbox/invoices/amend")
    async def amend_invoice(request: Request):
        """An invoice changed on the marketplace after it was read: {"legacyId", "set": {...}}."""
        body = await json_body(request) or {}
        with data.lock:
            invoice = next((i for i in data.invoices if i.get("legacyId") == body.get("legacyId")), None)
            if invoice is None:
                return MoneyJSONResponse({"error": "invoice not found"}, status_code=404)
            invoice.update(body.get("set") or {})
            return MoneyJSONResponse(invoice)

    @app.post("/_sandbox/adverts")
    async def inject_adverts(request: Request):
        body = await json_body(request) or {}
        return MoneyJSONResponse({"adverts": [data.add_advert(a) for a in body.get("adverts", [])]})

    @app.get("/_sandbox/adverts")
    def list_adverts():
        with data.lock:
            return MoneyJSONResponse({"adverts": copy.deepcopy(data.adverts), "upserts": copy.deepcopy(data.upserts)})

    @app.post("/_sandbox/taxonomy")
    async def inject_taxonomy(request: Request):
        body = await json_body(request) or {}
        return MoneyJSONResponse({"taxons": [data.add_taxon(t) for t in body.get("taxons", [])]})

    @app.get("/_sandbox/stock_updates")
    def stock_updates():
        with data.lock:
            return {"updates": list(data.stock_updates), "stock": {v["sku"]: v["countOnHand"] for v in data.variants.values()}}

    @app.post("/_sandbox/refund_requests")
    async def inject_refunds(request: Request):
        body = await json_body(request) or {}
        return MoneyJSONResponse({"refundRequests": [data.add_refund(r) for r in body.get("refundRequests", [])]})

    @app.get("/_sandbox/refund_requests")
    def list_refunds():
        with data.lock:  # the invoice by reference only: it is not copied into each request
            return MoneyJSONResponse({"refundRequests": [{**r, "invoice": {k: (r.get("invoice") or {}).get(k) for k in ("id", "legacyId")}} for r in data.refunds]})

    @app.post("/_sandbox/remittance_advices")
    async def inject_advices(request: Request):
        body = await json_body(request) or {}
        return MoneyJSONResponse({"advices": [data.add_advice(a) for a in body.get("advices", [])]})

    @app.get("/_sandbox/invoices")
    def list_invoices():
        with data.lock:
            return MoneyJSONResponse({"invoices": list(data.invoices)})

    return app
