"""Mirakl MMP seller API emulator, as John Lewis Marketplace runs it (paths, fields and rules
from the seller OpenAPI file, specs/mirakl-mmp-seller.openapi.json; API-FACTS 2).

Operations: V01, OR11, OR21, OR23, OR24, ST01, ST11, SH21, OF21, STO01, STO02, STO03, TL02,
all under /api.

Rules enforced:
- Auth: header `Authorization: <shop API key>` (raw, no Bearer), else 401. A `shop_id` query
  parameter other than the emulator's shop -> 403 (the key reaches one shop).
- Errors: Mirakl's body `{"status": <code>, "message": "..."}`: 400 bad parameters or state,
  404 unknown id. OR21 messages start with the spec's error code (ORDER_INVALID_STATE,
  ORDER_LINE_ACCEPTANCE_DECISION_MISSING, ORDER_LINE_NOT_FOUND, ORDER_LINE_DUPLICATE_ID, ...).
- Offset paging (OR11, OF21): `max` (default 10, 1..100), `offset`, `paginate=false` for all;
  `total_count` in the answer. Seek paging (ST11, TL02): `limit` (default 10; at most 100 for
  ST11, 2000 for TL02), `page_token`; `next_page_token` / `previous_page_token` are absent on
  the last / first page; a token carries its query, so other parameters sent with it are ignored.
- Sorting: OR11 by created_date then order_id (asc); ST11 by created date (asc); OF21 by total
  price then offer id; TL02 by date_created, newest first (`sort=lastUpdated`, `order=asc`
  also accepted), as the spec's sort sections say.
- Order life: OR21 only on a WAITING_ACCEPTANCE order and lines, a decision for every waiting
  line; accepted lines -> WAITING_DEBIT_PAYMENT (or SHIPPING at once with config auto_debit),
  refused -> REFUSED; the order REFUSED if every line is; with config partial_acceptance false,
  a mix of accepted and refused lines -> 400 ORDER_PARTIAL_ACCEPTANCE_DISABLED (API-FACTS 8.3
  asks whether John Lewis allows it). The customer's debit is a sandbox call
  (WAITING_DEBIT_PAYMENT -> SHIPPING). OR23/OR24/ST01 only on a SHIPPING order; carrier codes
  must be SH21's. ST01 answers 201 with shipment_success / shipment_errors per shipment (partial
  success); a line may not be shipped beyond its quantity (every shipment counts, shipped or
  not); the order and its lines become SHIPPED when shipped shipments cover every line. ST01
  has no idempotency key: the same call twice makes two shipments (check ST11 first).
- Stock import (STO01): multipart part `file`, CSV `;`-separated with a header naming
  `offer-sku` and `quantity` (`warehouse-code`, `update-delete` optional; any order; quoted or
  not). A line is in error when its offer-sku is not an offer of the shop, its quantity is not a
  whole number >= 0, or update-delete is not empty/update/delete, or config
  `stock_import_errors` ({offer-sku: message}) names it. Nothing changes until the
  import is COMPLETE. STO02 moves the import one step per call: WAITING on the first poll,
  RUNNING after, COMPLETE on poll K (config import_polls_to_complete, default 2; 0 = complete at
  upload). A file without those header columns ends FAILED.
- Throttling: `POST /_sandbox/config` {"rate_limit_per_minute": N, "retry_after": S} -> 429 with
  `Retry-After: S` past N API calls in a rolling minute; with "enforce_call_frequency", a second
  STO01 within 60 s -> 429 with Retry-After = the seconds left (STO01's "maximum usage: once per
  minute"). Rejected calls do not count.

Assumed (not in the spec, or not knowable from it):
- 429 and its Retry-After header are not declared in the seller spec (API-FACTS 2.1: seen on
  other Mirakl APIs). The spec declares no error bodies at all; the `{"status", "message"}`
  shape is Mirakl's documented error format.
- STO03's report: the spec says "the first column contains the line number in error, the
  second the error reason"; we name them `error-line` and `error-message`, followed by the
  line's original columns under the file's own header. Line numbers count the header as line 1.
- A stock line with a warehouse-code sets that warehouse's quantity and the offer's quantity
  becomes the sum of its warehouses; without one it sets the offer's (global) quantity.
- Date filters: a `start`/`from` bound is inclusive, an `end`/`to` bound exclusive; no safety
  delta is subtracted from start_update_date (Mirakl says it subtracts one: clients must
  tolerate seeing an order again anyway).
- TL02's item schema has no `transaction_date`; builders still carry one (the filters
  transaction_date_from/to name it, and older TL versions returned it), and the filters fall
  back to date_created when a line has none.
- Page sizes: the spec's shared pagination section is not inlined in the file. Seek `limit`
  default 10, at most 100 (ST11), follows Mirakl's PHP SDK (SeekableTrait); TL02's 2000 is in
  its own description; OR11/OF21 `max` at most 100 is API-FACTS' "commonly 100" (unverified).
- The 403 for a foreign `shop_id` (the spec only says the default shop is used without one).
- A refused line keeps its amounts; the order's totals are not recomputed.
- OR21's order line is `{id, accepted}` and nothing more (the spec's OR21_Request_OrderLines): a
  refusal has no reason code, and a decision carrying any other field is refused with
  VALIDATION_ERROR (the spec does not say whether Mirakl ignores unknown fields; refusing them
  keeps a client from relying on one).
- `/_sandbox/reset` also puts the config and the carrier list back to their defaults.
"""

from __future__ import annotations

import base64
import binascii
import copy
import csv
import io
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.common import MoneyJSONResponse, SandboxState, WebhookPush, install_config, install_sandbox, install_webhooks, json_body, now, over_rate_limit
from sandbox.faults import REFUSAL
from sandbox.mirakl_builders import (  # noqa: F401 - re-exported: tests and the demo build data from here
    DEFAULT_CARRIERS,
    ORDER_STATES,
    default_carriers,
    make_offer,
    make_order,
    make_transaction,
    mirakl_time,
    money,
    offer_id_for,
    parse_time,
)

API = "/api"
DEFAULT_CONFIG = {"rate_limit_per_minute": None, "retry_after": 1, "enforce_call_frequency": False, "auto_debit": False, "import_polls_to_complete": 2}
MAX_OFFSET_PAGE = 100
SEEK_LIMITS = {"ST11": 100, "TL02": 2000}
STO01_EVERY_SECONDS = 60
SHIPMENT_STATES = ("SHIPPING", "READY_FOR_PICK_UP", "SHIPMENT_PREPARED", "SHIPPED", "TO_COLLECT", "RECEIVED", "CANCELED", "CLOSED")
PAYMENT_STATES = ("PENDING", "PAYABLE", "PAID", "NOT_APPLICABLE", "RESERVE")
TRANSACTION_TYPES = (
    "MANUAL_CREDIT", "MANUAL_CREDIT_VAT", "MANUAL_INVOICE", "MANUAL_INVOICE_VAT", "INVOICEABLE_ONE_OFF_DEBIT",
    "INVOICEABLE_ONE_OFF_DEBIT_TAX", "INVOICEABLE_ONE_OFF_CREDIT", "INVOICEABLE_ONE_OFF_CREDIT_TAX", "ORDER_AMOUNT",
    "ORDER_AMOUNT_TAX", "ORDER_SHIPPING_AMOUNT", "ORDER_SHIPPING_AMOUNT_TAX", "COMMISSION_FEE", "COMMISSION_VAT",
    "REFUND_ORDER_AMOUNT", "REFUND_ORDER_AMOUNT_TAX", "REFUND_ORDER_SHIPPING_AMOUNT", "REFUND_ORDER_SHIPPING_AMOUNT_TAX",
    "REFUND_COMMISSION_FEE", "REFUND_COMMISSION_VAT", "SUBSCRIPTION_FEE", "SUBSCRIPTION_VAT",
    "OPERATOR_REMITTED_ORDER_AMOUNT_TAX", "OPERATOR_REMITTED_ORDER_SHIPPING_AMOUNT_TAX",
    "OPERATOR_REMITTED_REFUND_ORDER_AMOUNT_TAX", "OPERATOR_REMITTED_REFUND_ORDER_SHIPPING_AMOUNT_TAX",
    "OPERATOR_PAID_ORDER_SHIPPING_AMOUNT", "OPERATOR_PAID_ORDER_SHIPPING_AMOUNT_TAX",
    "OPERATOR_PAID_REFUND_ORDER_SHIPPING_AMOUNT", "OPERATOR_PAID_REFUND_ORDER_SHIPPING_AMOUNT_TAX", "PAYMENT",
    "PURCHASE_COMMISSION_FEE", "PURCHASE_SHIPPING_COMMISSION_FEE", "PURCHASE_ORDER_AMOUNT_TAX",
    "PURCHASE_ORDER_SHIPPING_AMOUNT_TAX", "REFUND_PURCHASE_COMMISSION_FEE", "REFUND_PURCHASE_SHIPPING_COMMISSION_FEE",
    "REFUND_PURCHASE_ORDER_AMOUNT_TAX", "REFUND_PURCHASE_ORDER_SHIPPING_AMOUNT_TAX", "ORDER_FEE_AMOUNT",
    "OPERATOR_REMITTED_ORDER_FEE_AMOUNT", "REFUND_ORDER_FEE_AMOUNT", "OPERATOR_REMITTED_REFUND_ORDER_FEE_AMOUNT",
    "PURCHASE_FEE_COMMISSION_FEE", "REFUND_PURCHASE_FEE_COMMISSION_FEE", "RESERVE_FUNDING", "RESERVE_SETTLEMENT",
    "SELLER_FEE_ON_ORDER", "SELLER_FEE_ON_ORDER_TAX", "SELLER_PENALTY_FEE", "SELLER_PENALTY_FEE_TAX",
)
STOCK_COLUMNS = ("offer-sku", "quantity", "warehouse-code", "update-delete")
WHOLE_NUMBER = re.compile(r"^[0-9]+$")
WAITING_DEBIT_STATES = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}


class BadRequest(Exception):
    """Raised inside a handler: answered as Mirakl's error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> MoneyJSONResponse:
    return MoneyJSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


# -- query helpers ------------------------------------------------------------------------------
Query = list[tuple[str, str]]  # the request's query as pairs: seek tokens carry it


def _values(query: Query, name: str) -> list[str]:
    """Every value of a parameter, repeated (a=1&a=2) or comma-separated (a=1,2)."""
    return [part.strip() for key, value in query if key == name for part in value.split(",") if part.strip()]


def _single(query: Query, name: str) -> str | None:
    found = [value for key, value in query if key == name]
    return found[-1] if found else None


def _int(query: Query, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = _single(query, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(400, f"Parameter '{name}' must be an integer, got '{raw}'") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(400, f"Parameter '{name}' must be between {low} and {high}" if high is not None else f"Parameter '{name}' must be >= {low}")
    return value


def _bool(query: Query, name: str) -> bool | None:
    raw = _single(query, name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise BadRequest(400, f"Parameter '{name}' must be true or false, got '{raw}'")
    return raw.lower() == "true"


def _date(query: Query, name: str):
    raw = _single(query, name)
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise BadRequest(400, f"Parameter '{name}' must be an ISO-8601 date-time, got '{raw}'") from None


def _enum(query: Query, name: str, allowed) -> set[str]:
    values = set(_values(query, name))
    unknown = sorted(values - set(allowed))
    if unknown:
        raise BadRequest(400, f"Parameter '{name}' has unknown value(s): {', '.join(unknown)}")
    return values


def _epoch(value: Any) -> float | None:
    try:
        return parse_time(value).timestamp()
    except (ValueError, TypeError):
        return None


def _in_window(value: Any, start, end) -> bool:
    """start inclusive, end exclusive; a record without a readable date is outside any window."""
    if start is None and end is None:
        return True
    at = _epoch(value)
    if at is None:
        return False
    return (start is None or at >= start.timestamp()) and (end is None or at < end.timestamp())


def _offset_page(items: list, query: Query) -> tuple[list, int]:
    total = len(items)
    if _bool(query, "paginate") is False:
        return items, total
    size = _int(query, "max", 10, 1, MAX_OFFSET_PAGE)
    offset = _int(query, "offset", 0, 0)
    return items[offset : offset + size], total


def _encode_token(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str, op: str) -> dict:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(400, "Invalid page_token") from None
    if not isinstance(payload, dict) or payload.get("op") != op:
        raise BadRequest(400, "Invalid page_token")
    return payload


def _seek(op: str, items: list, key: Callable[[Any], tuple], query: Query, descending: bool, cursor: dict | None, limit: int) -> dict:
    """Keyset paging: the token remembers the last (or first) key seen, so items added while a
    client pages never shift what it gets next."""
    ordered = sorted(items, key=key, reverse=descending)
    keys = [list(key(item)) for item in ordered]

    def after(k, c):
        return k < c if descending else k > c

    if cursor and "after" in cursor:
        start = next((i for i, k in enumerate(keys) if after(k, cursor["after"])), len(keys))
        stop = start + limit
    elif cursor and "before" in cursor:
        stop = next((i for i, k in enumerate(keys) if not after(cursor["before"], k)), len(keys))
        start = max(0, stop - limit)
    else:
        start, stop = 0, limit
    page = ordered[start:stop]
    body: dict[str, Any] = {"data": page}
    base = {"op": op, "query": [[k, v] for k, v in query], "limit": limit}
    if page and stop < len(ordered):
        body["next_page_token"] = _encode_token({**base, "after": keys[stop - 1]})
    if page and start > 0:
        body["previous_page_token"] = _encode_token({**base, "before": keys[start]})
    return body


def _seek_request(op: str, request: Request) -> tuple[Query, dict | None, int]:
    """The query to apply: the token's own when a page_token is sent (Mirakl ignores the rest)."""
    query: Query = list(request.query_params.multi_items())
    token = _single(query, "page_token")
    if token:
        cursor = _decode_token(token, op)
        return [(k, v) for k, v in cursor["query"]], cursor, int(cursor["limit"])
    return query, None, _int(query, "limit", 10, 1, SEEK_LIMITS[op])


# -- the store ----------------------------------------------------------------------------------
class MiraklData:
    def __init__(self):
        self.lock = threading.RLock()
        self.hooks = WebhookPush()  # a new order pushes {"type": "ORDER", "order_id": ...}
        self.reset()

    def reset(self) -> None:
        self.hooks.clear()
        with self.lock:
            self.orders: dict[str, dict] = {}  # by order_id, as given (broken ones too)
            self.carriers: list[dict] = default_carriers()
            self.offers: dict[str, dict] = {}  # by shop_sku
            self.offer_orders: dict[tuple, list[dict]] = {}  # OF21's sorted lists, until offers are added
            self.shipments: list[dict] = []
            self.imports: dict[str, dict] = {}
            self.transactions: list[dict] = []
            self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
            self.window: deque[float] = deque()
            self.last_stock_import: float | None = None
            self.seq = 0

    def next_id(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def add_orders(self, orders: list) -> None:
        """Store orders as given (broken ones too, under a made-up key) and push each new one."""
        with self.lock:
            for order in orders:
                key = order.get("order_id") if isinstance(order, dict) else None
                self.orders[str(key) if key is not None else f"_no_order_id_{self.next_id()}"] = order
        for order in orders:
            if isinstance(order, dict) and order.get("order_id") is not None:
                self.hooks.push({"type": "ORDER", "order_id": str(order["order_id"])})

    def order(self, order_id: str) -> dict:
        found = self.orders.get(order_id)
        if found is None:
            raise BadRequest(404, f"ORDER_NOT_FOUND: order {order_id} does not exist")
        return found

    def carrier(self, code: str) -> dict | None:
        return next((c for c in self.carriers if c.get("code") == code), None)


def _touch(order: dict, *lines: dict) -> str:
    stamp = mirakl_time(now())
    order["last_updated_date"] = stamp
    for line in lines:
        line["last_updated_date"] = stamp
    return stamp


def _lines(order: dict) -> list[dict]:
    lines = order.get("order_lines")
    return lines if isinstance(lines, list) else []


def _tracking_url(template: str | None, number: str | None) -> str | None:
    if not template:
        return None
    return template.replace("{trackingId}", number or "")


# -- stock imports ------------------------------------------------------------------------------
class _EveryLine(dict):
    """Forced errors for every offer SKU of a stock file, all with one message."""

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def __bool__(self) -> bool:
        return True

    def __contains__(self, sku: object) -> bool:
        return True

    def __getitem__(self, sku: object) -> str:
        return self.message


def _parse_stock_file(raw: bytes, offers: dict[str, dict], forced_errors: dict[str, str] | None = None) -> dict[str, Any]:
    """Read a stock file. `lines`: every data line as sent ({column: text}); `updates`: the valid
    ones, parsed; `error_lines`: the refused ones with their reason (1-based file line numbers,
    the header being line 1). `forced_errors` ({offer-sku: message}) refuses lines the way the
    operator's own checks would (an inactive offer, say), which a file alone cannot show."""
    result: dict[str, Any] = {"header": [], "lines": [], "updates": [], "error_lines": [], "failure": None}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        result["failure"] = "The file is not UTF-8 text"
        return result
    reader = csv.reader(io.StringIO(text), delimiter=";", quotechar='"')
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    result["header"] = [h.strip() for h in header or []]
    missing = [c for c in ("offer-sku", "quantity") if c not in names]
    if missing:
        result["failure"] = f"The file header lacks the column(s): {', '.join(missing)}"
        return result
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not lines of the import
        number = reader.line_num
        result["lines"].append(dict(zip(result["header"], row + [""] * (len(names) - len(row)))))
        cells = dict(zip(names, row + [""] * (len(names) - len(row))))
        sku, qty = cells.get("offer-sku", ""), cells.get("quantity", "").strip()
        action = cells.get("update-delete", "").strip().lower()
        message = None
        if len(row) > len(names):
            message = f"The line has {len(row)} columns but the header has {len(names)}"
        elif not sku:
            message = "The offer-sku is missing"
        elif sku not in offers:
            message = f"The offer with sku '{sku}' does not exist in your shop"
        elif sku in (forced_errors or {}):
            message = str(forced_errors[sku])
        elif action not in ("", "update", "delete"):
            message = f"The update-delete value '{cells.get('update-delete')}' is not valid: use update or delete"
        elif action != "delete" and not WHOLE_NUMBER.match(qty):
            message = f"The quantity '{qty}' is not valid: it must be a whole number greater than or equal to 0"
        if message:
            result["error_lines"].append({"line": number, "message": message, "columns": row})
        else:
            result["updates"].append(
                {"line": number, "offer_sku": sku, "quantity": 0 if action == "delete" else int(qty),
                 "warehouse_code": cells.get("warehouse-code", "").strip() or None, "update_delete": action or "update"}
            )
    return result


def _apply_stock(imp: dict, offers: dict[str, dict]) -> None:
    for line in imp["updates"]:
        offer = offers.get(line["offer_sku"])
        if offer is None:
            continue  # deleted since the upload
        if line["warehouse_code"]:
            warehouses = [w for w in offer.get("warehouses") or [] if w.get("code") != line["warehouse_code"]]
            warehouses.append({"code": line["warehouse_code"], "quantity": line["quantity"]})
            offer["warehouses"] = warehouses
            offer["quantity"] = sum(int(w.get("quantity") or 0) for w in warehouses)
        else:
            offer["quantity"] = line["quantity"]
    imp["applied"] = True


def _import_status(imp: dict, shop_id: int) -> dict:
    body = {"import_id": imp["import_id"], "shop_id": shop_id, "status": imp["status"], "date_created": imp["date_created"],
            "has_error_report": imp["status"] == "COMPLETE" and bool(imp["error_lines"])}
    if imp["status"] in ("COMPLETE", "FAILED"):
        body["lines_in_success"] = len(imp["updates"]) if imp["status"] == "COMPLETE" else 0
        body["lines_in_error"] = len(imp["error_lines"])
    return body


def _finish_import(imp: dict, offers: dict[str, dict]) -> None:
    imp["status"] = "FAILED" if imp["failure"] else "COMPLETE"
    if imp["status"] == "COMPLETE":
        _apply_stock(imp, offers)


def _advance_import(imp: dict, offers: dict[str, dict]) -> None:
    """One STO02 poll: WAITING on the first, RUNNING after, COMPLETE (or FAILED) on poll K."""
    if imp["status"] in ("COMPLETE", "FAILED"):
        return
    imp["polls"] += 1
    if imp["polls"] >= imp["polls_to_complete"]:
        _finish_import(imp, offers)
    else:
        imp["status"] = "WAITING" if imp["polls"] == 1 else "RUNNING"


# -- the app ------------------------------------------------------------------------------------
def create_app(api_key: str = "demo-mirakl-key", shop_id: int = 2001) -> FastAPI:
    app = FastAPI(title="Mirakl seller API sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    data = MiraklData()
    state = SandboxState()
    app.state.data = data  # tests and the demo reach the store directly

    @app.middleware("http")
    async def auth_and_limits(request: Request, call_next):
        if not request.url.path.startswith(API + "/") and request.url.path != API:
            return await call_next(request)
        if request.headers.get("Authorization") != api_key:
            return error(401, "Unauthorized")
        asked = request.query_params.get("shop_id")
        if asked not in (None, "") and asked.strip() != str(shop_id):
            return error(403, f"Forbidden: this API key has no access to shop {asked}")
        with data.lock:
            if over_rate_limit(data):
                retry = str(data.config.get("retry_after", 1))
                return error(429, "Too Many Requests: the call rate limit of this shop is reached", {"Retry-After": retry})
        return await call_next(request)

    install_webhooks(app, data.hooks)
    install_sandbox(app, state, data.reset, fault_body=lambda status, message: {"status": status, "message": message},
                    # ST01 refuses per shipment (shipment_errors), STO01 per line (the error report)
                    in_band=lambda method, path, fields: method == "POST" and path in (f"{API}/shipments", f"{API}/offers/stock/imports"))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error(400, f"VALIDATION_ERROR: {exc.errors()}")

    async def body_of(request: Request) -> Any:
        try:
            return await json_body(request)
        except ValueError:
            raise BadRequest(400, "VALIDATION_ERROR: the body is not valid JSON") from None

    # -- platform ------------------------------------------------------------------------------
    @app.get(f"{API}/version")
    def version():
        return MoneyJSONResponse({"version": "sandbox"})

    @app.get(f"{API}/shipping/carriers")
    def carriers():
        with data.lock:
            listed = sorted(copy.deepcopy(data.carriers), key=lambda c: str(c.get("label", "")))
        return MoneyJSONResponse({"carriers": listed})

    # -- orders --------------------------------------------------------------------------------
    @app.get(f"{API}/orders")
    def list_orders(request: Request):
        q: Query = list(request.query_params.multi_items())
        ids = set(_values(q, "order_ids"))
        states = _enum(q, "order_state_codes", ORDER_STATES)
        for_customer = set(_values(q, "order_references_for_customer"))
        for_seller = set(_values(q, "order_references_for_seller"))
        created_from, created_to = _date(q, "start_date"), _date(q, "end_date")
        updated_from, updated_to = _date(q, "start_update_date"), _date(q, "end_update_date")
        debited, incident = _bool(q, "customer_debited"), _bool(q, "has_incident")
        if (_single(q, "sort") or "dateCreated") != "dateCreated":
            raise BadRequest(400, "Parameter 'sort' must be dateCreated")
        descending = (_single(q, "order") or "asc").lower() == "desc"
        with data.lock:
            orders = list(data.orders.values())
            picked = []
            for o in orders:
                refs = o.get("references") if isinstance(o.get("references"), dict) else {}
                if ids and o.get("order_id") not in ids:
                    continue
                if states and o.get("order_state") not in states:
                    continue
                if for_customer and refs.get("order_reference_for_customer") not in for_customer:
                    continue
                if for_seller and refs.get("order_reference_for_seller") not in for_seller:
                    continue
                if not _in_window(o.get("created_date"), created_from, created_to):
                    continue
                if not _in_window(o.get("last_updated_date"), updated_from, updated_to):
                    continue
                if debited is not None and bool(o.get("customer_debited_date")) != debited:
                    continue
                if incident is not None and bool(o.get("has_incident")) != incident:
                    continue
                picked.append(o)
            picked.sort(key=lambda o: (_epoch(o.get("created_date")) or 0.0, str(o.get("order_id"))), reverse=descending)
            page, total = _offset_page(picked, q)
            return MoneyJSONResponse({"orders": copy.deepcopy(page), "total_count": total})

    @app.put(API + "/orders/{order_id}/accept")
    async def accept(order_id: str, request: Request):
        body = await body_of(request)
        decisions = body.get("order_lines") if isinstance(body, dict) else None
        if not isinstance(decisions, list) or not decisions:
            raise BadRequest(400, "VALIDATION_ERROR: order_lines is required")
        for d in decisions:
            if d is None:
                raise BadRequest(400, "ORDER_LINE_NULL_ELEMENT: the order lines list contains a null element")
            if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("accepted"), bool):
                raise BadRequest(400, "VALIDATION_ERROR: each order line needs an id (string) and accepted (boolean)")
            if set(d) - {"id", "accepted"}:
                # the spec's OR21 line is an id and a decision, nothing else: a refusal carries no reason code
                raise BadRequest(400, f"VALIDATION_ERROR: unknown field(s) {', '.join(sorted(set(d) - {'id', 'accepted'}))} in an order line decision")
        with data.lock:
            order = data.order(order_id)
            if order.get("order_state") != "WAITING_ACCEPTANCE":
                raise BadRequest(400, f"ORDER_INVALID_STATE: order {order_id} is {order.get('order_state')}, not WAITING_ACCEPTANCE")
            ids = [d["id"] for d in decisions]
            if len(set(ids)) != len(ids):
                raise BadRequest(400, "ORDER_LINE_DUPLICATE_ID: the order lines list contains duplicate order line ids")
            by_id = {line.get("order_line_id"): line for line in _lines(order)}
            for line_id in ids:
                if line_id not in by_id:
                    raise BadRequest(400, f"ORDER_LINE_NOT_FOUND: order line {line_id} is not a line of order {order_id}")
                if by_id[line_id].get("order_line_state") != "WAITING_ACCEPTANCE":
                    raise BadRequest(400, f"ORDER_INVALID_STATE: order line {line_id} is {by_id[line_id].get('order_line_state')}, not WAITING_ACCEPTANCE")
            undecided = [lid for lid, line in by_id.items() if line.get("order_line_state") == "WAITING_ACCEPTANCE" and lid not in ids]
            if undecided:
                raise BadRequest(400, f"ORDER_LINE_ACCEPTANCE_DECISION_MISSING: some order lines are missing from the acceptance decision: {', '.join(map(str, undecided))}")
            verdicts = {d["id"]: d["accepted"] for d in decisions}
            if not data.config.get("partial_acceptance", True) and len(set(verdicts.values())) > 1:
                raise BadRequest(400, "ORDER_PARTIAL_ACCEPTANCE_DISABLED: partial acceptance is disabled for this shop")
            debit_now = bool(data.config.get("auto_debit"))
            accepted_state = "SHIPPING" if debit_now else "WAITING_DEBIT_PAYMENT"
            stamp = _touch(order, *(by_id[i] for i in ids))
            for line_id, ok in verdicts.items():
                line = by_id[line_id]
                line["order_line_state"] = accepted_state if ok else "REFUSED"
                if ok and debit_now:
                    line["debited_date"] = stamp
                    line["can_refund"] = True
            order["acceptance_decision_date"] = stamp
            if not any(verdicts.values()):
                order["order_state"] = "REFUSED"
            else:
                order["order_state"] = accepted_state
                if debit_now:
                    order["customer_debited_date"] = stamp
                    order["can_shop_ship"] = True
        return Response(status_code=204)

    @app.put(API + "/orders/{order_id}/tracking")
    async def tracking(order_id: str, request: Request):
        body = await body_of(request)
        if not isinstance(body, dict):
            raise BadRequest(400, "VALIDATION_ERROR: a JSON object is required")
        with data.lock:
            order = data.order(order_id)
            if order.get("order_state") != "SHIPPING":
                raise BadRequest(400, f"ORDER_INVALID_STATE: order {order_id} is {order.get('order_state')}, not SHIPPING")
            number = body.get("tracking_number")
            if body.get("carrier_code"):
                carrier = data.carrier(body["carrier_code"])
                if carrier is None:
                    raise BadRequest(400, f"Carrier '{body['carrier_code']}' is unknown: use a carrier code from SH21")
                if "{trackingId}" in (carrier.get("tracking_url") or "") and not number:
                    raise BadRequest(400, f"A tracking number is required for carrier '{carrier['code']}'")
                order["shipping_carrier_code"] = carrier["code"]
                order["shipping_company"] = carrier.get("label")
                standard = body.get("carrier_standard_code") or carrier.get("standard_code")
                url = _tracking_url(carrier.get("tracking_url"), number)
            elif body.get("carrier_name"):
                order.pop("shipping_carrier_code", None)
                order["shipping_company"] = body["carrier_name"]
                standard = body.get("carrier_standard_code")
                url = body.get("carrier_url")
            else:
                raise BadRequest(400, "carrier_code (registered carrier) or carrier_name (unregistered carrier) is required")
            for key, value in (("shipping_carrier_standard_code", standard), ("shipping_tracking", number), ("shipping_tracking_url", url)):
                if value:
                    order[key] = value
                else:
                    order.pop(key, None)
            _touch(order)
        return Response(status_code=204)

    @app.put(API + "/orders/{order_id}/ship")
    def ship(order_id: str):
        with data.lock:
            order = data.order(order_id)
            if order.get("order_state") != "SHIPPING":
                raise BadRequest(400, f"ORDER_INVALID_STATE: order {order_id} is {order.get('order_state')}, not SHIPPING")
            shipping_lines = [line for line in _lines(order) if line.get("order_line_state") == "SHIPPING"]
            stamp = _touch(order, *shipping_lines)
            for line in shipping_lines:
                line["order_line_state"] = "SHIPPED"
                line["shipped_date"] = stamp
            order["order_state"] = "SHIPPED"
            order["can_shop_ship"] = False
            order["can_cancel"] = False
        return Response(status_code=204)

    # -- shipments -----------------------------------------------------------------------------
    def shipped_so_far(order_id: str, only_shipped: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        for sh in data.shipments:
            if sh["order_id"] != order_id or (only_shipped and sh["status"] != "SHIPPED"):
                continue
            for item in sh["shipment_lines"]:
                out[item["order_line_id"]] = out.get(item["order_line_id"], 0) + item["quantity"]
        return out

    def create_shipment(spec: Any) -> dict:
        """One ST01 shipment, or BadRequest with the reason (it goes to shipment_errors)."""
        if not isinstance(spec, dict):
            raise BadRequest(400, "A shipment must be an object")
        order_id = spec.get("order_id")
        if not order_id:
            raise BadRequest(400, "order_id is required")
        order = data.orders.get(order_id)
        if order is None:
            raise BadRequest(404, f"Order {order_id} does not exist")
        if order.get("order_state") != "SHIPPING":
            raise BadRequest(400, f"Order {order_id} is {order.get('order_state')}: shipments can only be created for an order in SHIPPING")
        items = spec.get("shipment_lines")
        if not isinstance(items, list) or not items:
            raise BadRequest(400, "shipment_lines is required")
        by_id = {line.get("order_line_id"): line for line in _lines(order)}
        taken = shipped_so_far(order_id)
        lines_out = []
        for item in items:
            if not isinstance(item, dict):
                raise BadRequest(400, "A shipment line must be an object")
            line_id = item.get("order_line_id")
            if line_id is None and item.get("offer_sku"):  # deprecated: the line found by its offer SKU
                matches = [lid for lid, line in by_id.items() if line.get("offer_sku") == item["offer_sku"]]
                if len(matches) != 1:
                    raise BadRequest(400, f"Offer sku {item['offer_sku']} does not name exactly one line of order {order_id}: use order_line_id")
                line_id = matches[0]
            line = by_id.get(line_id)
            if line is None:
                raise BadRequest(400, f"Order line {line_id} is not a line of order {order_id}")
            if line.get("order_line_state") != "SHIPPING":
                raise BadRequest(400, f"Order line {line_id} is {line.get('order_line_state')}, not SHIPPING")
            qty = item.get("quantity")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise BadRequest(400, f"Quantity of order line {line_id} must be a whole number greater than 0, got {qty!r}")
            left = int(line.get("quantity") or 0) - taken.get(line_id, 0)
            if qty > left:
                raise BadRequest(400, f"Quantity {qty} of order line {line_id} is more than the {left} left to ship")
            taken[line_id] = taken.get(line_id, 0) + qty
            out_item = {"order_line_id": line_id, "offer_sku": line.get("offer_sku"), "quantity": qty}
            if item.get("package_reference"):
                out_item["package_reference"] = item["package_reference"]
            lines_out.append(out_item)
        tracking_in = spec.get("tracking") or {}
        if not isinstance(tracking_in, dict):
            raise BadRequest(400, "tracking must be an object")
        tracking_out: dict[str, Any] = {}
        if tracking_in.get("carrier_code"):
            carrier = data.carrier(tracking_in["carrier_code"])
            if carrier is None:
                raise BadRequest(400, f"Carrier '{tracking_in['carrier_code']}' is unknown: use a carrier code from SH21")
            tracking_out = {"carrier_code": carrier["code"], "carrier_name": carrier.get("label")}
            if carrier.get("standard_code") or tracking_in.get("carrier_standard_code"):
                tracking_out["carrier_standard_code"] = tracking_in.get("carrier_standard_code") or carrier["standard_code"]
            url = _tracking_url(carrier.get("tracking_url"), tracking_in.get("tracking_number"))
        else:
            if tracking_in.get("carrier_name"):
                tracking_out["carrier_name"] = tracking_in["carrier_name"]
            if tracking_in.get("carrier_standard_code"):
                tracking_out["carrier_standard_code"] = tracking_in["carrier_standard_code"]
            url = tracking_in.get("tracking_url")
        if tracking_in.get("tracking_number"):
            tracking_out["tracking_number"] = tracking_in["tracking_number"]
        if url:
            tracking_out["tracking_url"] = url
        if tracking_out:
            tracking_out["validity_status"] = "UNVERIFIED"

        stamp = mirakl_time(now())
        shipped = bool(spec.get("shipped"))
        shipment: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "order_id": order_id,
            "status": "SHIPPED" if shipped else "SHIPPING",
            # the order is in SHIPPING, so the customer has been debited already
            "status_customer_debit": "DEBIT_OK" if order.get("customer_debited_date") else "NOT_STARTED",
            "created_date": stamp,
            "last_updated_date": stamp,
            "shipment_lines": lines_out,
        }
        if tracking_out:
            shipment["tracking"] = tracking_out
        if shipped:
            shipment["shipped_date"] = stamp
        if order.get("customer_debited_date"):
            shipment["payment_details"] = {"customer_debited_date": order["customer_debited_date"],
                                           "transaction_date": order.get("transaction_date") or order["customer_debited_date"]}
        for key in ("invoice_reference", "shipping_from", "shipment_additional_information"):
            if spec.get(key) is not None:
                shipment[key] = copy.deepcopy(spec[key])
        data.shipments.append(shipment)
        _touch(order)
        if shipped:
            done = shipped_so_far(order_id, only_shipped=True)
            open_lines = [line for line in _lines(order) if line.get("order_line_state") == "SHIPPING"]
            if all(done.get(line.get("order_line_id"), 0) >= int(line.get("quantity") or 0) for line in open_lines):
                _touch(order, *open_lines)
                for line in open_lines:
                    line["order_line_state"] = "SHIPPED"
                    line["shipped_date"] = stamp
                order["order_state"] = "SHIPPED"
                order["can_shop_ship"] = False
                order["can_cancel"] = False
        return shipment

    @app.post(f"{API}/shipments")
    async def create_shipments(request: Request):
        body = await body_of(request)
        specs = body.get("shipments") if isinstance(body, dict) else None
        if not isinstance(specs, list) or not specs:
            raise BadRequest(400, "VALIDATION_ERROR: shipments is required")
        if len(specs) > 1000:
            raise BadRequest(400, "VALIDATION_ERROR: at most 1000 shipments at a time")
        success, errors = [], []
        refusal = request.scope.get(REFUSAL)  # an injected fault: every shipment refused with it
        with data.lock:
            for spec in specs:
                try:
                    if refusal:
                        raise BadRequest(400, refusal)
                    success.append(copy.deepcopy(create_shipment(spec)))
                except BadRequest as exc:
                    failed: dict[str, Any] = {"message": exc.message}
                    if isinstance(spec, dict) and spec.get("order_id") is not None:
                        failed["order_id"] = str(spec["order_id"])
                    errors.append(failed)
        return MoneyJSONResponse({"shipment_success": success, "shipment_errors": errors}, status_code=201)

    @app.get(f"{API}/shipments")
    def list_shipments(request: Request):
        q, cursor, limit = _seek_request("ST11", request)
        order_ids = set(_values(q, "order_id"))
        states = _enum(q, "shipment_state_code", SHIPMENT_STATES)
        debit_states = set(_values(q, "shipment_customer_debit_state_code"))
        updated_from, updated_to = _date(q, "last_updated_from"), _date(q, "last_updated_to")
        if (_single(q, "sort") or "dateCreated") != "dateCreated":
            raise BadRequest(400, "Parameter 'sort' must be dateCreated")
        descending = (_single(q, "order") or "asc").lower() == "desc"
        with data.lock:
            picked = [
                sh for sh in data.shipments
                if (not order_ids or sh["order_id"] in order_ids)
                and (not states or sh["status"] in states)
                and (not debit_states or sh["status_customer_debit"] in debit_states)
                and _in_window(sh["last_updated_date"], updated_from, updated_to)
            ]
            body = _seek("ST11", copy.deepcopy(picked), lambda sh: (_epoch(sh["created_date"]) or 0.0, sh["id"]), q, descending, cursor, limit)
        return MoneyJSONResponse(body)

    # -- offers and stock ---------------------------------------------------------------------
    @app.get(f"{API}/offers")
    def list_offers(request: Request):
        q: Query = list(request.query_params.multi_items())
        skus = set(_values(q, "sku"))
        products = set(_values(q, "product_id"))
        offer_states = set(_values(q, "offer_state_codes"))
        sort = _single(q, "sort") or "totalPrice"
        keys = {
            "totalPrice": lambda o: (money(o.get("total_price", o.get("price", 0))), o.get("offer_id", 0)),
            "price": lambda o: (money(o.get("price", 0)), money(o.get("total_price", 0)), o.get("offer_id", 0)),
            "productTitle": lambda o: (str(o.get("product_title", "")), money(o.get("total_price", 0)), o.get("offer_id", 0)),
        }
        if sort not in keys:
            raise BadRequest(400, "Parameter 'sort' must be totalPrice, price or productTitle")
        descending = (_single(q, "order") or "asc").lower() == "desc"
        with data.lock:
            # sorted once per query, not once per page: 100,000 offers are read 100 at a time
            cache_key = (sort, descending, frozenset(skus), frozenset(products), frozenset(offer_states))
            picked = data.offer_orders.get(cache_key)
            if picked is None:
                picked = [
                    o for o in data.offers.values()
                    if (not skus or o.get("shop_sku") in skus)
                    and (not products or o.get("product_sku") in products)
                    and (not offer_states or o.get("state_code") in offer_states)
                ]
                picked.sort(key=keys[sort], reverse=descending)
                data.offer_orders[cache_key] = picked
            page, total = _offset_page(picked, q)
            # rendered to bytes here, under the lock: no copy of the page is needed
            return MoneyJSONResponse({"offers": page, "total_count": total})

    @app.post(f"{API}/offers/stock/imports")
    async def stock_import(request: Request):
        with data.lock:
            if data.config.get("enforce_call_frequency") and data.last_stock_import is not None:
                wait = STO01_EVERY_SECONDS - (time.monotonic() - data.last_stock_import)
                if wait > 0:
                    seconds = str(max(1, math.ceil(wait)))
                    raise BadRequest(429, "Too Many Requests: STO01 may be called at most once per minute", {"Retry-After": seconds})
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001 - any unreadable multipart body is the client's fault
            raise BadRequest(400, "VALIDATION_ERROR: send the file as multipart/form-data") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest(400, "VALIDATION_ERROR: the multipart part 'file' is required")
        raw = await upload.read()
        with data.lock:
            refusal = request.scope.get(REFUSAL)  # an injected fault: every line refused with it
            parsed = _parse_stock_file(raw, data.offers, _EveryLine(refusal) if refusal else data.config.get("stock_import_errors"))
            import_id = str(uuid.uuid4())
            imp = {
                "import_id": import_id,
                "file_name": getattr(upload, "filename", None),
                "date_created": mirakl_time(now()),
                "status": "WAITING",
                "polls": 0,
                "polls_to_complete": int(data.config.get("import_polls_to_complete", 2)),
                "applied": False,
                **parsed,
            }
            data.imports[import_id] = imp
            if imp["polls_to_complete"] <= 0:
                _finish_import(imp, data.offers)  # K = 0: done at upload, as a tiny file may be
            data.last_stock_import = time.monotonic()
        location = f"{API}/offers/stock/imports/{import_id}/status"
        return MoneyJSONResponse({"import_id": import_id}, status_code=201, headers={"Location": location})

    def stock_import_of(import_id: str) -> dict:
        imp = data.imports.get(import_id)
        if imp is None:
            raise BadRequest(404, f"Import {import_id} does not exist")
        return imp

    @app.get(API + "/offers/stock/imports/{import_id}/status")
    def stock_import_status(import_id: str):
        with data.lock:
            imp = stock_import_of(import_id)
            _advance_import(imp, data.offers)
            return MoneyJSONResponse(_import_status(imp, shop_id))

    @app.get(API + "/offers/stock/imports/{import_id}/error_report")
    def stock_import_errors(import_id: str):
        with data.lock:
            imp = stock_import_of(import_id)
            if imp["status"] != "COMPLETE" or not imp["error_lines"]:
                raise BadRequest(404, f"Import {import_id} has no error report")
            out = io.StringIO()
            writer = csv.writer(out, delimiter=";", lineterminator="\n")
            writer.writerow(["error-line", "error-message", *imp["header"]])
            for bad in imp["error_lines"]:
                writer.writerow([bad["line"], bad["message"], *bad["columns"]])
        return Response(out.getvalue().encode(), media_type="text/csv")

    # -- seller payment ------------------------------------------------------------------------
    @app.get(f"{API}/sellerpayment/transactions_logs")
    def transaction_logs(request: Request):
        q, cursor, limit = _seek_request("TL02", request)
        cycles = set(_values(q, "seller_billing_cycle_id"))
        order_ids = set(_values(q, "order_id"))
        line_ids = set(_values(q, "order_line_id"))
        types = _enum(q, "transaction_type", TRANSACTION_TYPES)
        payment_states = _enum(q, "payment_state", PAYMENT_STATES)
        for_customer = set(_values(q, "order_reference_for_customer"))
        for_seller = set(_values(q, "order_reference_for_seller"))
        document = _single(q, "accounting_document_number")
        tx_from, tx_to = _date(q, "transaction_date_from"), _date(q, "transaction_date_to")
        created_from, created_to = _date(q, "date_created_from"), _date(q, "date_created_to")
        updated_from = _date(q, "last_updated_from")
        sort = _single(q, "sort") or "dateCreated"
        fields = {"dateCreated": "date_created", "lastUpdated": "last_updated"}
        if sort not in fields:
            raise BadRequest(400, "Parameter 'sort' must be dateCreated or lastUpdated")
        descending = (_single(q, "order") or "desc").lower() != "asc"

        def entity(tx: dict, name: str) -> dict:
            found = (tx.get("entities") or {}).get(name) if isinstance(tx.get("entities"), dict) else None
            return found if isinstance(found, dict) else {}

        with data.lock:
            picked = []
            for tx in data.transactions:
                order, refs = entity(tx, "order"), entity(tx, "order").get("references") or {}
                if cycles and tx.get("seller_billing_cycle_id") not in cycles:
                    continue
                if order_ids and order.get("id") not in order_ids:
                    continue
                if line_ids and entity(tx, "order_line").get("id") not in line_ids:
                    continue
                if types and tx.get("type") not in types:
                    continue
                if payment_states and tx.get("payment_state") not in payment_states:
                    continue
                if for_customer and refs.get("order_reference_for_customer") not in for_customer:
                    continue
                if for_seller and refs.get("order_reference_for_seller") not in for_seller:
                    continue
                if document and tx.get("accounting_document_number") != document:
                    continue
                if not _in_window(tx.get("transaction_date") or tx.get("date_created"), tx_from, tx_to):
                    continue
                if not _in_window(tx.get("date_created"), created_from, created_to):
                    continue
                if not _in_window(tx.get("last_updated"), updated_from, None):
                    continue
                picked.append(tx)
            key = lambda tx: (_epoch(tx.get(fields[sort])) or 0.0, str(tx.get("id")))  # noqa: E731
            body = _seek("TL02", copy.deepcopy(picked), key, q, descending, cursor, limit)
        return MoneyJSONResponse(body)

    # -- sandbox control (no auth) ----------------------------------------------------------------
    install_config(app, data)

    @app.post("/_sandbox/orders")
    async def add_orders(request: Request):
        body = await json_body(request) or []
        orders = body.get("orders", []) if isinstance(body, dict) else body
        data.add_orders(orders)
        return {"stored": len(orders)}

    @app.get("/_sandbox/orders/{order_id}")
    def get_order(order_id: str):
        with data.lock:
            return MoneyJSONResponse(copy.deepcopy(data.order(order_id)))

    @app.post("/_sandbox/orders/{order_id}/debit")
    def debit(order_id: str):
        """The customer pays: WAITING_DEBIT(_PAYMENT) -> SHIPPING, lines too."""
        with data.lock:
            order = data.order(order_id)
            if order.get("order_state") not in WAITING_DEBIT_STATES:
                raise BadRequest(400, f"ORDER_INVALID_STATE: order {order_id} is {order.get('order_state')}, not waiting for the debit")
            waiting = [line for line in _lines(order) if line.get("order_line_state") in WAITING_DEBIT_STATES]
            stamp = _touch(order, *waiting)
            for line in waiting:
                line["order_line_state"] = "SHIPPING"
                line["debited_date"] = stamp
                line["can_refund"] = True
            order["order_state"] = "SHIPPING"
            order["customer_debited_date"] = stamp
            order["can_shop_ship"] = True
            order["can_cancel"] = True
            return MoneyJSONResponse(copy.deepcopy(order))

    def add_money_movements(order_id: str, body: Any, kind: str) -> list[dict]:
        if not isinstance(body, list):
            raise BadRequest(400, f"a list of {kind} is required")
        with data.lock:
            order = data.order(order_id)
            by_id = {line.get("order_line_id"): line for line in _lines(order)}
            created, touched = [], []
            group = f"{order_id}-{kind[0].upper()}{data.next_id()}"
            for item in body:
                line = by_id.get(item.get("order_line_id"))
                if line is None:
                    raise BadRequest(400, f"order line {item.get('order_line_id')} is not a line of order {order_id}")
                entry: dict[str, Any] = {
                    "id": str(data.next_id()),
                    "created_date": mirakl_time(now()),
                    "amount": money(item.get("amount", 0)),
                    "quantity": int(item.get("quantity", 0)),
                    "reason_code": str(item.get("reason_code", "")),
                    "shipping_amount": money(item.get("shipping_amount", 0)),
                    "taxes": [],
                    "shipping_taxes": [],
                    "fees": [],
                    "commission_amount": Decimal("0"),
                    "commission_taxes": [],
                    "commission_total_amount": Decimal("0"),
                }
                if kind == "refunds":
                    refund_state = item.get("state", "REFUNDED")
                    entry.update({"order_refund_id": group, "state": refund_state, "refund_state": refund_state, "commission_tax_amount": Decimal("0")})
                # anything else given (id, taxes, commission_amount, ...) is laid over as is
                entry.update({k: v for k, v in item.items() if k not in ("order_line_id", "state", "amount", "quantity", "reason_code", "shipping_amount")})
                line.setdefault(kind, []).append(entry)
                created.append(entry)
                touched.append(line)
            _touch(order, *touched)
            return copy.deepcopy(created)

    @app.post("/_sandbox/orders/{order_id}/refunds")
    async def add_refunds(order_id: str, request: Request):
        created = add_money_movements(order_id, await json_body(request), "refunds")
        return MoneyJSONResponse({"stored": len(created), "refunds": created})

    @app.post("/_sandbox/orders/{order_id}/cancelations")
    async def add_cancelations(order_id: str, request: Request):
        created = add_money_movements(order_id, await json_body(request), "cancelations")
        return MoneyJSONResponse({"stored": len(created), "cancelations": created})

    @app.get("/_sandbox/shipments")
    def all_shipments():
        with data.lock:
            return MoneyJSONResponse({"shipments": copy.deepcopy(data.shipments)})

    @app.post("/_sandbox/carriers")
    async def set_carriers(request: Request):
        body = await json_body(request) or []
        with data.lock:
            data.carriers = list(body)
        return {"stored": len(body)}

    @app.post("/_sandbox/offers")
    async def add_offers(request: Request):
        """Offers of the shop: each dict needs shop_sku; the builder fills what it leaves out."""
        body = await json_body(request) or []
        with data.lock:
            for given in body:
                offer = make_offer(given["shop_sku"], given.get("quantity", 0), given.get("offer_id"), given.get("product_sku"), given.get("price", "10.00"))
                offer.update(given)
                data.offers[offer["shop_sku"]] = offer
            data.offer_orders.clear()
        return {"stored": len(body)}

    @app.get("/_sandbox/offers")
    def all_offers():
        with data.lock:
            return MoneyJSONResponse({"offers": copy.deepcopy(list(data.offers.values()))})

    @app.get("/_sandbox/stock_imports")
    def all_stock_imports():
        with data.lock:
            return MoneyJSONResponse({"imports": copy.deepcopy(list(data.imports.values()))})

    @app.post("/_sandbox/transactions")
    async def add_transactions(request: Request):
        body = await json_body(request) or []
        with data.lock:
            data.transactions.extend(body)
        return {"stored": len(body)}

    return app
