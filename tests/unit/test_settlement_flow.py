"""The settlement flow's pure parts and its DAG: a batch balances to the cent or is held with the
figures; costs are summed per currency with fee rows as `other`; no row leaves without an outcome;
the pairing section is required and the DAG is extract -> reconcile -> report with finance's deadline."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from commerce_sync.flows.settlement_reconciliation import _Batch, _fee_totals
from commerce_sync.pairing import PairingError, load_pairing_file, parse_pairing

ROOT = Path(__file__).resolve().parents[2]
TEST_PAIRING = ROOT / "tests" / "pairings" / "cin7_d2c_settlement.yaml"


def _row(i: int, kind: str, net: str, cur: str = "GBP", fees: dict | None = None) -> dict:
    return {"id": i, "kind": kind, "net": net, "net_currency": cur, "fees": fees or {}, "line_no": i + 1, "detail": None}


def test_a_batch_balances_when_its_payout_is_what_is_left_of_everything_else():
    rows = [_row(1, "settled", "97.50"), _row(2, "refunded", "-20.10"), _row(3, "fee", "-1.40"), _row(4, "payout", "-76.00")]
    assert _Batch("B", rows).imbalance(Decimal("0")) is None
    rows[3]["net"] = "-76.01"
    why = _Batch("B", rows).imbalance(Decimal("0"))
    assert why == "paid out 76.01 GBP, the other rows come to 76.00 GBP (-0.01 GBP)"
    assert _Batch("B", rows).imbalance(Decimal("0.01")) is None  # within the pairing's tolerance
    assert "no payout row" in _Batch("B", rows[:3]).imbalance(Decimal("0"))
    assert "1 unreadable row" in _Batch("B", [*rows, {**_row(5, "unreadable", None), "net_currency": None}]).imbalance(Decimal("0"))


def test_each_payout_currency_balances_on_its_own():
    rows = [_row(1, "settled", "10.00"), _row(2, "payout", "-10.00"), _row(3, "settled", "5.00", "EUR"), _row(4, "payout", "-4.00", "EUR")]
    assert _Batch("B", rows).imbalance(Decimal("0")) == "paid out 4.00 EUR, the other rows come to 5.00 EUR (+1.00 EUR)"


def test_costs_are_summed_per_currency_and_fee_rows_are_other():
    rows = [_row(1, "settled", "9.70", fees={"markup": "0.20", "interchange": "0.10"}), _row(2, "chargeback", "-57.50", fees={"commission": "7.50"}),
            _row(3, "fee", "-12.34"), _row(4, "settled", "4.00", "EUR", fees={"markup": "0.0049"})]
    totals = _fee_totals(_Batch("B", rows))
    assert {cur: dict(fees) for cur, fees in totals.items()} == {
        "GBP": {"markup": Decimal("0.20"), "interchange": Decimal("0.10"), "commission": Decimal("7.50"), "other": Decimal("12.34")},
        "EUR": {"markup": Decimal("0.0049")},  # summed exactly; rounded once, to the cent, when journaled
    }


def test_no_row_leaves_without_an_outcome():
    batch = _Batch("B", [_row(1, "settled", "1.00"), _row(2, "strange", "0")])
    batch.matched(batch.rows[0], "ok", "sale-1", "1.00")
    updates = {u["id"]: u for u in batch.updates("P", "r")}
    assert updates[1]["status"] == "matched" and updates[1]["master_id"] == "sale-1"
    assert (updates[2]["status"], updates[2]["reason"]) == ("exception", "unknown_type")


def test_the_flow_needs_its_section_and_a_fee_account_for_every_cost():
    pairing = load_pairing_file(TEST_PAIRING)
    assert pairing.settlement.format == "adyen_settlement_details" and "settlement_reconciliation" in pairing.flows
    with pytest.raises(PairingError, match="needs a `settlement:` section"):
        parse_pairing("brand", pairing.model_dump(exclude={"key", "settlement"}), "brand.yaml")
    from commerce_sync.flows.settlement_reconciliation import _format

    accounts = dict(pairing.settlement.fee_accounts)
    del accounts["other"]
    with pytest.raises(PairingError, match=r"no account for \['other'\]"):
        _format(pairing.settlement.model_copy(update={"fee_accounts": accounts}))


def test_its_dag_reads_the_store_then_reconciles_in_the_erp_pool_and_reports(monkeypatch):
    from commerce_sync.factory import build_dag

    monkeypatch.setenv("COMMERCE_SYNC_DEADLINES", "on")
    dag = build_dag(load_pairing_file(TEST_PAIRING), "settlement_reconciliation")
    assert dag.dag_id == "cin7_d2c_settlement__settlement_reconciliation"
    assert [t.task_id for t in dag.topological_sort()] == ["extract", "reconcile", "report"]
    assert dag.get_task("reconcile").pool == "cin7_core__demo_account" and dag.get_task("extract").pool == "default_pool"
    (deadline,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadline.callback.kwargs["to"] == ["finance@example.com"]
