"""Operator commands for the ledger's housekeeping: `erase --email` and `housekeeping` (a run now).

The ops console calls the same functions (erasure.erase_address, housekeeping.run).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone


def cmd_erase(args) -> int:
    from commerce_sync.housekeeping.erasure import erase_address
    from commerce_sync.housekeeping.settings import load_settings
    from commerce_sync.ledger import Ledger
    from commerce_sync.ledger.sealing import SealKeyMissing

    ledger = Ledger.from_url()
    try:
        counts = erase_address(ledger.engine, args.email, args.by, load_settings())
    except (ValueError, SealKeyMissing) as exc:  # not an address; or no key to find the buyer's sealed records with
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"rows": counts}, indent=2))
        return 0
    if not counts:
        print("Nothing in the ledger held that address. The erasure is recorded (erasure_log), without the address.")
        return 0
    print("Erased the buyer's personal data (the erasure is recorded in erasure_log, without the address):")
    for table, n in sorted(counts.items()):
        print(f"  {table:<18} {n} row(s)")
    if counts.get("sealed_unreadable"):
        print("  ! some sealed records no current key opens (sealed with a retired key): nobody can read them; they were left as they are")
    if counts.get("left_in_keys"):
        print("  ! the address is part of a record's key somewhere: left there; see the log and tell engineering")
    return 0


def cmd_housekeeping(args) -> int:
    from commerce_sync import housekeeping
    from commerce_sync.housekeeping.sizes import format_sizes

    run_id = f"manual__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    details = housekeeping.run(run_id)
    if args.json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    deleted = {k: v for k, v in details["prune"]["deleted"].items() if v}
    erased = {k: v for k, v in details["erase"]["erased"].items() if v}
    print(f"Housekeeping {run_id}: deleted {sum(deleted.values()):,} row(s) in {details['prune']['seconds']} s"
          + (": " + ", ".join(f"{k} {v:,}" for k, v in deleted.items()) if deleted else ""))
    print("Personal data erased by retention: " + (", ".join(f"{k} {v:,}" for k, v in erased.items()) if erased else "none due"))
    sizes = [{**e, "oldest": datetime.fromisoformat(e["oldest"]) if e["oldest"] else None} for e in details["sizes"]]
    print("\n".join(format_sizes(sizes)))
    return 0


def add_commands(sub) -> None:
    e = sub.add_parser("erase", help="erase one buyer's personal data from every ledger table (right to erasure)")
    e.add_argument("--email", required=True, help="the buyer's e-mail address")
    e.add_argument("--by", default=os.environ.get("USER", "ops"), help="who asked (kept in erasure_log)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_erase)
    h = sub.add_parser("housekeeping", help="apply retention and erase personal data past its time now (as the daily DAG does)")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_housekeeping)
