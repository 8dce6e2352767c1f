"""Loaders on real files made here with the real libraries (fpdf2, python-docx)."""

from __future__ import annotations

import io
import logging
import random
import zipfile

import docx
import pytest
from fpdf import FPDF

from core.ingest.loaders import (
    SUPPORTED_EXTENSIONS,
    LoaderError,
    decode_text,
    detect_kind,
    load_bytes,
)

KOREAN = "한국어 문서입니다. 이 문서는 검색 시스템을 설명합니다. "
FRENCH = "Le café est très bon. Ça coûte 3 €."


def make_pdf(pages: list[str], title: str | None = None, **encryption: str) -> bytes:
    """One page per entry; an empty entry makes a page with a drawing and no text."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    if encryption:
        pdf.set_encryption(**encryption)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


def make_docx(build) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def load_error(filename: str, data: bytes) -> str:
    with pytest.raises(LoaderError) as info:
        load_bytes(filename, data)
    return str(info.value)


# --- kinds and empty files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "kind"),
    [("a.pdf", "pdf"), ("Report.PDF", "pdf"), ("b.docx", "docx"), ("c.txt", "txt"),
     ("d.md", "md"), ("e.markdown", "md"), ("f.html", "html"), ("g.htm", "html"),
     ("h.csv", "csv"), ("dir/notes.v2.txt", "txt")],
)  # fmt: skip
def test_detect_kind_by_extension(filename: str, kind: str) -> None:
    assert detect_kind(filename) == kind


def test_every_supported_kind_has_a_loader() -> None:
    for extension in SUPPORTED_EXTENSIONS:
        with pytest.raises(LoaderError, match="empty"):
            load_bytes(f"x{extension}", b"")


@pytest.mark.parametrize(("filename", "shown"), [("x.exe", "'.exe'"), ("old.DOC", "'.doc'")])
def test_unsupported_type_names_the_extension_and_what_works(filename: str, shown: str) -> None:
    message = load_error(filename, b"data")
    assert message == (
        f"Unsupported file type {shown}. Loupe reads PDF, DOCX, TXT, Markdown, HTML and CSV."
    )


def test_file_without_extension_is_refused() -> None:
    with pytest.raises(LoaderError, match="no extension"):
        detect_kind("README")


@pytest.mark.parametrize("filename", ["a.txt", "a.md", "a.html", "a.csv"])
def test_whitespace_only_file_has_no_text(filename: str) -> None:
    assert "no text" in load_error(filename, b" \r\n\t\n  ")


# --- text decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Plain ASCII and 한국어 in UTF-8".encode(), "Plain ASCII and 한국어 in UTF-8"),
        ("\ufeffwith a BOM, 한글".encode(), "with a BOM, 한글"),
        ("UTF-16 with BOM, 한글".encode("utf-16"), "UTF-16 with BOM, 한글"),
        ("café".encode("latin-1"), "café"),
        (FRENCH.encode("cp1252"), FRENCH),
        ((KOREAN * 3).encode("cp949"), KOREAN * 3),
        ((KOREAN * 3).encode("euc-kr"), KOREAN * 3),
        (("日本語の文書です。" * 3).encode("shift_jis"), "日本語の文書です。" * 3),
        (b"line one\r\nline two\rline three", "line one\nline two\nline three"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "latin1", "cp1252", "cp949", "euc-kr", "shift-jis",
         "newlines"],
)  # fmt: skip
def test_decode_text(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        bytes(b for b in random.Random(7).randbytes(4096) if b),  # no NULs to give it away
    ],
    ids=["png-header", "random-bytes"],
)
def test_binary_named_txt_is_refused(data: bytes) -> None:
    message = load_error("photo.txt", data)
    assert "binary data, not text" in message


def test_txt_is_one_section_with_paragraphs_kept() -> None:
    text = "First paragraph\nstill first.\r\n\r\nSecond paragraph.\n\n\n"
    document = load_bytes("notes.txt", text.encode("utf-8"))
    assert document.kind == "txt"
    assert [s.text for s in document.sections] == [
        "First paragraph\nstill first.\n\nSecond paragraph."
    ]
    assert document.sections[0].page is None and document.pages is None


def test_cp949_korean_txt_loads() -> None:
    document = load_bytes("한글.txt", (KOREAN * 4).encode("cp949"))
    assert document.sections[0].text == (KOREAN * 4).strip()


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_sections_keep_page_numbers_and_title() -> None:
    data = make_pdf(
        ["Alpha page about apples.", "Beta page about bananas.", "", "Delta page about dates."],
        title="Fruit Guide",
    )
    document = load_bytes("fruit.pdf", data)
    assert document.kind == "pdf"
    assert document.pages == 4
    assert document.title == "Fruit Guide"
    # The drawing-only page 3 gives no section, yet later pages keep their real numbers.
    assert [(s.page, s.text) for s in document.sections] == [
        (1, "Alpha page about apples."),
        (2, "Beta page about bananas."),
        (4, "Delta page about dates."),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4 garbage",
        make_pdf(["Alpha " * 200, "Beta " * 200])[:900],
        b"This is plain text wearing a .pdf name.",
    ],
    ids=["garbage", "truncated", "not-a-pdf"],
)
def test_damaged_pdf_is_refused_with_advice(data: bytes) -> None:
    message = load_error("broken.pdf", data)
    assert message.startswith("This PDF is damaged or not a PDF: ")
    assert "save or export it as a new PDF" in message
    assert "Traceback" not in message


def test_pdf_without_text_is_called_scanned() -> None:
    message = load_error("scan.pdf", make_pdf(["", ""]))
    assert "looks scanned" in message and "OCR" in message


def test_password_protected_pdf_is_refused() -> None:
    data = make_pdf(["Secret plans."], owner_password="owner", user_password="user")
    assert "password-protected" in load_error("secret.pdf", data)


def test_pdf_with_only_an_owner_password_opens() -> None:
    data = make_pdf(["Restricted but readable."], owner_password="owner")
    assert load_bytes("restricted.pdf", data).sections[0].text == "Restricted but readable."


def test_repaired_pdf_loads_without_log_noise(caplog: pytest.LogCaptureFixture) -> None:
    # A comment after the header shifts every byte offset, so pypdf must rebuild the xref table.
    original = make_pdf(["Shifted but fine."])
    header_end = original.index(b"\n") + 1
    shifted = original[:header_end] + b"%" + b"x" * 64 + b"\n" + original[header_end:]
    with caplog.at_level(logging.DEBUG):
        document = load_bytes("shifted.pdf", shifted)
    assert document.sections[0].text == "Shifted but fine."
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]


# --- DOCX --------------------------------------------------------------------------------------


def build_manual(document) -> None:
    document.add_paragraph("Loose text before any heading.")
    document.add_heading("User Manual", level=0)
    document.add_paragraph("What this manual covers.")
    document.add_paragraph("")
    document.add_paragraph("Who should read it.")
    document.add_heading("Install", level=1)  # nothing under it before the subheading
    document.add_heading("Linux", level=2)
    document.add_paragraph("Run the installer.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Name", "Value"), ("port", "8501")], strict=False):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    merged = table.cell(2, 0).merge(table.cell(2, 1))
    merged.text = "Restart after changing the port."
    document.add_heading("설치 안내", level=1)
    document.add_paragraph(KOREAN)


def test_docx_sections_follow_headings_and_include_tables() -> None:
    document = load_bytes("manual.docx", make_docx(build_manual))
    assert document.kind == "docx" and document.pages is None
    assert document.title == "User Manual"
    assert [s.heading for s in document.sections] == [
        None,
        "User Manual",
        "User Manual > Install > Linux",
        "User Manual > 설치 안내",
    ]
    assert document.sections[1].text == (
        "User Manual\n\nWhat this manual covers.\n\nWho should read it."
    )
    # Table rows are "cell | cell" lines; a merged cell shows its text once.
    assert document.sections[2].text == (
        "Linux\n\nRun the installer.\n\nName | Value\nport | 8501\nRestart after changing the port."
    )
    assert KOREAN.strip() in document.sections[3].text


def test_docx_core_title_wins() -> None:
    def build(document) -> None:
        document.core_properties.title = "Official Title"
        build_manual(document)

    assert load_bytes("manual.docx", make_docx(build)).title == "Official Title"


def zip_without_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a word file")
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 not really a zip", b"plain text", zip_without_document()],
    ids=["bad-zip", "not-zip", "zip-without-document"],
)
def test_damaged_docx_is_refused(data: bytes) -> None:
    assert "damaged or not a .docx file" in load_error("broken.docx", data)


# --- Markdown ----------------------------------------------------------------------------------

MARKDOWN = """\
Preface before any heading.

# Guide
Intro text.
## Install
### Linux
Run it:
```bash
# a comment, not a heading
```
#hashtag is not a heading either
## Usage ##
Use it.
## 설치 안내
한국어 설명입니다.
"""


def test_markdown_sections_follow_atx_headings() -> None:
    document = load_bytes("guide.md", MARKDOWN.encode())
    assert document.title == "Guide"
    assert [s.heading for s in document.sections] == [
        None,
        "Guide",
        "Guide > Install > Linux",
        "Guide > Usage",
        "Guide > 설치 안내",
    ]
    linux = document.sections[2].text
    assert "# a comment, not a heading" in linux
    assert "#hashtag is not a heading either" in linux
    assert document.sections[4].text == "## 설치 안내\n한국어 설명입니다."


def test_markdown_fence_closes_only_on_its_own_kind() -> None:
    text = "# A\n~~~\n```\n# inside\n~~~\n# B\nbody b\n"
    sections = load_bytes("x.md", text.encode()).sections
    assert [s.heading for s in sections] == ["A", "B"]
    assert "# inside" in sections[0].text


# --- HTML --------------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>  Help   Centre </title>
<style>p { color: red }</style><script>var secret = "tracking";</script></head>
<body>
<svg><title>menu icon</title></svg>
<noscript>Please enable JavaScript</noscript>
<nav>Home</nav>
<h1>Getting   started</h1>
<p>Loupe answers
   questions about <b>your</b> documents.</p>
<div hidden>hidden banner</div><p style="display: none">invisible note</p>
<h2>Settings</h2>
<table><tr><th>Name</th><th>Default</th></tr><tr><td>port</td><td>8501</td></tr></table>
<svg><text>chart label</text></svg><template><p>template row</p></template>
<!-- a comment -->
<h2>한국어 지원</h2>
<ul><li>첫째</li><li>둘째</li></ul>
<script>alert("hi")</script>
</body></html>"""


def test_html_keeps_visible_text_in_heading_sections() -> None:
    document = load_bytes("help.html", HTML.encode())
    assert document.kind == "html"
    assert document.title == "Help Centre"
    assert [s.heading for s in document.sections] == [
        None,
        "Getting started",
        "Getting started > Settings",
        "Getting started > 한국어 지원",
    ]
    assert document.sections[1].text == (
        "Getting started\n\nLoupe answers questions about your documents."
    )
    assert document.sections[2].text == "Settings\n\nName | Default\nport | 8501"
    assert document.sections[3].text == "한국어 지원\n\n첫째\n둘째"
    everything = "\n".join(s.text for s in document.sections)
    hidden_text = [
        "tracking", "color", "JavaScript", "hidden banner", "invisible note", "chart label",
        "menu icon", "template row", "a comment", "alert", "Help Centre",
    ]  # fmt: skip
    for hidden in hidden_text:
        assert hidden not in everything


def test_html_title_falls_back_to_first_h1() -> None:
    html = "<body><svg><title>menu icon</title></svg><h1>Release notes</h1><p>New.</p></body>"
    assert load_bytes("notes.htm", html.encode()).title == "Release notes"


def test_euc_kr_html_is_decoded() -> None:
    html = f"<html><body><h1>안내</h1><p>{KOREAN * 3}</p></body></html>"
    document = load_bytes("ko.html", html.encode("euc-kr"))
    assert document.title == "안내"
    assert KOREAN.strip() in document.sections[0].text


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_sections_repeat_the_header_and_name_their_rows() -> None:
    lines = ["name,city,note"] + [f"person {i},city {i},{'x' * 40}" for i in range(2, 62)]
    document = load_bytes("people.csv", "\n".join(lines).encode())
    sections = document.sections
    assert len(sections) > 1
    for section in sections:
        assert section.text.startswith("Columns: name, city, note\n")
        assert len(section.text) <= 800
    assert sections[0].text.split("\n")[1] == f"name: person 2; city: city 2; note: {'x' * 40}"
    # Headings are spreadsheet row numbers (header = row 1), contiguous over all 60 data rows.
    spans = [s.heading.removeprefix("rows ").split("–") for s in sections]
    assert spans[0][0] == "2" and spans[-1][1] == "61"
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert int(start) == int(end) + 1
    rows_seen = sum(len(s.text.split("\n")) - 1 for s in sections)
    assert rows_seen == 60


def test_latin1_semicolon_csv_with_ragged_rows() -> None:
    text = "name;city;note\nJosé;São Paulo;x\n\nRené;Montréal\nZoë;Zürich;y;extra\n"
    sections = load_bytes("cities.csv", text.encode("latin-1")).sections
    assert sections == [sections[0]]
    assert sections[0].heading == "rows 2–5"  # the blank line 3 still counts
    assert sections[0].text.split("\n") == [
        "Columns: name, city, note",
        "name: José; city: São Paulo; note: x",
        "name: René; city: Montréal",
        "name: Zoë; city: Zürich; note: y; column 4: extra",
    ]


def test_cp949_korean_csv() -> None:
    text = "이름,도시\n김민수,서울\n이영희,부산\n박철수,대구\n"
    section = load_bytes("명단.csv", text.encode("cp949")).sections[0]
    assert section.text.split("\n")[:2] == ["Columns: 이름, 도시", "이름: 김민수; 도시: 서울"]
    assert section.heading == "rows 2–4"


def test_csv_with_only_a_header_is_refused() -> None:
    assert "no data rows" in load_error("empty.csv", b"name,city\n")


# --- issue 9: hostile archives and encodings that were misread ---------------------------------


def inflating_docx(inflated_bytes: int) -> bytes:
    """A real DOCX whose document part is padded with spaces (they compress ~1000:1), so a
    small file declares a huge inflated size, as a zip bomb does."""
    real = make_docx(lambda document: document.add_paragraph("Tiny."))
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(real)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                with bomb.open(info.filename, "w", force_zip64=True) as part:
                    closing = data.rindex(b"</w:body>")
                    part.write(data[:closing])
                    block = b" " * (1024 * 1024)
                    for _ in range(inflated_bytes // len(block)):
                        part.write(block)
                    part.write(data[closing:])
            else:
                bomb.writestr(info, data)
    return out.getvalue()


def test_docx_that_inflates_far_beyond_its_size_is_refused_before_reading() -> None:
    bomb = inflating_docx(64 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    message = load_error("bomb.docx", bomb)
    assert "inflates" in message and "LOUPE_MAX_ZIP_RATIO" in message


def test_docx_over_the_unpacked_limit_is_refused() -> None:
    from core.ingest.loaders import ZipLimits

    bomb = inflating_docx(8 * 1024 * 1024)
    limits = ZipLimits(max_unpacked_bytes=4 * 1024 * 1024, max_ratio=1e9)
    with pytest.raises(LoaderError, match="LOUPE_MAX_UNPACKED_MB"):
        load_bytes("big.docx", bomb, zip_limits=limits)
    # Within the limits the same file loads.
    roomy = ZipLimits(max_unpacked_bytes=64 * 1024 * 1024, max_ratio=1e9)
    assert load_bytes("big.docx", bomb, zip_limits=roomy).sections[0].text == "Tiny."


@pytest.mark.parametrize(
    "text",
    [
        "Café déjà vu.\nThe menu lists crème brûlée and a café au lait.",
        "Résumé of the naïve coöperation at the Café: déjà vu all over again.\n",
        "Menu: Café déjà vu, crème brûlée, piña colada, jalapeño, smörgåsbord.",
    ],
)
def test_latin1_text_is_not_read_as_baltic(text: str) -> None:
    # Before: cp1257, "Café déją vu", "crčme brūlée".
    assert decode_text(text.encode("latin-1")) == text


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [FRENCH + "\nSecond line.", KOREAN * 3])
def test_utf16_without_bom_is_decoded(text: str, encoding: str) -> None:
    # Before: refused as binary because of its NUL bytes.
    assert decode_text(text.encode(encoding)) == text
    assert load_bytes("notes.txt", text.encode(encoding)).sections[0].text == text.strip()
