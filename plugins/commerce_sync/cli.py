"""Operator commands: `python -m commerce_sync ...` (read the quarantine, replay it).

Output is plain text for people; `--json` gives machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

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


def cmd_quarantine_discard(args) -> int:
    ledger = _ledger()
    row = ledger.get_quarantine(args.id)
    if row is None or row.status != "open":
        print(f"No open quarantine record #{args.id}.", file=sys.stderr)
        return 1
    ledger.discard_quarantine(args.id, args.reason, by=args.by)
    print(f"Discarded #{args.id} ({row.flow} {row.record_key}): {args.reason}")
    return 0


def cmd_mappings_import(args) -> int:
    """Show what a mapping file would change; with --apply, install it and load it (audited)."""
    import shutil

    from commerce_sync.mappings import import_mapping_file, read_mapping_file
    from commerce_sync.pairing import get_pairing, mappings_dir

    get_pairing(args.pairing)  # refuse unknown pairings before touching anything
    read_mapping_file(args.file, args.kind)  # a broken file stops here, naming file and line
    ledger = _ledger()
    diff = import_mapping_file(ledger, args.pairing, args.kind, args.file, dry_run=True)
    print(diff.summary())
    if not args.apply:
        print("(dry run: nothing changed; add --apply to install the file)")
        return 0
    target = mappings_dir() / args.pairing / f"{args.kind}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.resolve() != args.file.resolve():
        shutil.copyfile(args.file, target)  # the folder stays the source of truth the runs load
    import_mapping_file(ledger, args.pairing, args.kind, target, changed_by=args.by)
    print(f"Installed {target} and loaded it into the ledger.")
    return 0


def cmd_health(args) -> int:
    from commerce_sync.housekeeping.sizes import format_sizes, ledger_sizes
    from commerce_sync.pairing import get_pairing

    pairing = get_pairing(args.pairing)
    ledger = _ledger()
    out = {"pairing": pairing.key, "flows": {}}
    for flow in pairing.flows:
        runs = ledger.runs(pairing.key, flow, limit=1)
        held = ledger.open_quarantine(pairing.key, flow)
        last = runs[0] if runs else {}
        out["flows"][flow] = {
            "last_run": last.get("run_id"),
            "finished_at": str(last.get("finished_at")) if last.get("finished_at") else None,
            "extracted": last.get("extracted"),
            "loaded": last.get("loaded"),
            "quarantined": last.get("quarantined"),
            "breaches": (last.get("details") or {}).get("breaches", []),
            "drift": (last.get("details") or {}).get("counts") if flow == "drift_monitor" else None,
            "open_quarantine": len(held),
            "oldest_open": str(min(q.first_seen for q in held)) if held else None,
        }
    out["ledger"] = ledger_sizes(ledger.engine)  # the whole ledger, shared by every pairing
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"Health of {pairing.key}:")
    for flow, h in out["flows"].items():
        state = "never ran" if not h["last_run"] else ("finished " + (h["finished_at"] or "?") if h["finished_at"] else "unfinished (failed or running)")
        print(f"  {flow:<24} {state}; loaded {h['loaded']}, open quarantine {h['open_quarantine']}" + (f" (oldest {h['oldest_open']})" if h["oldest_open"] else ""))
        for breach in h["breaches"]:
            print(f"      ! {breach}")
        if h["drift"]:
            print("      drift: " + ", ".join(f"{k} {v}" for k, v in h["drift"].items()))
    print("\n".join(format_sizes(out["ledger"])))
    return 0


def cmd_replay(args) -> int:
    from commerce_sync.flows import orders_in
    from commerce_sync.runtime import FlowContext

    run_id = f"manual_replay__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    with FlowContext.for_pairing(args.pairing) as ctx:
        summary = orders_in.replay(ctx, run_id)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_files(args) -> int:
    """Stored files of a flow's runs (packing slips by run id): list them, or write one out."""
    files = _ledger().files(args.pairing, args.flow, args.run)
    if args.name is None:
        for name in sorted(files):
            print(name)
        return 0
    if args.name not in files:
        print(f"no file {args.name!r} for {args.pairing} {args.flow}{' run ' + args.run if args.run else ''}", file=sys.stderr)
        return 1
    out = args.output or Path(args.name)
    out.write_bytes(files[args.name])
    print(f"wrote {out} ({len(files[args.name])} bytes)")
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
    qd = q.add_parser("discard", help="close an open record for good, with a reason that is kept")
    qd.add_argument("id", type=int)
    qd.add_argument("--reason", required=True)
    qd.add_argument("--by", default=os.environ.get("USER", "ops"))
    qd.set_defaults(func=cmd_quarantine_discard)
    m = sub.add_parser("mappings", help="mapping files").add_subparsers(dest="action", required=True)
    mi = m.add_parser("import", help="dry-run (default) or --apply a mapping CSV")
    mi.add_argument("--pairing", required=True)
    mi.add_argument("--kind", required=True, help="skus, sellers, carriers, ...")
    mi.add_argument("file", type=Path)
    mi.add_argument("--apply", action="store_true")
    mi.add_argument("--by", default=os.environ.get("USER", "ops"))
    mi.set_defaults(func=cmd_mappings_import)
    h = sub.add_parser("health", help="last runs, open quarantine and breached thresholds per flow")
    h.add_argument("--pairing", required=True)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_health)
    rp = sub.add_parser("replay", help="gate and load a pairing's open orders_in quarantine now")
    rp.add_argument("--pairing", required=True)
    rp.set_defaults(func=cmd_replay)
    f = sub.add_parser("files", help="stored files, e.g. packing slips: list, or get one by name")
    f.add_argument("--pairing", required=True)
    f.add_argument("--flow", default="dispatch_back")
    f.add_argument("--run", help="the run id (the run report names its files)")
    f.add_argument("name", nargs="?")
    f.add_argument("-o", "--output", type=Path)
    f.set_defaults(func=cmd_files)
    from commerce_sync.housekeeping.cli import add_commands as add_housekeeping_commands

    add_housekeeping_commands(sub)  # erase --email, housekeeping
    args = parser.parse_args(argv)
    return args.func(args)
