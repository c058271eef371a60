"""The ledger: the integration's own database (links, quarantine, payload log, run reports, mappings)."""

from commerce_sync.ledger.db import get_engine, ledger_url, migrate
from commerce_sync.ledger.store import Ledger, QuarantineRow, StagedRecord

__all__ = ["Ledger", "QuarantineRow", "StagedRecord", "get_engine", "ledger_url", "migrate"]
