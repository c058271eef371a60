"""A new ops person, from the Airflow UI alone (headless Chromium against `airflow standalone`):
logs in on Airflow's login page, opens the console's menu entry (/plugin/commerce-sync: the
console framed in the UI) and, inside it, finds why an order is held, adds the missing SKU
mapping (dry-run diff, then apply), replays the order and sees it booked, and discards another
with a reason. Screenshots are kept under tmp/artifacts (the path is printed).
It lives beside the scheduler tests to share their running Airflow (tests/cluster/conftest.py).

Needs Debian's chromium and chromium-driver (.ci/run installs them): missing, the test skips
locally and fails under CI=true.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.builders import marketplacer_invoice
from tests.conftest import IN_CI, ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.pg, pytest.mark.e2e]

DAG = "cin7_marketplacer__orders_in"
NEW_SKU = "CS-TEE-BLACK-M"  # how the channel spells a Cin7 product the mapping does not know yet


@pytest.fixture(scope="module")
def browser():
    chromium, driver_bin = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver_bin):
        msg = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does it)"
        pytest.fail(msg) if IN_CI else pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def artifacts():
    folder = ROOT / "tmp" / "artifacts" / f"console-browser-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test screenshots: {folder}")
    return folder


def _wait(what, predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the page is still loading
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _held(cluster) -> list:
    from commerce_sync.ledger import Ledger

    return Ledger.from_url(cluster.ledger_url, migrate_schema=False).open_quarantine("cin7_marketplacer", "orders_in")


def test_an_ops_person_fixes_replays_and_discards_from_the_airflow_ui(cluster, browser, artifacts, tmp_path):
    from selenium.webdriver.common.by import By

    # two orders the gate holds: one names a SKU the mapping lacks, one whose money does not add up
    placed = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=3)
    invoices = [marketplacer_invoice(6300, [(NEW_SKU, 1, 4500)], created_at=placed),
                marketplacer_invoice(6301, [("CS-TEE-BLK-M", 1, 4500)], created_at=placed + timedelta(minutes=1), total_adjust_cents=1)]
    requests.post(f"{cluster.marketplacer}/_sandbox/invoices", json={"invoices": invoices}, timeout=10).raise_for_status()
    # the orders_in run that holds them: the flow's own steps (what the DAG's tasks call), run here
    # with the cluster's settings; only the replay below needs the scheduler
    from tests.reliability.matrix import run_flow

    with pytest.MonkeyPatch.context() as env:
        for k, v in cluster.env.items():
            if k.startswith(("AIRFLOW_CONN_", "COMMERCE_SYNC_")):
                env.setenv(k, v)
        assert run_flow("cin7_marketplacer", "orders_in", "console-browser-1", placed - timedelta(minutes=5), placed + timedelta(minutes=10)) == "success"
    state = lambda run: cluster.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run}").json()["state"]  # noqa: E731
    assert len(_held(cluster)) == 2

    # Airflow's own login page, then the console from the menu entry (an iframe in the UI)
    password = (cluster.home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text()
    import json

    b = browser
    b.get(f"{cluster.ui}/")
    _wait("the login page", lambda: b.find_element(By.NAME, "username")).send_keys("admin")
    b.find_element(By.NAME, "password").send_keys(json.loads(password)["admin"])
    b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait("the logged-in UI", lambda: "login" not in b.current_url and b.get_cookie("_token"))
    b.get(f"{cluster.ui}/plugin/commerce-sync")
    frame = _wait("the console in the Airflow UI", lambda: b.find_element(By.TAG_NAME, "iframe"))
    b.switch_to.frame(frame)
    _wait("the overview", lambda: "Backlog" in b.find_element(By.TAG_NAME, "body").text)
    b.save_screenshot(str(artifacts / "01-overview-in-airflow.png"))  # the whole window: Airflow's menu around the console

    # why is MKP-6300 held?
    b.find_element(By.LINK_TEXT, "Quarantine").click()
    row = _wait("the held order", lambda: b.find_element(By.XPATH, "//tr[td[contains(., 'MKP-6300')]]"))
    assert "sku_mapped" in row.text and "Add the SKU" in row.text and "alex.buyer" not in b.page_source
    held_id = int(row.get_attribute("id").removeprefix("record-"))
    other_id = int(b.find_element(By.XPATH, "//tr[td[contains(., 'MKP-6301')]]").get_attribute("id").removeprefix("record-"))
    b.save_screenshot(str(artifacts / "02-quarantine.png"))

    # fix the mapping: upload the file with the new row, read the dry-run diff, apply it
    skus = cluster.env["COMMERCE_SYNC_MAPPINGS_DIR"] + "/cin7_marketplacer/skus.csv"
    upload = tmp_path / "skus.csv"
    upload.write_text(open(skus).read().rstrip("\n") + f"\n{NEW_SKU},CS-TEE-BLK-M,Tee black M\n")
    b.find_element(By.LINK_TEXT, "cin7_marketplacer").click()  # still inside the Airflow UI's frame
    _wait("the pairing's page", lambda: b.find_element(By.LINK_TEXT, "Mappings")).click()
    _wait("the mappings page", lambda: b.find_element(By.ID, "dry-run"))
    for option in b.find_elements(By.CSS_SELECTOR, "select[name=kind] option"):
        if option.text == "skus":
            option.click()
    b.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(upload))
    b.find_element(By.ID, "dry-run").click()
    summary = _wait("the dry-run diff", lambda: b.find_element(By.ID, "diff-summary")).text
    assert summary == "1 added, 0 changed, 0 removed"
    assert NEW_SKU in b.page_source and NEW_SKU not in open(skus).read()  # nothing changed yet
    b.save_screenshot(str(artifacts / "03-mapping-dry-run.png"))
    b.find_element(By.ID, "apply").click()
    _wait("the mapping applied", lambda: b.find_element(By.ID, "applied"))
    assert NEW_SKU in open(skus).read()

    # replay the held order: a run of the flow's DAG through Airflow, linked from the page
    b.find_element(By.LINK_TEXT, "Quarantine").click()
    _wait("the replay button", lambda: b.find_element(By.ID, f"replay-{held_id}")).click()
    link = _wait("the replay's run link", lambda: b.find_element(By.CSS_SELECTOR, "#replayed a"))
    run_id = link.text
    # the DAG is paused until now (no scheduled run books the order before the replay is asked for)
    assert cluster.api("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False}).status_code == 200
    assert f"/dags/{DAG}/runs/" in link.get_attribute("href")
    b.save_screenshot(str(artifacts / "04-replay-started.png"))
    cluster.wait("the replay run", lambda: state(run_id) in ("success", "failed"), timeout=240, every=1)
    assert state(run_id) == "success"
    booked = [s["ExternalID"] for s in requests.get(f"{cluster.cin7}/_sandbox/sales", timeout=10).json()["sales"]]
    assert booked.count("MKP-6300") == 1 and "MKP-6301" not in booked

    # discard the other, with a reason
    b.find_element(By.LINK_TEXT, "Quarantine").click()
    _wait("the quarantine page", lambda: b.find_element(By.ID, f"discard-{other_id}"))
    assert "MKP-6300" not in b.find_element(By.TAG_NAME, "body").text  # booked: no longer held
    b.find_element(By.ID, f"discard-reason-{other_id}").send_keys("test order, cancelled by the buyer")
    b.find_element(By.ID, f"discard-{other_id}").click()
    done = _wait("the discard", lambda: b.find_element(By.CLASS_NAME, "done")).text
    assert f"Discarded #{other_id}" in done and "by admin" in done
    b.save_screenshot(str(artifacts / "05-discarded.png"))
    assert _held(cluster) == []
    from commerce_sync.ledger import Ledger

    row = Ledger.from_url(cluster.ledger_url, migrate_schema=False).get_quarantine(other_id)
    assert (row.status, row.resolved_by, row.resolution_note) == ("discarded", "admin", "test order, cancelled by the buyer")
    cluster.api("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": True})
