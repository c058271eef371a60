"""Cin7 Core External API v2 emulator (paths, fields and rules from the public OpenAPI file).

- Auth: headers `api-auth-accountid` and `api-auth-applicationkey`, else 403.
- Limit: N calls per rolling minute per application (60 by default); over it -> 503, the status
  the spec's table gives for "You reached 60 calls per minute API limit", with a Retry-After
  header (our assumption: the spec names no header).
- Paging: Page (from 1) and Limit (default 100, max 1000) with Total and Page in the envelope.
- Errors: the spec's Error Model, `[{"ErrorCode": 400, "Exception": "..."}]`.
- A sale is created in two calls (POST /sale, POST /sale/order); until lines are posted the
  sale's OrderStatus is "NOT AVAILABLE", as in Cin7.
- Currency: every customer has one (the Customer model's `Currency`), and a sale is in its
  customer's currency (`CustomerCurrency`), whatever the request says, as in Cin7. The account's
  base currency is AUD.
- Tax: a sale's `TaxCalculation` (Inclusive or Exclusive) says how its prices read. Line Total =
  Price x Quantity less Discount in both modes; the order's Tax = its lines' and charges' Tax;
  Exclusive: TotalBeforeTax = lines + charges and Total = that + Tax; Inclusive: Total = lines +
  charges and TotalBeforeTax = Total - Tax (the spec's model tables and its examples: an
  exclusive opportunity of 900 + 600 with 150 tax totals 1650; an inclusive line of 2 carries 0.18
  tax in its 2). A posted Total or Tax that differs is refused (400), as a line Total is.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import FastAPI, Request

from sandbox.common import MoneyJSONResponse, SandboxState, WebhookPush, install_sandbox, install_webhooks, json_body, now

BASE = "/ExternalApi/v2"
TWO_PLACES = Decimal("0.01")
BASE_CURRENCY = "AUD"
TAX_CALCULATIONS = ("Inclusive", "Exclusive")


def _error(status: int, message: str) -> MoneyJSONResponse:
    return MoneyJSONResponse([{"ErrorCode": status, "Exception": message}], status_code=status)


def _cin7_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _created_at(sale: dict) -> datetime:
    if "_created_at" not in sale:  # parsed once: a month of sales is filtered on every page read
        sale["_created_at"] = _parse_time(sale["_created"])
    return sale["_created_at"]


def _invoice_status(sale: dict) -> str:
    if not sale.get("_invoice"):
        return "NOT INVOICED"
    return "INVOICED / CREDITED" if sale.get("_credit_notes") else "INVOICED"
# the product fields kept (the spec's Product model, less BOM, suppliers, movements, reorder levels)
PRODUCT_FIELDS = {"Name": None, "Barcode": None, "Category": None, "Brand": None, "Type": "Stock", "UOM": "Item", "Weight": 0, "WeightUnits": "kg",
                  "Status": "Active", "Description": None, "ShortDescription": None, "Sellable": True,
                  **{f"AdditionalAttribute{n}": None for n in range(1, 11)}}


def product_record(fields: dict, existing: dict | None = None) -> dict:
    """A product as Cin7 keeps it: a new one from `fields`, or `existing` with `fields` laid over it
    (its ID kept); either way modified now. Weight is a number (0 when not set, as Cin7 shows it)."""
    base = dict(existing) if existing else {"ID": fields.get("ID") or str(uuid.uuid4()), **PRODUCT_FIELDS, "Name": fields.get("SKU")}
    base.update({k: v for k, v in fields.items() if k != "ID" or not existing})
    if base.get("Weight") is not None:
        base["Weight"] = _money(base["Weight"])
    base["LastModifiedOn"] = _cin7_time(now())
    return base


def _money(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _customer(seed: dict) -> dict:
    """A customer as GET /customer shows it (the spec's Customer fields the emulator knows)."""
    name = seed["Name"]
    return {
        "ID": seed.get("ID") or str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
        "Name": name,
        "Status": seed.get("Status", "Active"),
        "Currency": seed.get("Currency") or BASE_CURRENCY,
        "PaymentTerm": "30 days",
        "AccountReceivable": "610",
        "RevenueAccount": "200",
        "TaxRule": seed.get("TaxRule"),
        "PriceTier": "Tier 1",
        "Location": None,
        "Discount": 0,
        "Comments": None,
        "CreditLimit": 0,
        "IsOnCreditHold": False,
        "LastModifiedOn": _cin7_time(now()),
        "Addresses": [],
        "Contacts": [],
    }


class Cin7Data:
    def __init__(self):
        self.lock = threading.RLock()
        self.hooks = WebhookPush()  # Cin7's webhooks: Sale/OrderAuthorised, Sale/ShipmentAuthorised
        self.reset()

    def reset(self) -> None:
        self.hooks.clear()
        with self.lock:
            self.products: dict[str, dict] = {}
            self.availability: dict[tuple[str, str], dict] = {}  # (SKU, Location) -> row, in seeding order
            self.locations: set[str] = set()
            self.tax_rules: set[str] = set()
            self.customers: dict[str, dict] = {}  # name -> customer (Customer model fields)
            self.sales: dict[str, dict] = {}
            self.order_seq = 0
            self.journals: list[dict] = []

    def put_products(self, rows: list[dict]) -> list[dict]:
        """Create or change products by SKU (product_record)."""
        with self.lock:
            for p in rows:
                self.products[p["SKU"]] = product_record(p, self.products.get(p["SKU"]))
            return [self.products[p["SKU"]] for p in rows]


def create_app(account_id: str = "demo-account", application_key: str = "demo-key", rate_limit_per_minute: int = 60) -> FastAPI:
    app = FastAPI(title="Cin7 Core sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    data = Cin7Data()
    state = SandboxState()
    app.state.data = data  # the demo's order generator and tests reach the store directly
    config = {"rate_limit_per_minute": rate_limit_per_minute}
    window: deque[float] = deque()
    window_lock = threading.Lock()

    @app.middleware("http")
    async def auth_and_limit(request: Request, call_next):
        if not request.url.path.startswith(BASE):
            return await call_next(request)
        if request.headers.get("api-auth-accountid") != account_id or request.headers.get("api-auth-applicationkey") != application_key:
            return _error(403, "Incorrect credentials: check api-auth-accountid and api-auth-applicationkey")
        with window_lock:
            t = time.monotonic()
            while window and t - window[0] >= 60:
                window.popleft()
            if len(window) >= config["rate_limit_per_minute"]:
                retry_after = max(1, int(60 - (t - window[0])) + 1)
                return MoneyJSONResponse(
                    [{"ErrorCode": 503, "Exception": f"You reached {config['rate_limit_per_minute']} calls per minute API limit"}],
                    status_code=503,
                    headers={"Retry-After": str(retry_after)},
                )
            window.append(t)
        return await call_next(request)

    def reset() -> None:
        data.reset()
        with window_lock:
            window.clear()  # a reset is a fresh account: its rolling minute starts empty

    install_sandbox(app, state, reset)
    install_webhooks(app, data.hooks)

    # -- sandbox control --------------------------------------------------------------------
    @app.post("/_sandbox/config")
    async def set_config(request: Request):
        config.update(await json_body(request) or {})
        return config

    @app.post("/_sandbox/seed")
    async def seed(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            data.put_products(body.get("products", []))
            for a in body.get("availability", []):
                data.availability[(a["SKU"], a["Location"])] = dict(a)
            data.locations.update(body.get("locations", []))
            data.tax_rules.update(body.get("tax_rules", []))
            for c in body.get("customers", []):
                # {"Name", "Currency"} or a bare name (the account's base currency)
                c = {"Name": c} if isinstance(c, str) else dict(c)
                data.customers[c["Name"]] = _customer(c)
        return {"products": len(data.products), "locations": sorted(data.locations)}

    @app.post("/_sandbox/sales")
    async def seed_sales(request: Request):
        """Sales already in Cin7, in bulk (a month of them for settlement tests): {"sales": [{
        "ExternalID", "Customer", "CustomerCurrency", "Lines": [{"SKU", "Quantity", "Price"}],
        "Tax"?, "SaleOrderDate"?, "Invoiced"?: true, "CreditNotes"?: [{"Memo", "Total"}]}]}.
        Stored as POST /sale + /sale/order (AUTHORISED) and, when asked, /_sandbox/invoice and
        credit notes would leave them."""
        body = await json_body(request) or {}
        stamp = _cin7_time(now())
        with data.lock:
            for given in body.get("sales", []):
                data.order_seq += 1
                sale_id = str(uuid.uuid4())
                lines = []
                for line in given.get("Lines") or []:
                    qty, price = _money(line.get("Quantity", 1)), _money(line["Price"])
                    lines.append({"SKU": line["SKU"], "ProductID": data.products.get(line["SKU"], {}).get("ID"), "Name": data.products.get(line["SKU"], {}).get("Name"),
                                  "Quantity": qty, "Price": price, "Discount": Decimal("0"), "Tax": Decimal("0"), "TaxRule": given.get("TaxRule"),
                                  "Total": (qty * price).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)})
                total = sum((l["Total"] for l in lines), Decimal("0"))
                number = f"SO-{data.order_seq:05d}"
                created = given.get("SaleOrderDate") or stamp
                sale = {
                    "ID": sale_id, "Customer": given.get("Customer") or "Web customer", "CustomerID": str(uuid.uuid5(uuid.NAMESPACE_OID, given.get("Customer") or "Web customer")),
                    "Contact": None, "Phone": None, "Email": None, "DefaultAccount": "4000", "SkipQuote": True, "BillingAddress": None, "ShippingAddress": None,
                    "ShippingNotes": None, "BaseCurrency": "AUD", "CustomerCurrency": given.get("CustomerCurrency") or "AUD", "TaxRule": given.get("TaxRule"),
                    "TaxCalculation": "Inclusive", "Terms": "30 days", "PriceTier": "Tier 1", "ShipBy": None, "Location": given.get("Location"),
                    "LocationID": str(uuid.uuid5(uuid.NAMESPACE_OID, given.get("Location") or "default")), "SaleOrderDate": created, "LastModifiedOn": stamp,
                    "Note": None, "CustomerReference": given.get("ExternalID"), "COGSAmount": Decimal("0"), "Status": "ORDERED", "Carrier": None,
                    "ExternalID": given.get("ExternalID"), "SalesRepresentative": None, "ServiceOnly": False, "SourceChannel": given.get("SourceChannel"),
                    "Type": "Simple Sale", "AdditionalAttributes": None, "OrderNumber": number, "_created": created,
                    "Order": {"SaleID": sale_id, "SaleOrderNumber": number, "Memo": None, "Status": "AUTHORISED", "Lines": lines, "AdditionalCharges": [],
                              "TotalBeforeTax": total - _money(given.get("Tax", 0)), "Tax": _money(given.get("Tax", 0)), "Total": total},
                }
                if given.get("Invoiced"):
                    sale["_invoice"] = {"Status": "AUTHORISED", "InvoiceNumber": f"INV-{number[3:]}"}
                for i, note in enumerate(given.get("CreditNotes") or []):
                    sale.setdefault("_credit_notes", []).append({
                        "TaskID": str(uuid.uuid4()), "CreditNoteNumber": f"CR-S{data.order_seq:05d}-{i + 1}", "CreditNoteInvoiceNumber": (sale.get("_invoice") or {}).get("InvoiceNumber"),
                        "Memo": note.get("Memo"), "Status": "AUTHORISED", "CreditNoteDate": stamp, "Lines": [], "AdditionalCharges": [], "Refunds": [], "Restock": [],
                        "TotalBeforeTax": _money(note["Total"]), "Tax": Decimal("0"), "Total": _money(note["Total"])})
                data.sales[sale_id] = sale
        return {"sales": len(data.sales)}

    @app.get("/_sandbox/sales")
    def all_sales():
        with data.lock:
            return MoneyJSONResponse({"sales": list(data.sales.values())})

    # -- paging helper ------------------------------------------------------------------------
    def page_of(items: list, request: Request, key: str, build=None):
        try:
            page = int(request.query_params.get("Page", 1))
            limit = int(request.query_params.get("Limit", 100))
        except ValueError:
            return _error(400, "Page and Limit must be integers")
        if page < 1 or limit < 1 or limit > 1000:
            return _error(400, "Page must be >= 1 and Limit between 1 and 1000")
        chunk = items[(page - 1) * limit : page * limit]
        if build is not None:
            chunk = [build(x) for x in chunk]  # only the page's rows are built: 300,000 rows page fast
        return MoneyJSONResponse({"Total": len(items), "Page": page, key: chunk})

    # -- sales --------------------------------------------------------------------------------
    def list_item(sale: dict) -> dict:
        order = sale.get("Order") or {}
        return {
            "SaleID": sale["ID"],
            "OrderNumber": order.get("SaleOrderNumber") or sale["OrderNumber"],
            "Status": sale["Status"],
            "OrderDate": sale["SaleOrderDate"],
            "Updated": sale["LastModifiedOn"],
            "Customer": sale["Customer"],
            "CustomerID": sale["CustomerID"],
            "CustomerReference": sale.get("CustomerReference") or "",
            "CustomerCurrency": sale["CustomerCurrency"],
            "BaseCurrency": sale["BaseCurrency"],
            "ExternalID": sale.get("ExternalID") or "",
            "SourceChannel": sale.get("SourceChannel") or "",
            "OrderStatus": order.get("Status", "NOT AVAILABLE"),
            "QuoteStatus": "SKIPPED" if sale.get("SkipQuote") else "DRAFT",
            "CombinedPickingStatus": "NOT PICKED",
            "CombinedPackingStatus": "NOT PACKED",
            "CombinedShippingStatus": sale.get("_shipping", "NOT SHIPPED"),
            "CombinedInvoiceStatus": _invoice_status(sale),
            "CombinedPaymentStatus": "UNPAID",
            "CombinedTrackingNumbers": None,
            "CreditNoteNumber": None,
            "CreditNoteStatus": "NOT AVAILABLE",
            "FulFilmentStatus": "NOT FULFILLED",
            "InvoiceAmount": order.get("Total", Decimal("0")) if sale.get("_invoice") else Decimal("0"),  # as the spec's examples: 0 until invoiced
            "InvoiceDate": None,
            "InvoiceDueDate": None,
            "InvoiceNumber": None,
            "OrderLocationID": sale["LocationID"],
            "PaidAmount": Decimal("0"),
            "RestockStatus": "NOT AVAILABLE",
            "ShipBy": None,
            "Type": "Simple Sale",
        }

    @app.get(f"{BASE}/saleList")
    def sale_list(request: Request):
        q = request.query_params
        with data.lock:
            sales = list(data.sales.values())
        try:
            if q.get("ExternalID"):
                sales = [s for s in sales if s.get("ExternalID") == q["ExternalID"]]
            if q.get("CreatedSince"):
                since = _parse_time(q["CreatedSince"])
                sales = [s for s in sales if _created_at(s) >= since]
            if q.get("UpdatedSince"):
                since = _parse_time(q["UpdatedSince"])
                sales = [s for s in sales if _parse_time(s["LastModifiedOn"]) >= since]
        except ValueError:
            return _error(400, "CreatedSince/UpdatedSince must be ISO-8601 dates")
        if q.get("Search"):
            term = q["Search"].lower()
            sales = [s for s in sales if term in (s["Customer"] + s["OrderNumber"] + (s.get("ExternalID") or "")).lower()]
        return page_of(sales, request, "SaleList", build=list_item)  # only the page's rows are built

    @app.get(f"{BASE}/sale")
    def get_sale(ID: str):
        with data.lock:
            sale = data.sales.get(ID)
        if sale is None:
            return _error(404, f"Sale {ID} not found")
        return MoneyJSONResponse({k: v for k, v in sale.items() if not k.startswith("_")})

    @app.post(f"{BASE}/sale")
    async def create_sale(request: Request):
        body = await json_body(request) or {}
        customer = body.get("Customer")
        if not customer:
            return _error(400, "Customer is required")
        calculation = body.get("TaxCalculation") or "Exclusive"
        if calculation not in TAX_CALCULATIONS:
            return _error(400, f"TaxCalculation must be Inclusive or Exclusive, not '{calculation}'")
        with data.lock:
            if data.customers and customer not in data.customers:
                return _error(400, f"Customer '{customer}' not found")
            # a sale is in its customer's currency: Cin7 reads every amount of it in that currency
            currency = data.customers[customer]["Currency"] if customer in data.customers else BASE_CURRENCY
            location = body.get("Location")
            if data.locations and location not in data.locations:
                return _error(400, f"Location '{location}' not found")
            tax_rule = body.get("TaxRule")
            if data.tax_rules and tax_rule not in data.tax_rules:
                return _error(400, f"Tax rule '{tax_rule}' not found")
            data.order_seq += 1
            stamp = _cin7_time(now())
            sale_id = str(uuid.uuid4())
            sale = {
                "ID": sale_id,
                "Customer": customer,
                "CustomerID": data.customers[customer]["ID"] if customer in data.customers else str(uuid.uuid5(uuid.NAMESPACE_OID, customer)),
                "Contact": body.get("Contact"),
                "Phone": body.get("Phone"),
                "Email": body.get("Email"),
                "DefaultAccount": "4000",
                "SkipQuote": bool(body.get("SkipQuote")),
                "BillingAddress": body.get("BillingAddress"),
                "ShippingAddress": body.get("ShippingAddress"),
                "ShippingNotes": body.get("ShippingNotes"),
                "BaseCurrency": BASE_CURRENCY,
                "CustomerCurrency": currency,
                "TaxRule": tax_rule,
                "TaxCalculation": calculation,
                "Terms": "30 days",
                "PriceTier": "Tier 1",
                "ShipBy": None,
                "Location": location,
                "LocationID": str(uuid.uuid5(uuid.NAMESPACE_OID, location or "default")),
                "SaleOrderDate": body.get("SaleOrderDate") or stamp,
                "LastModifiedOn": stamp,
                "Note": body.get("Note"),
                "CustomerReference": body.get("CustomerReference"),
                "COGSAmount": Decimal("0"),
                "Status": "ORDERING" if body.get("SkipQuote") else "ESTIMATING",
                "Carrier": body.get("Carrier"),
                "ExternalID": body.get("ExternalID"),
                "SalesRepresentative": body.get("SalesRepresentative"),
                "ServiceOnly": False,
                "SourceChannel": body.get("SourceChannel"),
                "Type": "Simple Sale",
                "AdditionalAttributes": body.get("AdditionalAttributes"),
                "OrderNumber": f"SO-{data.order_seq:05d}",
                "Order": None,
                "_created": stamp,
            }
            data.sales[sale_id] = sale
        return MoneyJSONResponse({k: v for k, v in sale.items() if not k.startswith("_")})

    @app.get(f"{BASE}/sale/order")
    def get_order(SaleID: str):
        with data.lock:
            sale = data.sales.get(SaleID)
        if sale is None:
            return _error(404, f"Sale {SaleID} not found")
        return MoneyJSONResponse(sale.get("Order") or {"SaleID": SaleID, "Status": "NOT AVAILABLE", "Lines": [], "AdditionalCharges": []})

    @app.post(f"{BASE}/sale/order")
    async def post_order(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            sale = data.sales.get(body.get("SaleID") or "")
            if sale is None:
                return _error(400, f"Sale '{body.get('SaleID')}' not found")
            if sale.get("Order") and sale["Order"]["Status"] not in ("DRAFT", "NOT AVAILABLE"):
                return _error(400, f"Order status is {sale['Order']['Status']}: lines can only be posted to a DRAFT or NOT AVAILABLE order")
            if not sale.get("SkipQuote"):
                return _error(400, "Quote status is not AUTHORISED")
            lines, total, tax = [], Decimal("0"), Decimal("0")
            for i, line in enumerate(body.get("Lines") or []):
                sku = line.get("SKU")
                product = data.products.get(sku)
                if product is None:
                    return _error(400, f"Product with SKU '{sku}' not found")
                qty, price = _money(line.get("Quantity", 0)), _money(line.get("Price", 0))
                discount = _money(line.get("Discount", 0))
                if qty <= 0:
                    return _error(400, f"Line {i + 1}: Quantity must be greater than zero")
                if not (0 <= discount <= 100):
                    return _error(400, f"Line {i + 1}: Discount is a percentage between 0 and 100")
                if data.tax_rules and line.get("TaxRule") is not None and line["TaxRule"] not in data.tax_rules:
                    return _error(400, f"Line {i + 1}: Tax rule '{line['TaxRule']}' not found")
                expected = (price * qty * (1 - discount / 100)).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
                if line.get("Total") is not None and _money(line["Total"]) != expected:
                    return _error(400, f"Line {i + 1}: Total {line['Total']} does not match Price x Quantity less Discount ({expected})")
                lines.append({**line, "ProductID": product["ID"], "Name": line.get("Name") or product["Name"], "Total": expected})
                total += expected
                tax += _money(line.get("Tax", 0))
            charges = []
            for charge in body.get("AdditionalCharges") or []:
                if data.tax_rules and charge.get("TaxRule") is not None and charge["TaxRule"] not in data.tax_rules:
                    return _error(400, f"Additional charge '{charge.get('Description')}': Tax rule '{charge['TaxRule']}' not found")
                amount = (_money(charge.get("Price", 0)) * _money(charge.get("Quantity", 1))).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
                charges.append({**charge, "Total": amount})
                total += amount
                tax += _money(charge.get("Tax", 0))
            if sale["TaxCalculation"] == "Exclusive":
                before_tax, total = total, total + tax  # tax comes on top of exclusive prices
            else:
                before_tax = total - tax  # inclusive prices already hold their tax
            if body.get("Tax") is not None and _money(body["Tax"]) != tax:
                return _error(400, f"Tax {body['Tax']} does not match the lines' and charges' tax ({tax})")
            if body.get("Total") is not None and _money(body["Total"]) != total:
                return _error(400, f"Total {body['Total']} does not match the lines and charges ({total}, tax {sale['TaxCalculation'].lower()})")
            status = body.get("Status") or "DRAFT"
            if status not in ("DRAFT", "AUTHORISED"):
                return _error(400, "Status must be DRAFT or AUTHORISED")
            order = {
                "SaleID": sale["ID"],
                "SaleOrderNumber": sale["OrderNumber"],
                "Memo": body.get("Memo"),
                "Status": status,
                "Lines": lines,
                "AdditionalCharges": charges,
                "TotalBeforeTax": before_tax,
                "Tax": tax,
                "Total": total,
            }
            sale["Order"] = order
            sale["Status"] = "ORDERED" if status == "AUTHORISED" else sale["Status"]
            sale["LastModifiedOn"] = _cin7_time(now())
        if status == "AUTHORISED":
            data.hooks.push({"Type": "Sale/OrderAuthorised", "SaleID": sale["ID"], "SaleOrderNumber": order["SaleOrderNumber"]})
        return MoneyJSONResponse(order)

    # -- fulfilments ----------------------------------------------------------------------------
    @app.post("/_sandbox/fulfilments")
    async def add_fulfilment(request: Request):
        """Pick, pack and ship in the warehouse, in one go: {"ExternalID" or "SaleID",
        "pack": [{"SKU", "Quantity", "Box"}], "ship": [{"Box", "Carrier", "TrackingNumber", "ShipmentDate"?}]}"""
        body = await json_body(request) or {}
        with data.lock:
            sale = data.sales.get(body.get("SaleID") or "") or next((x for x in data.sales.values() if x.get("ExternalID") == body.get("ExternalID")), None)
            if sale is None:
                return _error(404, "sale not found")
            fulfilments = sale.setdefault("_fulfilments", [])
            stamp = _cin7_time(now())
            pack = [{"SKU": l["SKU"], "Name": data.products.get(l["SKU"], {}).get("Name"), "ProductID": data.products.get(l["SKU"], {}).get("ID"),
                     "Quantity": _money(l["Quantity"]), "Box": l.get("Box"), "Location": sale.get("Location"), "LocationID": sale.get("LocationID"),
                     "BatchSN": None, "ExpiryDate": None} for l in body.get("pack", [])]
            ship = [{"ID": str(uuid.uuid4()), "ShipmentDate": l.get("ShipmentDate") or stamp, "Carrier": l.get("Carrier"), "Boxes": l.get("Box"),
                     "TrackingNumber": l.get("TrackingNumber"), "TrackingURL": None, "IsShipped": l.get("IsShipped", True)} for l in body.get("ship", [])]
            fulfilment = {
                "TaskID": str(uuid.uuid4()),
                "FulfillmentNumber": len(fulfilments) + 1,
                "FulFilmentStatus": "FULFILLED",
                "LinkedInvoiceNumber": None,
                "Pick": {"Status": "AUTHORISED", "Lines": [{k: v for k, v in l.items() if k != "Box"} for l in pack]},
                "Pack": {"Status": "AUTHORISED", "Lines": pack},
                "Ship": {"Status": "AUTHORISED" if ship else "NOT AVAILABLE", "RequireBy": None, "ShippingAddress": sale.get("ShippingAddress"), "ShippingNotes": None, "Lines": ship},
            }
            fulfilments.append(fulfilment)
            sale["LastModifiedOn"] = stamp
            sale["_shipping"] = "SHIPPED"
        if ship:
            data.hooks.push({"Type": "Sale/ShipmentAuthorised", "SaleID": sale["ID"], "TaskID": fulfilment["TaskID"]})
        return MoneyJSONResponse(fulfilment)

    @app.get(f"{BASE}/sale/fulfilment")
    def get_fulfilments(SaleID: str):
        with data.lock:
            sale = data.sales.get(SaleID)
            if sale is None:
                return _error(404, f"Sale {SaleID} not found")
            return MoneyJSONResponse({"SaleID": SaleID, "Fulfilments": list(sale.get("_fulfilments", []))})

    # -- invoices and credit notes (shapes from the spec's model tables; it gives no schema) ---
    @app.post("/_sandbox/invoice")
    async def invoice_sale(request: Request):
        """Invoice a sale, as finance would in Cin7: {"ExternalID" or "SaleID"}."""
        body = await json_body(request) or {}
        with data.lock:
            sale = data.sales.get(body.get("SaleID") or "") or next((x for x in data.sales.values() if x.get("ExternalID") == body.get("ExternalID")), None)
            if sale is None:
                return _error(404, "sale not found")
            sale["_invoice"] = {"Status": "AUTHORISED", "InvoiceNumber": f"INV-{sale['OrderNumber'][3:]}"}
        return sale["_invoice"]

    @app.post(f"{BASE}/sale/creditnote")
    async def create_credit_note(request: Request):
        body = await json_body(request) or {}
        with data.lock:
            sale = data.sales.get(body.get("SaleID") or "")
            if sale is None:
                return _error(400, f"Sale '{body.get('SaleID')}' not found")
            if (sale.get("_invoice") or {}).get("Status") not in ("AUTHORISED", "PAID"):
                return _error(400, "Credit note can be created only when Invoice status is AUTHORISED or PAID")
            lines, total = [], Decimal("0")
            for i, line in enumerate(body.get("Lines") or []):
                if line.get("SKU") not in data.products:
                    return _error(400, f"Product with SKU '{line.get('SKU')}' not found")
                amount = (_money(line.get("Price", 0)) * _money(line.get("Quantity", 0))).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
                if line.get("Total") is not None and _money(line["Total"]) != amount:
                    return _error(400, f"Line {i + 1}: Total {line['Total']} does not match Price x Quantity ({amount})")
                lines.append({**line, "Total": amount})
                total += amount
            notes = sale.setdefault("_credit_notes", [])
            note = {
                "TaskID": str(uuid.uuid4()),
                "CreditNoteNumber": f"CR-{sum(len(x.get('_credit_notes', [])) for x in data.sales.values()):05d}",
                "CreditNoteInvoiceNumber": sale["_invoice"]["InvoiceNumber"],
                "Memo": body.get("Memo"),
                "Status": body.get("Status") or "DRAFT",
                "CreditNoteDate": body.get("CreditNoteDate") or _cin7_time(now()),
                "Lines": lines,
                "AdditionalCharges": body.get("AdditionalCharges") or [],
                "Refunds": body.get("Refunds") or [],
                "Restock": body.get("Restock") or [],
                "TotalBeforeTax": total,
                "Tax": _money(body.get("Tax", 0)),
                "Total": total,
            }
            notes.append(note)
            sale["LastModifiedOn"] = _cin7_time(now())
        return MoneyJSONResponse(note)

    @app.get(f"{BASE}/sale/creditnote")
    def get_credit_notes(SaleID: str):
        with data.lock:
            sale = data.sales.get(SaleID)
            if sale is None:
                return _error(404, f"Sale {SaleID} not found")
            return MoneyJSONResponse({"SaleID": SaleID, "CreditNotes": list(sale.get("_credit_notes", []))})

    # -- journals ------------------------------------------------------------------------------
    @app.post(f"{BASE}/journal")
    async def post_journal(request: Request):
        body = await json_body(request) or {}
        lines = body.get("Lines") or []
        if not lines:
            return _error(400, "Journal must have lines")
        for i, line in enumerate(lines):
            if not line.get("Debit") or not line.get("Credit"):
                return _error(400, f"Line {i + 1}: Debit and Credit account codes are required")
            if _money(line.get("Amount", 0)) <= 0:
                return _error(400, f"Line {i + 1}: Amount must be positive")
        with data.lock:
            journal = {
                "TaskID": str(uuid.uuid4()),
                "JournalNumber": f"JN-{len(data.journals) + 1:05d}",
                "Status": body.get("Status") or "DRAFT",
                "EffectiveDate": body.get("EffectiveDate") or _cin7_time(now()),
                "Narration": body.get("Narration"),
                "Notes": body.get("Notes"),
                "Currency": body.get("Currency") or "AUD",
                "CurrencyConversionRate": body.get("CurrencyConversionRate") or Decimal("1"),
                "Lines": [{**l, "Amount": _money(l["Amount"]), "BaseAmount": _money(l.get("BaseAmount") or l["Amount"])} for l in lines],
                "Attachments": [],
            }
            data.journals.append(journal)
        return MoneyJSONResponse({"Journals": [journal]})

    @app.get(f"{BASE}/journal")
    def list_journals(request: Request):
        q = request.query_params
        with data.lock:
            items = list(data.journals)
        if q.get("Search"):
            items = [j for j in items if q["Search"].lower() in ((j.get("Narration") or "") + (j.get("Notes") or "") + " ".join(l.get("Reference") or "" for l in j["Lines"])).lower()]
        if q.get("TaskID"):
            items = [j for j in items if j["TaskID"] == q["TaskID"]]
        return page_of(items, request, "Journals")

    @app.get("/_sandbox/journals")
    def all_journals():
        with data.lock:
            return MoneyJSONResponse({"journals": list(data.journals)})

    # -- customers ----------------------------------------------------------------------------
    @app.get(f"{BASE}/customer")
    def customers(request: Request):
        """Filters ID and Name (Name matches the start of a name, ignoring case: our reading of
        Cin7's search); deprecated customers only with IncludeDeprecated=true."""
        q = request.query_params
        with data.lock:
            items = list(data.customers.values())
        if q.get("ID"):
            items = [c for c in items if c["ID"] == q["ID"]]
        if q.get("Name"):
            items = [c for c in items if c["Name"].lower().startswith(q["Name"].lower())]
        if q.get("IncludeDeprecated", "false").lower() != "true":
            items = [c for c in items if c["Status"] == "Active"]
        return page_of(items, request, "CustomerList")

    # -- products and stock -------------------------------------------------------------------
    @app.get(f"{BASE}/product")
    def products(request: Request):
        q = request.query_params
        with data.lock:
            items = list(data.products.values())
        if q.get("ID"):
            items = [p for p in items if p["ID"] == q["ID"]]
        if q.get("Sku"):
            items = [p for p in items if p["SKU"] == q["Sku"]]
        if q.get("Name"):
            items = [p for p in items if q["Name"].lower() in (p.get("Name") or "").lower()]
        if q.get("ModifiedSince"):
            try:
                since = _parse_time(q["ModifiedSince"])
            except ValueError:
                return _error(400, "ModifiedSince must be an ISO 8601 date")
            items = [p for p in items if _parse_time(p["LastModifiedOn"]) >= since]
        if (q.get("IncludeDeprecated") or "false").lower() != "true":
            items = [p for p in items if p.get("Status") != "Deprecated"]  # the spec: only active products unless asked
        return page_of(items, request, "Products")

    @app.post("/_sandbox/products")
    async def change_products(request: Request):
        """Products created or changed in Cin7 (by SKU; `Status: Deprecated` takes one out of use)."""
        body = await json_body(request) or {}
        return MoneyJSONResponse({"products": data.put_products(body.get("products", []))})

    @app.get(f"{BASE}/ref/productavailability")
    def availability(request: Request):
        q = request.query_params
        with data.lock:
            raw = list(data.availability.values())
            products = data.products
        if q.get("Sku"):
            raw = [a for a in raw if a["SKU"] == q["Sku"]]
        if q.get("Location"):
            raw = [a for a in raw if a["Location"] == q["Location"]]

        def row(a: dict) -> dict:
            product = products.get(a["SKU"], {})
            on_hand, allocated = _money(a.get("OnHand", 0)), _money(a.get("Allocated", 0))
            return {
                "ID": product.get("ID"),
                "SKU": a["SKU"],
                "Name": product.get("Name", a["SKU"]),
                "Barcode": product.get("Barcode"),
                "Location": a["Location"],
                "Bin": a.get("Bin"),
                "Batch": a.get("Batch"),
                "ExpiryDate": None,
                "OnHand": on_hand,
                "Allocated": allocated,
                "Available": on_hand - allocated,
                "OnOrder": _money(a.get("OnOrder", 0)),
                "StockOnHand": on_hand,
                "InTransit": _money(a.get("InTransit", 0)),
            }

        return page_of(raw, request, "ProductAvailabilityList", build=row)

    return app
