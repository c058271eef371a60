"""Housekeeping: keeps the ledger's size bounded and buyers' personal data no longer than needed.

One DAG per deployment (`<key>__housekeeping`, built by the factory from include/housekeeping.yaml):
prune (retention.py) -> erase (erasure.py, personal data past its time) -> report (sizes.py, one
run report under the deployment's key). Each step is a plain function of the run id, as a flow's
are, so the DAG, the CLI (`python -m commerce_sync housekeeping`) and the tests run the same code.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from commerce_sync.housekeeping.settings import FLOW, HousekeepingSettings, load_settings

__all__ = ["FLOW", "HousekeepingSettings", "erase", "load_settings", "prune", "report", "run"]
log = logging.getLogger(__name__)


def _open(ledger=None):
    from commerce_sync.ledger import Ledger

    return ledger or Ledger.from_url()


def prune(run_id: str, *, ledger=None, settings: HousekeepingSettings | None = None, now: datetime | None = None) -> dict[str, Any]:
    from commerce_sync.housekeeping.retention import prune as prune_tables
    from commerce_sync.ledger.schema import utcnow

    settings, ledger = settings or load_settings(), _open(ledger)
    ledger.record_run(settings.key, FLOW, run_id, started_at=utcnow())
    started = time.monotonic()
    deleted = prune_tables(ledger.engine, settings, now)
    log.info("housekeeping: deleted %s", deleted)
    return {"deleted": deleted, "seconds": round(time.monotonic() - started, 2)}


def erase(run_id: str, pruned: dict | None = None, *, ledger=None, settings: HousekeepingSettings | None = None, now: datetime | None = None) -> dict[str, Any]:
    from commerce_sync.housekeeping.erasure import erase_expired

    settings, ledger = settings or load_settings(), _open(ledger)
    started = time.monotonic()
    erased = erase_expired(ledger.engine, settings, now)
    log.info("housekeeping: personal data erased from %s", erased)
    return {"erased": erased, "seconds": round(time.monotonic() - started, 2)}


def report(run_id: str, pruned: dict, erased: dict, *, ledger=None, settings: HousekeepingSettings | None = None) -> dict[str, Any]:
    from commerce_sync.housekeeping.sizes import ledger_sizes
    from commerce_sync.ledger.schema import utcnow

    settings, ledger = settings or load_settings(), _open(ledger)
    sizes = [{**e, "oldest": e["oldest"].isoformat() if e["oldest"] else None} for e in ledger_sizes(ledger.engine)]
    details = {"prune": pruned, "erase": erased, "sizes": sizes}
    ledger.record_run(settings.key, FLOW, run_id, finished_at=utcnow(), details=details)
    return details


def run(run_id: str, *, ledger=None, settings: HousekeepingSettings | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The three steps in order, in this process."""
    settings, ledger = settings or load_settings(), _open(ledger)
    pruned = prune(run_id, ledger=ledger, settings=settings, now=now)
    erased = erase(run_id, pruned, ledger=ledger, settings=settings, now=now)
    return report(run_id, pruned, erased, ledger=ledger, settings=settings)
