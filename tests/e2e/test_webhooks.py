"""The webhook receiver through the api-server's own FastAPI app (the plugin's mount): a request
that does not prove itself starts nothing and records nothing; a verified one records one event
and makes one Airflow asset event, which queues a run of each flow it wakes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from sqlalchemy import func, select

from commerce_sync import airflow_settings
from commerce_sync.webhooks import URL_PREFIX, asset_name

pytestmark = [pytest.mark.airflow, pytest.mark.pg]

BODY = json.dumps({"events": [{"id": 7, "objectType": "Shipment"}]}).encode()


@pytest.fixture(scope="module")
def api(airflow_db, tmp_path_factory):
    """Airflow's api-server app with the plugins loaded, and the DAGs serialized (the assets the
    flows are scheduled on exist only once the DAGs are in the metadata DB): only the two pairings
    these tests post to, to keep the parse short."""
    import shutil

    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from tests.conftest import ROOT

    from airflow.dag_processing.bundles.manager import DagBundlesManager

    pairings = tmp_path_factory.mktemp("pairings")
    for key in ("centra_marketplacer", "cin7_marketplacer"):
        shutil.copy(ROOT / "include" / "pairings" / f"{key}.yaml", pairings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMERCE_SYNC_PAIRINGS_DIR", str(pairings))
        DagBundlesManager().sync_bundles_to_db()  # the dags-folder bundle the DAG rows point at
        bag = DagBag(dag_folder=ROOT / "dags")
        assert not bag.import_errors
        sync_bag_to_db(bag, "dags-folder", None)
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-jwt-secret-of-this-module")
        with TestClient(create_app()) as client:
            yield client


@pytest.fixture
def hooks(api, pg_url, monkeypatch):
    for k, v in airflow_settings.env().items():
        if k.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", pg_url)
    from commerce_sync.ledger import Ledger

    return Ledger.from_url(pg_url)


def _settings(conn_id):
    return next(c for c in airflow_settings.read()["connections"] if c["conn_id"] == conn_id)


def _asset_events(name):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalars(select(AssetEvent.id).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.name == name)).all()


def _queued(dag_ids):
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return set(session.scalars(select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.target_dag_id.in_(dag_ids))).all())


def _signed(secret, body, stamp=None):
    stamp = int(time.time()) if stamp is None else stamp
    return f"t={stamp},v1=" + hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_flows_named_by_the_webhooks_section_wake_on_the_asset_or_their_cron():
    from airflow.sdk import AssetOrTimeSchedule

    from commerce_sync.factory import build_dag
    from commerce_sync.pairing import get_pairing

    pairing = get_pairing("centra_marketplacer")
    woken = build_dag(pairing, "dispatch_back").timetable
    assert isinstance(woken, AssetOrTimeSchedule)
    assert [a.name for a in woken.asset_condition.objects] == [asset_name("centra_marketplacer", "centra")]
    assert woken.timetable.expression == pairing.flow("dispatch_back").schedule  # the cron stays: the safety net
    assert not isinstance(build_dag(pairing, "drift_monitor").timetable, AssetOrTimeSchedule)


def test_a_bad_signature_is_401_and_a_log_line_and_starts_and_records_nothing(api, hooks, caplog):
    secret = _settings("centra_marketplacer__centra_webhook")["conn_password"]
    name = asset_name("centra_marketplacer", "centra")
    before = _asset_events(name)
    url = f"{URL_PREFIX}/centra_marketplacer/centra"
    with caplog.at_level(logging.WARNING, logger="commerce_sync.webhooks"):
        for headers in ({"X-Centra-Signature": _signed("guessed-secret", BODY)}, {"X-Centra-Signature": _signed(secret, BODY, int(time.time()) - 900)}, {}):
            r = api.post(url, content=BODY, headers=headers)
            assert r.status_code == 401, r.text
    assert hooks.webhook_events() == []
    assert _asset_events(name) == before
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3 and all("centra_marketplacer/centra" in m for m in refused)
    assert secret not in caplog.text
    # a pairing or system without webhooks is not a door either
    assert api.post(f"{URL_PREFIX}/no_such_pairing/marketplacer", content=BODY).status_code == 404
    assert api.post(f"{URL_PREFIX}/centra_marketplacer/cin7_core", content=BODY).status_code == 404


def _unpause(dag_ids):
    from sqlalchemy import update

    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id.in_(dag_ids)).values(is_paused=False))


def test_a_verified_webhook_records_one_event_and_posts_one_asset_event(api, hooks):
    woken = {"centra_marketplacer__dispatch_back", "centra_marketplacer__stock_out"}
    _unpause(woken)  # Airflow queues runs of unpaused DAGs only
    name = asset_name("centra_marketplacer", "centra")
    before = set(_asset_events(name))
    secret = _settings("centra_marketplacer__centra_webhook")["conn_password"]
    r = api.post(f"{URL_PREFIX}/centra_marketplacer/centra", content=BODY, headers={"X-Centra-Signature": _signed(secret, BODY)})
    assert r.status_code == 202, r.text
    [event] = hooks.webhook_events()
    assert (event["pairing"], event["system"], event["wakes"]) == ("centra_marketplacer", "centra", ["dispatch_back", "stock_out"])
    assert event["body_sha256"] == hashlib.sha256(BODY).hexdigest()
    new = set(_asset_events(name)) - before
    assert new == {event["asset_event_id"]} == {r.json()["asset_event"]}
    # the scheduler's queue now holds a run of each flow the event wakes
    assert _queued(woken) == woken


def test_cin7_basic_auth_as_configured_on_its_webhook(api, hooks):
    conn = _settings("cin7_marketplacer__cin7_webhook")
    good = "Basic " + base64.b64encode(f"{conn['conn_login']}:{conn['conn_password']}".encode()).decode()
    bad = "Basic " + base64.b64encode(f"{conn['conn_login']}:nope".encode()).decode()
    url = f"{URL_PREFIX}/cin7_marketplacer/cin7_core"
    assert api.post(url, content=b"{}", headers={"Authorization": bad}).status_code == 401
    assert api.post(url, content=b"{}", headers={"Authorization": good}).status_code == 202
    assert [e["wakes"] for e in hooks.webhook_events()] == [["dispatch_back", "stock_out"]]
