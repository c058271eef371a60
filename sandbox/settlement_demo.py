"""The demo's settlement sample: include/settlements/demo/settlement_detail_report_batch_1.csv is one
Adyen batch made by `sample()`; `seed()` puts the Cin7 sales it pays for into the Cin7 emulator, so
a D2C pairing whose settlement.location is include/settlements/demo reconciles it.

    python -m sandbox.settlement_demo --cin7 http://127.0.0.1:8101 --prefix SFCC-   # seed the sales
    python -m sandbox.settlement_demo --write                                      # rewrite the sample

The batch balances and most rows match; it also holds the cases the report shows finance (a
chargeback, a payment with no sale, a total that differs, a currency that differs, a payment with
no order number, a deposit correction, a type nobody mapped).
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from sandbox.settlement_builders import REFUND_SKU, SKU, Month, month

DEMO_FILE = Path(__file__).resolve().parents[1] / "include" / "settlements" / "demo" / "settlement_detail_report_batch_1.csv"


def sample(prefix: str) -> Month:
    """One batch of about 30 rows; `prefix` is the pairing's reference_prefix (only the sales use it)."""
    return month(batches=1, payments=24, prefix=prefix, start=datetime(2026, 11, 2, tzinfo=timezone.utc), merchant="DemoShopGB", seed=9, unbalanced=None)


def seed(cin7_url: str, prefix: str) -> int:
    """The sample's sales (and the two products they need) into the Cin7 emulator at `cin7_url`."""
    def post(path: str, body: dict) -> None:
        req = urllib.request.Request(f"{cin7_url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=30).read()

    sales = sample(prefix).sales
    post("/_sandbox/seed", {"products": [{"SKU": SKU, "Name": "Web item"}, {"SKU": REFUND_SKU, "Name": "Refund by the payment provider"}]})
    post("/_sandbox/sales", {"sales": sales})
    return len(sales)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.settlement_demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cin7", default="http://127.0.0.1:8101", help="the Cin7 emulator")
    parser.add_argument("--prefix", default="", help="the D2C pairing's channel.reference_prefix")
    parser.add_argument("--write", action="store_true", help=f"rewrite {DEMO_FILE.name} instead of seeding")
    args = parser.parse_args()
    if args.write:
        DEMO_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEMO_FILE.write_bytes(next(iter(sample("").files.values())))
        print(f"wrote {DEMO_FILE}")
    else:
        print(f"seeded {seed(args.cin7, args.prefix)} Cin7 sales for {DEMO_FILE.name}")


if __name__ == "__main__":
    main()
