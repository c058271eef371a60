"""OCI stock at scale: cin7_sfcc stock_out with 100,000 SKUs in the uk region.

    .venv/bin/python bench/sfcc_oci_scale.py [--skus 100000] [--changed 0.01]

The flow's steps in this process (extract: Cin7 availability + one OCI export; gate; push: the
diff, one OCI import) against the emulators (their own processes), three runs: the first sync,
nothing changed, and 1% of the SKUs changed in Cin7 with the upload's answer lost once (the
client sends the same file again). Figures: records in the import's file(s), records OCI applied
(each record id once), seconds per step.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import yaml
from harness import ROOT, Emulators, pg_ledger, setup_env, sku_mappings, stock_run, table, wire

PAIRING = "cin7_sfcc"


def seed(emu: Emulators, n: int) -> None:
    emu.post("cin7", "/_sandbox/seed", {"products": [{"SKU": f"CS-{i:06d}", "Name": f"Product {i}"} for i in range(n)], "locations": ["Main Warehouse"]})
    for start in range(0, n, 20_000):
        emu.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": f"CS-{i:06d}", "Location": "Main Warehouse", "OnHand": 10 + i % 7, "Allocated": i % 3}
                                                             for i in range(start, min(n, start + 20_000))]})
        emu.post("sfcc", "/_sandbox/oci/inventory", [{"location": "uk-warehouse", "sku": f"CS-{i:06d}", "onHand": 0} for i in range(start, min(n, start + 20_000))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    home = setup_env()
    emu = Emulators(cin7_rate_limit=1_000_000, only=("cin7", "marketplacer", "mirakl", "sfcc"))
    rows = []
    try:
        from commerce_sync import airflow_settings

        wire(emu, home, rates={"cin7_core": 1_000_000, "sfcc": 1_000_000})
        url = emu.url["sfcc"]
        os.environ.update({k: v for k, v in airflow_settings.env(overrides={
            f"{PAIRING}__cin7": {"host": f"{emu.url['cin7']}/ExternalApi/v2"},
            f"{PAIRING}__sfcc": {"host": url, "extra": {"tenant": "zzxy_prd", "token_url": f"{url}/dwsso/oauth2/access_token", "oci_tenant_group_id": "f_ecom_zzxy_prd"}},
        }).items() if k.startswith(f"AIRFLOW_CONN_{PAIRING.upper()}__")})
        path = home / "pairings" / f"{PAIRING}.yaml"
        data = yaml.safe_load(path.read_text())
        data["channel"]["options"].update({"stock_region": "uk", "import_poll_seconds": 0.2, "listings_from_catalog": False})
        data["stock"]["full_resync_hour_utc"] = None
        path.write_text(yaml.safe_dump(data))
        sku_mappings(home, PAIRING, args.skus, "CS")
        t = time.perf_counter()
        seed(emu, args.skus)
        print(f"seeded {args.skus} SKUs in Cin7 and OCI in {time.perf_counter() - t:.0f} s", flush=True)
        with pg_ledger():
            for label, run_id, change in (("first sync (all new)", "r1", 0), ("nothing changed", "r2", 0),
                                          (f"{args.changed:.0%} changed, upload answer lost once", "r3", args.changed)):
                k = int(args.skus * change)
                if k:
                    emu.post("cin7", "/_sandbox/seed", {"availability": [{"SKU": f"CS-{i:06d}", "Location": "Main Warehouse", "OnHand": 30, "Allocated": 0}
                                                                         for i in range(0, args.skus, args.skus // k)][:k]})
                    emu.post("sfcc", "/_sandbox/faults", {"lose_response_after_commit": {"method": "PUT"}})
                before = len(emu.get("sfcc", "/_sandbox/oci/imports")["imports"])
                r = stock_run(PAIRING, run_id)
                new = emu.get("sfcc", "/_sandbox/oci/imports")["imports"][before:]
                ids = {i["importId"] for i in new}
                in_files = sum(len(f.splitlines()) - 1 for i in new for f in i["files"])
                applied = sum(1 for a in emu.get("sfcc", "/_sandbox/oci/applied")["applied"] if a["importId"] in ids)
                rows.append([label, r["listings"], k if k else "-", r["pushed"]["sent"], len(new), sum(len(i["files"]) for i in new), in_files, applied,
                             f"{r['times']['extract']:.1f}", f"{r['times']['gate']:.1f}", f"{r['times']['push']:.1f}", f"{r['times']['total']:.1f}"])
                print(f"{label}: {r['times']['total']:.1f} s", flush=True)
    finally:
        emu.stop()
    print()
    print(f"stock_out, cin7_sfcc uk region, {args.skus} SKUs")
    print(table(rows, ["run", "listings", "changed in Cin7", "sent", "OCI imports", "files uploaded", "records in files", "records applied",
                       "extract s", "gate s", "push s", "run s"]))
    print(f"peak memory of the flow process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
