"""Packing-slip PDFs, read back with pypdf: content, pagination, Unicode, long text, reproducibility."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from commerce_sync import packing_slips
from commerce_sync.packing_slips import PackingSlip, SlipLine, render_pdf, slip_filename

RETURNS = "Return unused items within 35 days: use the John Lewis returns label in the box."


def make_slip(**changes) -> PackingSlip:
    fields = dict(
        brand="Acme Homeware",
        order_number="SO-00481",
        customer_order_number="JL-7781-A",
        box="BOX-2",
        shipped_at=datetime(2025, 3, 4, 9, 30, tzinfo=UTC),
        carrier="DPD",
        tracking_number="15501234567890",
        lines=[SlipLine("MUG-BLUE", "Blue mug", 3), SlipLine("PLATE-10", "Dinner plate", 4), SlipLine("BOWL", None, 1)],
        return_instructions=RETURNS,
        ship_to=["Jane Doe", "1 High Street", "London SW1A 1AA"],
    )
    return PackingSlip(**{**fields, **changes})


def read(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(params=["noto", "helvetica"])
def font(request, monkeypatch):
    """Each test runs with the fonts the project installs (Noto Sans, Noto Sans CJK) and with the
    core-font fallback of an install without them."""
    if request.param == "helvetica":
        monkeypatch.setattr(packing_slips, "FONT_SOURCES", ())
    return request.param


def test_the_project_installs_its_fonts():
    """requirements.txt brings both font packages: a fresh install prints every script below."""
    assert [f.family for f in packing_slips.fonts()] == ["NotoSans", "NotoSansCJK"]


def test_slip_shows_order_box_lines_and_returns(font):
    reader, text = read(render_pdf(make_slip()))
    assert len(reader.pages) == 1
    assert reader.metadata.title == "Packing slip JL-7781-A BOX-2"
    for expected in ["Acme Homeware", "Packing slip", "SO-00481", "JL-7781-A", "BOX-2", "2025-03-04", "DPD",
                     "15501234567890", "Jane Doe", "London SW1A 1AA", "Total units: 8", RETURNS]:
        assert expected in flat(text), expected
    rows = text.splitlines()
    for sku, qty in [("MUG-BLUE", 3), ("PLATE-10", 4), ("BOWL", 1)]:
        assert any(re.fullmatch(rf"{sku}\b.*\b{qty}\s*", row) for row in rows), (sku, qty)
    # return instructions come after the lines
    assert flat(text).index(RETURNS) > flat(text).index("Total units")


def test_missing_optional_fields_render(font):
    slip = make_slip(shipped_at=None, carrier=None, tracking_number=None, ship_to=(), lines=[], note=None)
    _, text = read(render_pdf(slip))
    assert "not recorded" in text and "Total units: 0" in text


def test_many_lines_continue_over_pages_with_the_header_repeated(font):
    lines = [SlipLine(f"SKU-{i:03d}", f"Product number {i}", i % 5 + 1) for i in range(120)]
    reader, text = read(render_pdf(make_slip(lines=lines)))
    assert len(reader.pages) >= 3
    for number, page in enumerate(reader.pages, 1):
        page_text = page.extract_text()
        assert "Acme Homeware" in page_text and "JL-7781-A" in page_text
        assert f"Page {number} of {len(reader.pages)}" in page_text
    table_pages = [page.extract_text() for page in reader.pages if "SKU-" in page.extract_text()]
    assert len(table_pages) >= 3 and all("SKU Description Qty" in page for page in table_pages)
    rows = text.splitlines()
    for i, line in enumerate(lines):
        assert sum(1 for row in rows if re.fullmatch(rf"{line.sku}\b.*\b{line.quantity}\s*", row)) == 1, line.sku
    assert f"Total units: {sum(line.quantity for line in lines)}" in text
    assert RETURNS in flat(text)


def nospace(text: str) -> str:
    # pypdf puts spaces (or NULs) between the glyphs drawn from the fallback font: compare without
    return "".join(text.replace("\x00", " ").split())


GREEK, CYRILLIC, CJK = "Αθηνά Παπαδοπούλου, Οδός Ερμού 12", "Анна Иванова, ул. Тверская 7", "山田太郎 東京都新宿区 서울특별시 강남구 テスト"


def test_greek_cyrillic_and_cjk_render_extractably_with_the_ship_to():
    ship_to = [f"{GREEK}", CYRILLIC, CJK, "Zoë Łukasiewicz, Straße 5"]
    slip = make_slip(brand="Ærø Design", ship_to=ship_to, lines=[SlipLine("ZOË-1", "Zoë's Café – 東京 Кофе Καφές", 2)])
    rendered = packing_slips.render(slip)
    _, text = read(rendered.pdf)
    for expected in [*ship_to, "Ærø Design", "Zoë's Café – 東京 Кофе Καφές", "Ship to"]:
        assert nospace(expected) in nospace(text), expected
    assert rendered.unprintable == [] and packing_slips.unprintable(slip) == []


def test_a_character_no_font_has_is_printed_as_a_question_mark_and_reported():
    slip = make_slip(ship_to=["Jane 🏠 Doe"], lines=[SlipLine("GIFT-1", "Gift box 🎁", 1)], note="ᚠᚢᚦ")
    rendered = packing_slips.render(slip)
    _, text = read(rendered.pdf)
    assert rendered.unprintable == ["ᚠ", "ᚢ", "ᚦ", "🏠", "🎁"]  # in order of appearance: note, ship-to, lines
    assert "Jane ? Doe" in text and "Gift box ?" in text and "???" in text
    assert packing_slips.describe(["🎁"]) == "U+1F381 🎁"
    assert sorted(packing_slips.unprintable(slip)) == sorted(rendered.unprintable)


def test_without_the_cjk_font_cjk_is_reported_not_dropped(monkeypatch):
    monkeypatch.setattr(packing_slips, "FONT_SOURCES", ("noto_sans",))
    rendered = packing_slips.render(make_slip(ship_to=["東京", GREEK]))
    _, text = read(rendered.pdf)
    assert rendered.unprintable == ["東", "京"] and "??" in text and nospace(GREEK) in nospace(text)


def test_unicode_text_renders(font):
    name = "Zoë's Café – 東京"
    slip = make_slip(brand="Ærø Design", ship_to=["Zoë Łukasiewicz", "Straße 5", "東京都"],
                     lines=[SlipLine("ZOË-1", name, 2)], note="Ⅻ 🎁 gift")
    rendered = packing_slips.render(slip)
    _, text = read(rendered.pdf)
    assert "Ærø Design" in text and "Zoë's Café –" in text
    if font == "helvetica":  # outside Windows-1252 becomes '?', and is reported
        assert "Zoë's Café – ??" in text and "Zoë ?ukasiewicz" in text
        assert {"東", "京", "都", "Ł", "Ⅻ", "🎁"} <= set(rendered.unprintable)
    else:
        assert "Zoë Łukasiewicz" in text and nospace("東京都") in nospace(text)
        assert rendered.unprintable == ["🎁"]


@pytest.mark.parametrize("name", [("Very long product name " * 14)[:300], "X" * 300])
def test_long_names_wrap_or_truncate_visibly(font, name):
    slip = make_slip(lines=[SlipLine("LONG-1", name, 5), SlipLine("NEXT-1", "Next", 1)])
    reader, text = read(render_pdf(slip))
    assert len(reader.pages) == 1
    assert name[:15] in text and "…" in text
    assert name.replace(" ", "") not in text.replace(" ", "").replace("\n", "")  # cut, not all printed
    assert any(re.fullmatch(r"NEXT-1 Next 1\s*", row) for row in text.splitlines())
    assert "Total units: 6" in text


def test_same_slip_renders_to_the_same_bytes(font):
    slip = make_slip()
    first = render_pdf(slip)
    assert render_pdf(make_slip()) == first
    assert render_pdf(make_slip(box="BOX-3")) != first
    assert PdfReader(io.BytesIO(first)).metadata.creation_date == datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    assert render_pdf(make_slip(shipped_at=None)) == render_pdf(make_slip(shipped_at=None))


def test_slip_filename_is_safe():
    assert slip_filename(make_slip()) == "packing-slip-JL-7781-A-BOX-2.pdf"
    assert slip_filename(make_slip(customer_order_number="JL/12 34", box="Box 1/2")) == "packing-slip-JL-12-34-Box-1-2.pdf"
    assert slip_filename(make_slip(customer_order_number="../東京", box="a\\b")) == "packing-slip-..----a-b.pdf"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", slip_filename(make_slip(box="Zoë's 📦")))


any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)  # everything but lone surrogates


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(brand=any_text, order=any_text, customer_order=any_text, box=any_text, name=any_text, sku=any_text,
       ship_to=st.lists(any_text, max_size=4), unicode_font=st.booleans())
def test_any_text_renders_to_a_readable_pdf(brand, order, customer_order, box, name, sku, ship_to, unicode_font):
    """Any text: a readable PDF, and every character either printed or reported. (Noto Sans only
    here: random text almost always needs the 16 MB CJK font, which the tests above load.)"""
    slip = make_slip(brand=brand, order_number=order, customer_order_number=customer_order, box=box,
                     carrier=name, tracking_number=sku, lines=[SlipLine(sku, name, 1)], ship_to=ship_to, note=name)
    with mock.patch.object(packing_slips, "FONT_SOURCES", ("noto_sans",) if unicode_font else ()):
        rendered = packing_slips.render(slip)
        assert rendered.unprintable == packing_slips.unprintable(slip)
    reader, text = read(rendered.pdf)
    assert len(reader.pages) >= 1 and "Total units: 1" in text
    assert re.fullmatch(r"[A-Za-z0-9._-]+", slip_filename(slip))
