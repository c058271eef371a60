"""Operator commands: `python -m commerce_sync ...` (read the quarantine, replay it).

Output is plain text for people; `--json` gives machine-readable output. `--pairing` narrows a
command to one pairing; without it a command covers every pairing. A command that cannot do its
work says why in one line on stderr and exits non-zero, never with a traceback.

The commands need what the DAGs have: the ledger (COMMERCE_SYNC_LEDGER_URL or the integration_db
connection), the seal key (COMMERCE_SYNC_SEAL_KEY) and, for replay, the pairing's connections.
`make demo` writes them to .demo/env (`source .demo/env`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from commerce_sync.errors import MappingFileError, SealKeyError
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import Pairing, PairingError


class CliError(Exception):
    """A command cannot do what was asked: the message is the one line the operator sees."""

    exit_code = 2


class NotFound(CliError):
    exit_code = 1


def _ledger() -> Ledger:
    from sqlalchemy.engine import make_url

    from commerce_sync.ledger import ledger_url

    url = ledger_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        # an operator command must not start a new, empty ledger where it expected the real one
        raise CliError(
            f"no ledger at {parsed.database}: set COMMERCE_SYNC_LEDGER_URL (or the integration_db connection) to the "
            "ledger the DAGs use; for the demo: source .demo/env"
        )
    return Ledger.from_url(url)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "ops"


def _pairings(args) -> list[Pairing]:
    """The pairings a command covers: the one named by --pairing, else every pairing."""
    from commerce_sync.pairing import load_pairings

    known = load_pairings()
    name = getattr(args, "pairing", None)
    if name is None:
        return list(known.values())
    if name not in known:
        raise CliError(f"unknown pairing {name!r}; known pairings: {', '.join(sorted(known)) or 'none'}")
    return [known[name]]


def _one_pairing(args, why: str) -> Pairing:
    pairings = _pairings(args)
    if len(pairings) != 1:
        raise CliError(f"{why}: name it with --pairing ({', '.join(p.key for p in pairings)})")
    return pairings[0]


def _utc(dt: datetime) -> datetime:
    # SQLite hands times back without their zone; the ledger writes them in UTC
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def when(dt: datetime | None) -> str:
    """A time as people read it: to the second, with its zone."""
    return "-" if dt is None else f"{_utc(dt):%Y-%m-%d %H:%M:%S} UTC"


def when_json(dt: datetime | None) -> str | None:
    return None if dt is None else _utc(dt).isoformat(timespec="seconds")


def _times(n: int | None) -> str:
    n = n or 0
    return "once" if n == 1 else f"{n} times"


def cmd_quarantine_list(args) -> int:
    from commerce_sync.held import order_number
    from commerce_sync.pairing import load_pairings

    pairings = _pairings(args)
    ledger = _ledger()
    known = load_pairings()
    rows = ledger.open_quarantine(pairings[0].key if args.pairing else None, args.flow)
    listed = [(r, order_number(known.get(r.pairing), r.flow, r.payload)) for r in rows]
    if args.json:
        print(json.dumps([
            {"id": r.id, "pairing": r.pairing, "flow": r.flow, "order": order, "record_key": r.record_key, "reasons": r.reasons,
             "attempts": r.attempts or 0, "first_seen": when_json(r.first_seen), "last_seen": when_json(r.last_seen)}
            for r, order in listed
        ], indent=2))
        return 0
    scope = args.pairing or "any pairing"
    if not rows:
        print(f"No open quarantine for {scope}" + (f" ({args.flow})." if args.flow else "."))
        return 0
    print(f"{len(rows)} open record(s) in quarantine for {scope}:")
    for pairing in dict.fromkeys(r.pairing for r, _ in listed):
        print(pairing)
        for r, order in (x for x in listed if x[0].pairing == pairing):
            name = f"order {order} (key {r.record_key})" if order else f"key {r.record_key}"
            reasons = "; ".join(f"{x['check']}: {x['detail']}" for x in r.reasons)
            print(f"  #{r.id} {r.flow}: {name}, since {when(r.first_seen)}, seen {_times(r.attempts)}\n      {reasons}")
    return 0


def cmd_quarantine_show(args) -> int:
    from commerce_sync.held import masked, order_number
    from commerce_sync.pairing import load_pairings

    ledger = _ledger()
    row = ledger.get_quarantine(args.id)
    if row is None:
        raise NotFound(f"no quarantine record #{args.id}")
    shown = {
        "id": row.id, "pairing": row.pairing, "flow": row.flow, "order": order_number(load_pairings().get(row.pairing), row.flow, row.payload),
        "record_key": row.record_key, "status": row.status, "reasons": row.reasons, "attempts": row.attempts or 0,
        "first_seen": when(row.first_seen), "last_seen": when(row.last_seen), "last_run_id": row.last_run_id,
        "resolved_at": when(row.resolved_at) if row.resolved_at else None, "resolution_note": row.resolution_note, "resolved_by": row.resolved_by,
        "payload": row.payload,
    }
    if args.reveal:
        ledger.record_access(row.pairing, "quarantine", row.id, row.record_key, by=args.by)
        print(f"(buyers' personal data shown in clear; recorded in the ledger as revealed by {args.by})", file=sys.stderr)
    else:
        shown.update(reasons=masked(row.reasons), payload=masked(row.payload))
    print(json.dumps(shown, indent=2, default=str, ensure_ascii=False))
    if not args.reveal:
        print("(buyers' personal data masked; --reveal shows it, and records who asked)", file=sys.stderr)
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
    """Show what a mapping file would change; with --apply, install it and load it (audited).
    --merge keeps the rows the file does not name."""
    from commerce_sync.mappings import install_mapping_file, read_mapping_file

    pairing = _one_pairing(args, "a mapping file belongs to one pairing")
    read_mapping_file(args.file, args.kind)  # a broken file stops here, naming file and line
    ledger = _ledger()
    diff, target = install_mapping_file(ledger, pairing.key, args.kind, args.file, merge=args.merge, apply=args.apply, changed_by=args.by)
    if diff.removed:
        print(
            f"Rows missing from this file will be removed: {len(diff.removed)} {args.kind} row(s) of {pairing.key} "
            f"are not in {args.file}. To add or change rows and keep the others, use --merge."
        )
    print(diff.summary())
    if not args.apply:
        print("(dry run: nothing changed; add --apply to install the file)")
        return 0
    print(f"Installed {target}" + (" (merged)" if args.merge else "") + " and loaded it into the ledger.")
    return 0


def _health(ledger: Ledger, pairing: Pairing) -> dict:
    out = {"pairing": pairing.key, "flows": {}}
    held = ledger.open_quarantine_counts(pairing.key)  # counts only: health needs no seal key
    for flow in pairing.flows:
        runs = ledger.runs(pairing.key, flow, limit=1)
        open_count, oldest = held.get(flow, (0, None))
        last = runs[0] if runs else {}
        drift = (last.get("details") or {}).get("counts") if flow == "drift_monitor" else None
        out["flows"][flow] = {
            "last_run": last.get("run_id"),
            "finished_at": when_json(last.get("finished_at")),
            "extracted": last.get("extracted") or 0,
            "loaded": last.get("loaded") or 0,
            "quarantined": last.get("quarantined") or 0,
            "breaches": (last.get("details") or {}).get("breaches", []),
            "drift": {kind: n or 0 for kind, n in drift.items()} if drift else None,
            "open_quarantine": open_count,
            "oldest_open": when_json(oldest),
        }
    return out


def cmd_health(args) -> int:
    ledger = _ledger()
    from commerce_sync.alerts import outbox_status
    from commerce_sync.housekeeping.sizes import format_sizes, ledger_sizes

    # the whole ledger's: alert e-mails of every pairing (one SMTP server serves them all), and
    # the size and oldest row of each table
    box = outbox_status(ledger)
    sizes = ledger_sizes(ledger.engine)
    reports = [{**_health(ledger, pairing), "outbox": box, "ledger": sizes} for pairing in _pairings(args)]
    if args.json:
        # one pairing named: its object; every pairing: a list of them
        print(json.dumps(reports[0] if args.pairing else reports, indent=2, default=str))
        return 0
    for out in reports:
        print(f"Health of {out['pairing']}:")
        for flow, h in out["flows"].items():
            finished = when(datetime.fromisoformat(h["finished_at"])) if h["finished_at"] else None
            state = "never ran" if not h["last_run"] else (f"finished {finished}" if finished else "unfinished (failed or running)")
            oldest = f" (oldest since {when(datetime.fromisoformat(h['oldest_open']))})" if h["oldest_open"] else ""
            print(f"  {flow:<24} {state}; loaded {h['loaded']}, open quarantine {h['open_quarantine']}{oldest}")
            for breach in h["breaches"]:
                print(f"      ! {breach}")
            if h["drift"]:
                print("      drift: " + ", ".join(f"{k} {v}" for k, v in h["drift"].items()))
    if box["undelivered"]:
        print(f"! {box['undelivered']} alert e-mail(s) not delivered, the oldest for {box['oldest_undelivered_minutes']} minutes "
              f"({box['oldest_subject']!r}); last error: {box['last_error']}")
    else:
        print("alert e-mails: all delivered")
    print("\n".join(format_sizes(sizes)))
    return 0


def _quiet_airflow() -> None:
    """Airflow's import sends every library's INFO lines to stdout; an operator command prints
    its own result (the run's detail is in the ledger's run report)."""
    import logging

    import airflow.sdk  # noqa: F401 - configures logging on import: quieten it after

    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for handler in root.handlers:  # libraries that set their own logger to INFO (GX) stop here
        handler.setLevel(logging.WARNING)


def cmd_replay(args) -> int:
    from commerce_sync.flows import orders_in
    from commerce_sync.runtime import FlowContext

    _ledger()  # the ledger must exist before anything is booked against it
    _quiet_airflow()
    run_id = f"manual_replay__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    results = {}
    for pairing in _pairings(args):
        if "orders_in" not in pairing.flows:
            continue
        with FlowContext.for_pairing(pairing.key) as ctx:
            results[pairing.key] = orders_in.replay(ctx, run_id)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    for key, summary in results.items():
        load = summary.get("load") or {}
        booked = (load.get("created") or 0) + (load.get("recovered") or 0)
        print(
            f"{key}: {(summary.get('extract') or {}).get('replayed') or 0} held order(s) gated again; {booked} booked, "
            f"{load.get('already_loaded') or 0} already booked, {summary.get('open_quarantine') or 0} still held (run {run_id})"
        )
    return 0


def cmd_files(args) -> int:
    """Stored files of a flow's runs (packing slips by run id): list them, or write one out."""
    ledger = _ledger()
    found = {p.key: ledger.files(p.key, args.flow, args.run) for p in _pairings(args)}
    run = f" run {args.run}" if args.run else ""
    if args.name is None:
        if not any(found.values()):
            print(f"No stored files for {args.pairing or 'any pairing'} {args.flow}{run}.")
        for key, files in found.items():
            for name in sorted(files):
                print(name if args.pairing else f"{key}  {name}")
        return 0
    holders = [key for key, files in found.items() if args.name in files]
    if not holders:
        raise NotFound(f"no file {args.name!r} for {args.pairing or 'any pairing'} {args.flow}{run}")
    if len(holders) > 1:
        raise CliError(f"{args.name!r} is stored for several pairings ({', '.join(holders)}): name one with --pairing")
    data = found[holders[0]][args.name]
    out = args.output or Path(args.name)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


def _pairing_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairing", help="one pairing (default: every pairing)")


def _by_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--by", default=_who(), help=f"who {what}, kept in the ledger (default: your login name)")


def _errors():
    """Failures an operator can act on, each shown as its one-line message."""
    from sqlalchemy.exc import OperationalError

    from commerce_sync.errors import HttpError

    # an API that is down or refuses (replay): nothing was booked twice; the held records stay held
    return (CliError, SealKeyError, PairingError, MappingFileError, OperationalError, HttpError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commerce_sync", description="Commerce Sync operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quarantine", help="records held back with a reason").add_subparsers(dest="action", required=True)
    ql = q.add_parser("list", help="open quarantine, by pairing")
    _pairing_option(ql)
    ql.add_argument("--flow")
    ql.add_argument("--json", action="store_true")
    ql.set_defaults(func=cmd_quarantine_list)
    qs = q.add_parser("show", help="one record with its reasons and payload (buyers' personal data masked)")
    qs.add_argument("id", type=int)
    qs.add_argument("--reveal", action="store_true", help="show buyers' personal data in clear (recorded in the ledger)")
    _by_option(qs, "revealed it")
    qs.set_defaults(func=cmd_quarantine_show)
    qd = q.add_parser("discard", help="close an open record for good, with a reason that is kept")
    qd.add_argument("id", type=int)
    qd.add_argument("--reason", required=True)
    _by_option(qd, "discarded it")
    qd.set_defaults(func=cmd_quarantine_discard)
    m = sub.add_parser("mappings", help="mapping files").add_subparsers(dest="action", required=True)
    mi = m.add_parser("import", help="dry-run (default) or --apply a mapping CSV")
    _pairing_option(mi)
    mi.add_argument("--kind", required=True, help="skus, sellers, carriers, ...")
    mi.add_argument("file", type=Path)
    mi.add_argument("--apply", action="store_true")
    mi.add_argument("--merge", action="store_true", help="add or change the file's rows and keep every other row (default: the file replaces the mapping)")
    _by_option(mi, "changed it")
    mi.set_defaults(func=cmd_mappings_import)
    h = sub.add_parser("health", help="last runs, open quarantine and breached thresholds per flow")
    _pairing_option(h)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_health)
    rp = sub.add_parser("replay", help="gate and load the open orders_in quarantine now")
    _pairing_option(rp)
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_replay)
    f = sub.add_parser("files", help="stored files, e.g. packing slips: list, or get one by name")
    _pairing_option(f)
    f.add_argument("--flow", default="dispatch_back")
    f.add_argument("--run", help="the run id (the run report names its files)")
    f.add_argument("name", nargs="?")
    f.add_argument("-o", "--output", type=Path)
    f.set_defaults(func=cmd_files)
    from commerce_sync.housekeeping.cli import add_commands as add_housekeeping_commands

    add_housekeeping_commands(sub)  # erase --email, housekeeping
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _errors() as exc:
        print(_one_line(exc), file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except Exception as exc:
        if type(exc).__name__ == "AirflowNotFoundException":  # a connection this shell cannot read
            print(f"{exc}: define it where this shell can read it (AIRFLOW_CONN_<ID> or a secrets backend); for the demo: source .demo/env", file=sys.stderr)
            return 2
        raise


def _one_line(exc: Exception) -> str:
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        return f"cannot reach the ledger: {str(exc.orig).strip().splitlines()[0]}"
    from commerce_sync.errors import HttpError

    if isinstance(exc, HttpError):
        first = " ".join(str(exc).split())
        return f"{first} (the records stay in quarantine; nothing was booked twice: run it again when the API answers)"
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
