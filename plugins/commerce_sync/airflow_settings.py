"""Apply airflow_settings.yaml (Astro CLI format) to a plain Airflow, which never reads it itself.

`python -m commerce_sync.airflow_settings apply [FILE]` imports connections, pools and variables
through Airflow's own CLI import commands; `env(FILE)` gives the same connections as
AIRFLOW_CONN_* variables, which is how the tests hand them to in-process DAG runs, and
`python -m commerce_sync.airflow_settings env [FILE]` prints them as shell exports (the demo's
.demo/env: outside a task, Airflow reads connections from the environment, not its database).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from commerce_sync.pairing import project_root


def read(path: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    path = Path(path or project_root() / "airflow_settings.yaml")
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("airflow") or {}
    return {k: data.get(k) or [] for k in ("connections", "pools", "variables")}


def connection_dict(c: dict[str, Any]) -> dict[str, Any]:
    """Astro's conn_* keys to Airflow's connection JSON."""
    out = {
        "conn_type": c["conn_type"],
        "host": c.get("conn_host"),
        "schema": c.get("conn_schema"),
        "login": c.get("conn_login"),
        "password": c.get("conn_password"),
        "port": c.get("conn_port"),
        "extra": c.get("conn_extra") or {},
    }
    if isinstance(out["extra"], str):
        out["extra"] = json.loads(out["extra"])
    return {k: v for k, v in out.items() if v not in (None, "")}


def env(path: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> variables for every connection; `overrides` patches fields per conn_id."""
    result = {}
    for c in read(path)["connections"]:
        conn = connection_dict(c)
        conn.update((overrides or {}).get(c["conn_id"], {}))
        result[f"AIRFLOW_CONN_{c['conn_id'].upper()}"] = json.dumps(conn)
    return result


def apply(path: Path | None = None, *, pools_only: bool = False) -> None:
    """Import the file's connections, pools and variables (only pools where connections and
    variables come from elsewhere, e.g. AIRFLOW_CONN_* in docker-compose)."""
    settings = read(path)
    if pools_only:
        settings = {**settings, "connections": [], "variables": []}
    with tempfile.TemporaryDirectory() as tmp:
        # `airflow connections import` wants extra as a JSON string, not an object
        conns = {}
        for c in settings["connections"]:
            conn = connection_dict(c)
            if "extra" in conn:
                conn["extra"] = json.dumps(conn["extra"])
            conns[c["conn_id"]] = conn
        pools = {
            p["pool_name"]: {"slots": int(p["pool_slot"]), "description": p.get("pool_description", ""), "include_deferred": False}
            for p in settings["pools"]
        }
        variables = {v["variable_name"]: v["variable_value"] for v in settings["variables"]}
        for name, payload, cmd in (
            ("connections.json", conns, ["connections", "import", "--overwrite"]),
            ("pools.json", pools, ["pools", "import"]),
            ("variables.json", variables, ["variables", "import", "--action-on-existing-key", "overwrite"]),
        ):
            if not payload:
                continue
            file = Path(tmp) / name
            file.write_text(json.dumps(payload), encoding="utf-8")
            subprocess.run([str(Path(sys.executable).parent / "airflow"), *cmd, str(file)], check=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] not in ("apply", "env"):
        sys.exit("usage: python -m commerce_sync.airflow_settings apply|env [airflow_settings.yaml] [--pools-only]")
    files = [a for a in args[1:] if not a.startswith("--")]
    if args[0] == "env":
        import shlex

        for name, value in env(Path(files[0]) if files else None).items():
            print(f"export {name}={shlex.quote(value)}")
    else:
        apply(Path(files[0]) if files else None, pools_only="--pools-only" in args)
