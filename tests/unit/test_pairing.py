import pytest

from commerce_sync.pairing import PairingError, load_pairings, parse_pairing


def test_demo_pairing_files_are_valid():
    pairings = load_pairings()
    assert "cin7_marketplacer" in pairings
    p = pairings["cin7_marketplacer"]
    assert p.channel.system == "marketplacer" and p.master.system == "cin7_core"
    assert p.dag_id("orders_in") == "cin7_marketplacer__orders_in"
    assert p.external_id("1234") == "MKP-1234"


def test_unknown_keys_and_flows_are_refused_with_the_file_name():
    base = load_pairings()["cin7_marketplacer"].model_dump(exclude={"key"})
    with pytest.raises(PairingError, match="brand.yaml"):
        parse_pairing("brand", {**base, "chanel": {}}, "brand.yaml")
    with pytest.raises(PairingError, match="unknown flows"):
        parse_pairing("brand", {**base, "flows": {"order_in": {"schedule": None}}}, "brand.yaml")
