"""Marketplacer Seller API (GraphQL, Relay paging): the Channel port.

A Marketplacer order is split into one Invoice per seller; the invoice is what a seller (and so
the ERP) sees, so one invoice becomes one canonical Order. Money is read from the integer
`*Cents` fields (exact); the API is moving to `*Formatted` strings, which carry a currency symbol.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.http import HttpClient, paginate_relay
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
from commerce_sync.money import from_minor
from commerce_sync.systems.common import parse_time, translating
from commerce_sync import ports

INVOICES_QUERY = """
query Invoices($first: Int!, $after: String, $filters: InvoiceFilters) {
  invoices(first: $first, after: $after, filters: $filters, sort: {fields: [CREATED_AT], ordering: ASCENDING}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyId createdAt updatedAt paidAt currency
      buyerFirstName buyerSurname buyerEmailAddress buyerPhone
      shippingAddress { address city postcode state { short } country { code } }
      seller { id legacyId businessName }
      subtotalCents postageCents discountCents taxCents totalCents
      lineItems { id legacyId variantSku variantName quantity unitPriceCents discountCents taxCents totalCents }
    }
  }
}
"""


ADVERTS_QUERY = """
query Adverts($first: Int!, $after: String) {
  allAdverts(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id variants { nodes { id sku countOnHand } } }
  }
}
"""

INVOICE_SHIPPING_QUERY = """
query InvoiceForShipping($id: ID!) {
  node(id: $id) {
    ... on Invoice {
      id createdAt
      lineItems { id variantSku quantity }
      shipments { id trackingNumber shippedItems { quantity lineItem { id } } }
    }
  }
}
"""

CARRIERS_QUERY = """
query Carriers($first: Int!, $after: String) {
  shipmentCarriers(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { id name } }
}
"""

SHIPMENT_CREATE = """
mutation ShipmentCreate($input: ShipmentCreateMutationInput!) {
  shipmentCreate(input: $input) { status errors { field messages } shipment { id } }
}
"""

REFUNDS_QUERY = """
query Refunds($first: Int!, $after: String, $since: ISO8601DateTime, $until: ISO8601DateTime) {
  refundRequests(first: $first, after: $after, updatedSince: $since, updatedUntil: $until) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyId status createdAt updatedAt reason
      invoice { id legacyId currency }
      lineItems { id quantity amountCents lineItem { id variantSku } }
    }
  }
}
"""
ADVICES_QUERY = """
query Advices($first: Int!, $after: String, $since: ISO8601DateTime, $until: ISO8601DateTime) {
  remittanceAdvices(first: $first, after: $after, paidSince: $since, paidUntil: $until) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyId paidAt paymentReference currency
      remittances { id legacyId amountCents commissionAmountCents commissionTaxCents feeCents refundCents invoice { id legacyId } }
    }
  }
}
"""
PAYOUT_KINDS = {"amountCents": "payment", "commissionAmountCents": "commission", "commissionTaxCents": "commission_tax", "feeCents": "fee", "refundCents": "refund"}
FINAL_REFUND_STATUSES = {"REFUNDED"}  # assumed: only money actually returned becomes a credit note

# One GraphQL document carries many aliased variantUpdate mutations: one HTTP call per batch.
_VARIANT_UPDATE = "u{i}: variantUpdate(input: {{variantId: $v{i}, attributes: {{countOnHand: $q{i}}}}}) {{ errors {{ field messages }} }}"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS)
CAPABILITIES = frozenset({ports.ORDERS, ports.STOCK, ports.SHIPMENTS, ports.REFUNDS, ports.PAYOUTS})

class MarketplacerChannel:
    name = "marketplacer"

    def __init__(self, client: HttpClient, *, currency: str | None = None, page_size: int = 100):
        self.client = client
        self.default_currency = currency
        self.page_size = page_size

    # -- orders ---------------------------------------------------------------------------
    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        filters = {"createdSince": _iso(start), "createdUntil": _iso(end)}
        yield from paginate_relay(
            self.client,
            INVOICES_QUERY,
            {"filters": filters},
            connection_path=["invoices"],
            page_size=self.page_size,
        )

    def record_key(self, raw: dict[str, Any]) -> str:
        # the Relay id is always present; legacyId (the business reference) may not be
        return str(raw.get("id") or raw.get("legacyId"))

    def to_order(self, raw: dict[str, Any]) -> Order:
        key = self.record_key(raw)
        with translating(key):
            currency = raw.get("currency") or self.default_currency
            if not currency:
                raise TranslationError("invoice carries no currency and the pairing names none", record_key=key)

            def money(value: Any, field: str):
                if value is None:
                    raise TranslationError(f"{field} is missing", record_key=key)
                try:
                    return from_minor(value, currency)
                except ValueError as exc:
                    raise TranslationError(f"{field}: {exc}", record_key=key) from exc

            lines = []
            for i, item in enumerate(raw.get("lineItems") or []):
                lines.append(
                    OrderLine(
                        line_ref=str(item.get("id") or f"{key}:{i}"),
                        sku=item.get("variantSku") if item.get("variantSku") is not None else "",
                        name=item.get("variantName"),
                        quantity=item.get("quantity"),
                        unit_price=money(item.get("unitPriceCents"), f"lineItems[{i}].unitPriceCents"),
                        # Marketplacer discounts are negative numbers; canonical discounts are positive
                        discount=-money(item.get("discountCents") or 0, f"lineItems[{i}].discountCents"),
                        line_total=money(item.get("totalCents"), f"lineItems[{i}].totalCents"),
                        tax=money(item.get("taxCents") or 0, f"lineItems[{i}].taxCents"),
                    )
                )
            if not lines:
                raise TranslationError("invoice has no line items", record_key=key)
            charges = []
            tax_total = money(raw.get("taxCents") or 0, "taxCents")
            # the invoice's tax beyond its lines' is the postage's GST (or, without postage, the
            # invoice discount's): carried on that charge so the ERP books the invoice's tax exactly
            rest_of_tax = tax_total - sum((line.tax for line in lines), Decimal("0"))
            postage = money(raw.get("postageCents") or 0, "postageCents")
            if postage:
                charges.append(Charge(kind="shipping", description="Postage", amount=postage, tax=rest_of_tax))
                rest_of_tax = Decimal("0")
            discount = money(raw.get("discountCents") or 0, "discountCents")
            if discount:
                # invoice-level discount, already negative
                charges.append(Charge(kind="discount", description="Invoice discount", amount=discount, tax=rest_of_tax))
            seller = raw.get("seller") or {}
            address = raw.get("shippingAddress") or {}
            legacy = raw.get("legacyId")
            return Order(
                channel=self.name,
                channel_ref=str(legacy) if legacy not in (None, "") else None,
                channel_id=str(raw.get("id")),
                placed_at=parse_time(raw.get("createdAt"), "createdAt"),
                currency=currency,
                seller_ref=str(seller["legacyId"]) if seller.get("legacyId") is not None else None,
                seller_name=seller.get("businessName"),
                customer=Customer(
                    name=" ".join(p for p in (raw.get("buyerFirstName"), raw.get("buyerSurname")) if p) or None,
                    email=raw.get("buyerEmailAddress"),
                    phone=raw.get("buyerPhone"),
                    shipping_address=Address(
                        line1=address.get("address"),
                        city=address.get("city"),
                        state=(address.get("state") or {}).get("short"),
                        postcode=address.get("postcode"),
                        country=(address.get("country") or {}).get("code"),
                    ),
                ),
                lines=lines,
                charges=charges,
                total=money(raw.get("totalCents"), "totalCents"),
                tax_total=tax_total,
                tax_inclusive=True,  # Marketplacer prices, postage and totals include GST
            )

    def orders_awaiting_acceptance(self) -> Iterator[dict[str, Any]]:
        return iter(())  # a Marketplacer seller does not accept orders: invoices arrive paid

    def accept_order(self, order: Order, decisions) -> None:
        raise NotImplementedError("Marketplacer has no order acceptance; remove `acceptance:` from the pairing")

    def acknowledge_order(self, order: Order, sale: SaleRef) -> None:
        # Marketplacer has no "acknowledge" call for sellers: the invoice stays as it is until
        # dispatch. Nothing to do.
        return None

    # -- payouts --------------------------------------------------------------------------
    def fetch_payouts(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        for advice in paginate_relay(self.client, ADVICES_QUERY, {"since": _iso(start), "until": _iso(end)}, connection_path=["remittanceAdvices"], page_size=self.page_size):
            for remittance in advice.get("remittances") or []:
                yield {**remittance, "advice": {k: advice.get(k) for k in ("id", "legacyId", "paidAt", "paymentReference", "currency")}}

    def to_payout_lines(self, raw: dict[str, Any]) -> list[PayoutLine]:
        key = str(raw.get("id"))
        advice = raw.get("advice") or {}
        currency = advice.get("currency") or self.default_currency
        legacy = (raw.get("invoice") or {}).get("legacyId")
        with translating(key):
            paid = parse_time(advice.get("paidAt"), "advice.paidAt")
            if raw.get("amountCents") is None:
                raise TranslationError("amountCents (the net paid) is missing", record_key=key)
            return [
                PayoutLine(payout_ref=str(raw.get("legacyId") or key), order_channel_ref=str(legacy) if legacy is not None else None, kind=kind,
                           amount=from_minor(raw[field], currency), currency=currency, booked_at=paid)
                for field, kind in PAYOUT_KINDS.items()
                if raw.get(field) is not None
            ]

    # -- refunds --------------------------------------------------------------------------
    def fetch_refunds(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        for node in paginate_relay(self.client, REFUNDS_QUERY, {"since": _iso(start), "until": _iso(end)}, connection_path=["refundRequests"], page_size=self.page_size):
            if node.get("status") in FINAL_REFUND_STATUSES:
                yield node

    def to_refund(self, raw: dict[str, Any]) -> Refund:
        key = str(raw.get("id"))
        invoice = raw.get("invoice") or {}
        currency = invoice.get("currency") or self.default_currency
        with translating(key):
            lines = []
            for i, item in enumerate(raw.get("lineItems") or []):
                cents = item.get("amountCents")
                if cents is None:
                    raise TranslationError(f"lineItems[{i}].amountCents is missing", record_key=key)
                lines.append(RefundLine(line_ref=item.get("id"), sku=(item.get("lineItem") or {}).get("variantSku"), quantity=item.get("quantity") or 0, amount=from_minor(cents, currency)))
            if not lines:
                raise TranslationError("refund has no lines", record_key=key)
            legacy = invoice.get("legacyId")
            return Refund(
                refund_ref=str(raw.get("legacyId") or key),
                order_channel_ref=str(legacy) if legacy is not None else None,
                currency=currency,
                lines=lines,
                reason=raw.get("reason"),
                requested_at=parse_time(raw.get("createdAt"), "createdAt"),
            )

    # -- dispatch -------------------------------------------------------------------------
    def carrier_ids(self) -> dict[str, str]:
        """The marketplace's postage carriers, name -> id (read once per adapter)."""
        if not hasattr(self, "_carriers"):
            self._carriers = {c["name"]: c["id"] for c in paginate_relay(self.client, CARRIERS_QUERY, {}, connection_path=["shipmentCarriers"], page_size=self.page_size)}
        return self._carriers

    def push_shipment(self, order_channel_id: str, shipment: Shipment, carrier: str) -> str:
        invoice = (self.client.graphql(INVOICE_SHIPPING_QUERY, {"id": order_channel_id}) or {}).get("node")
        if not invoice:
            raise ClientError(f"invoice {order_channel_id} not found on Marketplacer", status=404)
        sku_of = {li["id"]: li.get("variantSku") for li in invoice.get("lineItems") or []}
        wanted: dict[str, int] = {}
        for line in shipment.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        for existing in invoice.get("shipments") or []:
            # an earlier attempt whose answer was lost: same tracking number, same goods
            got: dict[str, int] = {}
            for item in existing.get("shippedItems") or []:
                sku = sku_of.get(item["lineItem"]["id"])
                got[sku] = got.get(sku, 0) + (item.get("quantity") or 0)
            if shipment.tracking_number and existing.get("trackingNumber") == shipment.tracking_number and got == wanted:
                return existing["id"]
        carrier_id = self.carrier_ids().get(carrier)
        if carrier_id is None:
            raise ClientError(f"carrier {carrier!r} is not one of Marketplacer's postage carriers ({', '.join(sorted(self.carrier_ids()))})", status=422)
        items = self._shipped_items(invoice, shipment)
        payload = self.client.graphql(
            SHIPMENT_CREATE,
            {"input": {"invoiceId": invoice["id"], "dispatchedAt": _iso(shipment.shipped_at), "postageCarrierId": carrier_id,
                       "trackingNumber": shipment.tracking_number, "shippedItems": items}},
            mutation=True,
        )["shipmentCreate"]
        if payload.get("errors"):
            raise ClientError("Marketplacer refused the shipment: " + "; ".join(f"{e.get('field')}: {', '.join(e.get('messages') or [])}" for e in payload["errors"]), status=422)
        return payload["shipment"]["id"]

    @staticmethod
    def _shipped_items(invoice: dict[str, Any], shipment: Shipment) -> list[dict[str, Any]]:
        """Shipment lines (by SKU) onto the invoice's line items, never beyond what is left to ship."""
        shipped: dict[str, int] = {}
        for sh in invoice.get("shipments") or []:
            for item in sh.get("shippedItems") or []:
                shipped[item["lineItem"]["id"]] = shipped.get(item["lineItem"]["id"], 0) + (item.get("quantity") or 0)
        items = []
        for line in shipment.lines:
            need = line.quantity
            for li in invoice.get("lineItems") or []:
                if need and li.get("variantSku") == line.sku:
                    take = min(need, (li.get("quantity") or 0) - shipped.get(li["id"], 0))
                    if take > 0:
                        items.append({"lineItemId": li["id"], "quantity": take})
                        shipped[li["id"]] = shipped.get(li["id"], 0) + take
                        need -= take
            if need:
                raise ClientError(f"{line.sku}: {line.quantity} shipped but only {line.quantity - need} left to ship on the invoice", status=422)
        return items

    # -- stock ----------------------------------------------------------------------------
    def read_listings(self) -> dict[str, Listing]:
        listings: dict[str, Listing] = {}
        for advert in paginate_relay(self.client, ADVERTS_QUERY, {}, connection_path=["allAdverts"], page_size=self.page_size):
            for variant in (advert.get("variants") or {}).get("nodes") or []:
                if variant.get("sku"):
                    listings[variant["sku"]] = Listing(sku=variant["sku"], listing_id=variant["id"], quantity=variant.get("countOnHand"))
        return listings

    def push_stock(self, updates: list[tuple[Listing, int]], batch_size: int = 50) -> list[tuple[str, str | None]]:
        results: list[tuple[str, str | None]] = []
        for start in range(0, len(updates), batch_size):
            batch = updates[start : start + batch_size]
            params = ", ".join(f"$v{i}: ID!, $q{i}: Int!" for i in range(len(batch)))
            body = " ".join(_VARIANT_UPDATE.format(i=i) for i in range(len(batch)))
            variables = {}
            for i, (listing, qty) in enumerate(batch):
                variables[f"v{i}"] = listing.listing_id
                variables[f"q{i}"] = qty
            # setting an absolute count is idempotent: a retry after a lost answer is harmless
            data = self.client.graphql(f"mutation StockBatch({params}) {{ {body} }}", variables, mutation=False)
            for i, (listing, _qty) in enumerate(batch):
                errors = (data.get(f"u{i}") or {}).get("errors") or []
                results.append((listing.sku, "; ".join(f"{e.get('field')}: {', '.join(e.get('messages') or [])}" for e in errors) or None))
        return results


def auth_for(conn) -> dict[str, str]:
    """Connection password = the seller API key (Seller Portal > Extensions > API Access)."""
    return {"marketplacer-api-key": conn.password or ""}


def build(client: HttpClient, ref, cache=None) -> MarketplacerChannel:
    return MarketplacerChannel(client, currency=ref.currency, page_size=int((ref.options or {}).get("page_size", 100)))
