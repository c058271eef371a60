"""The ops console through Airflow's own FastAPI app with real JWTs from its auth manager: no
login 401, a viewer's change 403, the right role 200, and each change kept with the user's name."""

from __future__ import annotations

import pytest

from tests.builders import marketplacer_invoice
from tests.console.conftest import serialize_dags

pytestmark = [pytest.mark.pg, pytest.mark.airflow]

PAIRING = "cin7_marketplacer"
ORDERS_DAG = f"{PAIRING}__orders_in"


@pytest.fixture(scope="module")
def console(console_env):
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from commerce_sync.ledger import Ledger

    serialize_dags([ORDERS_DAG])
    from commerce_sync.mappings import sync_pairing_mappings

    ledger = Ledger.from_url(console_env["ledger_url"])
    sync_pairing_mappings(ledger, PAIRING, console_env["mappings"] / PAIRING)  # as every run loads them
    unmapped = [("CS-NOT-MAPPED", 1, 4500)]
    for n in (9001, 9002):
        ledger.quarantine(PAIRING, "orders_in", f"inv-{n}", marketplacer_invoice(n, unmapped),
                          [{"check": "sku_mapped", "detail": "SKU 'CS-NOT-MAPPED' is not in skus.csv"}], "scheduled__1")
    ledger.quarantine(PAIRING, "orders_in", "inv-9003", marketplacer_invoice(9003, [("CS-TEE-BLK-M", 1, 4500)], total_adjust_cents=1),
                      [{"check": "order_total_adds_up", "detail": "line totals + charges differ from the order total by -0.01 AUD"}], "scheduled__1")
    ledger.record_run(PAIRING, "orders_in", "scheduled__1", extracted=3, loaded=0, quarantined=3)
    ledger.store_report(PAIRING, "payout_reconciliation", "2026-11-29", "exceptions.csv", "text/csv", "type,order\r\nunmatched,'=cmd\r\n")
    client = TestClient(create_app())
    tokens = {name: get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=role))
              for name, role in (("viewer", "viewer"), ("ops", "user"))}
    yield {"client": client, "ledger": ledger, "tokens": tokens}


def _as(console, who: str) -> dict:
    return {"Authorization": f"Bearer {console['tokens'][who]}"}


def _id(console, key: str) -> int:
    return console["ledger"].quarantine_by_key(PAIRING, "orders_in", key).id


ROUTES = [
    ("GET", "/commerce-sync/api/overview"), ("GET", "/commerce-sync/api/quarantine"), ("POST", "/commerce-sync/api/quarantine/1/discard"),
    ("POST", "/commerce-sync/api/quarantine/1/replay"), ("GET", f"/commerce-sync/api/mappings/{PAIRING}"),
    ("POST", f"/commerce-sync/api/mappings/{PAIRING}/skus"), ("GET", f"/commerce-sync/api/reports/{PAIRING}"),
    ("GET", "/commerce-sync/"), ("GET", "/commerce-sync/quarantine"), ("GET", f"/commerce-sync/pairing/{PAIRING}"),
    ("GET", f"/commerce-sync/mappings/{PAIRING}"), ("GET", f"/commerce-sync/reports/{PAIRING}"), ("POST", "/commerce-sync/quarantine/1/discard"),
    ("GET", f"/commerce-sync/dag/{ORDERS_DAG}"),
]


def test_no_route_answers_without_a_valid_airflow_login(console):
    c = console["client"]
    for method, path in ROUTES:
        assert c.request(method, path).status_code == 401, path
        assert c.request(method, path, headers={"Authorization": "Bearer not-a-token"}).status_code == 403, path
    assert c.get(ROUTES[0][1], headers=_as(console, "viewer")).status_code == 200


def test_a_viewer_reads_but_cannot_discard_replay_or_apply(console):
    c, h = console["client"], _as(console, "viewer")
    target = _id(console, "inv-9001")
    assert c.post(f"/commerce-sync/api/quarantine/{target}/discard", json={"reason": "test"}, headers=h).status_code == 403
    assert c.post(f"/commerce-sync/api/quarantine/{target}/replay", headers=h).status_code == 403
    assert c.post(f"/commerce-sync/quarantine/{target}/discard", data={"reason": "test"}, headers=h).status_code == 403
    applied = c.post(f"/commerce-sync/api/mappings/{PAIRING}/skus", files={"file": ("skus.csv", b"x")}, data={"apply": "true"}, headers=h)
    assert applied.status_code == 403
    assert console["ledger"].get_quarantine(target).status == "open"


def test_the_quarantine_shows_order_number_plain_reasons_and_no_personal_data(console):
    c = console["client"]
    rows = c.get("/commerce-sync/api/quarantine", params={"pairing": PAIRING, "reason": "sku_mapped"}, headers=_as(console, "viewer")).json()
    assert sorted(r["order"] for r in rows) == ["MKP-9001", "MKP-9002"]
    reason = rows[0]["reasons"][0]
    assert reason["check"] == "sku_mapped" and "SKU mapping" in reason["meaning"] and reason["action"]
    text = str(rows)
    assert "alex.buyer@example.com" not in text and "Alex" not in text and "+61 400" not in text
    assert c.get("/commerce-sync/api/quarantine", params={"min_age_hours": 5}, headers=_as(console, "viewer")).json() == []
    page = c.get("/commerce-sync/quarantine", cookies={"_token": console["tokens"]["viewer"]})  # the UI's cookie, as in the browser
    assert page.status_code == 200 and "MKP-9003" in page.text and "alex.buyer" not in page.text


def test_overview_shows_backlog_and_quarantine_by_reason(console):
    data = console["client"].get("/commerce-sync/api/overview", headers=_as(console, "viewer")).json()
    mine = next(p for p in data["pairings"] if p["pairing"] == PAIRING)
    assert mine["backlog"]["held_orders"] >= 1
    orders = mine["flows"]["orders_in"]
    assert orders["by_reason"].get("order_total_adds_up") == 1 and orders["loaded"] == 0 and orders["extracted"] == 3
    assert "undelivered" in data["outbox"] and orders["api_calls"] == 0 and orders["throttled"] == 0
    page = console["client"].get("/commerce-sync/", headers=_as(console, "viewer"))
    assert page.status_code == 200 and "Backlog" in page.text and "<svg" in page.text


def test_discard_needs_a_reason_and_keeps_who_did_it(console):
    c, h = console["client"], _as(console, "ops")
    target = _id(console, "inv-9003")
    assert c.post(f"/commerce-sync/api/quarantine/{target}/discard", json={"reason": "  "}, headers=h).status_code == 422
    r = c.post(f"/commerce-sync/api/quarantine/{target}/discard", json={"reason": "test order, cancelled on the channel"}, headers=h)
    assert r.status_code == 200, r.text
    row = console["ledger"].get_quarantine(target)
    assert (row.status, row.resolved_by, row.resolution_note) == ("discarded", "ops", "test order, cancelled on the channel")
    assert c.post(f"/commerce-sync/api/quarantine/{target}/discard", json={"reason": "again"}, headers=h).status_code == 404


def test_replay_starts_the_flows_run_through_airflow_with_the_users_name(console):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    target = _id(console, "inv-9002")
    r = console["client"].post(f"/commerce-sync/api/quarantine/{target}/replay", headers=_as(console, "ops"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dag_id"] == ORDERS_DAG and body["run_url"].startswith(f"/dags/{ORDERS_DAG}/runs/")
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == ORDERS_DAG, DagRun.run_id == body["run_id"]).one()
        assert run.triggering_user_name == "ops"
    action = console["ledger"].actions(PAIRING)[0]
    assert (action["action"], action["done_by"], action["subject"], action["detail"]) == ("replay", "ops", f"quarantine #{target}", body["run_id"])


def test_mapping_upload_shows_the_dry_run_diff_then_applies_it_as_the_cli_does(console, console_env):
    c, h = console["client"], _as(console, "ops")
    installed = (console_env["mappings"] / PAIRING / "skus.csv").read_text()
    new = installed.rstrip("\n") + "\n" + installed.splitlines()[1].replace(installed.splitlines()[1].split(",")[0], "CS-NOT-MAPPED", 1) + "\n"
    dry = c.post(f"/commerce-sync/api/mappings/{PAIRING}/skus", files={"file": ("skus.csv", new.encode())}, headers=h)
    assert dry.status_code == 200, dry.text
    assert {"CS-NOT-MAPPED"} == {a["key"] for a in dry.json()["added"]} and dry.json()["applied"] is False
    assert (console_env["mappings"] / PAIRING / "skus.csv").read_text() == installed  # a dry run changes nothing
    done = c.post(f"/commerce-sync/api/mappings/{PAIRING}/skus", files={"file": ("skus.csv", new.encode())}, data={"apply": "true"}, headers=h)
    assert done.status_code == 200, done.text
    assert "CS-NOT-MAPPED" in (console_env["mappings"] / PAIRING / "skus.csv").read_text()
    history = c.get(f"/commerce-sync/api/mappings/{PAIRING}", headers=h).json()["history"]
    assert {(x["key"], x["action"], x["changed_by"]) for x in history} >= {("CS-NOT-MAPPED", "added", "ops")}
    bad = c.post(f"/commerce-sync/api/mappings/{PAIRING}/skus", files={"file": ("skus.csv", b"nonsense\n")}, headers=h)
    assert bad.status_code == 422


def test_reports_are_listed_and_downloaded_as_stored(console):
    c, h = console["client"], _as(console, "viewer")
    listed = c.get(f"/commerce-sync/api/reports/{PAIRING}", headers=h).json()
    assert [(r["flow"], r["period"], r["name"]) for r in listed] == [("payout_reconciliation", "2026-11-29", "exceptions.csv")]
    r = c.get(f"/commerce-sync/api/reports/{PAIRING}/payout_reconciliation/2026-11-29/exceptions.csv", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    assert r.text == "type,order\r\nunmatched,'=cmd\r\n"


def test_each_dag_page_links_to_its_pairings_console_page(console):
    r = console["client"].get(f"/commerce-sync/dag/{ORDERS_DAG}", headers=_as(console, "viewer"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/commerce-sync/pairing/{PAIRING}"
    page = console["client"].get(r.headers["location"], headers=_as(console, "viewer"))
    assert page.status_code == 200 and "MKP-9001" in page.text


def test_overview_charts_count_per_hour_what_the_ledger_holds(console):
    from datetime import datetime, timedelta, timezone

    from commerce_sync.console.service import charts
    from commerce_sync.pairing import load_pairings

    now = datetime.now(timezone.utc)
    c = charts(console["ledger"], load_pairings()[PAIRING], now=now)
    assert len(c["booked_per_hour"]) == len(c["quarantined_per_hour"]) == len(c["backlog_per_hour"]) == 168
    held_now = len(console["ledger"].open_quarantine(PAIRING, "orders_in"))
    assert c["backlog_per_hour"][-1] == held_now and sum(c["quarantined_per_hour"][-2:]) >= 3  # this module's three orders
    assert c["backlog_per_hour"][0] == 0  # none were held a week ago
    an_hour_on = charts(console["ledger"], load_pairings()[PAIRING], now=now + timedelta(hours=1))
    assert an_hour_on["quarantined_per_hour"][-1] == 0 and an_hour_on["quarantined_per_hour"][:-1] == c["quarantined_per_hour"][1:]


def test_airflow_lists_the_console_as_the_plugins_nav_entry_and_dag_tab(console):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    admin = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    r = console["client"].get("/api/v2/plugins", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "commerce_sync")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/commerce-sync/webhooks", "/commerce-sync"]  # the receiver mounted first
    assert {(v["destination"], v["href"]) for v in plugin["external_views"]} == {("nav", "/commerce-sync/"), ("dag", "/commerce-sync/dag/{DAG_ID}")}


def test_a_ledger_it_cannot_reach_is_one_line_not_a_traceback(console, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    r = TestClient(console["client"].app, raise_server_exceptions=False).get("/commerce-sync/api/overview", headers=_as(console, "viewer"))
    assert r.status_code == 503
    assert r.json()["detail"].startswith("the console could not do that: no ledger at ") and "Traceback" not in r.text
