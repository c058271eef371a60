"""Demo data for `make demo`: a small catalogue in Cin7 and a trickle of Marketplacer orders.

The SKUs and sellers match include/mappings/cin7_marketplacer/, except for one SKU that is
deliberately unmapped so the demo shows a quarantine too.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone

DEMO_SKUS = [
    ("CS-TEE-BLK-M", "Tee black M", 4500),
    ("CS-TEE-BLK-L", "Tee black L", 4500),
    ("CS-CAP-NVY", "Cap navy", 2500),
]
UNMAPPED_SKU = ("CS-SOCK-WHT", "Socks white", 1500)
DEMO_SELLERS = [
    {"legacyId": 1, "businessName": "Castore AU"},
    {"legacyId": 2, "businessName": "Lounge"},
]
CIN7_SEED = {
    "products": [{"SKU": sku, "Name": name} for sku, name, _ in DEMO_SKUS + [UNMAPPED_SKU]],
    "availability": [{"SKU": sku, "Location": loc, "OnHand": 40, "Allocated": 2} for sku, _, _ in DEMO_SKUS for loc in ("Main Warehouse", "Sydney Store")]
    + [{"SKU": sku, "Location": loc, "OnHand": n} for sku, _, _ in DEMO_SKUS for loc, n in (("London Store", 6), ("3PL Northampton", 120))],
    # EU and US Warehouse: cin7_sfcc's EU and US sites; London Store and 3PL Northampton: cin7_commercetools' other supply channels
    "locations": ["Main Warehouse", "Sydney Store", "EU Warehouse", "US Warehouse", "London Store", "3PL Northampton"],
    "tax_rules": ["GST on Income", "20% (VAT on Income)"],
    # a sale takes its customer's currency: each pairing's customers trade in its orders' currency
    "customers": [{"Name": name, "Currency": "AUD"} for name in ("Marketplacer", "Castore AU (Marketplacer)", "Lounge (Marketplacer)")]
    + [{"Name": "John Lewis Marketplace", "Currency": "GBP"}, {"Name": "Storefront GBP", "Currency": "GBP"}]
    + [{"Name": "Webshop UK (SFCC)", "Currency": "GBP"}, {"Name": "Webshop EU (SFCC)", "Currency": "EUR"}, {"Name": "Webshop US (SFCC)", "Currency": "USD"}],
}


# Centra's catalogue for centra_marketplacer (include/mappings/centra_marketplacer/skus.csv):
# SKU = product number + variant number + size number.
CENTRA_SEED = {
    "warehouses": ["Main Warehouse", "Showroom"],
    "pricelists": [{"name": "Marketplacer AUD", "currency": "AUD"}],
    "markets": ["Marketplacer"],
    "products": [
        {"productNumber": "CT-TEE-", "name": "Tee", "folder": "Tops", "brand": "Castore", "attributes": {"material": "Cotton"},
         "variants": [{"variantNumber": "BLK-", "name": "Black", "prices": {"Marketplacer AUD": "45.00"},
                       "sizes": [{"name": "M", "sizeNumber": "M", "EAN": "7350000000016"}, {"name": "L", "sizeNumber": "L", "EAN": "7350000000023"}]}]},
        {"productNumber": "CT-CAP-", "name": "Cap", "folder": "Accessories", "brand": "Castore",
         "variants": [{"variantNumber": "NVY-", "name": "Navy", "prices": {"Marketplacer AUD": "25.00"},
                       "sizes": [{"name": "One size", "sizeNumber": "OS", "EAN": "7350000000030"}]}]},
    ],
    "stock": [{"warehouse": wh, "sku": sku, "quantity": 40} for wh in ("Main Warehouse", "Showroom") for sku in ("CT-TEE-BLK-M", "CT-TEE-BLK-L", "CT-CAP-NVY-OS")],
}


# Marketplacer's categories and what each requires (include/mappings/centra_marketplacer/categories.csv
# and attributes.csv map Centra's folders and attributes to them)
MARKETPLACER_TAXONOMY = [
    {"id": "VGF4b24tMTAx", "displayName": "Tops", "treeName": "Clothing > Tops", "prototype": {"name": "Apparel", "optionTypes": [
        {"name": "Material", "appliedTo": "ADVERT", "fieldType": "FREE_TEXT", "optional": False},
        {"name": "Size", "appliedTo": "VARIANT", "fieldType": "SINGLE_SELECT", "optional": False, "values": ["S", "M", "L", "XL"]},
        {"name": "Colour", "appliedTo": "VARIANT", "fieldType": "SINGLE_SELECT", "optional": True, "values": ["Black", "Navy", "White"]}]}},
    {"id": "VGF4b24tMTAy", "displayName": "Hats", "treeName": "Accessories > Hats", "prototype": {"name": "Headwear", "optionTypes": [
        {"name": "Size", "appliedTo": "VARIANT", "fieldType": "SINGLE_SELECT", "optional": False, "values": ["One size"]},
        {"name": "Colour", "appliedTo": "VARIANT", "fieldType": "SINGLE_SELECT", "optional": True, "values": ["Black", "Navy", "White"]}]}},
]


DEMO_ADVERTS = [{"title": name, "variants": [{"sku": sku, "countOnHand": 0}]} for sku, name, _ in DEMO_SKUS] + [
    {"title": "Gift card (not in Cin7)", "variants": [{"sku": "MKP-GIFT-50", "countOnHand": 0}]}
]


def demo_invoice(rng: random.Random) -> dict:
    seller = rng.choice(DEMO_SELLERS)
    pool = DEMO_SKUS + ([UNMAPPED_SKU] if rng.random() < 0.1 else [])
    items = []
    for sku, name, price in rng.sample(pool, k=rng.randint(1, min(2, len(pool)))):
        qty = rng.randint(1, 3)
        items.append({"variantSku": sku, "variantName": name, "quantity": qty, "unitPriceCents": price, "discountCents": 0, "taxCents": round(qty * price / 11), "totalCents": qty * price})
    subtotal = sum(i["totalCents"] for i in items)
    postage = rng.choice([0, 995])
    stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return {
        "createdAt": stamp,
        "paidAt": stamp,
        "currency": "AUD",
        "buyerFirstName": rng.choice(["Sam", "Alex", "Jo"]),
        "buyerSurname": rng.choice(["Lee", "Nguyen", "Smith"]),
        "buyerEmailAddress": "buyer@example.com",
        "buyerPhone": "+61 400 000 000",
        "shippingAddress": {"address": "1 George St", "city": "Sydney", "postcode": "2000", "state": {"short": "NSW"}, "country": {"code": "AU"}},
        "seller": dict(seller),
        "lineItems": items,
        "subtotalCents": subtotal,
        "postageCents": postage,
        "discountCents": 0,
        "taxCents": sum(i["taxCents"] for i in items),
        "totalCents": subtotal + postage,
    }


def start_order_trickle(marketplacer_data, every_seconds: float = 20.0, seed: int = 7) -> threading.Event:
    """Inject a new demo invoice every `every_seconds` until the returned event is set."""
    stop = threading.Event()
    rng = random.Random(seed)

    def loop():
        while not stop.is_set():
            marketplacer_data.add_invoice(demo_invoice(rng))
            stop.wait(every_seconds)

    threading.Thread(target=loop, name="demo-orders", daemon=True).start()
    return stop
