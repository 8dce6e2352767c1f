"""The Source page's viewer on real files: a PDF made with fpdf2, rendered by PDFium, with the
passage pypdf extracted at ingestion highlighted on the page image; other formats as text."""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF
from PIL import Image

from core.ingest.loaders import load_bytes
from core.ingest.viewer import HIGHLIGHT_EDGE, locate, passage_in_context, render_pdf_page

FILLER = "This page is about something else entirely, such as the canteen opening hours. " * 4
PASSAGE = (
    "The secure bicycle room is on the basement level of the north garage. Reception hands "
    "out the key card for it once you have signed the bike policy."
)


def make_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, FILLER)
    pdf.add_page()
    pdf.multi_cell(0, 8, FILLER)
    pdf.ln(20)
    pdf.multi_cell(0, 8, PASSAGE)  # wrapped over lines: pypdf and PDFium break it differently
    path.write_bytes(bytes(pdf.output()))
    return path


def highlighted_rows(png: bytes) -> list[int]:
    """Image rows that carry the highlight's edge colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    edge = HIGHLIGHT_EDGE[:3]
    return [y for y in range(height) if any(pixels[x, y] == edge for x in range(0, width, 2))]


def test_the_cited_passage_is_highlighted_on_its_pdf_page(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "commuting.pdf")
    # The passage as ingestion stored it: pypdf's text of page 2 (with its own line breaks).
    page_two = load_bytes("commuting.pdf", path.read_bytes()).sections[1].text
    quote = page_two[page_two.index("The secure") :]
    assert quote != PASSAGE  # line breaks differ from the text as written

    view = render_pdf_page(path, 2, quote)
    assert (view.page, view.pages, view.highlighted) == (2, 2, True)
    rows = highlighted_rows(view.png)
    image_height = Image.open(io.BytesIO(view.png)).size[1]
    # The highlight covers the passage (lower on the page, after the filler), not the top.
    assert rows and min(rows) > image_height * 0.2 and max(rows) < image_height * 0.6

    # On a page without the passage nothing is highlighted, and the page is said to be so.
    other = render_pdf_page(path, 1, quote)
    assert not other.highlighted and not highlighted_rows(other.png)


def test_a_page_the_pdf_does_not_have_is_refused(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "commuting.pdf")
    try:
        render_pdf_page(path, 3, PASSAGE)
    except ValueError as exc:
        assert "has 2 pages" in str(exc)
    else:
        raise AssertionError("page 3 of a 2-page PDF rendered")


def test_locate_ignores_whitespace_and_case_and_falls_back_to_shared_runs() -> None:
    text = "Intro.\n\nThe hotel limit in\nOslo is 190 euros per night.\n\nOther text."
    [(start, end)] = locate(text, "the hotel limit in Oslo is 190 EUROS per night.")
    assert text[start:end] == "The hotel limit in\nOslo is 190 euros per night."
    # A ligature or a hyphenation breaks an exact match: the runs around it still locate it.
    spans = locate(text, "The hotel limit in Oslo is 190 euros per ni-ght.")
    assert spans and text[spans[0][0] :].startswith("The hotel")
    assert locate(text, "Parental leave lasts sixteen weeks in every country.") == []


def test_other_formats_show_the_passage_in_its_context() -> None:
    markdown = (
        b"# Travel\n\n## Hotels\n\nThe hotel limit in Oslo is 190 euros per night.\n\n"
        b"## Meals\n\nMeals are refunded up to 60 euros per day.\n"
    )
    view = passage_in_context("travel.md", markdown, "The hotel limit in Oslo is 190 euros")
    assert view.found and view.passage == "The hotel limit in Oslo is 190 euros"
    assert "Hotels" in view.before and "per night" in view.after and "Meals" in view.after

    gone = passage_in_context("travel.md", markdown, "Parental leave lasts sixteen weeks.")
    assert not gone.found and gone.passage == "Parental leave lasts sixteen weeks."
