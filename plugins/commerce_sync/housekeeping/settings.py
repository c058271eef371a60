"""Housekeeping settings: include/housekeeping.yaml (or COMMERCE_SYNC_HOUSEKEEPING_FILE), validated.

Retention is data. A missing file means the defaults below; a key left out of the file keeps its
default. Read at DAG parse time, so only yaml and pydantic are imported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commerce_sync.pairing import FlowConfig, PairingError, project_root

FLOW = "housekeeping"


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retention(_Cfg):
    """How long each kind of row outlives its purpose. Tables not named here (links, payout
    matches, watermarks, pushed stock, mappings, discarded quarantine) are never pruned: the
    exactly-once guarantees rest on them (README, 'Housekeeping')."""

    payload_log_days: float = 30
    staged_days: float = 7  # staged records of finished runs
    staged_days_by_flow: dict[str, float] = Field(default_factory=lambda: {"stock_out": 2})  # a 100,000-SKU snapshot a run
    staged_unfinished_days: float = 30  # a run that never finished: time enough to re-run it
    api_call_slot_seconds: float = 3600  # far beyond any API's window (a minute)
    api_budget_idle_days: float = 7  # an account no process has booked a call on for this long
    work_claim_days: float = 1  # a claim is stale (taken over) after 30 minutes anyway
    quarantine_resolved_days: float = 400  # replayed rows: a year of month ends for audit
    run_report_days: float = 400
    report_days: float = 400  # stored text reports (payout exception reports)
    stored_files_days: float = 30  # stored binary files (packing slips): printed at dispatch
    outbox_days: float = 30  # delivered alerts, when the ledger has an outbox
    webhook_event_days: float = 30  # verified webhooks: a wake-up's record, worth nothing once its run is done


class PersonalData(_Cfg):
    """Buyers' sealed personal fields, erased once the ledger no longer needs them."""

    erase_after_days: float = 90  # after the order is booked and shipped (or the record was closed unbooked)


class HousekeepingSettings(_Cfg):
    key: str = "commerce_sync"  # the deployment: DAG id <key>__housekeeping, run reports under this key
    dag: FlowConfig = FlowConfig(schedule="17 2 * * *", deadline_minutes=60, retries=2, retry_delay_seconds=300)
    recipients: dict[str, list[str]] = Field(default_factory=dict)  # who hears of a failure or a missed deadline
    retention: Retention = Retention()
    personal_data: PersonalData = PersonalData()
    batch_rows: int = Field(default=500, ge=1)  # rows per short transaction
    pause_seconds: float = Field(default=0.02, ge=0)  # between batches: other writers get the lock
    lock_timeout_ms: int = Field(default=2000, ge=1)  # PostgreSQL: give up a batch rather than queue behind a flow

    def dag_id(self, flow: str = FLOW) -> str:
        return f"{self.key}__{flow}"


def settings_path() -> Path:
    return Path(os.environ.get("COMMERCE_SYNC_HOUSEKEEPING_FILE", project_root() / "include" / "housekeeping.yaml"))


def load_settings(path: Path | None = None) -> HousekeepingSettings:
    path = Path(path or settings_path())
    if not path.exists():
        return HousekeepingSettings()
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    try:
        return HousekeepingSettings(**data)
    except (ValidationError, TypeError) as exc:
        raise PairingError(f"{path}: invalid housekeeping settings: {exc}") from exc
