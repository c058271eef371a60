"""Exception reports for people: CSV for a spreadsheet, HTML for reading in the e-mail itself."""

from __future__ import annotations

import csv
import io
from html import escape

# what each exception means and what to do, in finance's words (docs/operations.md says more)
EXCEPTION_HELP = {
    "unmatched": "Paid by the marketplace, but no Cin7 sale is linked to the order. Find the order; it may be in the orders_in quarantine.",
    "variance": "The Cin7 sale total differs from what the marketplace paid plus what it kept. Compare the order on both sides.",
    "refund_netted": "The marketplace deducted a refund from this payout. Check a credit note exists in Cin7 for it.",
    "no_remittance": "Booked in Cin7 over the due period ago, but no payout has arrived for it. Ask the marketplace.",
    "unreadable": "The payout record could not be read. Tell engineering.",
}
COLUMNS = ["type", "order", "payout", "cin7_sale", "sale_total", "paid_net", "commission", "commission_tax", "fees", "refunds", "variance", "detail"]


def to_csv(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
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
