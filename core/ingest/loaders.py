"""Turn uploaded bytes into text sections that remember where they came from.

A section is kept small enough to carry one page number or one heading path, so every chunk cut
from it can cite exactly where it was found. Whatever a user can get wrong (an unsupported type,
a damaged, encrypted or scanned file, binary data under a text name) becomes a `LoaderError`
whose message can be shown to them as it is.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import charset_normalizer
import docx
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString
from docx.table import Table
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError

# pypdf logs a warning for every broken object it repairs on the fly; real-world PDFs would
# flood the server log with lines nobody can act on. Failures still arrive as exceptions.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class LoadedDocument:
    kind: str
    sections: list[Section]
    pages: int | None
    title: str | None


class LoaderError(Exception):
    """Message is shown to end users as-is: plain words, no traceback, says what to do."""


@dataclass(frozen=True)
class ZipLimits:
    """How far a zip-based file (DOCX) may inflate, checked from its directory before any
    member is read: python-docx reads whole parts into memory, so a 1 MB file that inflates
    to 1 GiB would otherwise take gigabytes of RAM. Python's zipfile never inflates a member
    past the size its directory declares, so checking the declared sizes is enough."""

    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_ratio: float = 100.0
    max_members: int = 10_000
    # Small members may compress very well (runs of spaces in XML): only larger ones are judged
    # by their ratio.
    ratio_floor_bytes: int = 1024 * 1024


def _megabytes(size: float) -> str:
    return f"{size / 1024 / 1024:,.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:,.0f} KB"


SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".csv": "csv",
}

_NO_TEXT = "This file has no text in it. Check that you chose the right file."


def detect_kind(filename: str) -> str:
    """Go by extension: content sniffing would accept files the loaders then misread."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        shown = f"'{suffix}'" if suffix else "(no extension)"
        raise LoaderError(
            f"Unsupported file type {shown}. Loupe reads PDF, DOCX, TXT, Markdown, HTML and CSV."
        )
    return SUPPORTED_EXTENSIONS[suffix]


def load_bytes(
    filename: str, data: bytes, *, zip_limits: ZipLimits | None = None
) -> LoadedDocument:
    """Load an upload by its file name's type; raises LoaderError for anything unusable."""
    kind = detect_kind(filename)
    if not data:
        raise LoaderError("This file is empty. Choose a file that has some text in it.")
    if kind == "pdf":
        return _load_pdf(data)
    if kind == "docx":
        check_zip(data, zip_limits or ZipLimits())
        sections, title = _load_docx(data)
    else:
        sections, title = _TEXT_LOADERS[kind](decode_text(data))
    if not sections:
        raise LoaderError(_NO_TEXT)
    return LoadedDocument(kind=kind, sections=sections, pages=None, title=title)


# --- text decoding ---------------------------------------------------------------------------

_BOMS = (  # UTF-32 first: its little-endian BOM starts with the UTF-16 one
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

# Legacy encodings people still save text in. Detection is limited to these because on short
# text the exotic ones (EBCDIC, DOS and Mac code pages, Johab, ...) win by accident as often as
# not, and a wrong guess silently garbles every accented or Hangul character.
_LEGACY_ENCODINGS = [
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "iso8859_2", "iso8859_5", "iso8859_7", "koi8_r", "cp874",
    "cp949", "cp932", "euc_jp", "gb18030", "big5",
]  # fmt: skip
# Short texts often decode equally well in several code pages; break such ties toward the
# encodings Loupe's users most likely have (Western Windows, Korean, Japanese).
_TIE_PREFERENCE = ("cp1252", "cp949", "cp932")
# How close counts as a tie. The detector's "chaos" is noisy on Western text: Latin-1 French
# ("déjà vu", "crème brûlée") scores 0.085 as cp1252 and 0 as Baltic cp1257, whose "ą" and "č"
# then garble every accent; a real cp1257 text still wins when cp1252 reads it badly.
_NEAR_TIE = 0.1

_BINARY = (
    "This file contains binary data, not text. Check that it really is a text file "
    "(not, say, a renamed PDF, Word file or image) and upload it with its proper extension."
)


def decode_text(data: bytes) -> str:
    """Decode text of unknown encoding, as legacy Windows and Korean files need; "\\n" newlines."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, errors="replace")
            break
    else:
        if b"\x00" in data:
            utf16 = _utf16_without_bom(data)
            if utf16 is None:
                raise LoaderError(_BINARY)
            text = utf16
        else:
            text = _decode_8bit(data)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_8bit(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _detect_and_decode(data)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 saved without a byte-order mark (some Windows tools do): text with NUL bytes in
    every other position, which in real binary data they never line up so regularly. ASCII and
    Latin letters have a zero high byte; Hangul and CJK rarely have a zero byte at all, so a
    share of a fifth (spaces, digits, punctuation) is enough to tell."""
    if len(data) < 4 or len(data) % 2:
        return None
    half = len(data) // 2
    even_zeros, odd_zeros = data[0::2].count(0), data[1::2].count(0)
    for zeros, others, encoding in (
        (odd_zeros, even_zeros, "utf-16-le"),
        (even_zeros, odd_zeros, "utf-16-be"),
    ):
        if zeros < 0.2 * half or others > 0.05 * half:
            continue
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text if not ch.isprintable() and ch not in "\n\r\t\f")
        if controls <= 0.01 * len(text):
            return text
    return None


def _detect_and_decode(data: bytes) -> str:
    matches = list(charset_normalizer.from_bytes(data, cp_isolation=_LEGACY_ENCODINGS))
    if not matches:
        raise LoaderError(_BINARY)
    best = matches[0]
    tied = [
        m
        for m in matches
        if m.chaos <= best.chaos + _NEAR_TIE and m.coherence >= best.coherence - _NEAR_TIE
    ]
    for preferred in _TIE_PREFERENCE:
        if any(preferred in match.could_be_from_charset for match in tied):
            return data.decode(preferred)
    return str(best)


# --- PDF ---------------------------------------------------------------------------------------


def _load_pdf(data: bytes) -> LoadedDocument:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileNotDecryptedError("needs a password")
        texts = [page.extract_text() or "" for page in reader.pages]
        title = _pdf_title(reader)
    except FileNotDecryptedError as exc:
        raise LoaderError(
            "This PDF is password-protected. Remove the password (for example, print it to a "
            "new PDF) and upload it again."
        ) from exc
    # Damaged files make pypdf fail in many ways besides its own errors (KeyError, ValueError,
    # TypeError, ...): any failure here means the bytes are not a readable PDF.
    except Exception as exc:
        reason = str(exc)[:200] or type(exc).__name__
        raise LoaderError(
            f"This PDF is damaged or not a PDF: it could not be read ({reason}). Open it in a "
            "PDF viewer, save or export it as a new PDF, and upload that."
        ) from exc
    sections = [
        Section(text=text.strip(), page=number)
        for number, text in enumerate(texts, start=1)
        if text.strip()
    ]
    if not sections:
        raise LoaderError(
            "This PDF has no text that can be extracted: it looks scanned (pages stored as "
            "images). Loupe does not do OCR; run it through an OCR tool first, or upload a "
            "text version of the document."
        )
    return LoadedDocument(kind="pdf", sections=sections, pages=len(texts), title=title)


def _pdf_title(reader: PdfReader) -> str | None:
    """A missing or broken info dictionary is common and must not sink a readable PDF."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return None
    return (title.strip() or None) if isinstance(title, str) else None


# --- sections split at headings ---------------------------------------------------------------


class _Outline:
    """Collects sections split at headings, each labelled with its heading path ("A > B")."""

    def __init__(self, joiner: str) -> None:
        self.sections: list[Section] = []
        self._joiner = joiner
        self._path: list[tuple[int, str]] = []
        self._parts: list[str] = []
        self._has_body = False

    def heading(self, level: int, title: str, line: str | None = None) -> None:
        """Start a section; `line` is how the heading appears in the text (default: `title`)."""
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        if title:
            self._path.append((level, title))
        self._parts = [title if line is None else line]

    def add(self, text: str) -> None:
        self._parts.append(text)
        self._has_body = self._has_body or bool(text.strip())

    def finish(self) -> list[Section]:
        self._flush()
        return self.sections

    def _flush(self) -> None:
        # A heading with nothing under it (say, right before its first subheading) would only
        # make a chunk that answers nothing.
        if self._has_body:
            heading = " > ".join(title for _, title in self._path) or None
            text = self._joiner.join(self._parts).strip()
            self.sections.append(Section(text=text, heading=heading))
        self._parts, self._has_body = [], False


# --- DOCX --------------------------------------------------------------------------------------

_DOCX_HEADING = re.compile(r"heading ([1-9])", re.IGNORECASE)


def check_zip(data: bytes, limits: ZipLimits) -> None:
    """Refuse a zip that would inflate past the limits, from its directory alone."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LoaderError(_DAMAGED_DOCX) from exc
    if len(members) > limits.max_members:
        raise LoaderError(
            f"This Word file holds {len(members):,} parts, more than the {limits.max_members:,} "
            "Loupe opens: it is probably not a real .docx. Save it again from Word or LibreOffice."
        )
    total = 0
    for member in members:
        total += member.file_size
        if (
            member.file_size > limits.ratio_floor_bytes
            and member.file_size > limits.max_ratio * max(member.compress_size, 1)
        ):
            ratio = member.file_size / max(member.compress_size, 1)
            raise LoaderError(
                f"This Word file is refused: a part of it inflates {ratio:,.0f} times "
                f"(to {_megabytes(member.file_size)}), which real documents never do "
                f"(the limit is {limits.max_ratio:,.0f} times, LOUPE_MAX_ZIP_RATIO). It may be "
                "a zip bomb; if it is a genuine document, save it again from Word."
            )
    if total > limits.max_unpacked_bytes:
        raise LoaderError(
            f"This Word file unpacks to {_megabytes(total)}, more than the "
            f"{_megabytes(limits.max_unpacked_bytes)} Loupe reads (LOUPE_MAX_UNPACKED_MB). "
            "Split it, or remove large embedded images, and upload it again."
        )


_DAMAGED_DOCX = (
    "This Word file is damaged or not a .docx file. Open it in Word or LibreOffice, "
    "save it as .docx, and upload it again. (Old .doc files must be converted first.)"
)


def _load_docx(data: bytes) -> tuple[list[Section], str | None]:
    outline = _Outline(joiner="\n\n")
    title: str | None = None
    try:
        document = docx.Document(io.BytesIO(data))
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                outline.add(_docx_table_text(block))
                continue
            text = block.text.strip()
            level = _docx_heading_level(getattr(block.style, "name", None) or "")
            if not text:
                continue
            if level is None:
                outline.add(text)
            else:
                outline.heading(level, text)
                title = title or (text if level <= 1 else None)
        title = document.core_properties.title.strip() or title
    # A damaged package fails as BadZipFile, KeyError, ValueError, lxml errors, ...
    except Exception as exc:
        raise LoaderError(_DAMAGED_DOCX) from exc
    return outline.finish(), title


def _docx_heading_level(style_name: str) -> int | None:
    """Title sits above Heading 1, so a Title paragraph becomes the root of the heading path."""
    if style_name == "Title":
        return 0
    match = _DOCX_HEADING.fullmatch(style_name)
    return int(match.group(1)) if match else None


def _docx_table_text(table: Table) -> str:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # Merged cells come back once per grid column; show their text once.
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


# --- plain text and Markdown -------------------------------------------------------------------


def _load_txt(text: str) -> tuple[list[Section], str | None]:
    text = text.strip()
    return ([Section(text=text)] if text else []), None


_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def _load_markdown(text: str) -> tuple[list[Section], str | None]:
    outline = _Outline(joiner="\n")
    title: str | None = None
    fence: str | None = None
    for line in text.split("\n"):
        fence_match = _FENCE.fullmatch(line)
        if fence is not None:
            # A fence closes with the same character, at least as long, and nothing after it.
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
                and not fence_match.group(2).strip()
            ):
                fence = None
            outline.add(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
        heading = None if fence_match else _ATX_HEADING.fullmatch(line)
        if heading:
            level, name = len(heading.group(1)), (heading.group(2) or "").strip()
            outline.heading(level, name, line=line)
            title = title or (name if level == 1 else None)
        else:
            outline.add(line)
    return outline.finish(), title


# --- HTML --------------------------------------------------------------------------------------

_HTML_HIDDEN = {"script", "style", "noscript", "template", "head", "svg"}
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "caption", "details", "div", "dl", "fieldset",
    "figcaption", "figure", "footer", "form", "header", "hr", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "ul",
}  # fmt: skip
_HTML_LINES = {"br", "dd", "dt", "li", "tr"}  # start a new line, not a new paragraph
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)


def _load_html(text: str) -> tuple[list[Section], str | None]:
    soup = BeautifulSoup(text, "lxml")
    # Only the head's <title>: inline SVG icons in the body carry <title> elements of their own.
    head_title = soup.head.find("title") if soup.head else None
    title = _tidy(head_title.get_text()) if head_title else None
    if not title and (h1 := soup.find("h1")):
        title = _tidy(h1.get_text(" "))
    outline = _Outline(joiner="\n\n")
    parts: list[str] = []

    def flush() -> None:
        outline.add(_tidy("".join(parts)))
        parts.clear()

    # Walk with an explicit stack (deeply nested pages would overflow recursion); a plain str
    # on the stack is a break to emit once the element it closes is done.
    stack: list[PageElement | str] = list(reversed(soup.contents))
    while stack:
        item = stack.pop()
        if isinstance(item, Tag):
            if _html_invisible(item):
                continue
            if item.name in _HTML_HEADINGS:
                flush()
                outline.heading(_HTML_HEADINGS[item.name], _tidy(item.get_text(" ")))
                continue
            if item.name in _HTML_LINES:
                parts.append("\n")
            if item.name in ("td", "th") and item.find_previous_sibling(("td", "th")):
                parts.append(" | ")
            if item.name in _HTML_BLOCKS:
                parts.append("\n\n")
                stack.append("\n\n")
            stack.extend(reversed(item.contents))
        elif isinstance(item, PreformattedString):
            continue  # comments, doctype, CDATA, processing instructions
        elif isinstance(item, NavigableString):
            parts.append(item if item.find_parent("pre") else re.sub(r"\s+", " ", item))
        elif isinstance(item, str):
            parts.append(item)
    flush()
    return outline.finish(), title or None


def _html_invisible(tag: Tag) -> bool:
    return (
        tag.name in _HTML_HIDDEN
        or tag.has_attr("hidden")
        or bool(_DISPLAY_NONE.search(str(tag.get("style", ""))))
    )


def _tidy(text: str) -> str:
    """Collapse runs of spaces and blank lines, which HTML markup is full of."""
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- CSV ---------------------------------------------------------------------------------------

# Rows are grouped into sections of about this many characters: a group is small enough to be
# one chunk, and repeating the header in each keeps every chunk readable on its own.
_CSV_SECTION_CHARS = 800
_CSV_DELIMITERS = ",;\t|"


def _load_csv(text: str) -> tuple[list[Section], str | None]:
    records: list[tuple[int, list[str]]] = []  # (1-based line the record starts on, cells)
    line = 0
    try:
        reader = csv.reader(io.StringIO(text), delimiter=_csv_delimiter(text))
        for cells in reader:
            start, line = line + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
    except csv.Error as exc:
        raise LoaderError(
            f"This CSV file could not be read ({exc}). Check that it is a plain CSV export "
            "from your spreadsheet, and upload it again."
        ) from exc
    if not records:
        return [], None
    if len(records) == 1:
        raise LoaderError(
            "This CSV file has a header row but no data rows. Add rows and upload it again."
        )
    names = [name.strip() or f"column {i}" for i, name in enumerate(records[0][1], start=1)]
    header = "Columns: " + ", ".join(names)
    rows = [(start, _csv_row_text(names, cells)) for start, cells in records[1:]]

    sections: list[Section] = []
    group: list[tuple[int, str]] = []
    size = len(header)
    for start, row in rows:
        if group and size + 1 + len(row) > _CSV_SECTION_CHARS:
            sections.append(_csv_section(header, group))
            group, size = [], len(header)
        group.append((start, row))
        size += 1 + len(row)
    sections.append(_csv_section(header, group))
    return sections, None


def _csv_delimiter(text: str) -> str:
    """The Sniffer gives up on ragged rows and blank lines, which exports often have; the header
    line then still tells the delimiter (semicolons in European Excel exports, say)."""
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        header = text.lstrip("\n").split("\n", 1)[0]
        return max(_CSV_DELIMITERS, key=header.count)  # the first, a comma, when none appears


def _csv_row_text(names: list[str], cells: list[str]) -> str:
    """Name every value, so a row still makes sense when retrieved without its neighbours."""
    pairs = (
        (names[i] if i < len(names) else f"column {i + 1}", value.strip())
        for i, value in enumerate(cells)
    )
    return "; ".join(f"{name}: {value}" for name, value in pairs if value)


def _csv_section(header: str, group: list[tuple[int, str]]) -> Section:
    first, last = group[0][0], group[-1][0]
    span = f"row {first}" if first == last else f"rows {first}–{last}"
    return Section(text="\n".join([header, *(row for _, row in group)]), heading=span)


_TEXT_LOADERS: dict[str, Callable[[str], tuple[list[Section], str | None]]] = {
    "txt": _load_txt,
    "md": _load_markdown,
    "html": _load_html,
    "csv": _load_csv,
}
