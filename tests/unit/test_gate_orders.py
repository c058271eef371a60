"""The orders_in gate: each kind of bad order is caught with its reason; good ones pass."""

from decimal import Decimal

import pytest

from commerce_sync.errors import GateBatchError
from commerce_sync.gates.orders import gate_orders
from commerce_sync.systems.marketplacer import MarketplacerChannel
from tests.builders import marketplacer_invoice, with_relay_ids

SKUS = {"CS-TEE-BLK-M", "CS-CAP-NVY"}
SELLERS = {"1"}


def _orders(invoices):
    ch = MarketplacerChannel(client=None, currency="AUD")
    raws = [with_relay_ids(i) for i in invoices]
    return {ch.record_key(r): ch.to_order(r) for r in raws}


def _gate(orders, max_bad_share="0.9", min_records=1, replayed=frozenset()):
    return gate_orders(
        orders,
        unreadable={},
        mapped_skus=SKUS,
        mapped_sellers=SELLERS,
        currencies=["AUD"],
        max_bad_share=Decimal(max_bad_share),
        min_records_for_share=min_records,
        replayed=set(replayed),
    )


def test_good_orders_pass_and_each_bad_one_is_named_with_its_reason():
    good = marketplacer_invoice(1, [("CS-TEE-BLK-M", 2, 4500), ("CS-CAP-NVY", 1, 2500)])
    unmapped = marketplacer_invoice(2, [("CS-SOCKS-XX", 1, 1000)])
    lower = marketplacer_invoice(3, [("cs-tee-blk-m", 1, 4500)])
    seller = marketplacer_invoice(4, [("CS-CAP-NVY", 1, 2500)], seller_id=99)
    cent = marketplacer_invoice(5, [("CS-CAP-NVY", 1, 2500)], total_adjust_cents=1)
    noref = marketplacer_invoice(None, [("CS-CAP-NVY", 1, 2500)])
    zero_qty = marketplacer_invoice(7, [("CS-CAP-NVY", 0, 2500)])
    wrong_cur = marketplacer_invoice(8, [("CS-CAP-NVY", 1, 2500)], currency="NZD")
    orders = _orders([good, unmapped, lower, seller, cent, noref, zero_qty, wrong_cur])
    keys = list(orders)
    result = _gate(orders)

    assert result.passed == [keys[0]]
    checks = {k: {r["check"] for r in v} for k, v in result.failed.items()}
    assert checks[keys[1]] == {"sku_mapped"}
    assert checks[keys[2]] == {"sku_mapped", "sku_near_match"}  # refused, with a hint
    assert checks[keys[3]] == {"seller_mapped"}
    assert checks[keys[4]] == {"order_total_adds_up"}
    assert checks[keys[5]] == {"channel_ref_present"}
    assert checks[keys[6]] == {"quantity_positive"}
    assert checks[keys[7]] == {"currency_allowed"}
    cent_reason = next(r for r in result.failed[keys[4]] if r["check"] == "order_total_adds_up")
    assert "by -0.01 AUD" in cent_reason["detail"]  # one cent over, in the channel's money


def test_sku_with_trailing_space_is_not_trimmed_into_a_match():
    orders = _orders([marketplacer_invoice(1, [("CS-CAP-NVY ", 1, 2500)])])
    result = _gate(orders, min_records=10)  # one bad order in a quiet window is quarantined, not a batch failure
    assert result.passed == []
    assert {r["check"] for r in next(iter(result.failed.values()))} == {"sku_mapped", "sku_near_match"}


def test_a_batch_mostly_bad_fails_as_a_whole():
    orders = _orders([marketplacer_invoice(i, [("NOPE", 1, 100)]) for i in range(1, 5)] + [marketplacer_invoice(9, [("CS-CAP-NVY", 1, 2500)])])
    with pytest.raises(GateBatchError, match="4 of 5 new records failed"):
        _gate(orders, max_bad_share="0.5")


def test_orders_replayed_from_quarantine_do_not_count_towards_the_bad_share():
    held = [marketplacer_invoice(i, [("NOPE", 1, 100)]) for i in range(1, 5)]
    orders = _orders(held + [marketplacer_invoice(9, [("CS-CAP-NVY", 1, 2500)])])
    keys = list(orders)
    result = _gate(orders, max_bad_share="0.5", replayed=keys[:4])
    assert result.passed == [keys[4]] and len(result.failed) == 4


def test_unreadable_records_count_towards_the_bad_share_and_are_reported():
    orders = _orders([marketplacer_invoice(1, [("CS-CAP-NVY", 1, 2500)])])
    result = gate_orders(
        orders,
        unreadable={"broken": [{"check": "payload_readable", "detail": "totalCents is missing"}]},
        mapped_skus=SKUS,
        mapped_sellers=SELLERS,
        currencies=["AUD"],
        max_bad_share=Decimal("0.5"),
        min_records_for_share=1,
    )
    assert len(result.passed) == 1
    assert result.failed == {"broken": [{"check": "payload_readable", "detail": "totalCents is missing"}]}
