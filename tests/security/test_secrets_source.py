"""Secrets come only from Airflow connections or the environment: the code that runs in
production (dags/, plugins/) holds no credential, neither the sandbox's nor any other."""

from __future__ import annotations

import re
from pathlib import Path

from commerce_sync import airflow_settings

ROOT = Path(__file__).resolve().parents[2]
CODE = [p for d in ("dags", "plugins") for p in (ROOT / d).rglob("*.py")]
# an assignment or keyword of a credential-like name to a string literal: password="x", api_key = 'y'
LITERAL = re.compile(r"""\b(password|passwd|secret|api_?key|application_?key|token|fernet_key)\s*[:=]\s*["'][^"'\s]{4,}["']""", re.I)


def test_no_sandbox_credential_in_the_code():
    creds = {str(c[k]) for c in airflow_settings.read()["connections"] for k in ("conn_login", "conn_password") if c.get(k)}
    assert creds, "airflow_settings.yaml has no credentials to look for"
    found = [f"{p.relative_to(ROOT)}: {v}" for p in CODE for v in creds if v in p.read_text(encoding="utf-8")]
    assert found == []


def test_no_credential_literal_in_the_code():
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in CODE for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if LITERAL.search(line)]
    assert found == []


def test_the_pattern_catches_a_literal():
    assert LITERAL.search('conn = connect(password="hunter22")') and LITERAL.search("API_KEY = 'abcd1234'")
    assert not LITERAL.search("password = conn.password") and not LITERAL.search('token = os.environ["TOKEN"]')
