"""The DAG factory's pure parts: extraction windows and the retry policy."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from airflow.sdk import RetryAction

from commerce_sync.errors import GateBatchError
from commerce_sync.factory import RETRY_POLICY, window

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_window_is_the_data_interval_widened_back_by_the_overlap():
    start, end = window(T0 - timedelta(minutes=5), T0, SimpleNamespace(conf={}), overlap_minutes=10)
    assert (start, end) == (T0 - timedelta(minutes=15), T0)


def test_run_conf_overrides_the_window_exactly():
    conf = {"window_start": (T0 - timedelta(hours=3)).isoformat(), "window_end": T0.isoformat()}
    start, end = window(T0 - timedelta(minutes=5), T0, SimpleNamespace(conf=conf), overlap_minutes=10)
    assert (start, end) == (T0 - timedelta(hours=3), T0)


def test_data_errors_fail_at_once_and_transient_errors_retry():
    assert RETRY_POLICY.evaluate(GateBatchError("bad batch"), 1, 4).action == RetryAction.FAIL
    assert RETRY_POLICY.evaluate(TimeoutError("slow"), 1, 4).action == RetryAction.DEFAULT
