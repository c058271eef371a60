"""Operator commands: `python -m commerce_sync ...` (read the quarantine, replay it).

Output is plain text for people; `--json` gives machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from commerce_sync.ledger import Ledger


def _ledger() -> Ledger:
    return Ledger.from_url()


def cmd_quarantine_list(args) -> int:
    rows = _ledger().open_quarantine(args.pairing, args.flow)
    if args.json:
        print(json.dumps([{"id": r.id, "flow": r.flow, "record_key": r.record_key, "reasons": r.reasons, "attempts": r.attempts, "first_seen": str(r.first_seen)} for r in rows], indent=2))
        return 0
    if not rows:
        print(f"No open quarantine for {args.pairing}.")
        return 0
    print(f"{len(rows)} open record(s) in quarantine for {args.pairing}:")
    for r in rows:
        reasons = "; ".join(f"{x['check']}: {x['detail']}" for x in r.reasons)
        print(f"  #{r.id} {r.flow} {r.record_key} (since {r.first_seen:%Y-%m-%d %H:%M}, seen {r.attempts}x)\n      {reasons}")
    return 0


def cmd_quarantine_show(args) -> int:
    row = _ledger().get_quarantine(args.id)
    if row is None:
        print(f"No quarantine record #{args.id}.", file=sys.stderr)
        return 1
    print(json.dumps({k: (str(v) if isinstance(v, datetime) else v) for k, v in vars(row).items()}, indent=2, default=str))
    return 0


def cmd_replay(args) -> int:
    from commerce_sync.flows import orders_in
    from commerce_sync.runtime import FlowContext

    run_id = f"manual_replay__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    with FlowContext.for_pairing(args.pairing) as ctx:
        summary = orders_in.replay(ctx, run_id)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commerce_sync", description="Commerce Sync operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quarantine", help="records held back with a reason").add_subparsers(dest="action", required=True)
    ql = q.add_parser("list", help="open quarantine of a pairing")
    ql.add_argument("--pairing", required=True)
    ql.add_argument("--flow")
    ql.add_argument("--json", action="store_true")
    ql.set_defaults(func=cmd_quarantine_list)
    qs = q.add_parser("show", help="one record with its payload and reasons")
    qs.add_argument("id", type=int)
    qs.set_defaults(func=cmd_quarantine_show)
    rp = sub.add_parser("replay", help="gate and load a pairing's open orders_in quarantine now")
    rp.add_argument("--pairing", required=True)
    rp.set_defaults(func=cmd_replay)
    args = parser.parse_args(argv)
    return args.func(args)
