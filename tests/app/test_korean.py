"""The app in Korean: every page, driven through AppTest with the language picked, shows its
own text in Korean (nothing in English but the data: document names, questions, answers),
and the sidebar switch changes the language at once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from streamlit.testing.v1 import AppTest

import i18n
from core.service import Loupe
from tests.app.support import HANDBOOK, LEAVE_QUESTION, TRAVEL, make_app, on_page, run

HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Words that stay as they are in the Korean UI: the product, formats, units, and code.
KEPT = {
    "Loupe", "PDF", "Word", "Markdown", "HTML", "CSV", "JSON", "Lines", "JSONL", "KB", "USD",
    "BM25", "SSO", "python", "core", "eval", "db", "insights", "py", "streamlit", "secrets", "toml",
}  # fmt: skip
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
LINK_TARGET = re.compile(r"\]\([^)]*\)")  # a Markdown link's address is not text
MARKUP = re.compile(r":\w+-badge\[|:material/\w+:")  # Streamlit's badge and icon markup
# The text fields of element protos that the app writes (a widget's value is the user's).
TEXT_FIELDS = ("label", "body", "placeholder", "help", "text", "caption")


def shown_text(at: AppTest) -> Iterator[str]:
    """Every piece of text the app put on the page (main area and sidebar)."""
    for root in (at.main, at.sidebar):
        for node in root:
            proto: Any = getattr(node, "proto", None)
            for field in TEXT_FIELDS:
                value = getattr(proto, field, None) if proto is not None else None
                if isinstance(value, str) and value:
                    yield value
            for option in getattr(proto, "options", None) or ():
                if isinstance(option, str):
                    yield option


def english_left(at: AppTest, data: set[str]) -> list[str]:
    """Text with English words that are neither kept words nor part of the data shown."""
    left = []
    for text in shown_text(at):
        # Code spans hold identifiers (a calibration's version), not prose.
        rest = MARKUP.sub("", LINK_TARGET.sub("]", re.sub(r"`[^`]*`", "", text)))
        for item in sorted(data, key=len, reverse=True):
            rest = rest.replace(item, "")
        words = [w for w in LATIN_WORD.findall(rest) if w not in KEPT]
        if words:
            left.append(text)
    return left


def korean(**kwargs: Any) -> AppTest:
    at = make_app(**kwargs)
    at.session_state[i18n.CHOSEN] = "ko"
    return at


# The data the pages show: file names, their headings and passages, the question and answer.
DATA = {
    HANDBOOK.name, TRAVEL.name, LEAVE_QUESTION, "policies", "local",
    HANDBOOK.data.decode(), TRAVEL.data.decode(),
    "New employees receive 25 days of paid annual leave.",
    "Annual leave", "Handbook", "Hotels", "Travel", "Remote work", "extractive",
    "handbook", "hotels", "travel", "annual leave", "remote work",
    "Employees may work remotely up to three days per week.",
    "The hotel limit in Oslo is 190 euros per night.",
}  # fmt: skip


def test_every_page_renders_in_korean_with_nothing_left_in_english(documents: Loupe) -> None:
    at = run(korean())
    assert [t.value for t in at.title] == ["문서에 질문하기"]
    assert english_left(at, DATA) == [], english_left(at, DATA)

    at = run(at.chat_input[0].set_value(LEAVE_QUESTION))
    shown = list(shown_text(at))
    # The confidence badge: "정답일 가능성 높음 (83%)" and the like.
    assert any(re.search(r"(정답|오답)일 .*\(\d+%\)", text) for text in shown), shown
    assert any("관련도" in text for text in shown)  # each passage's relevance
    assert english_left(at, DATA) == [], english_left(at, DATA)

    for page, title in (
        ("pages/documents.py", "문서"),
        ("pages/review.py", "답변 검토"),
        ("pages/insights.py", "인사이트"),
    ):
        at = on_page(at, page)
        assert [t.value for t in at.title] == [title]
        assert english_left(at, DATA) == [], page
        assert all(HANGUL.search(h.value) for h in at.subheader if h.value not in DATA)


def test_the_source_page_renders_in_korean(documents: Loupe) -> None:
    at = run(korean())
    at = run(at.chat_input[0].set_value(LEAVE_QUESTION))
    answer = documents.conversation(at.session_state["conversation_id"])[0]
    at.query_params["answer"] = answer.answer_id or ""
    at.query_params["n"] = "1"
    at = on_page(at, "pages/source.py")
    assert [t.value for t in at.title] == ["출처"]
    assert english_left(at, DATA) == [], english_left(at, DATA)


def test_the_sign_in_page_renders_in_korean() -> None:
    at = run(korean(signed_in=None, secrets=users_with_one()))
    assert [t.value for t in at.title] == ["Loupe 로그인"]
    assert [b.label for b in at.button] == ["로그인"]
    assert english_left(at, set()) == []


def users_with_one() -> dict[str, Any]:
    from tests.app.support import users_secrets

    return users_secrets()


def cookies_set(at: AppTest) -> list[dict[str, Any]]:
    """The cookies this run asked the browser to store."""
    return [
        json.loads(node.proto.json)
        for node in at.main
        if getattr(getattr(node, "proto", None), "component_name", "") == "loupe_sign_in_cookie"
    ]


def test_the_sidebar_switch_changes_the_language_at_once_and_is_remembered() -> None:
    at = run(make_app())
    assert [t.value for t in at.title] == ["Ask your documents"]
    assert cookies_set(at) == []
    at = run(at.button_group(key=i18n.SWITCH).set_value("ko"))
    assert [t.value for t in at.title] == ["문서에 질문하기"]
    assert at.session_state[i18n.CHOSEN] == "ko"
    assert cookies_set(at) == [{"name": i18n.COOKIE, "value": "ko", "max_age": i18n.COOKIE_MAX_AGE}]
    at = run(at)  # asked once: the next run does not set it again
    assert cookies_set(at) == []
    at = run(at.button_group(key=i18n.SWITCH).set_value("en"))
    assert [t.value for t in at.title] == ["Ask your documents"]
