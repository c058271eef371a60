"""Centra contract: the emulator's schema (sandbox/centra_schema.graphql) holds the types as
centra.dev's type pages publish them, and every GraphQL document the adapter sends validates
against it, seen on the wire while the adapter does everything it can do."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from graphql import build_schema, parse, print_type, validate

from commerce_sync.http import HeaderAuth, HttpClient
from commerce_sync.models import Address, Charge, Customer, Order, OrderLine
from commerce_sync.ports import SaleInstructions
from commerce_sync.systems import centra

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = build_schema((ROOT / "sandbox" / "centra_schema.graphql").read_text())

# Read on centra.dev (one page per type) while building the emulator: type -> field -> type as printed there.
CONFIRMED = {
    "ShipmentInfoInput": {"carrier": "String", "service": "String", "packagesNumber": "Int", "trackingNumber": "String", "returnTrackingNumber": "String"},
    "ShipmentCompleteInput": {"shippedAt": "DateTimeTz", "shipmentInfo": "ShipmentInfoInput", "sendEmail": "Boolean", "additionalMessage": "String"},
    "ShipmentLineInput": {"orderLine": "OrderLineInput!", "quantity": "Int!"},
    "ShipmentCreateInput": {"order": "OrderInput!", "lines": "[ShipmentLineInput!]", "isGoodToGo": "Boolean", "isPaid": "Boolean", "createdAt": "DateTimeTz", "shippedAt": "DateTimeTz"},
    "ShipmentCreatePayload": {"shipment": "Shipment", "userErrors": "[UserError!]!", "userWarnings": "[UserWarning!]!"},
    "ShipmentCompletePayload": {"shipment": "Shipment", "userErrors": "[UserError!]!", "userWarnings": "[UserWarning!]!"},
    "ShipmentLine": {"id": "Int!", "quantity": "Int!", "orderLine": "OrderLine!"},
    "DirectToConsumerShipment": {"id": "Int!", "number": "String!", "createdAt": "DateTimeTz!", "updatedAt": "DateTimeTz!", "isGoodToGo": "Boolean!",
                                 "isShipped": "Boolean!", "isPaid": "Boolean!", "trackingNumber": "String", "returnTrackingNumber": "String",
                                 "numberOfPackages": "Int!", "additionalMessage": "String", "shippedAt": "DateTimeTz", "carrierInformation": "CarrierInformation"},
    "DirectToConsumerOrder": {"number": "Int!", "status": "OrderStatus!", "grandTotal": "MonetaryValue!", "createdAt": "DateTimeTz!", "updatedAt": "DateTimeTz!",
                              "orderDate": "DateTimeTz!", "otherComment": "String", "currencyBaseRate": "Float!"},
    "OrderInput": {"id": "String", "number": "Int", "externalId": "String"},
    "OrderFilter": {"id": "[String!]", "number": "[Int!]", "status": "[OrderStatus!]", "createdAt": "DateRange", "updatedAt": "DateRange",
                    "externalId": "[String!]", "isLocked": "Boolean", "marketId": "[Int!]", "pricelistId": "[Int!]"},
    "OrdersLockPayload": {"userErrors": "[UserError!]!", "userWarnings": "[UserWarning!]!", "orders": "[Order!]!"},
    "Event": {"id": "Int!", "objectType": "EventObjectType!", "changeType": "EventChangeType!", "objectReference": "Int64!", "createdAt": "DateTimeTz!",
              "store": "Store", "market": "Market", "object": "EventTarget"},
    "EventListener": {"integrationName": "String!", "objectType": "EventObjectType!", "changeTypes": "[EventChangeType!]!", "createdAt": "DateTimeTz!", "updatedAt": "DateTimeTz!"},
    "EventListenerSetInput": {"objectType": "EventObjectType!", "changeTypes": "[EventChangeType!]"},
    "EventListenerUnsetInput": {"objectType": "EventObjectType!", "changeTypes": "[EventChangeType!]"},
    "StockSetInput": {"warehouse": "WarehouseInput!", "description": "String!", "productVariants": "[ProductVariantStockSetInput!]",
                      "productSizes": "[StockSetProductSizeInput!]", "stockQuantityType": "StockQuantityType!"},
    "ProductSizeStockSetInput": {"size": "SizeInput!", "quantity": "Int!"},
    "ProductSizeInput": {"id": "Int", "SKU": "String", "EAN": "String", "UPC": "String", "any": "String"},
    "ProductSize": {"id": "Int!", "size": "Size!", "stock": "[Stock!]!"},
    "Warehouse": {"id": "Int!", "name": "String!", "stock": "[Stock!]!"},
    "Stock": {"allocatedQuantity": "Int!", "availableNowQuantity": "Int!", "demandQuantity": "Int!", "freeToAllocateQuantity": "Int!", "physicalQuantity": "Int!"},
}
EVENT_OBJECT_TYPES = (
    "Account AdminUser Affiliate AllocationRule Brand BrickAndMortar Bundle Buyer Campaign Category Collection Country Currency Customer DeliveryWindow "
    "Display EmailHistoryEntry Folder GiftCertificateGenerator Invoice Language LowestPrice MappedAttribute Market MeasurementChart NewsletterSubscription "
    "Order OrderHistoryEntry PaymentHistoryEntry PaymentTerms Price PriceAlteration Pricelist Product ProductMedia ProductSize ProductVariant PurchaseOrder "
    "PurchaseOrderDelivery Return SalesRepresentative Shipment ShippingOption ShippingTerms SizeChart StockChange Store StorePlugin Subscription "
    "SubscriptionContract SubscriptionPlan Supplier TaxRule Voucher Warehouse Wishlist"
).split()


@pytest.mark.parametrize("type_name", sorted(CONFIRMED))
def test_the_schema_holds_each_type_as_centra_publishes_it(type_name):
    fields = SCHEMA.get_type(type_name).fields
    for field, printed in CONFIRMED[type_name].items():
        assert field in fields, f"{type_name}.{field} missing: {print_type(SCHEMA.get_type(type_name))}"
        assert str(fields[field].type) == printed, f"{type_name}.{field} is {fields[field].type}, centra.dev says {printed}"


def test_event_enums_and_list_arguments_are_as_published():
    assert list(SCHEMA.get_type("EventObjectType").values) == EVENT_OBJECT_TYPES
    assert list(SCHEMA.get_type("EventChangeType").values) == ["CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED"]
    for owner in ("Warehouse", "ProductSize"):  # "Limit must be in range 1 - 200", 20 and page 1 by default
        assert "stock(where: StockFilter, limit: Int = 20, page: Int = 1): [Stock!]!" in print_type(SCHEMA.get_type(owner))
    for payload in ("ShipmentCreatePayload", "ShipmentCompletePayload", "OrdersLockPayload", "EventsConfirmPayload"):
        assert "Payload" in {i.name for i in SCHEMA.get_type(payload).interfaces}


@pytest.mark.parametrize("name", sorted(centra.DOCUMENTS))
def test_every_document_in_the_adapter_validates(name):
    assert validate(SCHEMA, parse(centra.DOCUMENTS[name])) == []


@pytest.fixture
def centra_api():
    from sandbox import centra as emulator
    from sandbox.server import start_server

    server = start_server(emulator.create_app(requests_per_10s=10_000, mutations_per_10s=10_000))
    requests.post(f"{server.url}/_sandbox/seed", json={
        "warehouses": ["Main Warehouse", "Showroom"], "pricelists": [{"name": "Marketplacer AUD", "currency": "AUD"}], "markets": ["Marketplacer"],
        "products": [{"productNumber": "CT-TEE-", "name": "Tee", "variants": [{"variantNumber": "BLK-", "prices": {"Marketplacer AUD": "45.00"},
                                                                           "sizes": [{"name": "M", "sizeNumber": "7350000000011"}]}]}],
        "stock": [{"warehouse": "Main Warehouse", "sku": "CT-TEE-BLK-7350000000011", "quantity": 9}]}, timeout=10).raise_for_status()
    yield server.url
    server.stop()


def test_everything_the_adapter_sends_is_one_of_its_documents_and_validates(centra_api):
    sent: list[dict] = []

    def capture(entry):
        if entry["url"].endswith("/graphql") and entry["request_body"]:
            sent.append(json.loads(entry["request_body"]))

    client = HttpClient(centra_api, system="centra", payload_log=capture,
                        auth=HeaderAuth({"Authorization": "Bearer demo-centra-token", "API-Authorization": "demo-centra-order-secret"}))
    master = centra.CentraMaster(client, sku_form="size_number", market="Marketplacer", page_size=1)  # 1 a page: the paging is exercised too
    now = datetime.now(timezone.utc)
    order = Order(channel="marketplacer", channel_ref="1", channel_id="i1", placed_at=now, currency="AUD",
                  customer=Customer(name="Alex Buyer", email="alex@example.com", shipping_address=Address(country="AU")),
                  lines=[OrderLine(line_ref="l", sku="MKP-TEE", quantity=2, unit_price=Decimal("45.00"), line_total=Decimal("90.00"), tax=Decimal("8.18"))],
                  charges=[Charge(kind="shipping", description="Postage", amount=Decimal("9.95"))], total=Decimal("99.95"), tax_total=Decimal("8.18"),
                  tax_inclusive=True)
    how = SaleInstructions(external_id="MKP-1", customer="Marketplacer AUD", location="-", tax_rule="-", tax_calculation="Inclusive", status="-",
                           sku_map={"MKP-TEE": "7350000000011"}, source_channel="Marketplacer")
    assert master.find_sales(["MKP-1"], now) == {}
    list(master.updated_sales(now))  # listens to shipment events before anything ships
    master.stock_changes()
    sale = master.create_sale(order, how)
    assert master.find_sales(["MKP-1"], now)["MKP-1"].has_lines
    assert master.complete_sale(sale, order, how).has_lines  # finishing a finished sale reads it and changes nothing
    assert master.sale_amounts(sale.master_id) == {"total": Decimal("99.95"), "tax": Decimal("8.18")}
    assert master.customer_currency("Marketplacer AUD") == "AUD"
    assert [(s.sku, s.location, s.available) for s in master.read_availability()] == [("7350000000011", "Main Warehouse", Decimal("7"))]
    master.ship(sale.master_id, [("7350000000011", 1)], carrier="Australia Post", tracking_number="AP1")
    sales = list(master.updated_sales(now - timedelta(minutes=5)))
    assert [s.master_id for s in sales] == [sale.master_id]
    assert [(sh.tracking_number, [(ln.sku, ln.quantity) for ln in sh.lines]) for sh in master.read_shipments(sales[0])] == [("AP1", [("7350000000011", 1)])]
    changed = master.stock_changes()
    assert list(master.availability_of(changed))
    master.confirm_reads()
    composite = centra.CentraMaster(client, page_size=1)  # the other SKU form: sizes looked up by their SKU
    assert [s.available for s in composite.availability_of_skus({"CT-TEE-BLK-7350000000011"})] == [Decimal("7")]
    requests.post(f"{centra_api}/_sandbox/returns", json={"order": int(sale.master_id), "lines": [{"sku": "CT-TEE-BLK-7350000000011", "quantity": 1}],
                                                           "refund": "45.00"}, timeout=10).raise_for_status()
    assert [master.to_refund(r).lines[0].sku for r in master.fetch_returns(now - timedelta(minutes=5), datetime.now(timezone.utc) + timedelta(minutes=1))] == ["7350000000011"]
    assert [i["master_sku"] for p in master.fetch_products() for i in master.to_catalogue_items(p)] == ["7350000000011"]

    documents = {" ".join(d.split()) for d in centra.DOCUMENTS.values()}
    seen = {" ".join(s["query"].split()) for s in sent}
    assert seen <= documents, f"sent but not declared: {seen - documents}"
    assert seen == documents, f"declared but never sent: {documents - seen}"
    for body in sent:
        assert validate(SCHEMA, parse(body["query"])) == []
