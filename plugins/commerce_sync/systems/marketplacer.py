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

from commerce_sync.errors import ClientError, RefusedFields
from commerce_sync.http import HttpClient, paginate_relay
from commerce_sync.models import (
    Address,
    CatalogueProduct,
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
# refundRequestCreate's input (invoiceId, lineItems {lineItemId, reason, quantity, dispatched},
# notes, externalIds) is documented; Invoice.refundRequests and RefundRequest.externalIds are assumed
INVOICE_REFUNDS_QUERY = """
query InvoiceRefundRequests($id: ID!) {
  node(id: $id) {
    ... on Invoice { id lineItems { id variantSku quantity } refundRequests { id status externalIds { key value } } }
  }
}
"""
REFUND_REQUEST_CREATE = """
mutation RefundRequestCreate($input: RefundRequestCreateMutationInput!) {
  refundRequestCreate(input: $input) { errors { field messages } refundRequest { id status } }
}
"""
REFUND_REFERENCE_KEY = "commerce_sync"  # the externalIds key our refund requests carry
PAYOUT_KINDS = {"amountCents": "payment", "commissionAmountCents": "commission", "commissionTaxCents": "commission_tax", "feeCents": "fee", "refundCents": "refund"}
FINAL_REFUND_STATUSES = {"REFUNDED"}  # assumed: only money actually returned becomes a credit note

# -- the catalogue (catalogue_out): adverts made and kept from the product master ------------------
# advertUpsert, the taxon -> prototype -> option types model and `optional` are in Marketplacer's
# docs and its seller-integration sample (GQLOperationLibrary: advertUpsert, taxons, prototypes by id)
CATALOGUE_ADVERTS_QUERY = """
query CatalogueAdverts($first: Int!, $after: String) {
  allAdverts(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id legacyId title published variants { nodes { id sku } } }
  }
}
"""
TAXON_QUERY = """
query TaxonPrototype($id: ID!) {
  node(id: $id) {
    ... on Taxon {
      id displayName
      prototype { id name optionTypes { nodes { id name fieldType appliedTo optional optionValues { nodes { id name displayName } } } } }
    }
  }
}
"""
ADVERT_UPSERT = """
mutation AdvertUpsert($input: AdvertUpsertMutationInput!) {
  advertUpsert(input: $input) { status errors { field messages } advert { id legacyId published variants { nodes { id sku } } } }
}
"""

# One GraphQL document carries many aliased variantUpdate mutations: one HTTP call per batch.
_VARIANT_UPDATE = "u{i}: variantUpdate(input: {{variantId: $v{i}, attributes: {{countOnHand: $q{i}}}}}) {{ errors {{ field messages }} }}"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


# what this system does for the flows (checked by the factory against factory.FLOW_NEEDS)
# Webhooks (commerce_sync/webhooks.py): Marketplacer's webhook auth is unverified; a shared
# secret in a header (assumed).
WEBHOOK_SCHEMES = ("header",)
CAPABILITIES = frozenset({ports.ORDERS, ports.STOCK, ports.SHIPMENTS, ports.REFUNDS, ports.PAYOUTS, ports.CATALOGUE_READ, ports.CATALOGUE_WRITE,
                          ports.REFUND_REQUESTS})

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

    def captured_orders(self, start: datetime, end: datetime) -> Iterator[tuple[dict[str, Any], bool]]:
        """Every invoice created in the window is booked (fetch_orders): each holds its stock."""
        for raw in self.fetch_orders(start, end):
            yield raw, True

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

    def open_refund_request(self, order_channel_id: str, refund: Refund, reference: str) -> str:
        """A refund request for the refund's lines (returned goods: dispatched), found by the
        reference it carries in its externalIds before one is made (a lost answer makes no second)."""
        invoice = (self.client.graphql(INVOICE_REFUNDS_QUERY, {"id": order_channel_id}) or {}).get("node")
        if not invoice:
            raise ClientError(f"invoice {order_channel_id} not found on Marketplacer", status=404)
        for existing in invoice.get("refundRequests") or []:
            if any(x.get("key") == REFUND_REFERENCE_KEY and x.get("value") == reference for x in existing.get("externalIds") or []):
                return existing["id"]
        items: list[dict[str, Any]] = []
        for line in refund.lines:
            need = line.quantity
            for li in invoice.get("lineItems") or []:
                if need and li.get("variantSku") == line.sku:
                    take = min(need, li.get("quantity") or 0)
                    items.append({"lineItemId": li["id"], "quantity": take, "reason": refund.reason or "Returned", "dispatched": True})
                    need -= take
            if need:
                raise ClientError(f"{line.sku}: {line.quantity} refunded but the invoice holds only {line.quantity - need}", status=422)
        payload = self.client.graphql(
            REFUND_REQUEST_CREATE,
            {"input": {"invoiceId": invoice["id"], "lineItems": items, "notes": [{"note": f"Refunded in the master: {reference}"}],
                       "externalIds": [{"key": REFUND_REFERENCE_KEY, "value": reference}]}},
            mutation=True,
        )["refundRequestCreate"]
        if payload.get("errors"):
            raise ClientError("Marketplacer refused the refund request: " + "; ".join(f"{e.get('field')}: {', '.join(e.get('messages') or [])}" for e in payload["errors"]), status=422)
        return payload["refundRequest"]["id"]

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

    # -- the catalogue (ports.CatalogueReader, CatalogueWriter) -------------------------------------
    def _adverts(self) -> list[dict[str, Any]]:
        return list(paginate_relay(self.client, CATALOGUE_ADVERTS_QUERY, {}, connection_path=["allAdverts"], page_size=self.page_size))

    def selling_skus(self) -> dict[str, Listing]:
        """Every SKU of a published advert, with the advert's id and title."""
        return {v["sku"]: Listing(sku=v["sku"], listing_id=a["id"], where=a.get("title")) for a in self._adverts() if a.get("published")
                for v in (a.get("variants") or {}).get("nodes") or [] if v.get("sku")}

    def _variants_by_sku(self) -> dict[str, tuple[str, str]]:
        """Channel SKU -> (advert id, variant id), read once per adapter (once per task) and kept
        up to date by this adapter's own writes."""
        index = getattr(self, "_sku_index", None)
        if index is None:
            index = {v["sku"]: (a["id"], v["id"]) for a in self._adverts() for v in (a.get("variants") or {}).get("nodes") or [] if v.get("sku")}
            self._sku_index = index
        return index

    def _option_types(self, taxon_id: str) -> list[dict[str, Any]]:
        """The option types (attributes) of a category: its prototype's, each with `optional`."""
        cache = self.__dict__.setdefault("_taxons", {})
        if taxon_id not in cache:
            node = self.client.graphql(TAXON_QUERY, {"id": taxon_id}).get("node")
            if not node:
                raise RefusedFields(f"Marketplacer has no category {taxon_id!r}", status=422, problems=[("taxonId", f"no category {taxon_id!r} on Marketplacer: fix categories.csv")])
            cache[taxon_id] = ((node.get("prototype") or {}).get("optionTypes") or {}).get("nodes") or []
        return cache[taxon_id]

    @staticmethod
    def _option_value(option_type: dict[str, Any], value: str) -> dict[str, Any]:
        if option_type.get("fieldType") == "FREE_TEXT":
            return {"optionTypeId": option_type["id"], "textValue": value}
        values = ((option_type.get("optionValues") or {}).get("nodes")) or []
        match = next((v for v in values if value.casefold() in {str(v.get("name") or "").casefold(), str(v.get("displayName") or "").casefold()}), None)
        if match is None:
            allowed = ", ".join(str(v.get("displayName") or v.get("name")) for v in values) or "none"
            raise RefusedFields(f"{option_type.get('name')}: {value!r} is not one of its values", status=422,
                                problems=[(str(option_type.get("name")), f"{value!r} is not one of Marketplacer's values for it ({allowed})")])
        return {"optionValueId": match["id"]}

    def _advert_input(self, product: CatalogueProduct, how: ports.ListingInstructions, existing: dict[str, str]) -> dict[str, Any]:
        """AdvertInput holding only the owned fields; `existing` = channel SKU -> variant id."""
        owned = set(how.fields)
        attrs: dict[str, Any] = {}
        if "name" in owned and product.name:
            attrs["title"] = product.name
        if "category" in owned and how.category:
            attrs["taxonId"] = how.category
        types = self._option_types(how.category) if "attributes" in owned and how.category else []

        def price_of(item) -> str | None:
            found = next((p for p in item.prices if p.price_list == how.price_list), None)
            return f"{found.amount:.2f}" if found is not None else None

        if "price" in owned and product.items and price_of(product.items[0]) is not None:
            attrs["price"] = price_of(product.items[0])  # the advert's price: its first SKU's
        if types:
            # an advert-level value the master keeps per SKU: the first SKU's
            first = {**(how.item_attributes.get(product.items[0].sku) or {}), **how.attributes} if product.items else dict(how.attributes)
            attrs["advertOptionValues"] = [self._option_value(t, first[t["name"]]) for t in types if t.get("appliedTo") == "ADVERT" and first.get(t["name"])]
        variants = []
        for item in product.items:
            sku = how.channel_sku(item.sku)
            variant: dict[str, Any] = {"sku": sku, **({"id": existing[sku]} if sku in existing else {})}
            if "barcode" in owned and item.barcode:
                variant["barcode"] = item.barcode
            if "price" in owned and price_of(item) is not None:
                variant["price"] = price_of(item)
            if types:
                values = {**how.attributes, **(how.item_attributes.get(item.sku) or {})}
                variant["variantOptionValues"] = [self._option_value(t, values[t["name"]]) for t in types if t.get("appliedTo") == "VARIANT" and values.get(t["name"])]
            variants.append(variant)
        attrs["variants"] = variants
        return attrs

    def _upsert(self, product: CatalogueProduct, input_: dict[str, Any]) -> dict[str, Any]:
        # not re-sent after a lost answer (mutation): the next attempt finds the advert by its SKUs
        payload = self.client.graphql(ADVERT_UPSERT, {"input": input_}, mutation=True).get("advertUpsert") or {}
        errors = payload.get("errors") or []
        if errors or not payload.get("advert"):
            problems = [(str(e.get("field") or "advert"), "; ".join(e.get("messages") or []) or "refused") for e in errors] or [("advert", "refused without a message")]
            raise RefusedFields(f"Marketplacer refused product {product.product_ref}: " + "; ".join(f"{f}: {m}" for f, m in problems), status=422, problems=problems)
        advert = payload["advert"]
        index = self._variants_by_sku()
        for v in (advert.get("variants") or {}).get("nodes") or []:
            if v.get("sku"):
                index[v["sku"]] = (advert["id"], v["id"])
        return advert

    def find_listing(self, product: CatalogueProduct, how: ports.ListingInstructions) -> str | None:
        index = self._variants_by_sku()
        return next((index[how.channel_sku(i.sku)][0] for i in product.items if how.channel_sku(i.sku) in index), None)

    def create_listing(self, product: CatalogueProduct, how: ports.ListingInstructions) -> str:
        """advertUpsert without an advertId; Marketplacer publishes it only with attemptAutoPublish
        (the pairing's `publish`) and only if it is valid."""
        attrs = {**self._advert_input(product, how, {}), "attemptAutoPublish": how.publish}
        return self._upsert(product, {"attributes": attrs})["id"]

    def update_listing(self, listing_id: str, product: CatalogueProduct, how: ports.ListingInstructions) -> bool:
        """advertUpsert with the advertId: the owned fields again (absolute values), the SKUs it
        holds by their variant ids, a new SKU as a new variant."""
        existing = {sku: variant for sku, (advert, variant) in self._variants_by_sku().items() if advert == listing_id}
        self._upsert(product, {"advertId": listing_id, "attributes": self._advert_input(product, how, existing)})
        return True


def auth_for(conn) -> dict[str, str]:
    """Connection password = the seller API key (Seller Portal > Extensions > API Access)."""
    return {"marketplacer-api-key": conn.password or ""}


def build(client: HttpClient, ref, cache=None) -> MarketplacerChannel:
    return MarketplacerChannel(client, currency=ref.currency, page_size=int((ref.options or {}).get("page_size", 100)))
