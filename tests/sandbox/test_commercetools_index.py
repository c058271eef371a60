"""The commercetools emulator's store index (sandbox/commercetools_index.py) answers every query
exactly as a scan of the whole store does: the predicates the adapter sends (sku / id `in`,
supplyChannel, the lastModifiedAt keyset), the awkward values (list, number, missing, date-time
like SKUs, stamps not in the emulator's form), before and after updates, order stock and deletes."""

from __future__ import annotations

import random

import pytest

from sandbox import commercetools as ct

KEYSET = [("sort", "lastModifiedAt asc"), ("sort", "id asc"), ("withTotal", "false")]


def q(v: str) -> str:
    return '"' + v + '"'


@pytest.fixture(scope="module")
def data():
    data = ct.CommercetoolsData()
    for key in ("c1", "c2"):
        ct.create_resource(data, "channels", {"key": key, "id": key})
    for i in range(300):  # S-000..119 in c1 and in c2; S-240..299 in c1 or in none
        draft = {"sku": f"S-{i % 120 if i < 240 else i:03d}", "quantityOnStock": i % 9}
        if i < 240 or i % 2:
            draft["supplyChannel"] = {"typeId": "channel", "id": "c1" if i < 120 or i >= 240 else "c2"}
        ct.create_resource(data, "inventory", draft)
    odd = [  # values the index cannot file under a plain string, and stamps of another form
        {"id": "odd-list", "sku": ["S-001", "S-002"], "supplyChannel": [{"id": "c1"}], "lastModifiedAt": "2000-01-01T00:00:00Z"},
        {"id": "odd-number", "sku": 7, "supplyChannel": {"id": 1}, "lastModifiedAt": 5},
        {"id": "odd-when", "sku": "2026-11-30T10:00:00Z", "lastModifiedAt": "2026-11-30T10:00:00"},
        {"id": "odd-none", "sku": "S-003", "supplyChannel": {"typeId": "channel", "id": "c1"}},
    ]
    for doc in odd:
        data.new("inventory", {"quantityOnStock": 1, **doc}, keep_stamps=True)
    data.new("inventory", {"id": "odd-nested", "sku": "S-900", "quantityOnStock": 1,  # a stamp inside is not the entry's
                           "supplyChannel": {"typeId": "channel", "id": "c2", "lastModifiedAt": "2101-01-01T00:00:00.000Z"}})
    data.stores["inventory"]["odd-none"].pop("lastModifiedAt")
    data.indexes["inventory"].add(data.stores["inventory"]["odd-none"])
    return data


def predicates(data) -> list[str]:
    entries = sorted(data.stores["inventory"].values(), key=lambda e: e["id"])
    some = [e["id"] for e in random.Random(3).sample(entries, 40)] + ["no-such-id", "odd-list"]
    stamps = sorted(e["lastModifiedAt"] for e in entries if isinstance(e.get("lastModifiedAt"), str) and e["lastModifiedAt"] > "2026")
    first, middle = stamps[0], stamps[150]
    keyset = f'(lastModifiedAt > {q(middle)} or (lastModifiedAt = {q(middle)} and id > {q(entries[5]["id"])}))'
    return [
        'sku = "S-004"', 'sku in ("S-001", "S-002", "S-119", "S-250")', 'sku = "2026-11-30T10:00:00.000Z"', "sku = 7",
        f"id in ({', '.join(q(i) for i in some)})", 'supplyChannel(id = "c1")', 'supplyChannel(id = "c2") and sku = "S-010"',
        'supplyChannel(id in ("c1", "c2"))', "supplyChannel is not defined", 'sku = "S-004" or supplyChannel(id = "c2")',
        'not (supplyChannel(id = "c1"))', 'quantityOnStock > 4', f'sku = "S-004" and lastModifiedAt >= {q(middle)}',
        f'supplyChannel(id = "c1") and {keyset}', f'(supplyChannel(id = "c2")) and {keyset}', keyset,
        f'lastModifiedAt < {q(middle)}', 'lastModifiedAt > "2000-01-01T00:00:00.000+01:00"', 'lastModifiedAt = "2000-01-01T00:00:00Z"',
        'lastModifiedAt >= "2026-11-30T09:00:00"', f"lastModifiedAt = {q(first)} or lastModifiedAt > {q(middle)}",
        'supplyChannel(lastModifiedAt > "2100-01-01T00:00:00.000Z")', 'lastModifiedAt > "0001-01-01T00:00:00+01:00"',
    ]


SHAPES = [KEYSET, [*KEYSET[:2], ("withTotal", "true")], [("sort", "lastModifiedAt asc")], [("sort", "sku desc")], []]


def same_as_scan(data, monkeypatch) -> None:
    store, index = data.stores["inventory"], data.indexes["inventory"]
    for few in (0, ct.FEW):  # 0: a keyset page walks the order even with few candidates
        monkeypatch.setattr(ct, "FEW", few)
        each_query(store, index, data)


def each_query(store, index, data) -> None:
    for where in predicates(data):
        for shape in SHAPES:
            for paging in ([("limit", "500")], [("limit", "7"), ("offset", "3")]):
                query = [("where", where), *shape, *paging]
                assert ct.run_query(store, query, index) == ct.run_query(list(store.values()), query), query
    two = [("where", 'supplyChannel(id = "c1")'), ("where", 'lastModifiedAt >= "2000-01-01T00:00:00.000Z"'), *KEYSET, ("limit", "50")]
    assert ct.run_query(store, two, index) == ct.run_query(list(store.values()), two)


def test_the_index_answers_as_a_scan(data, monkeypatch):
    same_as_scan(data, monkeypatch)


def test_after_updates_order_stock_and_deletes(data, monkeypatch):
    rng = random.Random(5)
    store = data.stores["inventory"]
    for entry in rng.sample(sorted(store.values(), key=lambda e: e["id"]), 60):
        ct.apply_update(data, "inventory", entry, {"version": entry["version"], "actions": [{"action": "changeQuantity", "quantity": rng.randint(0, 20)}]})
    ct.inject_order(data, {"id": "o1", "orderNumber": "N1", "inventoryMode": "TrackOnly", "lineItems": [
        {"id": "li1", "quantity": 1, "variant": {"sku": "S-010"}, "supplyChannel": {"typeId": "channel", "id": "c2"}}]})
    for ident in [e["id"] for e in rng.sample(sorted(store.values(), key=lambda e: e["id"]), 15)] + ["odd-number"]:
        data.remove("inventory", ident)
    ct.create_resource(data, "inventory", {"sku": "S-NEW", "quantityOnStock": 3, "supplyChannel": {"typeId": "channel", "id": "c1"}})
    same_as_scan(data, monkeypatch)


def test_a_sku_is_unique_per_supply_channel_through_the_index(data):
    entry = next(e for e in data.stores["inventory"].values() if e["sku"] == "S-NEW")
    with pytest.raises(ct.ApiError, match="already exists"):
        ct.create_resource(data, "inventory", {"sku": "S-NEW", "quantityOnStock": 1, "supplyChannel": entry["supplyChannel"]})
    assert ct.create_resource(data, "inventory", {"sku": "S-NEW", "quantityOnStock": 1})["sku"] == "S-NEW"  # no channel: another entry
