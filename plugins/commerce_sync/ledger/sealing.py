"""Buyers' personal data at rest in the ledger: sealed, field by field.

Staged records and quarantine rows keep the channel's payload, because the load and a replay
need it (a sale needs its ship-to address). The values under the keys that redaction treats as
personal or secret (commerce_sync.redact.is_sensitive_key: e-mail, phone, address, names,
tokens...) are stored Fernet-encrypted as {"__sealed__": token}; everything else (SKUs, amounts,
references) stays readable in SQL for ops. `SealedJSON` does it in the column type, so no query
can forget it, and a row written before sealing existed still reads.

The key: COMMERCE_SYNC_SEAL_KEY, else Airflow's own fernet key (AIRFLOW__CORE__FERNET_KEY or
airflow.cfg). Several comma-separated keys rotate as in Airflow: the first seals, any opens.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.types import TypeDecorator

from commerce_sync.errors import SealKeyError
from commerce_sync.jsonutil import dumps, loads
from commerce_sync.redact import is_sensitive_key

SEALED = "__sealed__"
_fernets: dict[str, Any] = {}


class SealKeyMissing(SealKeyError):
    pass


class SealKeyWrong(SealKeyError):
    """The key opens none of the ledger's sealed values: another key sealed them."""


def _key_source() -> tuple[str, str]:
    """(the key material, the setting it came from, as people name it)."""
    for name in ("COMMERCE_SYNC_SEAL_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        if os.environ.get(name):
            return os.environ[name], name
    try:
        from airflow.configuration import conf

        return conf.get("core", "fernet_key", fallback="") or "", "Airflow's fernet_key (airflow.cfg)"
    except ImportError:  # the CLI without Airflow installed
        return "", ""


def _key_material() -> str:
    keys, _ = _key_source()
    if not keys.strip():
        raise SealKeyMissing(
            "the ledger seals buyers' personal data and needs a key: set COMMERCE_SYNC_SEAL_KEY (or Airflow's "
            "AIRFLOW__CORE__FERNET_KEY) to a Fernet key; make one with: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    return keys


def _fernet():
    from cryptography.fernet import Fernet, MultiFernet

    material = _key_material()
    f = _fernets.get(material)
    if f is None:
        try:
            f = MultiFernet([Fernet(k.strip().encode()) for k in material.split(",") if k.strip()])
        except ValueError:  # the message names the setting, never the key
            raise SealKeyError(f"{_key_source()[1]} is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        _fernets[material] = f
    return f


def _opener():
    """The key for reading sealed values, or one clear line saying why there is none."""
    try:
        return _fernet()
    except SealKeyMissing:
        raise SealKeyMissing("cannot unseal: COMMERCE_SYNC_SEAL_KEY is not set; set it to the key this ledger was sealed with") from None


def _wrong_key() -> SealKeyWrong:
    source = _key_source()[1]
    hint = "" if source == "COMMERCE_SYNC_SEAL_KEY" else " (COMMERCE_SYNC_SEAL_KEY is not set)"
    return SealKeyWrong(f"cannot unseal: {source} is not the key this ledger was sealed with{hint}")


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def seal(obj: Any) -> Any:
    """A copy of `obj` with every personal value sealed (at any depth)."""
    fernet = None

    def walk(value: Any) -> Any:
        nonlocal fernet
        if isinstance(value, dict):
            if _is_sealed(value):
                return value
            out = {}
            for k, v in value.items():
                if v is not None and is_sensitive_key(k) and not _is_sealed(v):
                    fernet = fernet or _fernet()
                    out[k] = {SEALED: fernet.encrypt(dumps(v).encode()).decode()}
                else:
                    out[k] = walk(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(obj)


def unseal(obj: Any) -> Any:
    from cryptography.fernet import InvalidToken

    fernet = None

    def walk(value: Any) -> Any:
        nonlocal fernet
        if isinstance(value, dict):
            if _is_sealed(value):
                fernet = fernet or _opener()
                try:
                    return loads(fernet.decrypt(value[SEALED].encode()).decode())
                except InvalidToken:
                    raise _wrong_key() from None
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(obj)


class SealedJSON(TypeDecorator):
    """JSON whose personal values are sealed on the way in and opened on the way out."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return seal(value) if value is not None else None

    def process_result_value(self, value, dialect):
        return unseal(value) if value is not None else None
