"""catalogue_out end to end, one flow for the three pairings whose master owns the product record:
- cin7_commercetools (create and check): a new Cin7 SKU becomes an unpublished commercetools
  product holding only Cin7's fields; ecommerce's enrichment survives Cin7's changes; a published
  variant without a Cin7 SKU is e-mailed once and held, and taken off sale with `unpublish`; a
  create whose answer was lost is made once;
- cin7_sfcc (check only: SFCC declares CATALOGUE_READ alone): a SKU orderable on a site without a
  Cin7 SKU is e-mailed and held, and nothing is written to SFCC;
- centra_marketplacer (create and check): a product refused for a category attribute the mapping
  lacks is held with one e-mail naming the product, the field and Marketplacer's message; fixing
  the mapping and replaying publishes it once; a Centra price change reaches the advert.

Real HTTP to the emulators, the ledger in PostgreSQL, e-mail through aiosmtpd; Airflow runs the
DAG (dag.test) for a first run, the steps are called directly where a failure must land between
two of them."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import yaml

from commerce_sync.errors import TransientError
from commerce_sync.flows import catalogue_out
from commerce_sync.ledger import Ledger
from commerce_sync.runtime import FlowContext
from tests.conftest import copy_pairings
from tests.e2e.conftest import ROOT
from tests.e2e.ct_helpers import PAIRING as CT, dagbag, storefront  # noqa: F401 - storefront is a fixture
from tests.reliability.matrix import run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.airflow, pytest.mark.pg]
FLOW = "catalogue_out"
CHECK = catalogue_out.CHECK_FLOW
APPAREL = {"key": "apparel", "name": "Apparel", "description": "Clothing",
           "attributes": [{"name": "ean", "type": {"name": "text"}}, {"name": "weight", "type": {"name": "number"}}, {"name": "colour", "type": {"name": "text"}}]}


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def window() -> tuple[datetime, datetime]:
    t = now()
    return t - timedelta(minutes=30), t + timedelta(minutes=1)


def run_dag(pairing: str, start: datetime, end: datetime) -> bool:
    """The pairing's catalogue_out DAG through Airflow (dag.test), from the DAG folder parsed once."""
    dag = dagbag().get_dag(f"{pairing}__{FLOW}")
    return dag.test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()}, logical_date=end).state == "success"


def held(ledger_url: str, pairing: str, flow: str) -> dict[str, list[dict]]:
    ledger = Ledger.from_url(ledger_url)
    try:
        return {q.record_key: q.reasons for q in ledger.open_quarantine(pairing, flow)}
    finally:
        ledger.dispose()


def mails_to(mailbox, address: str, subject_part: str) -> list:
    return [m for m in mailbox.messages if address in m["To"] and subject_part in m["Subject"]]


def body_of(message) -> str:
    parsed = email.message_from_string(message.as_string())
    parts = [p for p in parsed.walk() if p.get_content_type() == "text/html"]
    return (parts[0] if parts else parsed).get_payload(decode=True).decode()


def private_pairings(tmp_path, monkeypatch, key: str, **catalogue) -> None:
    """This test's copy of the pairing files, with `catalogue` settings laid over the key's."""
    target = tmp_path / "pairings"
    if not target.exists():
        copy_pairings(target)
    path = target / f"{key}.yaml"
    data = yaml.safe_load(path.read_text())
    data["catalogue"].update(catalogue)
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(target))


# -- cin7_commercetools: create and check ----------------------------------------------------------
def ct_products(sf) -> dict[str, dict]:
    """Every commercetools product by its master variant's SKU."""
    items = requests.get(f"{sf.ct}/_sandbox/products", timeout=10).json(parse_float=Decimal)["items"]
    return {p["masterData"]["staged"]["masterVariant"].get("sku"): p for p in items}


def test_a_new_cin7_sku_appears_unpublished_with_only_cin7_fields_and_an_orphan_is_reported_then_unpublished(storefront, pg_url, tmp_path, monkeypatch):
    sf = storefront
    sf.seed("product-types", [APPAREL])
    # already on the storefront: a Cin7 SKU ecommerce has enriched and published, and a variant Cin7 has never heard of
    sf.seed("products", [
        {"productType": {"typeId": "product-type", "key": "apparel"}, "name": {"en-GB": "Tee black M"}, "slug": {"en-GB": "tee-black-m"},
         "description": {"en-GB": "Ecommerce's copy"}, "masterVariant": {"sku": "CS-TEE-BLK-M", "attributes": [{"name": "colour", "value": "black"}]}, "publish": True},
        {"productType": {"typeId": "product-type", "key": "apparel"}, "name": {"en-GB": "Ghost tee"}, "slug": {"en-GB": "ghost"},
         "masterVariant": {"sku": "CT-GHOST-1"}, "publish": True},
    ])
    sf.in_cin7("products", {"products": [{"SKU": "CS-HOOD-GRY-M", "Name": "Hoodie grey M", "Barcode": "5012345678016", "Weight": "0.45",
                                          "Description": "Cin7's internal description", "Category": "Hoodies", "PriceTier1": "65.00"}]})

    start, end = window()
    assert run_dag(CT, start, end)

    products = ct_products(sf)
    hoodie = products["CS-HOOD-GRY-M"]
    assert hoodie["masterData"]["published"] is False  # for ecommerce to enrich first
    staged = hoodie["masterData"]["staged"]
    assert staged["name"] == {"en-GB": "Hoodie grey M"}
    assert sorted((a["name"], a["value"]) for a in staged["masterVariant"]["attributes"]) == [("ean", "5012345678016"), ("weight", Decimal("0.45"))]
    assert "description" not in staged and staged["categories"] == [] and staged["masterVariant"]["prices"] == []  # Cin7's description, category and price stay in Cin7
    # every other Cin7 SKU was made too (unpublished); the one already there was found, not made twice
    assert set(products) == {"CS-HOOD-GRY-M", "CS-TEE-BLK-M", "CT-GHOST-1", "CS-TEE-BLK-L", "CS-CAP-NVY", "CS-SOCK-WHT"}
    tee = products["CS-TEE-BLK-M"]["masterData"]
    assert tee["published"] and tee["staged"]["description"] == {"en-GB": "Ecommerce's copy"}

    # the orphan: held, one e-mail to ecommerce, still on sale (the pairing says `report`)
    assert list(held(pg_url, CT, CHECK)) == ["CT-GHOST-1"]
    (mail,) = mails_to(sf.mailbox, "ecommerce@example.com", "without a Cin7 Core SKU")
    assert "CT-GHOST-1" in body_of(mail) and "CS-TEE-BLK-M" not in body_of(mail)
    assert products["CT-GHOST-1"]["masterData"]["published"] is True
    assert held(pg_url, CT, FLOW) == {}

    # Cin7 renames the hoodie and changes its barcode; ecommerce has written a description and a colour meanwhile
    hoodie_id = hoodie["id"]
    version = sf.api("GET", f"/products/{hoodie_id}")["version"]
    sf.api("POST", f"/products/{hoodie_id}", {"version": version, "actions": [{"action": "setAttribute", "sku": "CS-HOOD-GRY-M", "name": "colour", "value": "grey"}]})
    sf.in_cin7("products", {"products": [{"SKU": "CS-HOOD-GRY-M", "Name": "Hoodie heather grey M", "Barcode": "5012345678023"}]})
    posts = len(sf.calls("POST", "/products"))
    start, end = window()
    assert run_flow(CT, FLOW, "second", start, end) == "success"
    staged = ct_products(sf)["CS-HOOD-GRY-M"]["masterData"]["staged"]
    assert staged["name"] == {"en-GB": "Hoodie heather grey M"}
    assert sorted((a["name"], a["value"]) for a in staged["masterVariant"]["attributes"]) == [("colour", "grey"), ("ean", "5012345678023"), ("weight", Decimal("0.45"))]
    creates = [c for c in sf.calls("POST", "/products")[posts:] if c["path"].endswith("/products")]
    assert creates == []  # changed only, nothing made again
    assert len(mails_to(sf.mailbox, "ecommerce@example.com", "without a Cin7 Core SKU")) == 1  # the orphan is not e-mailed again

    # the pairing now says `unpublish`: the orphan is taken off sale, and stays held for ecommerce
    private_pairings(tmp_path, monkeypatch, CT, orphans="unpublish")
    assert run_flow(CT, FLOW, "third", *window()) == "success"
    assert ct_products(sf)["CT-GHOST-1"]["masterData"]["published"] is False
    (reason,) = held(pg_url, CT, CHECK)["CT-GHOST-1"]
    assert "taken off sale" in reason["detail"] and "CT-GHOST-1" in reason["detail"]
    assert run_flow(CT, FLOW, "fourth", *window()) == "success"
    assert list(held(pg_url, CT, CHECK)) == ["CT-GHOST-1"]  # off sale, not forgotten

    # the SKU reaches Cin7: the hold is resolved
    sf.in_cin7("products", {"products": [{"SKU": "CT-GHOST-1", "Name": "Ghost tee"}]})
    assert run_flow(CT, FLOW, "fifth", *window()) == "success"
    assert held(pg_url, CT, CHECK) == {}


def test_a_product_create_whose_answer_was_lost_is_made_once(storefront, pg_url):
    sf = storefront
    sf.seed("product-types", [APPAREL])
    assert run_flow(CT, FLOW, "first", *window()) == "success"  # the seeded catalogue
    sf.in_cin7("products", {"products": [{"SKU": "CS-BEANIE", "Name": "Beanie", "Barcode": "5012345678030"}]})
    requests.post(f"{sf.ct}/_sandbox/faults", json={"reset_connection": {"path": "/products", "method": "POST", "when": "after_commit", "count": 1}},
                  timeout=10).raise_for_status()
    with FlowContext.for_pairing(CT) as ctx:
        catalogue_out.extract(ctx, "lost", full=False)
        gated = catalogue_out.gate(ctx, "lost")
        assert gated["valid"] == 5  # the beanie, and the four already made (read again within the overlap)
        with pytest.raises(TransientError) as err:
            catalogue_out.load(ctx, "lost", gated)
        assert err.value.maybe_committed  # not sent again blindly
    assert "CS-BEANIE" in ct_products(sf)
    with FlowContext.for_pairing(CT) as ctx:  # the task's retry, in a fresh process
        counts = catalogue_out.load(ctx, "lost", gated)
    assert (counts["created"], counts["recovered"], counts["unchanged"]) == (0, 1, 4)
    assert run_flow(CT, FLOW, "later", *window()) == "success"
    beanies = [p for sku, p in ct_products(sf).items() if sku == "CS-BEANIE"]
    assert len(beanies) == 1 and len([c for c in sf.calls("POST") if c["path"].endswith("/products")]) == 5  # four at first, one for the beanie


def test_the_daily_whole_read_heals_the_sku_table_and_sends_the_channel_only_what_changed_or_never_arrived(storefront, pg_url):
    sf = storefront
    sf.seed("product-types", [APPAREL])
    assert run_flow(CT, FLOW, "first", *window()) == "success"
    ledger = Ledger.from_url(pg_url)
    try:
        ledger.record_master_skus(CT, [{"sku": "GONE-1", "product_ref": "deleted-in-cin7", "active": True, "modified_at": None}], "older-run")
        # as if the last run had read up to an hour from now: every product is older than the watermark
        ledger.set_watermark(CT, FLOW, catalogue_out.WATERMARK, (now() + timedelta(hours=1)).isoformat())
    finally:
        ledger.dispose()
    sf.in_cin7("products", {"products": [{"SKU": "CS-NEW-FULL", "Name": "Made since"}]})  # older than the watermark too, but never on the channel
    with FlowContext.for_pairing(CT) as ctx:
        counts = catalogue_out.extract(ctx, "daily", full=True)
        skus = ctx.ledger.master_skus(CT)
    assert counts["full"] and counts["skus"] == 5 and counts["forgotten"] == 1 and "GONE-1" not in skus
    assert counts["extracted"] == 1  # the four already on the channel and unchanged are not sent again
    with FlowContext.for_pairing(CT) as ctx:
        staged = {r.record_key for r in ctx.ledger.staged(CT, FLOW, "daily")} - {catalogue_out.BATCH_KEY}
        assert [ctx.master.to_catalogue_product(r.payload).items[0].sku for r in ctx.ledger.staged(CT, FLOW, "daily") if r.record_key in staged] == ["CS-NEW-FULL"]


# -- cin7_sfcc: check only -----------------------------------------------------------------------
def test_sfcc_gets_the_check_only_and_a_sku_orderable_without_a_cin7_sku_is_reported_before_it_sells(sfcc, pg_url):
    from tests.e2e.conftest import CIN7_PRODUCTS

    sfcc.post("/_sandbox/products", [{"id": p["SKU"], "online": {"UK": True}} for p in CIN7_PRODUCTS] + [
        {"id": "SF-ONLY-1", "online": {"UK": True, "EU": True}},  # orderable, but Cin7 has no such SKU
        {"id": "SF-OFFLINE", "online": {"UK": False}},  # not orderable anywhere: nobody can buy it
        {"id": "SF-MASTER", "online": {"UK": True}, "type": "master"},  # a master product is not sold itself
    ])
    start, end = window()
    assert run_dag("cin7_sfcc", start, end)

    assert list(held(pg_url, "cin7_sfcc", CHECK)) == ["SF-ONLY-1"]
    (mail,) = mails_to(sfcc.mailbox, "ecommerce@example.com", "without a Cin7 Core SKU")
    assert "SF-ONLY-1" in body_of(mail) and "EU, UK" in body_of(mail)
    writes = [c for c in sfcc.calls() if c["method"] != "GET" and "product-search" not in c["path"] and "oauth2" not in c["path"]]
    assert writes == []  # SFCC's products are SFCC's: nothing is written there

    # the SKU is created in Cin7: the next run resolves the hold and e-mails nobody
    requests.post(f"{sfcc.cin7}/_sandbox/products", json={"products": [{"SKU": "SF-ONLY-1", "Name": "Only on SFCC"}]}, timeout=10).raise_for_status()
    assert run_flow("cin7_sfcc", FLOW, "second", *window()) == "success"
    assert held(pg_url, "cin7_sfcc", CHECK) == {}
    assert len(mails_to(sfcc.mailbox, "ecommerce@example.com", "without a Cin7 Core SKU")) == 1


# -- centra_marketplacer: create and check through the category mapping ----------------------------
@pytest.fixture
def centra_world(pg_url, mappings, mailbox, monkeypatch, airflow_db, tmp_path):
    from commerce_sync import airflow_settings
    from commerce_sync.http import RateLimiter
    from sandbox import centra, marketplacer
    from sandbox.demo_seed import CENTRA_SEED, MARKETPLACER_TAXONOMY
    from sandbox.server import start_server

    c = start_server(centra.create_app())
    m = start_server(marketplacer.create_app(api_key="demo-marketplacer-key"))
    try:
        requests.post(f"{c.url}/_sandbox/config", json={"requests_per_10s": 100_000, "mutations_per_10s": 100_000}, timeout=10).raise_for_status()
        requests.post(f"{c.url}/_sandbox/seed", json=CENTRA_SEED, timeout=10).raise_for_status()
        requests.post(f"{m.url}/_sandbox/taxonomy", json={"taxons": MARKETPLACER_TAXONOMY}, timeout=10).raise_for_status()
        for k, v in airflow_settings.env(overrides={
            "centra_marketplacer__centra": {"host": c.url, "extra": {"order_api_secret": "demo-centra-order-secret"}},
            "centra_marketplacer__marketplacer": {"host": m.url},
            "smtp_default": {"host": "127.0.0.1", "port": mailbox.port},
        }).items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
        RateLimiter._shared.clear()
        yield {"centra": c.url, "marketplacer": m.url, "mappings": mappings / "centra_marketplacer", "mailbox": mailbox}
    finally:
        c.stop()
        m.stop()


def adverts(world) -> dict[str, dict]:
    """Marketplacer's adverts by title, and every advertUpsert it received."""
    body = requests.get(f"{world['marketplacer']}/_sandbox/adverts", timeout=10).json()
    return {a["title"]: a for a in body["adverts"]}


def test_a_product_missing_a_required_category_attribute_is_held_with_one_email_and_published_once_after_the_mapping_fix(centra_world, pg_url):
    w = centra_world
    key = "centra_marketplacer"
    (w["mappings"] / "attributes.csv").write_text("channel_attribute,master_attribute\nColour,variant_name\nSize,size\n")  # Material not mapped yet

    start, end = window()
    assert run_dag(key, start, end)

    # the cap's category (Hats) asks for no material: it is published, through the mappings
    cap = adverts(w)["Cap"]
    assert cap["published"] is True and cap["taxon"]["id"] == "VGF4b24tMTAy" and cap["price"] == "25.00"
    (variant,) = cap["variants"]["nodes"]
    assert (variant["sku"], variant["barcode"], variant["price"]) == ("CS-CAP-NVY", "7350000000030", "25.00")  # the channel SKU from skus.csv
    assert sorted((v["optionType"]["name"], v["optionValue"]["name"]) for v in variant["variantOptionValues"]) == [("Colour", "Navy"), ("Size", "One size")]

    # the tee's (Tops) requires Material, which the mapping lacks: Marketplacer refuses, it is held, ecommerce hear once
    assert "Tee" not in adverts(w)
    (tee_key,) = held(pg_url, key, FLOW)
    (reason,) = held(pg_url, key, FLOW)[tee_key]
    assert reason["field"] == "advertOptionValues" and "Material is required for Tops" in reason["detail"]
    (mail,) = mails_to(w["mailbox"], "ecommerce@example.com", "held from Marketplacer")
    text = body_of(mail)
    assert "Tee" in text and "CT-TEE-BLK-M" in text and "advertOptionValues" in text and "Material is required for Tops" in text
    assert run_flow(key, FLOW, "again", *window()) == "success"  # still held: no second e-mail
    assert len(mails_to(w["mailbox"], "ecommerce@example.com", "held from Marketplacer")) == 1

    # the fix: the mapping names Centra's material; a replay publishes the tee once
    (w["mappings"] / "attributes.csv").write_text("channel_attribute,master_attribute\nMaterial,material\nColour,variant_name\nSize,size\n")
    with FlowContext.for_pairing(key) as ctx:
        summary = catalogue_out.replay(ctx, "replay-after-fix")
    assert summary["load"]["created"] == 1 and held(pg_url, key, FLOW) == {}
    assert run_flow(key, FLOW, "after", *window()) == "success"
    tees = [a for a in requests.get(f"{w['marketplacer']}/_sandbox/adverts", timeout=10).json()["adverts"] if a["title"] == "Tee"]
    assert len(tees) == 1
    tee = tees[0]
    assert tee["published"] is True and [(v["optionType"]["name"], v["textValue"]) for v in tee["advertOptionValues"]] == [("Material", "Cotton")]
    assert sorted(v["sku"] for v in tee["variants"]["nodes"]) == ["CS-TEE-BLK-L", "CS-TEE-BLK-M"]

    # a price change in Centra reaches the advert and its variants
    requests.post(f"{w['centra']}/_sandbox/products", json=[{"productNumber": "CT-TEE-", "prices": {"BLK-": {"Marketplacer AUD": "49.00"}}}],
                  timeout=10).raise_for_status()
    assert run_flow(key, FLOW, "price", *window()) == "success"
    tee = adverts(w)["Tee"]
    assert tee["price"] == "49.00" and {v["price"] for v in tee["variants"]["nodes"]} == {"49.00"}
    assert len([a for a in requests.get(f"{w['marketplacer']}/_sandbox/adverts", timeout=10).json()["adverts"] if a["title"] == "Tee"]) == 1


def test_an_advert_whose_answer_was_lost_is_made_once(centra_world):
    w = centra_world
    key = "centra_marketplacer"
    requests.post(f"{w['marketplacer']}/_sandbox/faults", json={"reset_connection": {"operation": "advertUpsert", "when": "after_commit", "count": 1}},
                  timeout=10).raise_for_status()
    with FlowContext.for_pairing(key) as ctx:
        catalogue_out.extract(ctx, "lost")
        gated = catalogue_out.gate(ctx, "lost")
        with pytest.raises(TransientError) as err:
            catalogue_out.load(ctx, "lost", gated)
        assert err.value.maybe_committed  # a mutation is not sent again blindly
    with FlowContext.for_pairing(key) as ctx:  # the task's retry, in a fresh process
        counts = catalogue_out.load(ctx, "lost", gated)
    assert counts["recovered"] == 1 and counts["created"] + counts["recovered"] == 2 and counts["refused"] == 0
    assert run_flow(key, FLOW, "later", *window()) == "success"
    titles = [a["title"] for a in requests.get(f"{w['marketplacer']}/_sandbox/adverts", timeout=10).json()["adverts"]]
    assert sorted(titles) == ["Cap", "Tee"]  # each once
