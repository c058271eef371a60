"""Pairing configuration: include/pairings/<key>.yaml, validated.

A pairing is data. The key is the file name; everything the flows need to know about a brand's
channel, ERP, policies and people comes from here, never from code.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FLOWS = ("orders_in", "stock_out", "dispatch_back", "payout_reconciliation", "refunds", "drift_monitor", "settlement_reconciliation",
         "catalogue_out")


def project_root() -> Path:
    return Path(os.environ.get("COMMERCE_SYNC_HOME", Path(__file__).resolve().parents[2]))


def pairings_dir() -> Path:
    return Path(os.environ.get("COMMERCE_SYNC_PAIRINGS_DIR", project_root() / "include" / "pairings"))


def mappings_dir() -> Path:
    return Path(os.environ.get("COMMERCE_SYNC_MAPPINGS_DIR", project_root() / "include" / "mappings"))


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemRef(_Cfg):
    system: str
    connection: str
    pool: str | None = None
    pool_slots: int = 4
    rate_limit_per_minute: int | None = None
    currency: str | None = None  # a channel's home currency, for payloads that carry none
    reference_prefix: str = ""  # prefixed to the channel reference in the ERP's ExternalID
    label: str | None = None  # how people name the channel (the sale's SourceChannel, e-mails)
    options: dict[str, Any] = Field(default_factory=dict)  # system-specific settings, read by its module's build()


class Policies(_Cfg):
    currencies: list[str]
    tax_rule: str
    # only where an order states no tax mode of its own: each sale is booked in its order's mode
    tax_calculation: Literal["Inclusive", "Exclusive"] = "Inclusive"
    location: str
    customer: str
    sale_status: str = "AUTHORISED"
    max_bad_share: Decimal = Decimal("0.5")  # more bad new records than this fails the batch as a whole
    min_records_for_share: int = 10  # ...but only in batches at least this big
    discount_description: str = "Discount"
    shipping_description: str = "Shipping"

    @property
    def tax_inclusive(self) -> bool:
        return self.tax_calculation == "Inclusive"


class Buffer(_Cfg):
    """Stock held back from a channel: absolute units and/or a percentage of what is available."""

    units: int = 0
    percent: Decimal = Decimal("0")


class RegionStock(_Cfg):
    """One of the channel's stock pools: the ERP locations that feed it and its own buffer."""

    locations: list[str]
    buffer: Buffer = Buffer()


class StockPolicy(_Cfg):
    locations: list[str]  # the ERP locations whose stock a channel may sell
    buffer: Buffer = Buffer()
    # a channel that keeps stock per region (listings with a `region`): each region's locations
    # and buffer; a listing in a region not named here fails the run with that sentence
    regions: dict[str, RegionStock] = Field(default_factory=dict)
    sku_buffers: dict[str, Buffer] = Field(default_factory=dict)  # by master SKU
    full_resync_hour_utc: int | None = 3  # the run whose interval covers this hour pushes every SKU
    push_batch_size: int = 50
    # orders captured on the channel this recently and not booked in the master are held back
    # from what is pushed (older unbooked ones sit in the orders quarantine, also held back)
    unbooked_lookback_hours: int = Field(default=24, ge=1)


class PayoutPolicy(_Cfg):
    """Where marketplace charges are booked in the ERP, and what counts as a difference."""

    clearing_account: str  # marketplace receivable, credited with what the marketplace kept
    commission_account: str
    commission_tax_account: str
    fee_account: str
    tolerance: Decimal = Decimal("0.00")  # variance allowed per remittance, in the currency
    due_days: int = 14  # a booked order with no remittance after this many days is an exception
    report_recipients: str = "finance"  # a key of `recipients`
    # `master`: one journal per payout posted in the master's general ledger. `file`: a master with
    # none (Centra) gets one journal file per period for the accounting system, in journal_location
    journal: Literal["master", "file"] = "master"
    journal_location: str | None = None  # an ObjectStoragePath URL or a folder relative to the project
    journal_connection: str | None = None  # the Airflow connection holding the store's credentials
    payout_account: str | None = None  # the bank account the net payout lands in (journal file)
    refund_account: str | None = None  # where refunds deducted from a payout are debited (journal file; none: left out)

    @model_validator(mode="after")
    def _file_has_a_place(self) -> "PayoutPolicy":
        if self.journal == "file" and not (self.journal_location and self.payout_account):
            raise ValueError("payouts.journal: file needs journal_location (where the files go) and payout_account (the bank account)")
        return self


class RefundPolicy(_Cfg):
    """Where refunds start. `channel` (default): a channel refund becomes a credit note in the
    master. `master`: a refund or completed return in the master opens a refund request on the
    channel (centra_marketplacer): the direction is the pairing's, the flow has no vendor branch."""

    origin: Literal["channel", "master"] = "channel"
    reason: str = "Returned"  # the reason sent where the master's refund gives none


class SettlementPolicy(_Cfg):
    """A payment provider's settlement files, and where their money is booked in the ERP."""

    location: str  # an ObjectStoragePath URL (file://, s3://, gs://, sftp://...) or a folder relative to the project
    connection: str | None = None  # the Airflow connection holding the store's credentials (none for a local folder)
    format: str  # include/settlement_formats/<format>.yaml: the provider's column layout
    pattern: str | None = None  # file names to read; default: the format's file_pattern
    clearing_account: str  # the provider receivable (clearing), credited with the fees it withheld
    fee_accounts: dict[str, str]  # fee name (the format's `fees`, and `other` for batch fee rows) -> ERP account
    refund_sku: str  # the ERP service item a provider refund the ERP lacks is credited on (no restock)
    journal_reference: str = "PSP-{batch}-{currency}"  # the fee journal's reference (unique per batch and currency)
    tolerance: Decimal = Decimal("0.00")  # difference allowed per match and per batch balance
    sale_lookback_days: int = 30  # sales are looked up in bulk from this long before the earliest payment
    report_recipients: str = "finance"  # a key of `recipients`


class AlertPolicy(_Cfg):
    """When a finished run should still make someone look (e-mailed to `recipients.ops`)."""

    open_quarantine_over: int | None = 10  # records waiting in a flow's quarantine
    quarantine_older_than_hours: int | None = 24  # the oldest open record waiting longer than this
    expect_traffic: list[str] = Field(default_factory=list)  # flows whose empty extraction is suspicious
    throttled_share_over: Decimal | None = Decimal("0.2")  # share of a run's API calls answered 429/503


class DriftPolicy(_Cfg):
    """What the drift monitor looks back over and what counts as drift."""

    lookback_hours: int = 24
    stock_tolerance: int = 0  # units a channel may differ from Cin7's sellable before it is drift
    orphan_after_minutes: int = 30  # a channel order neither in Cin7 nor in quarantine this long after it was placed
    dispatch_window_minutes: int = 120  # a shipped box not on the channel this long after shipping
    money_tolerance: Decimal = Decimal("0.00")


class AcceptancePolicy(_Cfg):
    """Channels where the seller must accept each order line (Mirakl) before the customer pays."""

    partial: bool = False  # accept the mapped lines and refuse the rest; False holds the whole order
    window_hours: int = 24  # the channel refuses an order left undecided this long (operator setting)
    recipients: str = "ops"  # a key of `recipients`: who hears of an order that cannot be accepted
    # an order that would fail booking (the orders gate's rules): `hold` leaves it undecided on the
    # channel and alerts (ops decide before the deadline); `refuse` refuses its lines at once
    unbookable: Literal["hold", "refuse"] = "hold"


class PackingSlipPolicy(_Cfg):
    """A branded packing slip (PDF) per shipped box, stored with the dispatch run."""

    brand: str
    return_instructions: str


class CataloguePolicy(_Cfg):
    """catalogue_out: what of the master's product record the channel receives, and what happens
    to a listing on sale whose SKU the master does not hold."""

    # the fields the master owns; only these are written, everything else on the channel
    # (descriptions, images, categories, prices unless named here) is the channel people's
    fields: list[Literal["sku", "name", "barcode", "weight", "price", "category", "attributes"]] = Field(default_factory=lambda: ["sku", "name"])
    publish: bool = False  # False: new products are created unpublished, for ecommerce to enrich and publish
    price_list: str | None = None  # the master's price list whose price the channel gets (with `price` in fields)
    orphans: Literal["report", "unpublish"] = "report"  # a listing on sale without a master SKU: reported, or also taken off sale
    recipients: str = "ecommerce"  # a key of `recipients`: who hears of orphans and refused products
    full_resync_hour_utc: int | None = 4  # the run whose interval covers this hour reads the whole catalogue again

    @model_validator(mode="after")
    def _sku_is_owned(self) -> "CataloguePolicy":
        if "sku" not in self.fields:
            raise ValueError("catalogue.fields must include sku: the master owns the SKU")
        if "price" in self.fields and not self.price_list:
            raise ValueError("catalogue.fields names price: name the master's price list in catalogue.price_list")
        return self


class WebhookConfig(_Cfg):
    """A system's webhooks for this pairing: the Airflow connection holding what the vendor sends
    to prove itself (commerce_sync/webhooks.py), and the flows its events wake. An event is only a
    wake-up: the woken flow still reads the source, and its cron stays as the safety net."""

    connection: str
    wakes: list[str]


class FlowConfig(_Cfg):
    schedule: str | None
    overlap_minutes: int = 10
    deadline_minutes: float | None = None  # fractions allowed (tests use seconds)
    deadline_recipients: str = "ops"  # a key of `recipients`
    retries: int = 3
    retry_delay_seconds: int = 30
    max_retry_delay_seconds: int = 600
    max_active_runs: int = 1
    catchup: bool = False


class Pairing(_Cfg):
    key: str
    description: str = ""
    channel: SystemRef
    master: SystemRef
    ledger_connection: str = "integration_db"
    policies: Policies
    flows: dict[str, FlowConfig]
    recipients: dict[str, list[str]] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    stock: StockPolicy | None = None
    payouts: PayoutPolicy | None = None
    refunds: RefundPolicy = RefundPolicy()
    alerts: AlertPolicy = AlertPolicy()
    drift: DriftPolicy = DriftPolicy()
    acceptance: AcceptancePolicy | None = None
    packing_slips: PackingSlipPolicy | None = None
    settlement: SettlementPolicy | None = None
    catalogue: CataloguePolicy | None = None
    webhooks: dict[Literal["channel", "master"], WebhookConfig] = Field(default_factory=dict)
    # the Celery queue of its flows' tasks (each calls the pairing's systems): a worker serving it
    # must reach them; None is the executor's default queue (LocalExecutor ignores queues)
    queue: str | None = None
    # flows this pairing does not run, each with where that work is done instead (its DAGs say so)
    flows_off: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _off_is_off(self) -> "Pairing":
        both = sorted(set(self.flows) & set(self.flows_off))
        if both:
            raise ValueError(f"flows_off names flows the pairing also runs: {', '.join(both)}")
        return self

    def flow(self, name: str) -> FlowConfig:
        return self.flows[name]

    def dag_id(self, flow: str) -> str:
        return f"{self.key}__{flow}"

    def external_id(self, channel_ref: str) -> str:
        return f"{self.channel.reference_prefix}{channel_ref}"


class PairingError(ValueError):
    pass


def parse_pairing(key: str, data: dict[str, Any], source: str = "") -> Pairing:
    try:
        pairing = Pairing(key=key, **data)
    except (ValidationError, TypeError) as exc:
        raise PairingError(f"{source or key}: invalid pairing file: {exc}") from exc
    unknown = set(pairing.flows) - set(FLOWS)
    if unknown:
        raise PairingError(f"{source or key}: unknown flows {sorted(unknown)}; known: {list(FLOWS)}")
    for side, hook in pairing.webhooks.items():
        if set(hook.wakes) - set(pairing.flows):
            raise PairingError(f"{source or key}: webhooks.{side}.wakes names flows the pairing does not run: {sorted(set(hook.wakes) - set(pairing.flows))}")
    if "settlement_reconciliation" in pairing.flows and pairing.settlement is None:
        raise PairingError(f"{source or key}: settlement_reconciliation needs a `settlement:` section (files, format, accounts)")
    if "catalogue_out" in pairing.flows and pairing.catalogue is None:
        raise PairingError(f"{source or key}: flow catalogue_out needs a `catalogue:` section (the fields the master owns, what to do with orphans)")
    return pairing


def load_pairing_file(path: Path) -> Pairing:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return parse_pairing(path.stem, data, str(path))


@lru_cache(maxsize=8)
def _load_dir(directory: str, mtimes: tuple) -> dict[str, Pairing]:
    return {p.stem: load_pairing_file(p) for p in sorted(Path(directory).glob("*.yaml"))}


def load_pairings(directory: Path | None = None) -> dict[str, Pairing]:
    directory = Path(directory or pairings_dir())
    # cache keyed by file mtimes: cheap on every DAG parse, fresh after an edit
    mtimes = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yaml")))
    return _load_dir(str(directory), mtimes)


def get_pairing(key: str) -> Pairing:
    pairings = load_pairings()
    if key not in pairings:
        raise PairingError(f"no pairing file {key}.yaml in {pairings_dir()}")
    return pairings[key]
