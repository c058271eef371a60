"""Packing slips as PDF, one per shipped box (John Lewis Marketplace pairing), rendered with fpdf2.

Text is drawn in Noto Sans (Latin, Greek, Cyrillic; regular and bold), with Noto Sans CJK as
fpdf2's fallback for Chinese, Japanese and Korean: both come from pinned PyPI packages
(requirements.txt: pymupdf-fonts, cvttf-NotoSansCJK-Regular), so the project's own set-up
installs them and no system font is needed. The CJK font (16 MB) is loaded only for a slip that
needs it. A character no font covers (an emoji, a rare script) is printed as '?' and reported by
`unprintable(slip)`, which the flow writes into the run report: never silently dropped. Without
the font packages the slip falls back to the core Helvetica font (Windows-1252 only), and
everything else is reported the same way. Either way rendering never fails on text.

The same slip always renders to the same bytes (fixed creation date, no clock or random input),
so a re-run stores an identical file.
"""

from __future__ import annotations

import atexit
import functools
import logging
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF, FontFace

# The fonts tried for each character, in order; tests narrow or empty this to exercise reporting
# and the Helvetica fallback.
FONT_SOURCES: tuple[str, ...] = ("noto_sans", "noto_sans_cjk")
# the creation date of a slip without a dispatch date: any constant keeps the output reproducible
UNDATED = datetime(2000, 1, 1, tzinfo=UTC)
# a table row cannot split across pages, so a cell's text is capped (visibly, with an ellipsis)
NAME_MAX, SKU_MAX, FIELD_MAX, SHIP_TO_LINES = 200, 60, 120, 8
# what stands in for a character no font has
MISSING = "?"
# invisible: nothing to draw, so nothing to miss (controls become spaces, see _SlipPDF._t)
_NO_GLYPH_NEEDED = ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")


@dataclass(frozen=True)
class Font:
    family: str
    regular: Path
    bold: Path

    @functools.cached_property
    def covers(self) -> frozenset[int]:
        return _cmap(self.regular)


@functools.lru_cache(maxsize=None)
def _cmap(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


@functools.lru_cache(maxsize=None)
def _load(source: str) -> Font | None:
    """A font from its package, or None when the package is not installed."""
    if source == "noto_sans":
        try:
            from pymupdf_fonts import NotoSans_Bold, NotoSans_Regular
        except ImportError:
            return None
        # the package holds the TTFs as bytes; fpdf2 reads fonts from files
        folder = _scratch()
        regular, bold = folder / "NotoSans-Regular.ttf", folder / "NotoSans-Bold.ttf"
        regular.write_bytes(NotoSans_Regular.fontbuffer)
        bold.write_bytes(NotoSans_Bold.fontbuffer)
        return Font("NotoSans", regular, bold)
    if source == "noto_sans_cjk":
        try:
            import cvttf_NotoSansCJK_Regular as cjk
        except ImportError:
            return None
        path = Path(cjk.get_TTF_path())
        return Font("NotoSansCJK", path, path)  # no bold face: bold CJK prints regular
    raise ValueError(f"unknown font source {source!r}")


@functools.lru_cache(maxsize=1)
def _scratch() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="commerce-sync-fonts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def fonts() -> list[Font]:
    return [f for f in map(_load, FONT_SOURCES) if f is not None]


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


def _texts(slip: PackingSlip) -> list[str]:
    fields = [slip.brand, slip.order_number, slip.customer_order_number, slip.box, slip.carrier, slip.tracking_number,
              slip.return_instructions, slip.note, *slip.ship_to]
    return [str(v) for v in fields if v] + [str(v) for line in slip.lines for v in (line.sku, line.name) if v]


def _needs_glyph(char: str) -> bool:
    return unicodedata.category(char) not in _NO_GLYPH_NEEDED


def _printable_in(chosen: list[Font]) -> Callable[[str], bool]:
    if not chosen:  # core Helvetica: Windows-1252
        def core(char: str) -> bool:
            try:
                char.encode("cp1252")
                return True
            except UnicodeEncodeError:
                return False
        return core
    return lambda char: any(ord(char) in f.covers for f in chosen)


def unprintable(slip: PackingSlip) -> list[str]:
    """The characters of the slip no font prints (each once, in order of appearance), as they
    are printed instead: '?'. Empty when everything prints as written."""
    printable = _printable_in(fonts())
    seen: dict[str, None] = {}
    for text in _texts(slip):
        for char in text:
            if char not in seen and _needs_glyph(char) and not printable(char):
                seen[char] = None
    return list(seen)


def describe(chars: Sequence[str]) -> str:
    """'U+1F381 🎁, U+0D05 അ' for a run report: the code point says what it was whatever the reader's font."""
    return ", ".join(f"U+{ord(c):04X} {c}" for c in chars)


def slip_filename(slip: PackingSlip) -> str:
    name = f"packing-slip-{slip.customer_order_number}-{slip.box}.pdf"
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    unprintable: list[str]  # characters printed as '?': no font has them


def render(slip: PackingSlip) -> Rendered:
    doc = _SlipPDF(slip).draw()
    with _quiet("fontTools"):  # it warns, per slip, of font tables a subset leaves out (TTFA)
        pdf = bytes(doc.output())
    return Rendered(pdf, doc.unprintable)


def render_pdf(slip: PackingSlip) -> bytes:
    return render(slip).pdf


class _quiet:
    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


class _SlipPDF(FPDF):
    def __init__(self, slip: PackingSlip):
        super().__init__(format="A4", unit="mm")
        self.slip = slip
        self.alias_nb_pages("")  # see render_pdf: no alias substitution in the text
        self.core_fonts_encoding = "cp1252"  # a superset of fpdf2's latin-1 default: – ‘ ’ “ ” € …
        chars = [c for c in dict.fromkeys("".join(_texts(slip))) if _needs_glyph(c)]
        available = fonts()
        # the fallback fonts are loaded only for a slip with text the first font cannot print
        chosen = available if available and any(ord(c) not in available[0].covers for c in chars) else available[:1]
        for n, font in enumerate(chosen):
            self.add_font(font.family, "", font.regular)
            if font.bold != font.regular or n == 0:
                self.add_font(font.family, "B", font.bold)  # a fallback without bold prints bold as regular
        if len(chosen) > 1:
            self.set_fallback_fonts([f.family for f in chosen[1:]], exact_match=False)
        self.font_name = chosen[0].family if chosen else "Helvetica"
        self.printable = _printable_in(chosen)
        self.unprintable = [c for c in chars if not self.printable(c)]
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_title(f"Packing slip {slip.customer_order_number} {slip.box}")  # metadata is Unicode either way
        self.set_creator("Commerce Sync")
        self.set_creation_date(_utc(slip.shipped_at) or UNDATED)

    def _t(self, value: object, limit: int | None = None) -> str:
        """Printable text for these fonts: controls become spaces, a character no font has becomes
        '?' (and `unprintable` reports it), over-long text ends in an ellipsis."""
        s = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c if not _needs_glyph(c) or self.printable(c) else MISSING
                    for c in str(value or ""))
        if limit and len(s) > limit:
            s = s[: limit - 1].rstrip() + "…"
        return s

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

    def _page_numbers(self) -> None:
        """'Page n of N' at the foot of every page, once N is known: drawn last, on each page in
        turn. (fpdf2's {nb} alias would also replace that text inside a customer's name.)"""
        last = self.page
        self.set_auto_page_break(False)
        for number in range(1, self.pages_count + 1):
            self.page = number
            self.set_y(-13)
            self.set_font(self.font_name, "", 8)
            self.cell(0, 5, f"Page {number} of {self.pages_count}", align="C")
        self.page = last

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
        self._page_numbers()
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
