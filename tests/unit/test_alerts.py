"""Alert wording and thresholds: the e-mail must tell a person what kind of failure it is."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from commerce_sync.alerts import classify, run_link, threshold_breaches
from commerce_sync.errors import ClientError, GateBatchError, ThrottledError, TransientError
from commerce_sync.pairing import AlertPolicy

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def test_failures_are_classified_for_the_reader():
    assert classify(GateBatchError("x")).startswith("data error")
    assert classify(ClientError("403")).startswith("data error")
    assert classify(TransientError("timeout")).startswith("transient")
    assert classify(ThrottledError("503")).startswith("transient")
    assert classify(TimeoutError("slow")).startswith("transient")
    assert classify(ZeroDivisionError()).startswith("unexpected")


def test_run_link_points_at_the_run_in_the_ui(monkeypatch):
    monkeypatch.setenv("COMMERCE_SYNC_UI_URL", "https://airflow.example.com/")
    assert run_link("p__orders_in", "manual__2026-11-22T12:00:00+00:00") == "https://airflow.example.com/dags/p__orders_in/runs/manual__2026-11-22T12%3A00%3A00%2B00%3A00"


def _rows(n, age_hours=1):
    return [SimpleNamespace(first_seen=NOW - timedelta(hours=age_hours)) for _ in range(n)]


def test_thresholds_breached_and_quiet_when_all_is_well():
    policy = AlertPolicy(open_quarantine_over=3, quarantine_older_than_hours=24, expect_traffic=["orders_in"])
    assert threshold_breaches(policy, "orders_in", _rows(3), 5, NOW) == []
    assert "4 records wait" in threshold_breaches(policy, "orders_in", _rows(4), 5, NOW)[0]
    assert "waited 30 hours" in threshold_breaches(policy, "orders_in", _rows(1, age_hours=30), 5, NOW)[0]
    assert "extracted nothing" in threshold_breaches(policy, "orders_in", [], 0, NOW)[0]
    assert threshold_breaches(policy, "stock_out", [], 0, NOW) == []  # no traffic expectation there


def test_a_run_whose_calls_were_mostly_throttled_is_flagged():
    policy = AlertPolicy(throttled_share_over="0.2")
    assert threshold_breaches(policy, "orders_in", [], 5, NOW, calls=10, throttled=2) == []
    assert "3 of 10 API calls were throttled (30%" in threshold_breaches(policy, "orders_in", [], 5, NOW, calls=10, throttled=3)[0]
