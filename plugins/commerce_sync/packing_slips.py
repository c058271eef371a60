"""Packing slips as PDF, one per shipped box (John Lewis Marketplace pairing), rendered with fpdf2.

Text is drawn in DejaVu Sans when the machine has it (Debian: fonts-dejavu-core), so any name a
customer or a product can have is printed as written; DejaVu has no CJK glyphs, which come out as
blank boxes. Without DejaVu the slip falls back to the core Helvetica font, which has only the
Windows-1252 characters (latin-1 plus dashes, curly quotes, €, …): any other character is then
printed as '?'. Either way rendering never fails on text.

The same slip always renders to the same bytes (fixed creation date, no clock or random input),
so a re-run stores an identical file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF, FontFace

# where Debian, Fedora and Arch put DejaVu; tests empty this to exercise the Helvetica fallback
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
)
# the creation date of a slip without a dispatch date: any constant keeps the output reproducible
UNDATED = datetime(2000, 1, 1, tzinfo=UTC)
# a table row cannot split across pages, so a cell's text is capped (visibly, with an ellipsis)
NAME_MAX, SKU_MAX, FIELD_MAX, SHIP_TO_LINES = 200, 60, 120, 8


@dataclass(frozen=True)
class SlipLine:
    sku: str
    name: str | None
    quantity: int


@dataclass(frozen=True)
class PackingSlip:
    brand: str
    order_number: str  # the Cin7 sale order number
    customer_order_number: str  # the marketplace's number, the one the customer knows
    box: str  # this shipment's box/package label: one slip per box, lines are this box's only
    shipped_at: datetime | None
    carrier: str | None
    tracking_number: str | None
    lines: list[SlipLine]
    return_instructions: str
    ship_to: Sequence[str] = ()
    note: str | None = None


def slip_filename(slip: PackingSlip) -> str:
    name = f"packing-slip-{slip.customer_order_number}-{slip.box}.pdf"
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def render_pdf(slip: PackingSlip) -> bytes:
    # the footer's "of N" needs the page count up front: a first pass counts the pages. (fpdf2's
    # {nb} alias would also replace that text wherever a customer or product name contains it.)
    pages = _SlipPDF(slip).draw().pages_count
    return bytes(_SlipPDF(slip, pages).draw().output())


def _unicode_font() -> tuple[Path, Path] | None:
    for folder in map(Path, FONT_DIRS):
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file():
            return regular, bold if bold.is_file() else regular
    return None


class _SlipPDF(FPDF):
    def __init__(self, slip: PackingSlip, pages: int | None = None):
        super().__init__(format="A4", unit="mm")
        self.slip, self.total_pages = slip, pages
        self.alias_nb_pages("")  # see render_pdf: no alias substitution in the text
        font = _unicode_font()
        self.is_unicode = font is not None
        self.core_fonts_encoding = "cp1252"  # a superset of fpdf2's latin-1 default: – ‘ ’ “ ” € …
        if font:
            self.add_font("DejaVu", "", font[0])
            self.add_font("DejaVu", "B", font[1])
        self.font_name = "DejaVu" if font else "Helvetica"
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_title(f"Packing slip {slip.customer_order_number} {slip.box}")  # metadata is Unicode either way
        self.set_creator("Commerce Sync")
        self.set_creation_date(_utc(slip.shipped_at) or UNDATED)

    def _t(self, value: object, limit: int | None = None) -> str:
        """Printable text for this font: controls become spaces, over-long text ends in an ellipsis."""
        s = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in str(value or ""))
        if limit and len(s) > limit:
            s = s[: limit - 1].rstrip() + "…"
        return s if self.is_unicode else s.encode("cp1252", "replace").decode("cp1252")

    def header(self) -> None:
        # on every page, so a loose continuation page still says which order and box it belongs to
        slip = self.slip
        self.set_font(self.font_name, "B", 16)
        self.cell(0, 8, self._t(slip.brand, FIELD_MAX), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.font_name, "", 10)
        ref = f"Packing slip  ·  Order {slip.customer_order_number}  ·  Box {slip.box}"
        self.cell(0, 6, self._t(ref, 2 * FIELD_MAX), new_x="LMARGIN", new_y="NEXT")
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.font_name, "", 8)
        of = f" of {self.total_pages}" if self.total_pages else ""
        self.cell(0, 5, f"Page {self.page_no()}{of}", align="C")

    def draw(self) -> _SlipPDF:
        slip = self.slip
        self.add_page()
        self.set_font(self.font_name, "", 10)
        shipped = _utc(slip.shipped_at)
        details = [
            ("Customer order number", slip.customer_order_number),
            ("Order number", slip.order_number),
            ("Box", slip.box),
            ("Dispatched", shipped.date().isoformat() if shipped else "not recorded"),
            ("Carrier", slip.carrier or "-"),
            ("Tracking number", slip.tracking_number or "-"),
        ]
        ship_to = [self._t(line, FIELD_MAX) for line in slip.ship_to[:SHIP_TO_LINES]]
        if len(slip.ship_to) > SHIP_TO_LINES:
            ship_to[-1] = "…"
        with self.table(col_widths=(45, 135), width=180, align="LEFT", text_align="LEFT",
                        borders_layout="NONE", first_row_as_headings=False, line_height=5.5, v_align="TOP") as table:
            for label, value in details:
                table.row([label, self._t(value, FIELD_MAX)])
            if ship_to:
                table.row(["Ship to", "\n".join(ship_to)])
            if slip.note:
                table.row(["Note", self._t(slip.note, 4 * FIELD_MAX)])
        self.ln(4)

        # header row repeats on each page the table continues on (fpdf2's default)
        with self.table(col_widths=(45, 115, 20), width=180, align="LEFT", text_align=("LEFT", "LEFT", "RIGHT"),
                        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
                        line_height=5, repeat_headings=1) as table:
            table.row(["SKU", "Description", "Qty"])
            for line in slip.lines:
                table.row([self._t(line.sku, SKU_MAX), self._t(line.name, NAME_MAX), str(line.quantity)])
        self.set_font(self.font_name, "B", 10)
        total = sum(line.quantity for line in slip.lines)
        self.cell(0, 8, f"Total units: {total}", align="R", new_x="LMARGIN", new_y="NEXT")
        self._returns()
        return self

    def _returns(self) -> None:
        """The return instructions, at the foot of the last page when they fit there."""
        text = self._t(self.slip.return_instructions)
        self.set_font(self.font_name, "", 9)
        height = 7 + self.multi_cell(0, 4.5, text, align="L", dry_run=True, output="HEIGHT")
        room = self.page_break_trigger - self.t_margin - 25  # a page less its header
        if height <= room:
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
            self.set_y(max(self.get_y() + 4, self.page_break_trigger - height))
        self.set_font(self.font_name, "B", 10)
        self.cell(0, 7, "Returns", new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.font_name, "", 9)
        self.multi_cell(0, 4.5, text, align="L")


def _utc(moment: datetime | None) -> datetime | None:
    # a naive time is taken as UTC
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
