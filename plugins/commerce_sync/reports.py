"""Reports for people: CSV for a spreadsheet, HTML for reading in the e-mail itself.

`to_csv` is the one CSV writer for every file a person opens (reports, e-mail attachments, CLI
exports): channel data is written by sellers and buyers, so a text cell that a spreadsheet would
read as a formula is written as text (see `safe_cell`).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from html import escape

# what each exception means and what to do, in finance's words (docs/operations.md says more)
EXCEPTION_HELP = {
    "unmatched": "Paid by the marketplace, but no Cin7 sale is linked to the order. Find the order; it may be in the orders_in quarantine.",
    "variance": "The Cin7 sale total differs from what the marketplace paid plus what it kept. Compare the order on both sides.",
    "refund_netted": "The marketplace deducted a refund from this payout. Check a credit note exists in Cin7 for it.",
    "no_remittance": "Booked in Cin7 over the due period ago, but no payout has arrived for it. Ask the marketplace.",
    "unreadable": "The payout record could not be read. Tell engineering.",
}


def exception_help(master: str) -> dict[str, str]:
    """EXCEPTION_HELP naming the pairing's master (Centra, not Cin7, where it is the master)."""
    return {k: v.replace("Cin7", master) for k, v in EXCEPTION_HELP.items()}


COLUMNS = ["type", "order", "payout", "master_sale", "sale_total", "paid_net", "commission", "commission_tax", "fees", "refunds", "variance", "detail"]
AMOUNTS = ("sale_total", "paid_net", "commission", "commission_tax", "fees", "refunds", "variance")


def with_amounts(row: dict) -> dict:
    """An exception row read back from the ledger (amounts kept as text, digit for digit) with its
    amounts as Decimals again, so the CSV writes them as numbers (a negative variance included)."""
    return {k: Decimal(v) if k in AMOUNTS and isinstance(v, str) and v else v for k, v in row.items()}


# A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell as a formula when it starts with
# one of these (OWASP "CSV injection"); tab and carriage return are on OWASP's list because some
# importers drop them and then see what follows. Full-width forms count too: CJK input methods
# type them, and some spreadsheet locales read them as their ASCII twins.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: object) -> object:
    """A value as a CSV cell nobody's spreadsheet will run. Numbers (int, Decimal, float) stay
    numbers, sign and all; any other value is text, and text whose first character (after spaces
    and line breaks, which importers trim) starts a formula gets a leading single quote, the
    OWASP rule: the spreadsheet shows the text as written instead of evaluating it. So "-2+3"
    from a seller is text ('-2+3), while Decimal("-2.50") is the number -2.50: callers pass
    amounts as numbers, never as text."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.lstrip(" \n").startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    """Rows as CSV text with a header of `columns` (keys not named are left out, missing ones are
    empty), every cell through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; a cell holding \r or \n is then quoted
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_html(title: str, rows: list[dict], summary: dict[str, object], columns: list[str] = COLUMNS, notes: dict[str, str] | None = None,
            limit_per_type: int | None = None, none_text: str = "No exceptions: every payout matched its sale to the cent.") -> str:
    """`columns` after the first ("type", which groups the rows); `notes` say what each type means;
    `limit_per_type` keeps an e-mail readable (the CSV holds every row)."""
    notes = EXCEPTION_HELP if notes is None else notes
    parts = [f"<h2>{escape(title)}</h2>", "<ul>"]
    parts += [f"<li>{escape(str(k))}: <b>{escape(str(v))}</b></li>" for k, v in summary.items()]
    parts.append("</ul>")
    if not rows:
        parts.append(f"<p>{escape(none_text)}</p>")
        return "\n".join(parts)
    for kind in dict.fromkeys(r["type"] for r in rows):
        of_kind = [r for r in rows if r["type"] == kind]
        parts.append(f"<h3>{escape(kind)} ({len(of_kind)})</h3><p>{escape(notes.get(kind, ''))}</p>")
        parts.append("<table border='1' cellpadding='4'><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns[1:]) + "</tr>")
        for row in of_kind[:limit_per_type]:
            parts.append("<tr>" + "".join(f"<td>{escape('' if row.get(c) is None else str(row.get(c)))}</td>" for c in columns[1:]) + "</tr>")
        parts.append("</table>")
        if limit_per_type is not None and len(of_kind) > limit_per_type:
            parts.append(f"<p>... and {len(of_kind) - limit_per_type} more in the attached CSV.</p>")
    return "\n".join(parts)
