"""Subscribe the demo's emulators to the webhook receiver (scripts/demo.sh, step 4).

For every pairing's `webhooks:` side, the emulator behind that side's API connection is told to
push to `<airflow>/commerce-sync/webhooks/<pairing>/<system>` with the proof the receiver expects,
read from the webhook's Airflow connection in the environment (`.demo/env`, AIRFLOW_CONN_*): what
an operator types into the vendor's webhook settings. Nothing secret is printed.

    python scripts/demo_webhooks.py http://127.0.0.1:8080
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request
from urllib.parse import urlsplit

from commerce_sync.pairing import load_pairings
from commerce_sync.webhooks import URL_PREFIX


def connection(conn_id: str) -> dict:
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        raise SystemExit(f"no AIRFLOW_CONN_{conn_id.upper()} in the environment: source .demo/env first")
    conn = json.loads(raw)
    extra = conn.get("extra") or {}
    conn["extra"] = json.loads(extra) if isinstance(extra, str) else extra
    return conn


def subscription(conn: dict, url: str) -> dict:
    """The emulator's `POST /_sandbox/webhooks` body: Centra's plugin signs with a shared secret;
    the others send the configured auth as headers (sandbox/README.md, "Webhook pushes")."""
    scheme, secret = conn["extra"].get("scheme"), conn.get("password", "")
    if scheme == "signature":
        return {"url": url, "secret": secret}
    if scheme == "basic":
        token = base64.b64encode(f"{conn.get('login') or ''}:{secret}".encode()).decode()
        return {"url": url, "headers": {"Authorization": f"Basic {token}"}}
    if scheme == "bearer":
        return {"url": url, "headers": {"Authorization": f"Bearer {secret}"}}
    if scheme == "header":
        return {"url": url, "headers": {conn["extra"]["header"]: secret}}
    raise SystemExit(f"connection {conn.get('conn_id', '?')}: unknown webhook scheme {scheme!r}")


def plan(airflow_url: str) -> list[tuple[str, str, dict]]:
    """(emulator base URL, receiver route, subscription body) for every pairing's webhook side."""
    out = []
    for pairing in load_pairings().values():
        for side, hook in sorted(pairing.webhooks.items()):
            ref = getattr(pairing, side)
            api = urlsplit(connection(ref.connection)["host"])
            route = f"{URL_PREFIX}/{pairing.key}/{ref.system}"
            out.append((f"{api.scheme}://{api.netloc}", route, subscription(connection(hook.connection), airflow_url.rstrip("/") + route)))
    return out


def main(airflow_url: str) -> None:
    for emulator, route, body in plan(airflow_url):
        request = urllib.request.Request(f"{emulator}/_sandbox/webhooks", json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the demo's loopback emulators
            pass
        print(f"{emulator} pushes to {route}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")
