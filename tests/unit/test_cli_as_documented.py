"""Every operator command the README, the operating manual and the demo print runs as written.

The commands are read out of README.md, docs/operations.md and scripts/demo.sh, so a command
that drifts from the CLI fails here. They run against a ledger holding sealed rows (orders
quarantined with their buyers' data, John Lewis and Marketplacer) in SQLite and PostgreSQL; the
demo's own commands also run in a shell after `source .demo/env`, as a person would run them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from commerce_sync import airflow_settings
from commerce_sync.cli import main
from commerce_sync.ledger import Ledger
from commerce_sync.pairing import load_pairings
from sandbox.mirakl_builders import make_order, wire
from tests.builders import marketplacer_invoice, with_relay_ids

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/operations.md")
PREFIX = "python -m commerce_sync"
WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
RUN_ID = "scheduled__2026-11-23T09:30:00+00:00"
BUYER = ("alex.buyer@example.com", "+61 400 000 000", "1 Test St", "Lovelace", "171 Victoria Street")
WRONG_KEY = "cannot unseal: COMMERCE_SYNC_SEAL_KEY is not the key this ledger was sealed with"
# a file a documented command names, made where the command looks for it
MAPPING_ROWS = {"skus": "channel_sku,master_sku\nCS-SOCK-WHT,CS-SOCK-WHT\n"}


COMMAND = re.compile(re.escape(PREFIX) + r"\s+(\S.*)", re.S)  # the bare module name, or a sibling module, is no command


def _commands(where: str, texts: list[str]) -> list[tuple[str, str]]:
    return [(where, " ".join(m.group(1).split())) for text in texts if (m := COMMAND.search(text))]


def documented() -> list[tuple[str, str]]:
    """(where, arguments) of every `python -m commerce_sync ...` in the docs and the demo's output."""
    found = []
    for name in DOCS:
        text = (ROOT / name).read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            found += _commands(f"{name} (code block)", block.splitlines())
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        found += _commands(f"{name} (in the text)", re.findall(r"`([^`]+)`", prose))
    return found + demo_printed()


def demo_printed() -> list[tuple[str, str]]:
    script = (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    printed = script.split("cat <<EOT", 1)[1].split("\nEOT", 1)[0]
    assert "source .demo/env" in printed.replace('${DEMO#"$ROOT"/}', ".demo"), "the demo must print how to load its settings"
    return _commands("scripts/demo.sh", printed.splitlines())


def test_the_docs_show_every_command():
    shown = {tuple(shlex.split(args, comments=True)[:2]) for _, args in documented()}
    firsts = {argv[0] for argv in shown}
    assert {("quarantine", "list"), ("quarantine", "show"), ("quarantine", "discard"), ("mappings", "import")} <= shown
    assert {"health", "replay", "files"} <= firsts
    assert any(where == "scripts/demo.sh" for where, _ in documented())


@pytest.fixture
def held(ledger_url, tmp_path, monkeypatch):
    """A ledger with sealed quarantined orders of both pairings, run reports and a packing slip;
    the ERP connections lead to a Cin7 emulator (`replay` gates the held orders again, which asks
    Cin7 its customers' currencies), every other connection leads nowhere."""
    monkeypatch.setenv("COMMERCE_SYNC_LEDGER_URL", ledger_url)
    mappings = tmp_path / "mappings"
    import shutil

    shutil.copytree(ROOT / "include" / "mappings", mappings)
    monkeypatch.setenv("COMMERCE_SYNC_MAPPINGS_DIR", str(mappings))
    from sandbox import cin7
    from sandbox.server import start_server

    erp = start_server(cin7.create_app(account_id="demo-account", application_key="demo-key", rate_limit_per_minute=6000))
    customers = [{"Name": "Marketplacer", "Currency": "AUD"}, {"Name": "John Lewis Marketplace", "Currency": "GBP"}]
    requests.post(f"{erp.url}/_sandbox/seed", json={"customers": customers}, timeout=10).raise_for_status()
    closed = f"http://127.0.0.1:{_closed_port()}"
    hosts = {c["conn_id"]: {"host": f"{erp.url}/ExternalApi/v2" if c["conn_id"].endswith("__cin7") else closed} for c in airflow_settings.read()["connections"]}
    for name, value in airflow_settings.env(overrides=hosts).items():
        monkeypatch.setenv(name, value)
    ledger = Ledger.from_url(ledger_url)
    ids = seed(ledger)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        yield ledger, ids, erp
    finally:
        ledger.dispose()
        erp.stop()


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()  # bound and released: nothing listens there


def seed(ledger: Ledger) -> dict[str, int]:
    invoice = with_relay_ids(marketplacer_invoice(10014, [("CS-SOCK-WHT", 1, 1500), ("CS-TEE-BLK-M", 1, 4500)], created_at=WHEN))
    jl = wire(make_order("JL7001-A", "JL-CO-7001", [{"offer_sku": "JL-UNMAPPED", "quantity": 1, "price_unit": "25.00"}], state="SHIPPING", created=WHEN))
    ledger.quarantine("cin7_marketplacer", "orders_in", invoice["id"], invoice, [{"check": "sku_mapped", "detail": "SKU 'CS-SOCK-WHT' is not mapped to a Cin7 SKU"}], RUN_ID)
    ledger.quarantine("cin7_john_lewis", "orders_in", "JL7001-A", jl, [{"check": "sku_mapped", "detail": "SKU 'JL-UNMAPPED' is not mapped to a Cin7 SKU"}], RUN_ID)
    ledger.quarantine("cin7_marketplacer", "stock_out", "MKP-GIFT-50", {"sku": "MKP-GIFT-50", "quantity": 0}, [{"check": "listing_mapped", "detail": "no Cin7 SKU"}], RUN_ID)
    for key in ("cin7_marketplacer", "cin7_john_lewis"):
        ledger.record_run(key, "orders_in", RUN_ID, interval_start=WHEN, interval_end=WHEN, extracted=3, valid=2, quarantined=1, loaded=2,
                          started_at=WHEN, finished_at=WHEN, details={"breaches": []})
        ledger.record_run(key, "drift_monitor", RUN_ID, started_at=WHEN, finished_at=WHEN, details={"counts": {"stock_drift": 0, "orphaned_order": 1}})
    ledger.store_file("cin7_john_lewis", "dispatch_back", RUN_ID, "packing-slip-JL1001-2.pdf", "application/pdf", b"%PDF-slip")
    (mkp,) = ledger.open_quarantine("cin7_marketplacer", "orders_in")
    return {"show": mkp.id}


def _ready(args: str, ledger: Ledger, ids: dict[str, int]) -> list[str]:
    """The documented arguments with their placeholders filled and the files they name made."""
    if "discard" in args:  # each discard closes a record of its own
        ledger.quarantine("cin7_marketplacer", "orders_in", f"to-discard-{len(args)}", {"legacyId": 1}, [{"check": "c", "detail": "d"}], RUN_ID)
        target = ledger.quarantine_by_key("cin7_marketplacer", "orders_in", f"to-discard-{len(args)}").id
    else:
        target = ids["show"]
    filled = args.replace("<run id>", RUN_ID).replace("<id>", str(target)).replace("<pairing>", "cin7_marketplacer")
    assert "<" not in filled and ">" not in filled, f"a placeholder this test does not know: {args}"
    argv = shlex.split(filled, comments=True)
    if argv[:2] == ["mappings", "import"]:
        kind = argv[argv.index("--kind") + 1]
        path = Path(next(a for a in argv[2:] if a.endswith(".csv")))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MAPPING_ROWS[kind], encoding="utf-8")
    return argv


def test_every_documented_command_runs_as_written(held, capsys):
    ledger, ids, _ = held
    # erasing a buyer closes their held order and housekeeping prunes: those run after the rest
    destructive = ("erase", "housekeeping")
    for where, args in sorted(documented(), key=lambda d: shlex.split(d[1], comments=True)[0] in destructive):
        argv = _ready(args, ledger, ids)
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"{where}: `{PREFIX} {args}` exited {code}: {err}"
        assert out.strip(), f"{where}: `{args}` printed nothing"
        assert "None" not in out, f"{where}: `{args}` shows None:\n{out}"
        assert not re.search(r"\d\d:\d\d:\d\d\.\d", out), f"{where}: `{args}` shows microseconds:\n{out}"
        if "--reveal" not in argv:
            assert not [b for b in BUYER if b in out], f"{where}: `{args}` shows buyers' personal data:\n{out}"
        if argv[:2] == ["quarantine", "list"]:
            assert "order MKP-10014 (key " in out and " UTC" in out
            if "--pairing" not in argv:
                assert "order JL-CO-7001 (key JL7001-A)" in out and "key MKP-GIFT-50" in out
        if argv[0] == "health":
            assert f"finished {WHEN:%Y-%m-%d %H:%M:%S} UTC" in out
    reveals = [a for _, a in documented() if "--reveal" in a]
    assert len(ledger.accesses()) == len(reveals)


def test_replay_with_the_erp_down_is_one_line_and_the_orders_stay_held(held, capsys):
    ledger, _, erp = held
    erp.stop()
    before = {(q.pairing, q.record_key) for q in ledger.open_quarantine(None)}
    assert main(["replay", "--pairing", "cin7_john_lewis"]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "cannot connect" in err and "stay in quarantine" in err and "Traceback" not in err
    assert {(q.pairing, q.record_key) for q in ledger.open_quarantine(None)} == before


@pytest.fixture
def demo_env(tmp_path):
    """What `make demo` writes to .demo/env (scripts/demo.sh --env-only), in a folder of this test."""
    demo = tmp_path / "demo"
    env = {**os.environ, "COMMERCE_SYNC_DEMO_DIR": str(demo), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for name in ("COMMERCE_SYNC_SEAL_KEY", "COMMERCE_SYNC_LEDGER_URL", "COMMERCE_SYNC_MAPPINGS_DIR", "AIRFLOW_HOME"):
        env.pop(name, None)  # the demo's own settings, not this test session's
    subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--env-only"], check=True, env=env, capture_output=True, timeout=120)
    return demo / "env"


def _shell(env_file: Path, command: str, **extra: str) -> subprocess.CompletedProcess:
    """`source <env file>` then the command, at the checkout, in a shell that has nothing else."""
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    script = f"source {shlex.quote(str(env_file))} && cd {shlex.quote(str(ROOT))} && " + " ".join(f"{k}={shlex.quote(v)}" for k, v in extra.items()) + f" {command}"
    return subprocess.run(["bash", "-c", script], env=base, capture_output=True, text=True, timeout=120)


def _sourced(env_file: Path) -> dict[str, str]:
    dump = _shell(env_file, "env -0").stdout
    return dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)


def test_the_demo_commands_run_in_a_shell_after_sourcing_its_env(demo_env, monkeypatch):
    settings = _sourced(demo_env)
    assert settings["COMMERCE_SYNC_LEDGER_URL"].startswith("sqlite:///") and settings["COMMERCE_SYNC_SEAL_KEY"]
    assert {f"AIRFLOW_CONN_{c['conn_id'].upper()}" for c in airflow_settings.read()["connections"]} <= set(settings)
    for name in ("COMMERCE_SYNC_SEAL_KEY", "COMMERCE_SYNC_LEDGER_URL", "AIRFLOW_HOME", "COMMERCE_SYNC_HOME"):
        monkeypatch.setenv(name, settings[name])
    ledger = Ledger.from_url(settings["COMMERCE_SYNC_LEDGER_URL"])  # sealed with the demo's key, as its DAGs would
    try:
        ids = seed(ledger)
    finally:
        ledger.dispose()
    for _, args in demo_printed():
        ran = _shell(demo_env, f"python -m commerce_sync {args.replace('<id>', str(ids['show']))}")
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, (args, ran.stderr)
        assert not [b for b in BUYER if b in ran.stdout], (args, ran.stdout)
        if args.startswith("quarantine list"):
            assert "order MKP-10014" in ran.stdout and "order JL-CO-7001" in ran.stdout

    # as the entry point runs it: a wrong key is one line and a non-zero exit, never a traceback
    # (health counts without opening anything, so it still answers)
    ran = _shell(demo_env, "python -m commerce_sync quarantine list", COMMERCE_SYNC_SEAL_KEY=Fernet.generate_key().decode())
    assert (ran.returncode, ran.stderr.strip(), ran.stdout) == (2, WRONG_KEY, "")


def test_a_wrong_or_missing_key_and_an_unknown_pairing_are_one_line(held, capsys, monkeypatch):
    ledger, ids, _ = held
    for command in (["quarantine", "list"], ["quarantine", "show", str(ids["show"])], ["replay"]):
        with monkeypatch.context() as env:
            env.setenv("COMMERCE_SYNC_SEAL_KEY", Fernet.generate_key().decode())
            assert main(command) == 2
            assert capsys.readouterr() == ("", WRONG_KEY + "\n"), command

            env.setattr("commerce_sync.ledger.sealing._key_source", lambda: ("", ""))  # no key, nor Airflow's own
            assert main(command) == 2
            assert capsys.readouterr() == ("", "cannot unseal: COMMERCE_SYNC_SEAL_KEY is not set; set it to the key this ledger was sealed with\n"), command

        with monkeypatch.context() as env:
            env.setenv("COMMERCE_SYNC_SEAL_KEY", "not-a-key")
            assert main(command) == 2
            assert capsys.readouterr() == ("", "COMMERCE_SYNC_SEAL_KEY is not a Fernet key (32 url-safe base64-encoded bytes)\n"), command

        if command[-1] in ("list", "replay"):
            assert main([*command, "--pairing", "cin7_nowhere"]) == 2
            known = ", ".join(sorted(load_pairings()))
            assert capsys.readouterr() == ("", f"unknown pairing 'cin7_nowhere'; known pairings: {known}\n"), command

    # health counts what waits without opening it: it works with any key, or none
    with monkeypatch.context() as env:
        env.setenv("COMMERCE_SYNC_SEAL_KEY", Fernet.generate_key().decode())
        assert main(["health", "--pairing", "cin7_marketplacer"]) == 0
        assert "orders_in                finished 2026-11-23 09:30:00 UTC; loaded 2, open quarantine 1 (oldest since " in capsys.readouterr().out
        env.setattr("commerce_sync.ledger.sealing._key_source", lambda: ("", ""))
        assert main(["health"]) == 0
        capsys.readouterr()
    assert main(["health", "--pairing", "cin7_nowhere"]) == 2
    assert capsys.readouterr().err.startswith("unknown pairing 'cin7_nowhere'; known pairings: ")
