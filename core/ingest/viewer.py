"""Show a cited passage where it stands in its original: a PDF page rendered as an image with
the passage highlighted, or, for the other formats, the passage with the text around it.

The passage is the chunk text pypdf extracted at ingestion; PDFium (pypdfium2) renders the page
and reports where each character sits. The two extractors differ in whitespace and line breaks,
so the passage is located on the page by comparing both texts with whitespace removed, and,
when an exact match fails (ligatures, hyphenation), by the longest runs the two have in common.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from core.ingest.loaders import load_bytes

# Render at 1.5x the PDF's 72 dpi: readable on screen without megabyte images.
RENDER_SCALE = 1.5
HIGHLIGHT = (255, 213, 0, 110)  # translucent yellow, like a marker pen
HIGHLIGHT_EDGE = (214, 160, 0, 255)
# Runs shorter than this are coincidences ("the ", "and "), not the passage.
_MIN_RUN = 12
# Characters of surrounding text shown on each side of a passage in a non-PDF document.
CONTEXT_CHARS = 1200


@dataclass(frozen=True)
class PageView:
    """A rendered PDF page: PNG bytes, its number (1-based) and whether the passage was found."""

    png: bytes
    page: int
    pages: int
    highlighted: bool


@dataclass(frozen=True)
class TextView:
    """A passage in its context: the text before it, the passage as the document has it, and
    the text after it. `found` is False when the passage is no longer in the document."""

    before: str
    passage: str
    after: str
    found: bool


def _compact(text: str) -> tuple[str, list[int]]:
    """The text lower-cased without whitespace, and each kept character's index in `text`."""
    kept = [(ch.lower(), i) for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(ch for ch, _ in kept), [i for _, i in kept]


def locate(text: str, passage: str) -> list[tuple[int, int]]:
    """Spans [start, end) of `text` that make up `passage`, ignoring whitespace and case.

    One span when the passage occurs as it is; otherwise the runs of at least `_MIN_RUN`
    characters it shares with the text (in order), or nothing when it is not there.
    """
    hay, positions = _compact(text)
    needle, _ = _compact(passage)
    if not hay or not needle:
        return []
    start = hay.find(needle)
    if start >= 0:
        return [(positions[start], positions[start + len(needle) - 1] + 1)]
    matcher = difflib.SequenceMatcher(None, hay, needle, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= _MIN_RUN]
    # Matched runs must cover a fair part of the passage, or the page merely shares phrases.
    if sum(b.size for b in blocks) < min(len(needle), 3 * _MIN_RUN) // 2:
        return []
    return [(positions[b.a], positions[b.a + b.size - 1] + 1) for b in blocks]


def render_pdf_page(
    path: Path, page: int, passage: str, *, scale: float = RENDER_SCALE
) -> PageView:
    """Page `page` (1-based) of the PDF at `path`, with `passage` highlighted where found.

    Raises ValueError for a page the PDF does not have."""
    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"The PDF has {len(pdf)} pages; there is no page {page}.")
        pdf_page = pdf[page - 1]
        textpage = pdf_page.get_textpage()
        text = textpage.get_text_range(0, textpage.count_chars())
        boxes = [
            textpage.get_charbox(i, loose=True)
            for start, end in locate(text, passage)
            for i in range(start, min(end, textpage.count_chars()))
            if not text[i].isspace()
        ]
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        _, page_height = pdf_page.get_size()
        left, bottom, _, _ = pdf_page.get_bbox()
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for x0, y0, x1, y1 in _line_boxes(boxes):
            # PDF space starts bottom-left in points; the image top-left in pixels.
            rect = (
                (x0 - left) * scale - 2,
                (page_height - (y1 - bottom)) * scale - 2,
                (x1 - left) * scale + 2,
                (page_height - (y0 - bottom)) * scale + 2,
            )
            draw.rectangle(rect, fill=HIGHLIGHT, outline=HIGHLIGHT_EDGE)
        out = io.BytesIO()
        Image.alpha_composite(image, overlay).convert("RGB").save(out, format="PNG")
        return PageView(out.getvalue(), page, len(pdf), bool(boxes))
    finally:
        pdf.close()


def _line_boxes(
    boxes: list[tuple[float, float, float, float]],
) -> list[tuple[float, float, float, float]]:
    """Merge character boxes into one box per line (characters in reading order: a new line
    starts where a character no longer overlaps the current line vertically)."""
    lines: list[list[float]] = []
    for x0, y0, x1, y1 in boxes:
        if lines:
            line = lines[-1]
            overlap = min(line[3], y1) - max(line[1], y0)
            if overlap > 0.4 * min(line[3] - line[1], y1 - y0) and x0 >= line[0] - 1:
                line[0], line[1] = min(line[0], x0), min(line[1], y0)
                line[2], line[3] = max(line[2], x1), max(line[3], y1)
                continue
        lines.append([x0, y0, x1, y1])
    return [(a, b, c, d) for a, b, c, d in lines]


def passage_in_context(
    name: str, data: bytes, passage: str, *, context: int = CONTEXT_CHARS
) -> TextView:
    """The passage inside the document's text (as Loupe reads it), with `context` characters
    on each side, cut at line breaks where possible."""
    document = load_bytes(name, data)
    text = "\n\n".join(section.text for section in document.sections)
    spans = locate(text, passage)
    if not spans:
        return TextView("", passage, "", found=False)
    start, end = spans[0][0], spans[-1][1]
    before_start = max(0, start - context)
    after_end = min(len(text), end + context)
    if before_start > 0 and (cut := text.find("\n", before_start, start)) >= 0:
        before_start = cut + 1
    if after_end < len(text) and (cut := text.rfind("\n", end, after_end)) >= 0:
        after_end = cut
    before = ("…\n" if before_start > 0 else "") + text[before_start:start]
    after = text[end:after_end] + ("\n…" if after_end < len(text) else "")
    return TextView(before, text[start:end], after, found=True)
