"""Capabilities: each system declares what it can do for the flows; the factory refuses a flow a
pairing's systems cannot serve, with a sentence naming the flow, the side and what is missing."""

from __future__ import annotations

import pytest

from commerce_sync import ports
from commerce_sync.factory import FLOW_NEEDS, FLOW_STEPS, check_capabilities
from commerce_sync.pairing import PairingError, load_pairings, parse_pairing
from commerce_sync.systems import SYSTEMS, capabilities


def _pairing(master: str, channel: str, flows: list[str], **extra):
    return parse_pairing("test_pairing", {
        "channel": {"system": channel, "connection": "c"},
        "master": {"system": master, "connection": "m"},
        "policies": {"currencies": ["AUD"], "tax_rule": "GST", "location": "Main", "customer": "Someone"},
        "flows": {f: {"schedule": None} for f in flows},
        **extra,
    })


def test_every_flow_states_its_needs_and_every_system_declares_capabilities():
    assert set(FLOW_NEEDS) == set(FLOW_STEPS)
    for name in SYSTEMS:
        assert capabilities(name), f"{name} declares no CAPABILITIES"


def test_every_shipped_pairing_asks_only_for_what_its_systems_offer():
    for pairing in load_pairings().values():
        for flow in pairing.flows:
            check_capabilities(pairing, flow)  # raises when a need is not declared


def test_centra_keeps_no_general_ledger_and_no_credit_notes():
    offered = capabilities("centra")
    assert ports.JOURNALS not in offered and ports.CREDIT_NOTES not in offered
    assert {ports.SALES, ports.AVAILABILITY, ports.FULFILMENTS, ports.SALE_AMOUNTS, ports.CHANGE_EVENTS} <= offered
    assert {ports.JOURNALS, ports.CREDIT_NOTES} <= capabilities("cin7_core")


@pytest.mark.parametrize(("flow", "missing"), [("payout_reconciliation", "journals"), ("refunds", "credit_notes")])
def test_a_flow_whose_master_lacks_a_capability_is_refused_with_a_clear_error(flow, missing):
    pairing = _pairing("centra", "marketplacer", ["orders_in", flow])
    check_capabilities(pairing, "orders_in")
    with pytest.raises(PairingError) as caught:
        check_capabilities(pairing, flow)
    message = str(caught.value)
    assert f"flow {flow!r}" in message and "master (centra)" in message and missing in message
    assert "include/pairings/test_pairing.yaml" in message


def test_acceptance_is_asked_of_the_channel_only_when_the_pairing_has_an_acceptance_section():
    check_capabilities(_pairing("cin7_core", "marketplacer", ["orders_in"]), "orders_in")
    with pytest.raises(PairingError, match="channel \\(marketplacer\\) to offer acceptance"):
        check_capabilities(_pairing("cin7_core", "marketplacer", ["orders_in"], acceptance={}), "orders_in")
    check_capabilities(_pairing("cin7_core", "mirakl", ["orders_in"], acceptance={}), "orders_in")


def test_building_the_dag_runs_the_check():
    from commerce_sync.factory import build_dag

    with pytest.raises(PairingError, match="journals"):
        build_dag(_pairing("centra", "marketplacer", ["payout_reconciliation"]), "payout_reconciliation")


def test_refunds_started_in_the_master_ask_the_master_for_returns_and_the_channel_for_refund_requests():
    from commerce_sync.factory import flow_module

    reverse = {"refunds": {"origin": "master"}}
    pairing = _pairing("centra", "marketplacer", ["refunds"], **reverse)
    check_capabilities(pairing, "refunds")
    assert flow_module(pairing, "refunds") == "refunds_from_master" and flow_module(_pairing("cin7_core", "marketplacer", ["refunds"]), "refunds") == "refunds"
    with pytest.raises(PairingError, match="master \\(cin7_core\\) to offer master_returns"):
        check_capabilities(_pairing("cin7_core", "marketplacer", ["refunds"], **reverse), "refunds")
    with pytest.raises(PairingError, match="channel \\(mirakl\\) to offer refund_requests"):
        check_capabilities(_pairing("centra", "mirakl", ["refunds"], **reverse), "refunds")
