"""Salesforce B2C Commerce emulator: Account Manager tokens, SCAPI Orders, SCAPI Products search
and Omnichannel Inventory (OCI) file imports and exports, on one server (as the demo runs it on
:8105; the real APIs live on account.demandware.com and {shortCode}.api.commercecloud.salesforce.com).

Orders follow specs/sfcc-scapi-orders-1.5.2.openapi.yaml (paths, parameters, bodies, errors);
Products follow the Products API 1.2.0 (`product-search`); OCI has no public OpenAPI file, so
its shape is our reading of Salesforce's docs, every assumption listed in sandbox/README.md.

Rules enforced:
- Token: `POST /dwsso/oauth2/access_token`, HTTP Basic client id + secret, form
  `grant_type=client_credentials` and `scope` naming `SALESFORCE_COMMERCE_API:<tenant>` plus the
  API scopes asked for; answers `{access_token, token_type: Bearer, expires_in, scope}`.
- Every API call needs `Authorization: Bearer <token>`, unexpired (else 401), for this
  organisation (`f_ecom_<tenant>`; OCI: the tenant group id) (else 403), holding the call's scope
  (else 403): sfcc.orders(.rw), sfcc.products(.rw), sfcc.inventory.impex-inventory(.rw).
- Orders: `siteId` required (400) and known (404); `limit` 1..200 (default 100), `offset` >= 0,
  offset + limit <= 10,000 (400); filters `exportStatus` (<= 3), `status` (<= 2),
  `confirmationStatus`, `paymentStatus`, `shippingStatus`, creation/modification dates; sorted
  by `sortBy` (creation_date) and `sortOrder` (desc by default, as the spec says). An order
  belongs to one site: asked for under another site it is not found (404). PATCH takes only
  `c_` attributes (400 otherwise); export-status and shipping-status PUTs take the spec's
  enums; each write bumps `lastModified`. Errors are the spec's ErrorResponse.
- OCI imports: POST makes an import and an upload link; the file (NDJSON: a location line
  `{"location", "mode": "UPDATE"}`, then that location's records `{"recordId", "sku",
  "onHand", "effectiveDate", ...}`) is PUT to the link; each status poll moves the import one
  step (PENDING until a file arrives, IN_PROGRESS, COMPLETED on poll K). A record whose recordId
  was applied before is skipped (a file sent twice is applied once); one older than the
  record's current effectiveDate is skipped; one naming an unknown location, without a whole
  onHand >= 0, without recordId/sku/effectiveDate, or refused by config `record_errors` is a
  validation error naming its line, recordId and SKU.
- OCI exports: POST names locations; the status is COMPLETED on poll K with a download link;
  the file is NDJSON in the import's layout, with `ato` beside `onHand`.
- Throttle: `rate_limit_per_minute` API calls in a rolling minute, then 429 with Retry-After.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.common import MoneyJSONResponse, SandboxState, install_config, install_sandbox, json_body, now, over_rate_limit
from sandbox.sfcc_builders import make_order, make_product, plain, sfcc_time  # noqa: F401 - re-exported for tests and the demo

ORDERS = "/checkout/orders/v1/organizations/{org}"
PRODUCTS = "/product/products/v1/organizations/{org}"
IMPEX = "/inventory/impex/v1/organizations/{org}/availability-records"
TOKEN_PATH = "/dwsso/oauth2/access_token"
ERRORS = "https://api.commercecloud.salesforce.com/documentation/error/v1/errors"
EXPORT_STATUSES = ("exported", "not_exported", "ready", "failed")
ORDER_STATUSES = ("created", "new", "completed", "cancelled", "failed")
PAYMENT_STATUSES = ("paid", "part_paid", "not_paid")
SHIPPING_STATUSES = ("shipped", "part_shipped", "not_shipped")
CONFIRMATION_STATUSES = ("confirmed", "not_confirmed")
MAX_WINDOW = 10_000
DEFAULT_SITES = {"UK": {"currency": "GBP", "taxation": "gross"}, "EU": {"currency": "EUR", "taxation": "gross"}, "US": {"currency": "USD", "taxation": "net"}}
DEFAULT_CONFIG = {"rate_limit_per_minute": None, "retry_after": 1, "token_ttl": 1799, "import_polls_to_complete": 2,
                  "export_polls_to_complete": 1, "record_errors": {}, "order_attributes": None}
SCOPES = ("sfcc.orders", "sfcc.orders.rw", "sfcc.products", "sfcc.products.rw", "sfcc.inventory.impex-inventory", "sfcc.inventory.impex-inventory.rw")
WHOLE = re.compile(r"^[0-9]+$")


class Problem(Exception):
    """Raised in a handler: answered as the spec's ErrorResponse."""

    def __init__(self, status: int, title: str, detail: str, kind: str = "bad-request"):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind


def problem(status: int, title: str, detail: str, kind: str, headers: dict[str, str] | None = None) -> MoneyJSONResponse:
    return MoneyJSONResponse({"type": f"{ERRORS}/{kind}", "title": title, "detail": detail}, status_code=status, headers=headers)


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _epoch(value: Any) -> float:
    try:
        return _parse_time(str(value)).timestamp()
    except ValueError:
        return 0.0


class SfccData:
    def __init__(self, sites: dict[str, dict] | None = None, locations: list[str] | None = None):
        self.lock = threading.RLock()
        self._sites = copy.deepcopy(sites or DEFAULT_SITES)
        self._locations = list(locations or ["uk-warehouse", "eu-warehouse", "us-warehouse"])
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.sites: dict[str, dict] = copy.deepcopy(self._sites)
            self.orders: dict[tuple[str, str], dict] = {}  # (siteId, orderNo) -> order, as given
            self.products: dict[str, dict] = {}
            self.tokens: dict[str, dict] = {}
            self.tokens_issued = 0
            self.locations: set[str] = set(self._locations)
            self.inventory: dict[tuple[str, str], dict] = {}  # (location, sku) -> record
            self.applied: list[dict] = []  # every record applied, in order
            self.record_ids: set[str] = set()
            self.imports: dict[str, dict] = {}
            self.uploads: dict[str, str] = {}  # upload token -> import id
            self.exports: dict[str, dict] = {}
            self.config: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
            self.window: deque[float] = deque()

    def order(self, site: str, order_no: str) -> dict:
        found = self.orders.get((site, order_no))
        if found is None:
            raise Problem(404, "Order Not Found", f"No order with number '{order_no}' was found.", "order-not-found")
        return found


# -- OCI file processing --------------------------------------------------------------------------
def _lines_of(raw: bytes) -> list[str]:
    if raw[:2] == b"\x1f\x8b":  # a gzip file: OCI takes either
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig").splitlines()


def _process_file(data: SfccData, imp: dict, raw: bytes) -> None:
    """Apply one uploaded file: records counted read, processed (applied), skipped (seen before or
    stale), or in error (a validation error naming line, recordId and SKU)."""
    forced = data.config.get("record_errors") or {}
    location, known = None, False
    try:
        lines = _lines_of(raw)
    except (OSError, UnicodeDecodeError):
        imp["validationErrors"].append("The file is neither UTF-8 NDJSON nor gzip")
        imp["failed"] = True
        return
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text, parse_float=Decimal)
        except ValueError:
            imp["recordsReadCount"] += 1
            imp["validationErrors"].append(f"Line {number}: not a JSON object")
            continue
        if not isinstance(entry, dict):
            imp["recordsReadCount"] += 1
            imp["validationErrors"].append(f"Line {number}: not a JSON object")
            continue
        if "location" in entry:
            location, known = str(entry["location"]), entry["location"] in data.locations
            if entry.get("mode", "UPDATE") != "UPDATE":
                imp["validationErrors"].append(f"Line {number}: location {location}: mode must be UPDATE")
                known = False
            continue
        imp["recordsReadCount"] += 1
        record_id, sku, on_hand = entry.get("recordId"), entry.get("sku"), entry.get("onHand")
        where = f"Line {number}: recordId {record_id} (sku {sku})"
        message = None
        if location is None:
            message = "no location line before this record"
        elif not known:
            message = f"location {location} does not exist"
        elif not record_id or not sku:
            message = "recordId and sku are required"
        elif not entry.get("effectiveDate"):
            message = "effectiveDate is required"
        elif isinstance(on_hand, bool) or not WHOLE.match(str(on_hand)):
            message = f"onHand must be a whole number >= 0, got {on_hand!r}"
        elif sku in forced:
            message = str(forced[sku])
        if message:
            imp["validationErrors"].append(f"{where}: {message}")
            continue
        current = data.inventory.get((location, sku))
        if record_id in data.record_ids or (current and _epoch(current["effectiveDate"]) > _epoch(entry["effectiveDate"])):
            imp["recordsSkippedCount"] += 1  # applied before, or older than what is there
            continue
        record = {"recordId": record_id, "sku": sku, "onHand": int(on_hand), "effectiveDate": entry["effectiveDate"],
                  "safetyStockCount": entry.get("safetyStockCount", 0), "futures": entry.get("futures") or [],
                  "reserved": (current or {}).get("reserved", 0)}
        data.inventory[(location, sku)] = record
        data.record_ids.add(record_id)
        data.applied.append({"importId": imp["importId"], "location": location, **{k: record[k] for k in ("recordId", "sku", "onHand", "effectiveDate")}})
        imp["recordsProcessedCount"] += 1


def _finish_import(data: SfccData, imp: dict) -> None:
    for raw in imp.pop("pending_files"):
        _process_file(data, imp, raw)
    imp["pending_files"] = []
    imp["status"] = "FAILED" if imp.get("failed") else "COMPLETED"


def _finish_export(data: SfccData, exp: dict) -> None:
    """The export file as it stands now: each location's line, then its records."""
    lines = []
    for location in exp["locations"]:
        lines.append(json.dumps({"location": location}))
        lines += [_record_line(r) for (loc, _), r in sorted(data.inventory.items()) if loc == location]
    exp["content"] = "\n".join(lines) + "\n"
    exp["status"] = "COMPLETED"


def _job(jobs: dict[str, dict], job_id: str, what: str) -> dict:
    job = jobs.get(job_id)
    if job is None:
        raise Problem(404, "Not Found", f"No {what} '{job_id}'.", "not-found")
    return job


def _poll(job: dict, needed: Any, finish) -> None:
    """One status poll of a running job: IN_PROGRESS until poll `needed`, which finishes it."""
    job["polls"] += 1
    if job["polls"] >= int(needed or 0):
        finish()
    else:
        job["status"] = "IN_PROGRESS"


def _import_status(imp: dict) -> dict:
    body = {k: imp[k] for k in ("importId", "status", "recordsReadCount", "recordsProcessedCount", "recordsSkippedCount")}
    body["validationErrors"] = list(imp["validationErrors"])
    body["validationStatus"] = "INVALID" if imp["validationErrors"] else "VALID"
    return body


def _record_line(record: dict) -> str:
    ato = max(0, int(record["onHand"]) - int(record.get("reserved") or 0) - int(record.get("safetyStockCount") or 0))
    return json.dumps({**record, "ato": ato}, default=str, separators=(",", ":"))


# -- the app ----------------------------------------------------------------------------------------
def create_app(
    client_id: str = "demo-sfcc-client",
    client_secret: str = "demo-sfcc-secret",
    tenant: str = "zzxy_prd",
    oci_tenant_group: str | None = None,
    sites: dict[str, dict] | None = None,
    locations: list[str] | None = None,
) -> FastAPI:
    app = FastAPI(title="Salesforce B2C Commerce sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    org = f"f_ecom_{tenant}"
    oci_org = oci_tenant_group or org
    data = SfccData(sites, locations)
    state = SandboxState()
    app.state.data = data
    app.state.organization_id = org
    app.state.oci_organization_id = oci_org
    families = (("/checkout/orders/", org, "sfcc.orders"), ("/product/products/", org, "sfcc.products"), ("/inventory/impex/", oci_org, "sfcc.inventory.impex-inventory"))

    @app.middleware("http")
    async def auth_and_limits(request: Request, call_next):
        path = request.url.path
        family = next((f for f in families if path.startswith(f[0])), None)
        if family is None:
            return await call_next(request)
        prefix, expected_org, scope = family
        header = request.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else None
        with data.lock:
            grant = data.tokens.get(token or "")
            if grant is None or grant["expires"] <= time.time():
                return problem(401, "Unauthorized", "The access token is missing, invalid or expired.", "unauthorized")
            parts = path[len(prefix):].split("/")
            asked_org = parts[2] if len(parts) > 2 and parts[1] == "organizations" else None
            if asked_org != expected_org:
                return problem(403, "Forbidden", f"The access token is not valid for organization '{asked_org}'.", "forbidden")
            write = request.method not in ("GET", "HEAD") and not path.endswith("/product-search")
            if f"{scope}.rw" not in grant["scopes"] and (write or scope not in grant["scopes"]):
                return problem(403, "Forbidden", f"The access token lacks the scope {scope}{'.rw' if write else ''}.", "forbidden")
            if over_rate_limit(data):
                retry = str(data.config.get("retry_after", 1))
                return problem(429, "Too Many Requests", "The rate limit of this API family is reached.", "too-many-requests", {"Retry-After": retry})
        return await call_next(request)

    install_sandbox(app, state, data.reset, fault_body=lambda status: {"type": f"{ERRORS}/sandbox-fault", "title": "Sandbox fault", "detail": f"HTTP {status}"})

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem):
        return problem(exc.status, exc.title, exc.detail, exc.kind)

    async def body_of(request: Request) -> Any:
        try:
            return await json_body(request)
        except ValueError:
            raise Problem(400, "Bad Request", "The request body is not valid JSON.") from None

    # -- Account Manager --------------------------------------------------------------------------
    @app.post(TOKEN_PATH)
    async def access_token(request: Request):
        header = request.headers.get("Authorization") or ""
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":") if header.startswith("Basic ") else ("", "", "")
        except ValueError:
            user, password = "", ""
        if (user, password) != (client_id, client_secret):
            return MoneyJSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != "client_credentials":
            return MoneyJSONResponse({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}, status_code=400)
        asked = (form.get("scope") or "").split()
        if f"SALESFORCE_COMMERCE_API:{tenant}" not in asked:
            return MoneyJSONResponse({"error": "invalid_scope", "error_description": f"scope must name SALESFORCE_COMMERCE_API:{tenant}"}, status_code=400)
        granted = [s for s in asked if s in SCOPES]
        token = secrets.token_urlsafe(32)
        with data.lock:
            ttl = int(data.config["token_ttl"] if data.config.get("token_ttl") is not None else 1799)
            data.tokens[token] = {"expires": time.time() + ttl, "scopes": set(granted)}
            data.tokens_issued += 1
        return MoneyJSONResponse({"access_token": token, "scope": " ".join([f"SALESFORCE_COMMERCE_API:{tenant}", *granted]), "token_type": "Bearer", "expires_in": ttl})

    # -- Orders -----------------------------------------------------------------------------------
    def site_of(request: Request) -> str:
        site = request.query_params.get("siteId")
        if not site:
            raise Problem(400, "Bad Request", "The query parameter 'siteId' is required.")
        if site not in data.sites:
            raise Problem(404, "Site Not Found", f"No site with ID '{site}' was found.", "site-not-found")
        return site

    def values(request: Request, name: str, allowed: tuple[str, ...], most: int) -> set[str]:
        raw = request.query_params.get(name)
        if raw is None:
            return set()
        got = [v.strip() for v in raw.split(",") if v.strip()]
        bad = [v for v in got if v not in allowed]
        if bad or len(got) > most or not got:
            raise Problem(400, "Bad Request", f"Parameter '{name}' takes at most {most} of {', '.join(allowed)}; got '{raw}'.")
        return set(got)

    def integer(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Problem(400, "Bad Request", f"Parameter '{name}' must be an integer, got '{raw}'.") from None
        if value < low or (high is not None and value > high):
            raise Problem(400, "Bad Request", f"Parameter '{name}' must be between {low} and {high if high is not None else 'any'}.")
        return value

    def date(request: Request, name: str) -> float | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return _parse_time(raw).timestamp()
        except ValueError:
            raise Problem(400, "Bad Request", f"Parameter '{name}' must be a date-time, got '{raw}'.") from None

    def touch(order: dict) -> None:
        order["lastModified"] = sfcc_time(now())

    @app.get(ORDERS.format(org=org) + "/orders")
    def get_orders(request: Request):
        site = site_of(request)
        limit = integer(request, "limit", 100, 1, 200)
        offset = integer(request, "offset", 0, 0)
        if offset + limit > MAX_WINDOW:
            raise Problem(400, "Bad Request", f"The sum of offset and limit must not exceed {MAX_WINDOW}.")
        export = values(request, "exportStatus", EXPORT_STATUSES, 3)
        status = values(request, "status", ORDER_STATUSES, 2)
        confirmation = values(request, "confirmationStatus", CONFIRMATION_STATUSES, 1)
        payment = values(request, "paymentStatus", PAYMENT_STATUSES, 3)
        shipping = values(request, "shippingStatus", SHIPPING_STATUSES, 3)
        external = request.query_params.get("externalStatus")
        bounds = {k: date(request, k) for k in ("creationDateFrom", "creationDateTo", "lastModifiedDateFrom", "lastModifiedDateTo")}
        sort_by = request.query_params.get("sortBy", "creation_date")
        order_by = request.query_params.get("sortOrder", "desc")
        if sort_by not in ("creation_date", "last_modified_date") or order_by not in ("asc", "desc"):
            raise Problem(400, "Bad Request", "sortBy must be creation_date or last_modified_date; sortOrder asc or desc.")
        field = "creationDate" if sort_by == "creation_date" else "lastModified"

        def within(value: Any, low: float | None, high: float | None) -> bool:
            at = _epoch(value)
            return (low is None or at >= low) and (high is None or at < high)

        with data.lock:
            picked = [
                o for (s, _), o in data.orders.items()
                if s == site
                and (not export or o.get("exportStatus") in export)
                and (not status or o.get("status") in status)
                and (not confirmation or o.get("confirmationStatus") in confirmation)
                and (not payment or o.get("paymentStatus") in payment)
                and (not shipping or o.get("shippingStatus") in shipping)
                and (external is None or o.get("externalOrderStatus") == external)
                and within(o.get("creationDate"), bounds["creationDateFrom"], bounds["creationDateTo"])
                and within(o.get("lastModified"), bounds["lastModifiedDateFrom"], bounds["lastModifiedDateTo"])
            ]
            picked.sort(key=lambda o: (_epoch(o.get(field)), str(o.get("orderNo"))), reverse=order_by == "desc")
            return MoneyJSONResponse({"data": copy.deepcopy(picked[offset : offset + limit])})

    @app.get(ORDERS.format(org=org) + "/orders/{order_no}")
    def get_order(order_no: str, request: Request):
        site = site_of(request)
        with data.lock:
            return MoneyJSONResponse(copy.deepcopy(data.order(site, order_no)))

    @app.patch(ORDERS.format(org=org) + "/orders/{order_no}")
    async def update_order(order_no: str, request: Request):
        site = site_of(request)
        body = await body_of(request)
        if not isinstance(body, dict):
            raise Problem(400, "Bad Request", "The body must be an object of custom attributes.")
        bad = sorted(k for k in body if not k.startswith("c_"))
        if bad:
            raise Problem(400, "Bad Request", f"Only custom attributes (c_*) can be updated; got {', '.join(bad)}.")
        defined = data.config.get("order_attributes")  # None: any c_ attribute is defined
        undefined = sorted(k for k in body if defined is not None and k not in defined)
        if undefined:
            raise Problem(400, "Bad Request", f"No custom attribute definition on Order for {', '.join(undefined)}.")
        with data.lock:
            order = data.order(site, order_no)
            for key, value in body.items():
                if value is None:
                    order.pop(key, None)
                else:
                    order[key] = value
            touch(order)
        return Response(status_code=204)

    def status_update(name: str, allowed: tuple[str, ...]):
        async def handler(order_no: str, request: Request):
            site = site_of(request)
            body = await body_of(request)
            value = body.get("status") if isinstance(body, dict) else None
            if value not in allowed or set(body) != {"status"}:
                raise Problem(400, "Bad Request", f"The body must be {{\"status\": one of {', '.join(allowed)}}}.")
            with data.lock:
                order = data.order(site, order_no)
                order[name] = value
                touch(order)
            return Response(status_code=204)

        return handler

    app.put(ORDERS.format(org=org) + "/orders/{order_no}/export-status")(status_update("exportStatus", EXPORT_STATUSES))
    app.put(ORDERS.format(org=org) + "/orders/{order_no}/shipping-status")(status_update("shippingStatus", SHIPPING_STATUSES))

    # -- Products ---------------------------------------------------------------------------------
    def matches(product: dict, query: Any, site: str | None) -> bool:
        if not isinstance(query, dict) or len(query) != 1:
            raise Problem(400, "Bad Request", "A query holds exactly one of matchAllQuery, termQuery, boolQuery.")
        (kind, spec), = query.items()
        if kind == "matchAllQuery":
            return True
        if kind == "boolQuery":
            must = (spec or {}).get("must") or []
            return all(matches(product, q, site) for q in must)
        if kind == "termQuery":
            fields, operator, wanted = spec.get("fields") or [], spec.get("operator"), spec.get("values") or []
            if operator not in ("is", "one_of") or not fields or (operator == "is" and len(wanted) != 1):
                raise Problem(400, "Bad Request", "termQuery takes fields, operator is (one value) or one_of, and values.")
            for f in fields:
                if f == "online":
                    if site is None:
                        raise Problem(400, "Bad Request", "Searching by 'online' needs the siteId parameter.")
                    value: Any = bool(product["online"].get(site))
                elif f == "id":
                    value = product["id"]
                else:
                    raise Problem(400, "Bad Request", f"The field '{f}' cannot be searched in this sandbox.")
                if value in wanted:
                    return True
            return False
        raise Problem(400, "Bad Request", f"The query type '{kind}' is not supported.")

    def product_hit(product: dict, site: str | None) -> dict:
        kind = product.get("type", "variant")
        hit = {"id": product["id"], "name": {"default": product.get("name") or product["id"]},
               "onlineFlag": {s: bool(v) for s, v in product["online"].items()},
               "type": {"master": kind == "master", "variant": kind == "variant", "item": kind == "item", "set": kind == "set", "bundle": kind == "bundle"}}
        if site is not None:
            hit["online"] = bool(product["online"].get(site))
        return hit

    @app.post(PRODUCTS.format(org=org) + "/product-search")
    async def product_search(request: Request):
        site = request.query_params.get("siteId")
        if site is not None and site not in data.sites:
            raise Problem(404, "Site Not Found", f"No site with ID '{site}' was found.", "site-not-found")
        body = await body_of(request)
        if not isinstance(body, dict) or "query" not in body:
            raise Problem(400, "Bad Request", "The body must be a search request with a query.")
        unknown = set(body) - {"query", "limit", "offset", "sorts", "expand"}
        if unknown:
            raise Problem(400, "Bad Request", f"Unknown properties: {', '.join(sorted(unknown))}.")
        limit, offset = body.get("limit", 25), body.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= 200 or not isinstance(offset, int) or offset < 0:
            raise Problem(400, "Bad Request", "limit must be 1..200 and offset >= 0.")
        with data.lock:
            hits = sorted((p for p in data.products.values() if matches(p, body["query"], site)), key=lambda p: p["id"])
            sorts = body.get("sorts") or []
            if sorts and sorts[0].get("sortOrder") == "desc":
                hits.reverse()
            page = [product_hit(p, site) for p in hits[offset : offset + limit]]
        return MoneyJSONResponse({"limit": limit, "offset": offset, "total": len(hits), "hits": page, "query": body["query"]})

    # -- OCI imports and exports ------------------------------------------------------------------
    impex = IMPEX.format(org=oci_org)

    @app.post(impex + "/imports")
    def create_import():
        import_id = str(uuid.uuid4())
        upload = secrets.token_urlsafe(16)
        with data.lock:
            data.imports[import_id] = {"importId": import_id, "status": "PENDING", "created": sfcc_time(now()), "files": [], "pending_files": [],
                                       "polls": 0, "recordsReadCount": 0, "recordsProcessedCount": 0, "recordsSkippedCount": 0, "validationErrors": []}
            data.uploads[upload] = import_id
        return MoneyJSONResponse({"importId": import_id, "uploadMethod": "PUT", "uploadLink": f"{impex}/imports/uploads/{upload}",
                                  "importStatusLink": f"{impex}/imports/{import_id}/status"}, status_code=202)

    @app.put(impex + "/imports/uploads/{upload}")
    async def upload_file(upload: str, request: Request):
        raw = await request.body()
        with data.lock:
            import_id = data.uploads.get(upload)
            if import_id is None:
                raise Problem(404, "Not Found", f"No upload '{upload}'.", "not-found")
            imp = data.imports[import_id]
            imp["files"].append(raw.decode("utf-8", errors="replace") if raw[:2] != b"\x1f\x8b" else "(gzip)")
            imp["pending_files"].append(raw)
            if imp["status"] in ("COMPLETED", "FAILED") or not data.config.get("import_polls_to_complete"):
                _finish_import(data, imp)  # a file after the end (a re-sent upload) is applied at once
        return Response(status_code=202)

    @app.get(impex + "/imports/{import_id}/status")
    def import_status(import_id: str):
        with data.lock:
            imp = _job(data.imports, import_id, "import")
            if imp["status"] not in ("COMPLETED", "FAILED") and imp["files"]:
                _poll(imp, data.config.get("import_polls_to_complete"), lambda: _finish_import(data, imp))
            return MoneyJSONResponse(_import_status(imp))

    @app.post(impex + "/exports")
    async def create_export(request: Request):
        body = await body_of(request)
        wanted = ((body or {}).get("objects") or {}).get("locations") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not wanted:
            raise Problem(400, "Bad Request", "The body must be {\"objects\": {\"locations\": [...]}}.")
        unknown = [w for w in wanted if w not in data.locations]
        if unknown:
            raise Problem(400, "Bad Request", f"Unknown location(s): {', '.join(map(str, unknown))}.")
        export_id = str(uuid.uuid4())
        with data.lock:
            data.exports[export_id] = {"exportId": export_id, "locations": list(wanted), "status": "PENDING", "polls": 0, "content": None}
        return MoneyJSONResponse({"exportId": export_id, "exportStatusLink": f"{impex}/exports/{export_id}/status"}, status_code=202)

    @app.get(impex + "/exports/{export_id}/status")
    def export_status(export_id: str):
        with data.lock:
            exp = _job(data.exports, export_id, "export")
            if exp["status"] != "COMPLETED":
                _poll(exp, data.config.get("export_polls_to_complete"), lambda: _finish_export(data, exp))
            body: dict[str, Any] = {"exportId": export_id, "status": exp["status"]}
            if exp["status"] == "COMPLETED":
                body["download"] = {"downloadLink": f"{impex}/exports/{export_id}/file-content"}
            return MoneyJSONResponse(body)

    @app.get(impex + "/exports/{export_id}/file-content")
    def export_file(export_id: str):
        with data.lock:
            exp = _job(data.exports, export_id, "export")
            if exp["content"] is None:
                raise Problem(404, "Not Found", f"Export '{export_id}' has not finished.", "not-found")
            return Response(exp["content"].encode(), media_type="application/x-ndjson")

    # -- sandbox control (no auth) ----------------------------------------------------------------
    install_config(app, data)

    @app.post("/_sandbox/sites")
    async def set_sites(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            data.sites = dict(body)
        return {"sites": sorted(body)}

    @app.post("/_sandbox/orders")
    async def add_orders(request: Request):
        body = await json_body(request) or []
        orders = body.get("orders", []) if isinstance(body, dict) else body
        with data.lock:
            for order in orders:
                data.orders[(str(order.get("siteId")), str(order.get("orderNo")))] = order
        return {"stored": len(orders)}

    @app.get("/_sandbox/orders/{site}/{order_no}")
    def stored_order(site: str, order_no: str):
        with data.lock:
            return MoneyJSONResponse(copy.deepcopy(data.order(site, order_no)))

    @app.post("/_sandbox/products")
    async def add_products(request: Request):
        body = await json_body(request) or []
        with data.lock:
            for product in body:
                data.products[product["id"]] = make_product(product["id"], product.get("online") or {}, name=product.get("name"), kind=product.get("type", "variant"))
        return {"stored": len(body)}

    @app.post("/_sandbox/oci/locations")
    async def add_locations(request: Request):
        body = await json_body(request) or []
        with data.lock:
            data.locations.update(body)
        return {"locations": sorted(data.locations)}

    @app.post("/_sandbox/oci/inventory")
    async def seed_inventory(request: Request):
        """Records as they stand before a test: [{"location", "sku", "onHand", "reserved"?}]."""
        body = await json_body(request) or []
        with data.lock:
            for r in body:
                data.inventory[(r["location"], r["sku"])] = {"recordId": r.get("recordId", str(uuid.uuid4())), "sku": r["sku"], "onHand": int(r["onHand"]),
                                                             "effectiveDate": r.get("effectiveDate", "2020-01-01T00:00:00.000Z"),
                                                             "safetyStockCount": r.get("safetyStockCount", 0), "futures": [], "reserved": int(r.get("reserved", 0))}
        return {"stored": len(body)}

    @app.get("/_sandbox/oci/inventory")
    def inventory():
        with data.lock:
            return MoneyJSONResponse({"records": [{"location": loc, **copy.deepcopy(r)} for (loc, _), r in sorted(data.inventory.items())]})

    @app.get("/_sandbox/oci/imports")
    def imports():
        with data.lock:
            return MoneyJSONResponse({"imports": [{k: v for k, v in imp.items() if k != "pending_files"} for imp in data.imports.values()]})

    @app.get("/_sandbox/oci/applied")
    def applied():
        with data.lock:
            return MoneyJSONResponse({"applied": copy.deepcopy(data.applied)})

    @app.post("/_sandbox/expire_tokens")
    def expire_tokens():
        """Every token issued so far stops working (a revocation, or a clock ahead of ours)."""
        with data.lock:
            for grant in data.tokens.values():
                grant["expires"] = 0
            return {"expired": len(data.tokens), "issued": data.tokens_issued}

    @app.get("/_sandbox/tokens")
    def tokens():
        with data.lock:
            return {"issued": data.tokens_issued, "live": sum(1 for g in data.tokens.values() if g["expires"] > time.time())}

    return app
