"""`make demo` listens on loopback only: the demo's Airflow (api-server and every component), the
emulators and the SMTP catcher. The test runs scripts/demo.sh itself, in a copy of the checkout
whose ports are free ones (so it can run beside a real demo), reads the listening sockets of every
process the demo started once Airflow answers, then stops the demo and every process it left."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1"}
DEMO_PORTS = {"8101": "cin7", "8102": "marketplacer", "8103": "mirakl", "8025": "smtp"}


def _copy_of_the_checkout(target: Path, ports: dict[str, int]) -> None:
    """What demo.sh reads, linked; the two files that name ports, copied with free ones."""
    for name in ("dags", "plugins", "sandbox", "include"):
        (target / name).symlink_to(ROOT / name)
    (target / "scripts").mkdir()
    (target / "scripts" / "demo_webhooks.py").symlink_to(ROOT / "scripts" / "demo_webhooks.py")  # names no port: the connections do
    for rel in ("scripts/demo.sh", "airflow_settings.yaml"):
        text = (ROOT / rel).read_text()
        for old, new in ports.items():
            text = text.replace(old, str(new))
        (target / rel).write_text(text)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _listening(processes: list[psutil.Process]) -> dict[int, set[str]]:
    """port -> the addresses it listens on, over every given process."""
    out: dict[int, set[str]] = {}
    for proc in processes:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN:
                out.setdefault(conn.laddr.port, set()).add(conn.laddr.ip)
    return out


def _stop(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    """Ctrl-C as a person would (the demo's trap stops its components), then anything left."""
    for p in _tree(proc.pid):
        seen.setdefault(p.pid, p)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the script's own group (its airflow CLI calls), which it was started as
    except ProcessLookupError:
        pass
    survivors = [p for p in seen.values() if p.is_running()]
    for p in survivors:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(survivors, timeout=30)


def test_make_demo_listens_on_loopback_only(tmp_path):
    ports = {old: free_port() for old in DEMO_PORTS}
    api_port = free_port()
    home = tmp_path / "checkout"
    home.mkdir()
    _copy_of_the_checkout(home, ports)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COMMERCE_SYNC"))}
    env.update(PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}", AIRFLOW_PORT=str(api_port), PYTHONPATH="")
    log = home / "demo.out"
    seen: dict[int, psutil.Process] = {}
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(home / "scripts" / "demo.sh")], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 900  # a fresh Airflow database and four components, on a busy machine
        wanted = {api_port, *ports.values()}
        while True:
            for p in _tree(proc.pid):
                seen.setdefault(p.pid, p)
            listening = _listening(list(seen.values()))
            if "5/5" in log.read_text() and wanted <= set(listening):
                break
            assert proc.poll() is None, f"the demo stopped early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the demo did not come up:\n{log.read_text()[-3000:]}"
            time.sleep(2)
        time.sleep(5)  # components that start their servers late (a log server) have had time to
        for p in _tree(proc.pid):
            seen.setdefault(p.pid, p)
        listening = _listening(list(seen.values()))
        exposed = {port: sorted(ips - LOOPBACK) for port, ips in listening.items() if ips - LOOPBACK}
        assert exposed == {}, f"listening beyond loopback: {exposed}"
        assert wanted <= set(listening), (wanted, listening)
    finally:
        _stop(proc, seen)
    assert [p.pid for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_the_socket_reading_sees_an_exposed_port():
    """The check above can fail: a socket bound to every interface is reported as such."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        assert _listening([psutil.Process()])[port] == {"0.0.0.0"}


pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
