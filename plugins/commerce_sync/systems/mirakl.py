"""Mirakl MMP seller API (John Lewis Marketplace runs on it): the Channel port.

REST/JSON, the raw shop API key in `Authorization`, offset paging (max/offset) for orders and
offers, seek paging (limit/page_token) for shipments and transaction logs. Money comes as JSON
numbers, read as Decimal by the client (never float).

One Mirakl order is one canonical Order. Its `commercial_id` (the customer order number on the
John Lewis site) is the channel reference, so it becomes the ERP's ExternalID; the Mirakl
`order_id` is the channel id used for every call back. Assumed (API-FACTS 2): a shop gets one
Mirakl order per commercial order.

Orders flow through Mirakl's states: WAITING_ACCEPTANCE (we accept or refuse lines, OR21) ->
WAITING_DEBIT_PAYMENT -> SHIPPING (customer debited: only now may the warehouse pick) ->
SHIPPED (OR24, or ST01 once every line is shipped).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.http import HttpClient, paginate_offset, paginate_seek
from commerce_sync.models import (
    Address,
    Charge,
    Customer,
    Listing,
    Order,
    OrderLine,
    PayoutLine,
    Refund,
    RefundLine,
    SaleRef,
    Shipment,
    TranslationError,
)
from commerce_sync.systems.common import parse_time, translating
from commerce_sync import ports

log = logging.getLogger(__name__)

ORDERS = "/api/orders"
READY_FOR_ERP = "SHIPPING"  # debited: Mirakl's own signal that the goods may be picked
NOT_SOLD = {"REFUSED", "CANCELED"}  # lines in these states carry no sale
HOLDING_STATES = {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", READY_FOR_ERP}  # taken, not shipped
FINAL_REFUND_STATES = {"REFUNDED"}  # money actually returned to the customer
# TL02 transaction types by what they are to the seller (signs as Mirakl gives them: seller's view)
SALE_TYPES = {"ORDER_AMOUNT", "ORDER_AMOUNT_TAX", "ORDER_SHIPPING_AMOUNT", "ORDER_SHIPPING_AMOUNT_TAX"}
COMMISSION_TYPES = {"COMMISSION_FEE", "REFUND_COMMISSION_FEE"}
COMMISSION_TAX_TYPES = {"COMMISSION_VAT", "REFUND_COMMISSION_VAT"}
REFUND_TYPES = {"REFUND_ORDER_AMOUNT", "REFUND_ORDER_AMOUNT_TAX", "REFUND_ORDER_SHIPPING_AMOUNT", "REFUND_ORDER_SHIPPING_AMOUNT_TAX"}
CARRIER_LIST_MAX_AGE = timedelta(days=1)  # SH21's call frequency: once a day


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dec(value: Any, field: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise TranslationError(f"{field} is missing")
    if isinstance(value, float):  # the client parses JSON numbers as Decimal; a float here is a bug
        raise TranslationError(f"{field} arrived as a binary float ({value!r})")
    try:
        out = Decimal(str(value))
    except ArithmeticError as exc:
        raise TranslationError(f"{field} is not a number: {value!r}") from exc
    if not out.is_finite():
        raise TranslationError(f"{field} is not a finite number: {value!r}")
    return out


def _tax_sum(taxes: Any, field: str) -> Decimal:
    return sum((_dec(t.get("amount"), f"{field}[{i}].amount") for i, t in enumerate(taxes or [])), Decimal("0"))


# order_tax_mode: TAX_EXCLUDED = every price field (unit price, price, shipping price, total
# price) is without tax and the taxes come on top; TAX_INCLUDED = they include it.
TAX_MODES = {"TAX_INCLUDED": True, "TAX_EXCLUDED": False}


def _tax_inclusive(mode: Any) -> bool | None:
    """The order's own tax mode. OR11 requires the field; an order without one states no mode
    (None: the pairing's default applies, and the run says so); an unknown value is unreadable."""
    if mode is None:
        return None
    if mode not in TAX_MODES:
        raise TranslationError(f"order_tax_mode {mode!r} is neither TAX_INCLUDED nor TAX_EXCLUDED")
    return TAX_MODES[mode]


def _address(addr: Mapping[str, Any] | None) -> Address | None:
    if not addr:
        return None
    return Address(
        line1=addr.get("street_1"),
        line2=addr.get("street_2"),
        city=addr.get("city"),
        state=addr.get("state"),
        postcode=addr.get("zip_code"),
        country=addr.get("country_iso_code") or addr.get("country"),
    )


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS)
# Webhooks (commerce_sync/webhooks.py): MMP's HTTP webhooks are set up by the operator; no
# signature is documented, so a shared secret in a header the operator adds (assumed: confirm with
# the operator).
WEBHOOK_SCHEMES = ("header",)
CAPABILITIES = frozenset({ports.ORDERS, ports.ACCEPTANCE, ports.STOCK, ports.SHIPMENTS, ports.REFUNDS, ports.PAYOUTS})

class MiraklChannel:
    name = "mirakl"

    def __init__(
        self,
        client: HttpClient,
        *,
        shop_id: str | None = None,
        seller_ref: str | None = None,
        page_size: int = 100,
        read_workers: int = 2,
        transactions_page_size: int = 2000,  # TL02's maximum
        import_poll_seconds: float = 15.0,
        import_timeout_seconds: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        cache: Callable[..., Any] | None = None,
    ):
        self.client = client
        self.cache = cache
        self.shop_id = shop_id
        # Mirakl orders name no seller (the shop is the seller): the pairing says which one it is
        self.seller_ref = seller_ref or (str(shop_id) if shop_id else "shop")
        self.page_size = page_size
        self.read_workers = read_workers  # OF21 pages in flight at once: 100,000 offers are 1,000 pages
        self.transactions_page_size = transactions_page_size
        self.import_poll_seconds = import_poll_seconds  # STO02: at most once every 15 s (call frequency)
        self.import_timeout_seconds = import_timeout_seconds
        self._sleep = sleep

    def _params(self, **params: Any) -> dict[str, Any]:
        if self.shop_id:
            params["shop_id"] = self.shop_id
        return {k: v for k, v in params.items() if v is not None}

    def _orders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        yield from paginate_offset(self.client, ORDERS, list_key="orders", params=self._params(**filters), max_per_page=self.page_size)

    # -- orders ---------------------------------------------------------------------------
    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Debited orders (SHIPPING) updated in the window: debit is an update, so every paid
        order shows up in the window of its payment, and again (harmlessly) on later updates."""
        yield from self._orders(order_state_codes=READY_FOR_ERP, start_update_date=_iso(start), end_update_date=_iso(end))

    def orders_awaiting_acceptance(self) -> Iterator[dict[str, Any]]:
        yield from self._orders(order_state_codes="WAITING_ACCEPTANCE")

    def captured_orders(self, start: datetime, end: datetime) -> Iterator[tuple[dict[str, Any], bool]]:
        """Orders updated in the window up to debit (in review, awaiting acceptance or debit:
        booked once debited, so their stock is promised) and debited (SHIPPING) hold stock;
        refused or cancelled ones do not."""
        states = ",".join(sorted(HOLDING_STATES | NOT_SOLD))
        for raw in self._orders(order_state_codes=states, start_update_date=_iso(start), end_update_date=_iso(end)):
            yield raw, raw.get("order_state") not in NOT_SOLD

    def record_key(self, raw: dict[str, Any]) -> str:
        return str(raw.get("order_id"))

    def to_order(self, raw: dict[str, Any]) -> Order:
        key = self.record_key(raw)
        with translating(key):
            currency = raw.get("currency_iso_code")
            lines, charges = [], []
            line_tax = shipping_tax = shipping = Decimal("0")
            for i, item in enumerate(raw.get("order_lines") or []):
                if item.get("order_line_state") in NOT_SOLD:
                    continue
                where = f"order_lines[{i}]"
                price = _dec(item.get("price"), f"{where}.price")
                tax = _tax_sum(item.get("taxes"), f"{where}.taxes")
                line_tax += tax
                shipping += _dec(item.get("shipping_price") or 0, f"{where}.shipping_price")
                shipping_tax += _tax_sum(item.get("shipping_taxes"), f"{where}.shipping_taxes")
                lines.append(
                    OrderLine(
                        line_ref=str(item.get("order_line_id")),
                        sku=item.get("offer_sku") if item.get("offer_sku") is not None else "",
                        name=item.get("product_title"),
                        quantity=item.get("quantity"),
                        unit_price=_dec(item.get("price_unit"), f"{where}.price_unit"),
                        line_total=price,  # price = unit price x quantity, after promotions
                        tax=tax,
                    )
                )
            if not lines:
                raise TranslationError("order has no line that is sold (all refused or cancelled)")
            if shipping or shipping_tax:
                charges.append(Charge(kind="shipping", description="Shipping", amount=shipping, tax=shipping_tax))
            customer = raw.get("customer") or {}
            shipping_address = customer.get("shipping_address") or {}
            commercial = raw.get("commercial_id")
            return Order(
                channel=self.name,
                # the customer order number: mandatory for John Lewis; the gate refuses None
                channel_ref=str(commercial) if commercial not in (None, "") else None,
                channel_id=key,
                placed_at=parse_time(raw.get("created_date"), "created_date"),
                currency=currency,
                seller_ref=self.seller_ref,
                customer=Customer(
                    name=" ".join(p for p in (customer.get("firstname"), customer.get("lastname")) if p) or None,
                    email=raw.get("customer_notification_email"),
                    phone=shipping_address.get("phone") or (customer.get("billing_address") or {}).get("phone"),
                    shipping_address=_address(shipping_address),
                    billing_address=_address(customer.get("billing_address")),
                ),
                lines=lines,
                charges=charges,
                # passed through as John Lewis sent it: never recomputed from lines
                total=_dec(raw.get("total_price"), "total_price"),
                tax_total=line_tax + shipping_tax,
                tax_inclusive=_tax_inclusive(raw.get("order_tax_mode")),
                # a deadline only while Mirakl still awaits the dispatch (SHIPPING): met once shipped
                ship_by=parse_time(raw["shipping_deadline"], "shipping_deadline") if raw.get("shipping_deadline") and raw.get("order_state") == READY_FOR_ERP else None,
            )

    def accept_order(self, order: Order, decisions: Mapping[str, bool]) -> None:
        """OR21: accept (True) or refuse (False) each line. A repeat after a lost answer finds the
        lines already decided (400): the order is read back and, if decided, that is success."""
        body = {"order_lines": [{"id": ref, "accepted": ok} for ref, ok in decisions.items()]}
        try:
            self.client.put(f"{ORDERS}/{order.channel_id}/accept", json=body, params=self._params())
        except ClientError as exc:
            if exc.status != 400 or self._still_waiting(order.channel_id):
                raise

    def _still_waiting(self, order_id: str) -> bool:
        for raw in self._orders(order_ids=order_id):
            return any(line.get("order_line_state") == "WAITING_ACCEPTANCE" for line in raw.get("order_lines") or [])
        return False

    def acknowledge_order(self, order: Order, sale: SaleRef) -> None:
        return None  # acceptance is the acknowledgement; Mirakl has nothing more to be told

    # -- dispatch -------------------------------------------------------------------------
    def carrier_codes(self) -> dict[str, dict[str, Any]]:
        """SH21, by code: the carriers the operator allows. Mirakl asks for one read a day, so the
        list is kept in the ledger for a day (per adapter without one)."""
        if not hasattr(self, "_carriers"):

            def load() -> list[dict[str, Any]]:
                body = self.client.get("/api/shipping/carriers", params=self._params()) or {}
                return [c for c in body.get("carriers") or [] if c.get("code")]

            carriers = self.cache("carriers", CARRIER_LIST_MAX_AGE, load) if self.cache else load()
            self._carriers = {c["code"]: c for c in carriers}
        return self._carriers

    def push_shipment(self, order_channel_id: str, shipment: Shipment, carrier: str) -> str:
        """A whole order in one box: tracking (OR23) then ship (OR24). Anything else: ST01 with
        order line ids and quantities, after checking ST11 for the same tracking number (a
        shipment whose answer was lost is found, not created twice)."""
        if carrier not in self.carrier_codes():
            raise ClientError(f"carrier code {carrier!r} is not one of John Lewis's carriers ({', '.join(sorted(self.carrier_codes()))})", status=422)
        orders = list(self._orders(order_ids=order_channel_id))
        if not orders:
            raise ClientError(f"order {order_channel_id} not found on Mirakl", status=404)
        order = orders[0]
        existing = self._shipments(order_channel_id)
        for sh in existing:
            if shipment.tracking_number and (sh.get("tracking") or {}).get("tracking_number") == shipment.tracking_number:
                return str(sh["id"])
        if order.get("order_state") == "SHIPPED" and order.get("shipping_tracking") == shipment.tracking_number:
            return f"{order_channel_id}:order"  # shipped whole by an earlier attempt
        lines = self._shipment_lines(order, existing, shipment)
        taken: dict[str, int] = {}
        for ref, qty in lines:
            taken[ref] = taken.get(ref, 0) + qty
        sold = [item for item in order.get("order_lines") or [] if item.get("order_line_state") not in NOT_SOLD]
        # the whole order in this one box: Mirakl's plain tracking + ship calls (no shipments feature needed)
        whole = not existing and all(taken.get(str(item.get("order_line_id")), 0) == item.get("quantity") for item in sold)
        tracking = {"carrier_code": carrier, "tracking_number": shipment.tracking_number}
        if whole:
            self.client.put(f"{ORDERS}/{order_channel_id}/tracking", json={k: v for k, v in tracking.items() if v}, params=self._params())
            try:
                self.client.put(f"{ORDERS}/{order_channel_id}/ship", params=self._params())
            except ClientError as exc:
                if exc.status != 400 or self._state(order_channel_id) != "SHIPPED":
                    raise
            return f"{order_channel_id}:order"
        body = {"shipments": [{"order_id": order_channel_id, "shipped": True, "tracking": {k: v for k, v in tracking.items() if v},
                               "shipment_lines": [{"order_line_id": ref, "quantity": qty} for ref, qty in lines]}]}
        answer = self.client.post("/api/shipments", json=body, params=self._params()) or {}
        errors = answer.get("shipment_errors") or []
        if errors or not answer.get("shipment_success"):
            raise ClientError("Mirakl refused the shipment: " + "; ".join(str(e.get("message")) for e in errors), status=422)
        return str(answer["shipment_success"][0]["id"])

    def _state(self, order_id: str) -> str | None:
        for raw in self._orders(order_ids=order_id):
            return raw.get("order_state")
        return None

    def _shipments(self, order_id: str) -> list[dict[str, Any]]:
        return list(paginate_seek(self.client, "/api/shipments", params=self._params(order_id=order_id), limit=100))

    @staticmethod
    def _shipment_lines(order: dict[str, Any], existing: list[dict[str, Any]], shipment: Shipment) -> list[tuple[str, int]]:
        """Box contents (by SKU) onto order lines, never beyond what is left to ship on a line."""
        shipped: dict[str, int] = {}
        for sh in existing:
            for item in sh.get("shipment_lines") or []:
                ref = str(item.get("order_line_id"))
                shipped[ref] = shipped.get(ref, 0) + int(item.get("quantity") or 0)
        out: list[tuple[str, int]] = []
        for line in shipment.lines:
            need = line.quantity
            for item in order.get("order_lines") or []:
                if need and item.get("offer_sku") == line.sku and item.get("order_line_state") not in NOT_SOLD:
                    ref = str(item["order_line_id"])
                    take = min(need, int(item.get("quantity") or 0) - shipped.get(ref, 0))
                    if take > 0:
                        out.append((ref, take))
                        shipped[ref] = shipped.get(ref, 0) + take
                        need -= take
            if need:
                raise ClientError(f"{line.sku}: {line.quantity} shipped but only {line.quantity - need} left to ship on order {order.get('order_id')}", status=422)
        return out

    # -- stock ----------------------------------------------------------------------------
    def read_listings(self) -> dict[str, Listing]:
        listings: dict[str, Listing] = {}
        for offer in paginate_offset(
            self.client, "/api/offers", list_key="offers", params=self._params(), max_per_page=self.page_size, workers=self.read_workers
        ):
            sku = offer.get("shop_sku")
            if sku:
                listings[sku] = Listing(sku=sku, listing_id=str(offer.get("offer_id")), quantity=offer.get("quantity"))
        return listings

    def push_stock(self, updates: list[tuple[Listing, int]], batch_size: int | None = None) -> list[tuple[str, str | None]]:
        """One STO01 stock import (CSV) for every update: the stock import sets quantities only,
        where the offer import OF24 would reset every offer field it is not sent. Mirakl allows one
        import a minute, so a run sends one file whatever its size; then STO02 is polled until the
        import ends and STO03's error report names the refused lines."""
        if not updates:
            return []
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(["offer-sku", "quantity", "warehouse-code", "update-delete"])
        for listing, qty in updates:
            writer.writerow([listing.sku, qty, "", "update"])
        answer = self.client.post(
            "/api/offers/stock/imports", files={"file": ("stock.csv", out.getvalue().encode(), "text/csv")}, params=self._params()
        )
        import_id = str((answer or {}).get("import_id"))
        status = self._wait_for_import(import_id)
        errors: dict[str, str] = {}
        if status.get("has_error_report"):
            errors = self.import_errors(import_id)
        if status.get("status") == "FAILED" and not errors:
            return [(listing.sku, f"stock import {import_id} failed as a whole") for listing, _ in updates]
        return [(listing.sku, errors.get(listing.sku)) for listing, _ in updates]

    def _wait_for_import(self, import_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.import_timeout_seconds
        while True:
            status = self.client.get(f"/api/offers/stock/imports/{import_id}/status", params=self._params()) or {}
            if status.get("status") in ("COMPLETE", "FAILED"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"stock import {import_id} still {status.get('status')} after {self.import_timeout_seconds:.0f} s")
            self._sleep(self.import_poll_seconds)

    def import_errors(self, import_id: str) -> dict[str, str]:
        """STO03: the refused lines, by offer SKU, with Mirakl's reason."""
        raw = self.client.get(f"/api/offers/stock/imports/{import_id}/error_report", params=self._params(), expect_json=False) or b""
        rows = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";")
        return {row.get("offer-sku") or "": row.get("error-message") or "refused (no reason given)" for row in rows}

    # -- refunds --------------------------------------------------------------------------
    def fetch_refunds(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Refunded and cancelled lines of orders updated in the window, one record each."""
        for order in self._orders(start_update_date=_iso(start), end_update_date=_iso(end)):
            head = {"order_id": order.get("order_id"), "commercial_id": order.get("commercial_id"), "currency_iso_code": order.get("currency_iso_code")}
            for line in order.get("order_lines") or []:
                ref = {"order_line_id": line.get("order_line_id"), "offer_sku": line.get("offer_sku")}
                for refund in line.get("refunds") or []:
                    if refund.get("refund_state", "REFUNDED") in FINAL_REFUND_STATES:
                        yield {"id": f"refund-{refund.get('id')}", "kind": "refund", "order": head, "line": ref, "money": refund}
                for cancel in line.get("cancelations") or []:
                    yield {"id": f"cancelation-{cancel.get('id')}", "kind": "cancelation", "order": head, "line": ref, "money": cancel}

    def to_refund(self, raw: dict[str, Any]) -> Refund:
        key = str(raw.get("id"))
        with translating(key):
            order, line, money = raw.get("order") or {}, raw.get("line") or {}, raw.get("money") or {}
            # amounts include tax (TAX_INCLUDED); refunded shipping is credited on the same line
            amount = _dec(money.get("amount") or 0, "amount") + _dec(money.get("shipping_amount") or 0, "shipping_amount")
            commercial = order.get("commercial_id")
            return Refund(
                refund_ref=key,
                order_channel_ref=str(commercial) if commercial else None,
                currency=order.get("currency_iso_code"),
                lines=[RefundLine(line_ref=line.get("order_line_id"), sku=line.get("offer_sku"), quantity=money.get("quantity") or 0, amount=amount)],
                reason=f"{raw.get('kind')} {money.get('reason_code') or ''}".strip(),
                requested_at=parse_time(money.get("created_date"), "created_date"),
            )

    # -- payouts --------------------------------------------------------------------------
    def fetch_payouts(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """TL02 lines of the window, one record per order and billing cycle (all its lines)."""
        grouped: dict[str, dict[str, Any]] = {}
        params = self._params(transaction_date_from=_iso(start), transaction_date_to=_iso(end))
        for tx in paginate_seek(self.client, "/api/sellerpayment/transactions_logs", params=params, limit=self.transactions_page_size):
            order = (tx.get("entities") or {}).get("order") or {}
            if not order.get("id"):
                continue  # cycle-level lines (payments, subscriptions) belong to no order
            cycle = tx.get("seller_billing_cycle_id") or "open"
            record = grouped.setdefault(f"{cycle}:{order['id']}", {"id": f"{cycle}:{order['id']}", "cycle": cycle, "order": order, "transactions": []})
            record["transactions"].append(tx)
        yield from grouped.values()

    def to_payout_lines(self, raw: dict[str, Any]) -> list[PayoutLine]:
        """An order's transactions as canonical kinds. Mirakl signs amounts from the seller's
        side (sales +, commission -); canonical kinds are what the marketplace kept, positive.
        payment = the net due for the order, so payment + kept = what the customer paid."""
        key = str(raw.get("id"))
        with translating(key):
            order = raw.get("order") or {}
            txs = raw.get("transactions") or []
            if not txs:
                raise TranslationError("no transactions")
            currencies = {tx.get("currency_iso_code") for tx in txs}
            if len(currencies) != 1:
                raise TranslationError(f"transactions in several currencies: {sorted(map(str, currencies))}")
            currency = currencies.pop()
            kinds = {"payment": Decimal("0"), "commission": Decimal("0"), "commission_tax": Decimal("0"), "refund": Decimal("0"), "fee": Decimal("0")}
            booked = max(parse_time(tx.get("transaction_date") or tx.get("date_created"), "transaction_date") for tx in txs)
            for tx in txs:
                amount = _dec(tx.get("amount"), f"transaction {tx.get('id')}.amount")
                kinds["payment"] += amount
                kind = tx.get("type")
                if kind in SALE_TYPES:
                    continue
                target = ("commission" if kind in COMMISSION_TYPES else "commission_tax" if kind in COMMISSION_TAX_TYPES
                          else "refund" if kind in REFUND_TYPES else "fee")  # any other charge: a fee, never dropped
                kinds[target] -= amount
            commercial = order.get("commercial_id")
            ref = f"{raw.get('cycle')}-{order.get('id')}"
            return [
                PayoutLine(payout_ref=ref, order_channel_ref=str(commercial) if commercial else None, kind=kind, amount=amount, currency=currency, booked_at=booked)
                for kind, amount in kinds.items()
                if amount or kind == "payment"
            ]


def auth_for(conn) -> dict[str, str]:
    """Connection password = the shop API key (Mirakl back office > My user settings > API Key)."""
    return {"Authorization": conn.password or ""}


def build(client: HttpClient, ref, cache=None) -> MiraklChannel:
    options = dict(ref.options or {})
    return MiraklChannel(
        client,
        shop_id=options.get("shop_id"),
        seller_ref=options.get("seller_ref"),
        page_size=int(options.get("page_size", 100)),
        read_workers=int(options.get("read_workers", 2)),
        transactions_page_size=int(options.get("transactions_page_size", 2000)),
        import_poll_seconds=float(options.get("import_poll_seconds", 15)),
        import_timeout_seconds=float(options.get("import_timeout_seconds", 900)),
        cache=cache,
    )
