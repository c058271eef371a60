"""settlement_reconciliation: what a payment provider paid out, against the ERP.

The provider's settlement files (one per payout batch) are read once each from the pairing's file
store, and every row is kept in the ledger with what became of it:
- a settled payment is matched to its ERP sale by the order number, to the cent in the currency
  the customer paid in;
- a refund is matched to a credit note on that sale, or credited (never restocked) when the ERP
  has none, exactly once;
- the fees withheld in a batch are posted as one ERP journal, exactly once;
- chargebacks, adjustments and whatever does not match go to the exception report for finance;
- a batch whose payout is not the sum of its rows is held whole: nothing of it is booked.

extract -> reconcile -> report, against the ports only. The provider's layout is data
(include/settlement_formats/); nothing here knows which provider it reads.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from commerce_sync.errors import ClientError
from commerce_sync.models import Refund, RefundLine, SaleRef, SettlementLine
from commerce_sync.money import quantize
from commerce_sync.pairing import PairingError, SettlementPolicy
from commerce_sync.runtime import FlowContext
from commerce_sync.settlement_format import RowProblem, SettlementFormat, load_format

FLOW = "settlement_reconciliation"
JOURNAL = "settlement_journal"  # link: "<batch>|<currency>" -> the fee journal
REFUND = "settlement_refund"  # link: the provider's refund reference -> the credit note it matched or made
ZERO = Decimal("0")
ORDER_KINDS = ("settled", "refunded", "chargeback", "chargeback_reversed", "refund_reversed")
UPDATE_FIELDS = ("status", "reason", "detail", "master_id", "master_total", "period", "run_id")
# exceptions looked at again by every run: the sale may arrive after its payment (an order held
# in the orders_in quarantine, booked later); once it is there the row is matched
RETRIED = ("no_sale", "refund_no_sale")

# The exception report's columns and what each type means (finance's words; docs/operations.md says more)
COLUMNS = ["type", "file", "batch", "line", "provider_type", "order", "reference", "erp_record", "gross_currency", "gross", "erp_total",
           "exchange_rate", "net_currency", "net", "fees", "detail"]
NOTES = {
    "no_sale": "Paid by the provider, but no ERP sale holds this order number. Find the order; it may be in the orders_in quarantine.",
    "amount_differs": "The ERP sale total differs from what the customer paid. Compare the order on both sides (a partial capture shows here too).",
    "currency_differs": "The customer paid in another currency than the ERP sale's. Both amounts and the provider's rate are shown.",
    "settled_twice": "This order was settled in an earlier batch as well: the customer may have paid twice. Check with the provider.",
    "no_reference": "A payment or refund without an order number: it cannot be matched. Look it up in the provider's portal by its reference.",
    "refund_no_sale": "A refund for an order no ERP sale holds. Find the order before crediting anything.",
    "refund_differs": "The sale has credit notes, but none for this refund's amount. Check which credit note belongs to it.",
    "refund_refused": "The ERP refused the credit note for this refund. Its message is in the detail.",
    "chargeback": "The customer's bank took this payment back. Decide whether to defend it; book the loss if not.",
    "chargeback_reversed": "A chargeback was reversed in the merchant's favour: the money came back.",
    "refund_reversed": "A refund failed and its money came back: the customer may not have been refunded.",
    "other_entry": "A provider booking that is not a payment (a deposit correction, a transfer between batches...). Book it by hand.",
    "unknown_type": "A row type the format file does not list. Tell engineering; add it to the format file.",
    "unreadable_row": "A row that could not be read. Its batch is held.",
    "batch_unbalanced": "The batch's payout is not the sum of its rows (or there is no payout row): nothing of the batch was booked.",
    "batch_held": "Part of a batch that did not balance: not booked. See the batch_unbalanced row.",
    "file_changed": "A file already read came again with other content. It was not read; ask the provider which version is right.",
    "duplicate_file": "The same file came again under another name. It was not read twice.",
    "unreadable_file": "A file in the settlement folder that is not in the provider's format. It is retried every run until it reads.",
}

log = logging.getLogger(__name__)


def _policy(ctx: FlowContext) -> SettlementPolicy:
    if ctx.pairing.settlement is None:
        raise PairingError(f"{ctx.pairing.key}: settlement_reconciliation needs a `settlement:` section in the pairing file")
    return ctx.pairing.settlement


def _format(policy: SettlementPolicy) -> SettlementFormat:
    fmt = load_format(policy.format)
    missing = sorted({*fmt.fees, "other"} - set(policy.fee_accounts))
    if missing:
        raise PairingError(f"settlement.fee_accounts has no account for {missing} (the {fmt.name} format's fees, and `other` for fee rows)")
    return fmt


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal:
    return ZERO if value in (None, "") else Decimal(value)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were stored in UTC
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


# -- extract: read each new file once ---------------------------------------------------------
def _line_row(item: SettlementLine | RowProblem) -> dict[str, Any]:
    if isinstance(item, RowProblem):
        raw = ", ".join(f"{k}={v}" for k, v in item.raw.items() if v)
        return {"line_no": item.line_no, "batch": item.batch, "kind": "unreadable", "detail": f"{item.reason} | {raw}"[:1000]}
    return {
        "line_no": item.line_no, "batch": item.batch, "kind": item.kind, "provider_type": item.provider_type[:80], "merchant_ref": item.merchant_ref,
        "psp_ref": item.psp_ref, "modification_ref": item.modification_ref, "booked_at": item.booked_at, "gross_currency": item.gross_currency,
        "gross": str(item.gross), "exchange_rate": _text(item.exchange_rate), "net_currency": item.net_currency, "net": str(item.net),
        "fees": {k: str(v) for k, v in item.fees.items()},
    }


def extract(ctx: FlowContext, run_id: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Read every settlement file not read before: a version is known by name and SHA-256; the
    same content under another name, or other content under a known name, is reported, not read."""
    from commerce_sync.object_store import list_files
    from commerce_sync.settlement_format import FormatError, parse

    key, policy = ctx.pairing.key, _policy(ctx)
    fmt = _format(policy)
    period = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    known = ctx.ledger.settlement_files(key)
    versions = {(f["name"], f["checksum"]): f for f in known}
    # name, size and modification time as stored before: that version was seen, skip it unopened
    seen = {(f["name"], f["size"], f["modified"]) for f in known if f["status"] != "unreadable" and f["modified"] is not None}
    read_names = {f["name"]: f["checksum"] for f in known if f["status"] == "read"}
    read_content = {f["checksum"]: f["name"] for f in known if f["status"] == "read"}
    counts = Counter()
    for stored in list_files(policy.location, policy.pattern or fmt.file_pattern, policy.connection):
        counts["files_listed"] += 1
        if stored.modified is not None and (stored.name, stored.size, stored.modified) in seen:
            counts["files_already_read"] += 1
            continue
        data, checksum = stored.read()
        prior = versions.get((stored.name, checksum))
        if prior is not None and prior["status"] != "unreadable":
            counts["files_already_read"] += 1
            continue

        def record(status: str, detail: str | None = None, lines=()):
            return ctx.ledger.record_settlement_file(key, name=stored.name, checksum=checksum, size=stored.size, modified=stored.modified,
                                                     status=status, period=period, run_id=run_id, detail=detail, lines=lines)

        if stored.name in read_names:
            counts["files_changed"] += 1
            record("changed", f"read before with other content (SHA-256 {read_names[stored.name][:12]}..., now {checksum[:12]}...): this version was not read")
            continue
        if checksum in read_content:
            counts["files_duplicate"] += 1
            record("duplicate", f"the same content as {read_content[checksum]}, read before: not read again")
            continue
        try:
            parsed = parse(fmt, data, default_batch=stored.name)
        except FormatError as exc:
            counts["files_unreadable"] += 1
            record("unreadable", str(exc))
            continue
        if record("read", lines=[_line_row(item) for item in parsed]) is None:
            counts["files_already_read"] += 1  # a run beside this one read it first
            continue
        read_names[stored.name], read_content[checksum] = checksum, stored.name
        counts["files_read"] += 1
        counts["rows_read"] += len(parsed)
        counts["rows_unreadable"] += sum(1 for item in parsed if isinstance(item, RowProblem))
    ctx.ledger.record_run(key, FLOW, run_id, interval_start=start, interval_end=end, extracted=counts["rows_read"], started_at=datetime.now(timezone.utc))
    log.info("%s: settlement files %s", key, dict(counts))
    return {**counts, "period": period}


# -- reconcile: rows against the ERP ------------------------------------------------------------
class _Batch:
    """One batch's rows and what became of each: {line id: (status, reason, detail, master_id, master_total)}."""

    def __init__(self, name: str, rows: list[dict[str, Any]]):
        self.name = name
        self.rows = rows
        self.outcome: dict[int, tuple[str, str | None, str | None, str | None, str | None]] = {}

    def matched(self, row, detail=None, master_id=None, master_total=None):
        self.outcome[row["id"]] = ("matched", None, detail, master_id, master_total)

    def exception(self, row, reason, detail, master_id=None, master_total=None):
        self.outcome[row["id"]] = ("exception", reason, detail, master_id, master_total)

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["kind"] in kinds]

    def imbalance(self, tolerance: Decimal) -> str | None:
        """Why the batch cannot be booked, or None: its net amounts, payout included, sum to zero
        per currency (the payout is what is left of everything else)."""
        bad = self.of("unreadable")
        if bad:
            return f"{len(bad)} unreadable row(s): the batch cannot be balanced"
        if not self.of("payout"):
            return "no payout row: the batch cannot be checked against what reached the bank"
        sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
        paid: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in self.rows:
            sums[row["net_currency"] or "?"] += _dec(row["net"])
            if row["kind"] == "payout":
                paid[row["net_currency"] or "?"] -= _dec(row["net"])
        off = [f"paid out {paid[c]} {c}, the other rows come to {paid[c] + s} {c} ({s:+} {c})" for c, s in sorted(sums.items()) if abs(s) > tolerance]
        return "; ".join(off) or None

    def updates(self, period: str, run_id: str) -> list[dict[str, Any]]:
        for row in self.rows:  # every row leaves with an outcome: never silently still "new"
            self.outcome.setdefault(row["id"], ("exception", "unknown_type", f"a {row['kind']} row the flow has no rule for", None, None))
        return [{"id": i, **dict(zip(UPDATE_FIELDS, (*o, period, run_id)))} for i, o in self.outcome.items()]


def _money(row, side: str) -> str:
    return f"{row[side]} {row[side + '_currency'] or ''}".strip()


def reconcile(ctx: FlowContext, run_id: str, extracted: dict) -> dict[str, Any]:
    """Every row not reconciled yet (this run's files, and any a crashed run left), batch by batch;
    each batch's outcome is written as soon as it is done."""
    key, policy = ctx.pairing.key, _policy(ctx)
    fmt = _format(policy)
    period = extracted["period"]
    rows = ctx.ledger.settlement_lines(key, status="new")
    retry = ctx.ledger.settlement_lines(key, status="exception", reasons=RETRIED)
    counts: Counter = Counter()
    if not rows and not retry:
        return {"rows": 0}
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        batches[row["batch"] or "?"].append(row)

    refs = {r["merchant_ref"] for r in rows + retry if r["kind"] in ORDER_KINDS and r["merchant_ref"]}
    ext = {ref: ctx.pairing.external_id(ref) for ref in refs}
    for row in rows + retry:
        row["booked_at"] = _aware(row["booked_at"])
    dated = [r["booked_at"] for r in rows if r["kind"] in ("settled", "refunded") and r["booked_at"] is not None]
    since = min(dated, default=datetime.now(timezone.utc)) - timedelta(days=policy.sale_lookback_days)
    # the ERP once for every order the rows name (a bulk read, not a lookup per row)
    sales = ctx.master.sale_totals(ext.values(), since) if ext else {}
    settled_before = {r["merchant_ref"] for r in ctx.ledger.settlement_lines(key, status="matched", merchant_refs=refs) if r["kind"] == "settled"}

    for name, batch_rows in batches.items():
        batch = _Batch(name, batch_rows)
        why = batch.imbalance(policy.tolerance)
        if why is not None:
            _hold(batch, why)
            counts["batches_held"] += 1
        else:
            _match_settled(ctx, policy, batch, sales, ext, settled_before)
            if not _match_refunds(ctx, policy, batch, sales, ext, run_id, counts):
                continue  # a refund is being credited by a run beside this one: the batch waits for the next run
            _others(ctx, fmt, batch, sales, ext)
            if not _post_fee_journals(ctx, policy, batch, run_id, counts):
                continue  # its journal is being posted by a run beside this one
            counts["batches_booked"] += 1
        ctx.ledger.update_settlement_lines(batch.updates(period, run_id))
        for status, reason, *_ in batch.outcome.values():
            counts[status] += 1
            if reason:
                counts[f"exception:{reason}"] += 1
    if retry:
        _retry(ctx, policy, retry, sales, ext, settled_before, period, run_id, counts)
    ctx.ledger.record_run(key, FLOW, run_id, loaded=counts["matched"], failed=counts["exception"])
    log.info("%s: settlement rows %s", key, dict(counts))
    return {"rows": len(rows), **counts}


def _retry(ctx, policy, rows, sales, ext, settled_before, period: str, run_id: str, counts: Counter) -> None:
    """Payments and refunds whose sale was missing, looked at again: their batches were booked
    (journal, balance) when they were first read; only the match is left to make."""
    batch = _Batch("earlier batches", rows)
    _match_settled(ctx, policy, batch, sales, ext, settled_before)
    if not _match_refunds(ctx, policy, batch, sales, ext, run_id, counts):
        return
    now_matched = [i for i, o in batch.outcome.items() if o[0] == "matched"]
    batch.outcome = {i: ("matched", None, f"matched on a later run: {batch.outcome[i][2] or 'the sale arrived after its payment'}", *batch.outcome[i][3:])
                     for i in now_matched}
    batch.rows = [r for r in rows if r["id"] in batch.outcome]  # the others stay as reported, in their own period
    ctx.ledger.update_settlement_lines(batch.updates(period, run_id))
    counts["matched_on_retry"] += len(now_matched)


def _hold(batch: _Batch, why: str) -> None:
    anchor = (batch.of("payout") or batch.of("unreadable") or batch.rows)[0]
    for row in batch.rows:
        if row is anchor:
            batch.exception(row, "batch_unbalanced", f"batch {batch.name} held: {why}")
        elif row["kind"] == "unreadable":
            batch.exception(row, "unreadable_row", row["detail"])
        else:
            batch.exception(row, "batch_held", f"batch {batch.name} held: {why}")


def _currency_differs(row, sale: SaleRef) -> str | None:
    if sale.currency and row["gross_currency"] and row["gross_currency"] != sale.currency:
        rate = f" at rate {row['exchange_rate']}" if row["exchange_rate"] else ""
        return f"paid {_money(row, 'gross')} (settled as {_money(row, 'net')}{rate}); the sale is {sale.total} {sale.currency}"
    return None


def _match_settled(ctx, policy, batch: _Batch, sales: dict[str, SaleRef], ext: dict[str, str], settled_before: set[str]) -> None:
    """Payments per order (two captures of one order in a batch are summed) against the sale total."""
    by_order: dict[str, list[dict]] = defaultdict(list)
    for row in batch.of("settled"):
        if row["merchant_ref"]:
            by_order[row["merchant_ref"]].append(row)
        else:
            batch.exception(row, "no_reference", f"settled {_money(row, 'gross')} with no order number (provider reference {row['psp_ref']})")
    for ref, group in by_order.items():
        sale = sales.get(ext[ref])
        gross = sum((_dec(r["gross"]) for r in group), ZERO)
        for row in group:
            if sale is None:
                batch.exception(row, "no_sale", f"no {ctx.master.name} sale has ExternalID {ext[ref]}")
            elif ref in settled_before:
                batch.exception(row, "settled_twice", f"order {ref} was settled in an earlier batch too (sale {sale.order_number or sale.master_id})",
                                sale.master_id, _text(sale.total))
            elif (why := _currency_differs(row, sale)) is not None:
                batch.exception(row, "currency_differs", why, sale.master_id, _text(sale.total))
            elif sale.total is None or abs(gross - sale.total) > policy.tolerance:
                batch.exception(row, "amount_differs", f"paid {gross} {row['gross_currency']} in this batch, the sale is {sale.total} ({gross - (sale.total or ZERO):+})",
                                sale.master_id, _text(sale.total))
            else:
                rate = f"settled as {_money(row, 'net')} at rate {row['exchange_rate']}" if row["net_currency"] != row["gross_currency"] else None
                batch.matched(row, rate, sale.master_id, _text(sale.total))
        if sale is not None:
            settled_before.add(ref)


def _match_refunds(ctx, policy, batch: _Batch, sales, ext, run_id: str, counts: Counter) -> bool:
    """Each refund to its credit note, making the credit note the ERP lacks (once: a claim, the
    ERP's own record of it, then the ledger link). False when another run holds one of them."""
    key = ctx.pairing.key
    todo = []
    for row in sorted(batch.of("refunded"), key=lambda r: r["line_no"]):  # a fixed order: a retry meets the refunds as the first try did
        ref = row["merchant_ref"]
        sale = sales.get(ext[ref]) if ref else None
        refund_ref = row["modification_ref"] or f"{row['psp_ref']}/{batch.name}/{row['line_no']}"
        amount = abs(_dec(row["gross"]))
        if not ref:
            batch.exception(row, "no_reference", f"refund of {amount} {row['gross_currency']} with no order number (reference {refund_ref})")
        elif sale is None:
            batch.exception(row, "refund_no_sale", f"refund {refund_ref} of {amount} {row['gross_currency']}: no {ctx.master.name} sale has ExternalID {ext[ref]}")
        elif (why := _currency_differs(row, sale)) is not None:
            batch.exception(row, "currency_differs", why, sale.master_id, _text(sale.total))
        else:
            todo.append((row, sale, refund_ref, amount))
    done = ctx.ledger.links(key, REFUND, [t[2] for t in todo])
    for row, _, refund_ref, _ in todo:
        if refund_ref in done:
            batch.matched(row, "credit note matched before", done[refund_ref])
    todo = [t for t in todo if t[2] not in done]
    claimed = ctx.ledger.claim(key, REFUND, [t[2] for t in todo], run_id)
    try:
        if len(claimed) < len({t[2] for t in todo}):
            return False
        for row, sale, refund_ref, amount in todo:
            try:
                note, tag, how = _credit_note_for(ctx, policy, row, sale, refund_ref, amount)
            except ClientError as exc:
                batch.exception(row, "refund_refused", f"{ctx.master.name} refused the credit note (HTTP {exc.status}): {str(exc.body)[:300]}", sale.master_id)
                continue
            if note is None:
                batch.exception(row, "refund_differs", how, sale.master_id)
                continue
            ctx.ledger.add_link(key, REFUND, refund_ref, note, sale.master_id, run_id)
            counts[f"credit_notes_{tag}"] += 1
            batch.matched(row, how, note)
        return True
    finally:
        ctx.ledger.release(key, REFUND, claimed, run_id)


def _credit_note_for(ctx, policy, row, sale: SaleRef, refund_ref: str, amount: Decimal) -> tuple[str | None, str, str]:
    """(credit note, what happened, how) or (None, "", why not). The ERP first: a credit note of
    the refund's amount that no other refund has taken (the refunds flow credits channel
    refunds; a crashed try of this one made it) is this refund's; one the ERP records as made for
    this refund is too; only a sale with no free credit note at all gets a new one. One read of
    the sale's credit notes in the common case: a month's thousands of refunds cost the ERP
    budget one call each, plus one per credit note made."""
    notes = ctx.master.credit_notes(sale.master_id)
    if notes:
        taken = ctx.ledger.links_by_master(ctx.pairing.key, REFUND, [n.master_id for n in notes])
        free = [n for n in notes if n.master_id not in taken]
        same = [n for n in free if n.total == amount]
        if same:
            return same[0].master_id, "matched", "matched to a credit note of the same amount"
        mine = ctx.master.find_credit_note(sale.master_id, refund_ref)
        if mine is not None:  # made for this refund, then changed in the ERP: it is still this refund's
            return mine, "found", "made for this refund before (its amount since changed in the ERP)"
        if free:
            return None, "", f"refund {refund_ref} of {amount}: the sale's credit notes not matched to another refund are {', '.join(str(n.total) for n in free)}"
    refund = Refund(
        refund_ref=refund_ref,
        order_channel_ref=row["merchant_ref"],
        currency=row["gross_currency"] or sale.currency,
        lines=[RefundLine(sku=policy.refund_sku, quantity=1, amount=amount)],
        reason="refunded by the payment provider",
        requested_at=row["booked_at"] or datetime.now(timezone.utc),
    )
    note = ctx.master.create_credit_note(sale.master_id, refund, {policy.refund_sku: policy.refund_sku}, ctx.pairing.policies.tax_rule)
    return note, "created", "credit note created (no restock)"


def _others(ctx, fmt: SettlementFormat, batch: _Batch, sales, ext) -> None:
    """Rows that are not payments to match: the payout and fee rows of a balanced batch are
    accounted for; chargebacks, adjustments and unknown types go to finance."""
    for row in batch.of("payout"):
        batch.matched(row, f"paid out {-_dec(row['net'])} {row['net_currency']}")
    for row in batch.of("fee"):
        batch.matched(row, "in the batch's fee journal (account `other`)")
    labels = {"chargeback": "chargeback", "chargeback_reversed": "chargeback reversed", "refund_reversed": "refund reversed"}
    for row in batch.of(*labels):
        sale = sales.get(ext.get(row["merchant_ref"] or "", "")) if row["merchant_ref"] else None
        on = f"sale {sale.order_number or sale.master_id}" if sale else "no ERP sale found"
        batch.exception(row, row["kind"], f"{labels[row['kind']]} of {_money(row, 'gross')} on order {row['merchant_ref'] or '?'} ({on}); net {_money(row, 'net')}",
                        sale.master_id if sale else None, _text(sale.total) if sale else None)
    for row in batch.of("adjustment"):
        batch.exception(row, "other_entry", f"{row['provider_type']} of {_money(row, 'net')}: not a payment; book it by hand")
    for row in batch.of("unknown"):
        batch.exception(row, "unknown_type", f"type {row['provider_type']!r} is not in the {fmt.name} format file; {_money(row, 'net')}")


def _fee_totals(batch: _Batch) -> dict[str, dict[str, Decimal]]:
    """Per net currency: each fee column summed over the batch, and fee rows as `other`."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in batch.rows:
        cur = row["net_currency"]
        for name, value in (row["fees"] or {}).items():
            totals[cur][name] += _dec(value)
        if row["kind"] == "fee":
            totals[cur]["other"] -= _dec(row["net"])  # a fee row takes money from the batch: its net is negative
    return totals


def _post_fee_journals(ctx, policy: SettlementPolicy, batch: _Batch, run_id: str, counts: Counter) -> bool:
    """One journal per batch (and net currency) for everything the provider withheld, exactly
    once: the ledger link, a claim, the ERP by reference (a journal whose answer was lost, or a
    worker killed before the ledger heard of it), and only then a post."""
    key = ctx.pairing.key
    payout = batch.of("payout")
    effective = (payout[0]["booked_at"] if payout else None) or max((r["booked_at"] for r in batch.rows if r["booked_at"]), default=None) or datetime.now(timezone.utc)
    journals: dict[str, str] = {}
    for cur, fees in sorted(_fee_totals(batch).items()):
        lines = []
        for name, total in sorted(fees.items()):
            amount = quantize(total, cur)  # the one rounding: a cost summed from finer amounts, to the cent, half up
            if amount > 0:
                lines.append((policy.fee_accounts[name], policy.clearing_account, amount))
            elif amount < 0:  # a rebate: the provider gave money back
                lines.append((policy.clearing_account, policy.fee_accounts[name], -amount))
        if not lines:
            counts["journals_none_due"] += 1
            continue
        link_key = f"{batch.name}|{cur}"
        reference = policy.journal_reference.format(batch=batch.name, currency=cur)
        done = ctx.ledger.links(key, JOURNAL, [link_key])
        if done:
            journals[cur] = done[link_key]
            counts["journals_already"] += 1
            continue
        if not ctx.ledger.claim(key, JOURNAL, [link_key], run_id):
            return False
        journal = ctx.master.find_journal(reference)
        counts["journals_found" if journal else "journals_posted"] += 1
        journal = journal or ctx.master.post_journal(reference, effective, cur, lines)
        ctx.ledger.add_link(key, JOURNAL, link_key, journal, reference, run_id)
        ctx.ledger.release(key, JOURNAL, [link_key], run_id)
        journals[cur] = journal
    for row in batch.of("fee"):
        status, reason, detail, _, total = batch.outcome[row["id"]]
        batch.outcome[row["id"]] = (status, reason, detail, journals.get(row["net_currency"]), total)
    return True


# -- report -------------------------------------------------------------------------------------
def _report_rows(ctx: FlowContext, period: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    key = ctx.pairing.key
    names = {f["id"]: f["name"] for f in ctx.ledger.settlement_files(key)}
    lines = ctx.ledger.settlement_lines(key, period=period)
    rows = []
    for event in ctx.ledger.settlement_file_events(key, period):
        kind = {"changed": "file_changed", "duplicate": "duplicate_file", "unreadable": "unreadable_file"}.get(event["status"])
        if kind:
            rows.append({"type": kind, "file": event["name"], "detail": event["detail"]})
    for line in lines:
        if line["status"] != "exception":
            continue
        rows.append({
            "type": line["reason"], "file": names.get(line["file_id"]), "batch": line["batch"], "line": line["line_no"], "provider_type": line["provider_type"],
            "order": line["merchant_ref"], "reference": line["modification_ref"] or line["psp_ref"], "erp_record": line["master_id"],
            "gross_currency": line["gross_currency"], "gross": line["gross"], "erp_total": line["master_total"], "exchange_rate": line["exchange_rate"],
            "net_currency": line["net_currency"], "net": line["net"],
            "fees": " ".join(f"{k}={v}" for k, v in (line["fees"] or {}).items() if _dec(v)), "detail": line["detail"],
        })
    order = {kind: i for i, kind in enumerate(NOTES)}
    rows.sort(key=lambda r: order.get(r["type"], len(order)))
    return rows, lines


def report(ctx: FlowContext, run_id: str, extracted: dict, reconciled: dict) -> dict[str, Any]:
    """The period's exception report (CSV and HTML), stored in the ledger and e-mailed to finance."""
    from commerce_sync.alerts import send_email
    from commerce_sync.reports import to_csv, to_html

    key, policy = ctx.pairing.key, _policy(ctx)
    period = extracted["period"]
    exceptions, lines = _report_rows(ctx, period)
    kinds = Counter((line["kind"], line["status"]) for line in lines)
    summary = {
        "period": period,
        "files read": extracted.get("files_read", 0),
        "files already read (skipped)": extracted.get("files_already_read", 0),
        "rows reconciled": len(lines),
        "payments matched to the cent": kinds[("settled", "matched")],
        "refunds matched to a credit note": kinds[("refunded", "matched")],
        "credit notes created": reconciled.get("credit_notes_created", 0),
        "fee journals posted": reconciled.get("journals_posted", 0) + reconciled.get("journals_found", 0),
        "batches booked": reconciled.get("batches_booked", 0),
        "batches held": reconciled.get("batches_held", 0),
        "exceptions": len(exceptions),
    }
    title = f"Settlement reconciliation, {key}, {period}"
    csv_text = to_csv(exceptions, COLUMNS)
    html = to_html(title, exceptions, summary, COLUMNS, NOTES, limit_per_type=200,
                   none_text="No exceptions: every payment and refund matched the ERP to the cent, and every batch balanced.")
    ctx.ledger.store_report(key, FLOW, period, "exceptions.csv", "text/csv", csv_text)
    ctx.ledger.store_report(key, FLOW, period, "exceptions.html", "text/html", html)
    subject = f"[Commerce Sync] {key} settlements {period}: {len(exceptions)} exception(s)"
    send_email(ctx.pairing.recipients.get(policy.report_recipients, []), subject, html, {"exceptions.csv": csv_text})
    ctx.ledger.record_run(key, FLOW, run_id, finished_at=datetime.now(timezone.utc), details=summary)
    return summary
