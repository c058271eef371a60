"""Searching what people and tools read for values that must never be there: the task logs, every
ledger table (binary columns decoded as far as they decode) and every e-mail. Shared by the leak
tests (tests/security) and the fault matrix's credential-echo cells."""

from __future__ import annotations

from sqlalchemy import MetaData, create_engine, select

from commerce_sync import airflow_settings


def secrets() -> list[str]:
    """The connections' credentials, as airflow_settings.yaml gives them to every run."""
    values = []
    for c in airflow_settings.read()["connections"]:
        values += [str(c[k]) for k in ("conn_login", "conn_password") if c.get(k)]
    return values


def _text(value) -> str:
    if isinstance(value, memoryview):
        value = bytes(value)
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def ledger_text(url: str) -> dict[str, str]:
    """Every table of the ledger as text, one entry per table."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    out = {}
    try:
        with engine.connect() as conn:
            for name, table in meta.tables.items():
                out[f"ledger table {name}"] = "\n".join(_text(value) for row in conn.execute(select(table)) for value in row)
    finally:
        engine.dispose()
    return out


def mail_text(messages) -> str:
    parts = []
    for m in messages:
        parts.append(str(m))
        for part in m.walk():
            payload = part.get_payload(decode=True)
            if payload:
                parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


def leaks(texts: dict[str, str], needles: list[str]) -> list[tuple[str, str]]:
    return [(where, needle) for where, text in texts.items() for needle in needles if needle.lower() in text.lower()]
