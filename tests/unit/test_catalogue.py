"""catalogue_out's pure parts: what the factory asks of each side (create-and-check or check-only
by declared capability, unpublish only where the channel can), the pairing's `catalogue:` section,
every declared catalogue capability implemented, the gate's checks, and the masters' products
read into the canonical model (Cin7 and Centra)."""

from __future__ import annotations

import inspect
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from commerce_sync import ports
from commerce_sync.factory import check_capabilities
from commerce_sync.models import CatalogueItem, CatalogueProduct, ItemPrice, TranslationError
from commerce_sync.pairing import PairingError, parse_pairing
from commerce_sync.systems import SYSTEMS, capabilities, system_module
from commerce_sync.systems.centra import CentraMaster
from commerce_sync.systems.cin7_core import Cin7CoreMaster

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


def _pairing(master: str, channel: str, **catalogue):
    return parse_pairing("test_pairing", {
        "channel": {"system": channel, "connection": "c"},
        "master": {"system": master, "connection": "m"},
        "policies": {"currencies": ["GBP"], "tax_rule": "VAT", "location": "Main", "customer": "Someone"},
        "flows": {"catalogue_out": {"schedule": None}},
        "catalogue": {"fields": ["sku", "name"], **catalogue},
    })


@pytest.mark.parametrize("channel", ["commercetools", "sfcc", "marketplacer"])
def test_every_catalogue_channel_gets_the_flow_whether_it_can_write_products_or_only_say_what_it_sells(channel):
    check_capabilities(_pairing("cin7_core", channel), "catalogue_out")
    check_capabilities(_pairing("centra", channel), "catalogue_out")
    assert (ports.CATALOGUE_WRITE in capabilities(channel)) == (channel != "sfcc")  # SFCC: the check alone


def test_unpublishing_orphans_is_asked_only_of_a_channel_that_can_take_listings_off_sale():
    check_capabilities(_pairing("cin7_core", "commercetools", orphans="unpublish"), "catalogue_out")
    with pytest.raises(PairingError, match="channel \\(sfcc\\) to offer catalogue_unpublish"):
        check_capabilities(_pairing("cin7_core", "sfcc", orphans="unpublish"), "catalogue_out")
    with pytest.raises(PairingError, match="channel \\(mirakl\\) to offer catalogue_read"):  # Mirakl offers list no products here
        check_capabilities(_pairing("cin7_core", "mirakl"), "catalogue_out")


def test_the_catalogue_section_is_required_and_owns_the_sku():
    data = {"channel": {"system": "commercetools", "connection": "c"}, "master": {"system": "cin7_core", "connection": "m"},
            "policies": {"currencies": ["GBP"], "tax_rule": "VAT", "location": "Main", "customer": "x"}, "flows": {"catalogue_out": {"schedule": None}}}
    with pytest.raises(PairingError, match="catalogue_out needs a `catalogue:` section"):
        parse_pairing("p", data)
    with pytest.raises(PairingError, match="must include sku"):
        parse_pairing("p", {**data, "catalogue": {"fields": ["name"]}})
    with pytest.raises(PairingError, match="price_list"):
        parse_pairing("p", {**data, "catalogue": {"fields": ["sku", "price"]}})
    with pytest.raises(PairingError, match="orphans"):
        parse_pairing("p", {**data, "catalogue": {"fields": ["sku"], "orphans": "delete"}})


PROTOCOLS = {ports.CATALOGUE: ports.CatalogueMaster, ports.CATALOGUE_READ: ports.CatalogueReader, ports.CATALOGUE_WRITE: ports.CatalogueWriter,
             ports.CATALOGUE_UNPUBLISH: ports.CatalogueUnpublisher}


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_a_declared_catalogue_capability_is_implemented(name):
    module = system_module(name)
    adapters = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__ and isinstance(getattr(c, "name", None), str)]
    for capability in capabilities(name) & set(PROTOCOLS):
        wanted = {m for m in vars(PROTOCOLS[capability]) if not m.startswith("_")}
        assert any(wanted <= set(dir(cls)) for cls in adapters), f"{name} declares {capability} but implements none of {sorted(wanted)}"


# -- the gate ----------------------------------------------------------------------------------------
def _product(ref: str, *items: CatalogueItem, name: str | None = "Tee", category: str | None = "Tops") -> CatalogueProduct:
    return CatalogueProduct(product_ref=ref, name=name, category=category, items=list(items), modified_at=NOW)


def _item(sku: str, **kw) -> CatalogueItem:
    return CatalogueItem(sku=sku, prices=[ItemPrice(price_list="AUD list", amount=Decimal("45.00"), currency="AUD")], **kw)


def test_the_gate_holds_a_product_for_what_its_owned_fields_lack_and_names_the_value():
    from commerce_sync.gates.catalogue import gate_catalogue

    products = {
        "good": _product("good", _item("T-M", barcode="4006381333931"), _item("T-L")),
        "no-sku": _product("no-sku", _item("  ")),
        "twice-a": _product("twice-a", _item("DUP")),
        "twice-b": _product("twice-b", _item("DUP")),
        "bad-ean": _product("bad-ean", _item("E-1", barcode="4006381333932")),  # one digit off
        "no-price": _product("no-price", CatalogueItem(sku="P-1")),
        "unmapped": _product("unmapped", _item("U-1"), category="Knitwear"),
        "nameless": _product("nameless", _item("N-1", name=None), name=" "),
    }
    result = gate_catalogue(products, unreadable={"junk": [{"check": "payload_readable", "detail": "no SKU"}]},
                            fields=["sku", "name", "barcode", "price", "category"], price_list="AUD list", categories={"Tops"}, master="Centra",
                            channel="Marketplacer", max_bad_share=Decimal("1"), min_records_for_share=100, known_bad=set())
    assert result.passed == ["good"]
    checks = {k: {r["check"] for r in v} for k, v in result.failed.items()}
    assert checks == {"junk": {"payload_readable"}, "no-sku": {"sku_present"}, "twice-a": {"sku_unique"}, "twice-b": {"sku_unique"},
                      "bad-ean": {"barcode_gtin"}, "no-price": {"price_present"}, "unmapped": {"category_mapped"}, "nameless": {"name_present"}}
    (unmapped,) = result.failed["unmapped"]
    assert "Knitwear" in unmapped["detail"] and "categories.csv" in unmapped["detail"]
    (ean,) = result.failed["bad-ean"]
    assert "4006381333932" in ean["detail"]


def test_fields_the_master_does_not_own_are_not_checked():
    from commerce_sync.gates.catalogue import gate_catalogue

    loose = {"p": _product("p", CatalogueItem(sku="X-1", barcode="123"), category=None, name=None)}
    result = gate_catalogue(loose, unreadable={}, fields=["sku"], price_list=None, categories=set(), master="Cin7 Core", channel="SFCC",
                            max_bad_share=Decimal("0.5"), min_records_for_share=10, known_bad=set())
    assert result.passed == ["p"] and result.failed == {}


# -- the masters' products ---------------------------------------------------------------------------
CIN7 = Cin7CoreMaster(None)


def test_a_cin7_product_is_one_product_of_one_sku_with_weight_0_as_not_set_and_deprecated_as_discontinued():
    raw = {"ID": "c470b235", "SKU": "Bread Test", "Name": "Baked Bread Test", "Barcode": "4006381333931", "Weight": Decimal("0"), "WeightUnits": "kg",
           "Category": "Other", "Brand": None, "Status": "Active", "LastModifiedOn": "2017-12-26T07:36:13.183Z", "AdditionalAttribute1": "x"}
    product = CIN7.to_catalogue_product(raw)
    assert (product.product_ref, product.name, product.category, product.active) == ("c470b235", "Baked Bread Test", "Other", True)
    assert product.attributes == {"Category": "Other", "AdditionalAttribute1": "x"}
    (item,) = product.items
    assert (item.sku, item.barcode, item.weight) == ("Bread Test", "4006381333931", None)
    assert product.modified_at == datetime(2017, 12, 26, 7, 36, 13, 183000, tzinfo=timezone.utc)
    heavy = CIN7.to_catalogue_product({**raw, "Weight": Decimal("1.25"), "Status": "Deprecated"})
    assert heavy.items[0].weight == Decimal("1.25") and heavy.active is False


@pytest.mark.parametrize("change", [{"SKU": " "}, {"SKU": None}, {"Weight": Decimal("-1")}, {"LastModifiedOn": None}, {"Weight": "heavy"}])
def test_an_unreadable_cin7_product_is_a_translation_error_naming_it(change):
    raw = {"ID": "p1", "SKU": "A-1", "Name": "A", "Weight": Decimal("1"), "Status": "Active", "LastModifiedOn": "2026-11-01T00:00:00Z", **change}
    with pytest.raises(TranslationError) as caught:
        CIN7.to_catalogue_product(raw)
    assert caught.value.record_key == "p1"


def test_a_centra_product_carries_its_folder_brand_and_attributes_and_its_sizes_as_items():
    raw = {"id": 7, "name": "Tee", "productNumber": "CT-TEE-", "status": "ACTIVE", "updatedAt": "2026-11-01T12:00:00+00:00",
           "brand": {"name": "Castore"}, "folder": {"name": "Tops"},
           "attributes": [{"type": {"name": "material"}, "elements": [{"key": "text", "value": "Cotton"}]}, {"type": {"name": "empty"}, "elements": [{"key": "text", "value": ""}]}],
           "variants": [{"id": 2, "name": "Black", "variantNumber": "BLK-",
                         "prices": [{"pricelist": {"name": "Marketplacer AUD"}, "price": {"value": Decimal("45"), "currency": {"code": "AUD"}}}],
                         "productSizes": [{"id": 3, "SKU": "CT-TEE-BLK-M", "sizeNumber": "M", "EAN": "7350000000016", "size": {"name": "M"}}]}]}
    product = CentraMaster(None, sku_form="composite").to_catalogue_product(raw)
    assert (product.product_ref, product.category, product.active, product.modified_at) == ("product:7", "Tops", True, NOW)
    assert product.attributes == {"material": "Cotton", "brand": "Castore", "folder": "Tops"}
    (item,) = product.items
    assert (item.sku, item.name, item.barcode) == ("CT-TEE-BLK-M", "Tee Black M", "7350000000016")
    assert item.prices == [ItemPrice(price_list="Marketplacer AUD", amount=Decimal("45.00"), currency="AUD")]
    assert item.attributes == {"variant_name": "Black", "variant_number": "BLK-", "size": "M", "size_number": "M"}
    assert CentraMaster(None).to_catalogue_product({**raw, "status": "INACTIVE"}).active is False
