"""The whole loop in a real browser: an admin loads the sample documents and uploads one of
their own, asks about it, gets a cited answer, gives it a thumbs-down with a correction, and
finds it in the expert review queue.

It runs once per UI language, with the browser set to that language (English, then Korean:
the app follows the browser's locale), and with a document and question in that language.
It drives `streamlit run app.py` in Debian's headless Chromium (see conftest.py) and saves a
screenshot of every page under test-output/e2e/, NAME-LANGUAGE.png: look at them after a UI
change. What the test looks for on screen comes from the app's own catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

import i18n
from tests.e2e.support import (
    FIRST_VIEW_TIMEOUT_MS,
    OUTPUT_DIR,
    AppServer,
    open_page,
    save_screenshot,
    settle,
    toast,
)

BROWSER_LOCALES = {"en": "en-US", "ko": "ko-KR"}


@dataclass(frozen=True)
class Case:
    """A document of the user's own, a question about it, a comment and a correction."""

    document_name: str
    document: str
    question: str
    quoted: str  # a phrase the (extractive) answer quotes from the document
    comment: str
    correction: str


CASES = {
    "en": Case(
        document_name="commuting-guide.md",
        document="""# Commuting guide

## Bicycle parking

The secure bicycle room is on the basement level of the north garage. Reception hands out the
key card for it once you have signed the bike policy.

## Car parking

Parking permits cost 40 euros per month and are issued by the facilities team.
""",
        question="Where is the secure bicycle room?",
        quoted="basement level of the north garage",
        comment="Say how to get the key card.",
        correction=(
            "The secure bicycle room is on the basement level of the north garage; reception "
            "hands out the key card once you have signed the bike policy [1]."
        ),
    ),
    "ko": Case(
        document_name="commuting-ko.md",
        document="""# 통근 안내

## 자전거 주차

보안 자전거 보관실은 북쪽 주차장 지하층에 있습니다. 자전거 이용 규정에 서명하면 안내 데스크에서
보관실 출입 카드를 발급합니다.

## 자동차 주차

주차 허가증은 월 40유로이며 시설관리팀에서 발급합니다.
""",
        question="보안 자전거 보관실은 어디에 있나요?",
        quoted="북쪽 주차장 지하층",
        comment="출입 카드 받는 방법도 알려 주세요.",
        correction=(
            "보안 자전거 보관실은 북쪽 주차장 지하층에 있으며, 자전거 이용 규정에 서명하면 "
            "안내 데스크에서 출입 카드를 발급합니다 [1]."
        ),
    ),
}


@pytest.fixture(params=list(CASES))
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def browser_locale(language: str) -> str:
    """The browser speaks the language under test (conftest's `browser_page` uses it)."""
    return BROWSER_LOCALES[language]


class Say:
    """The app's text in one language, from its catalogue."""

    def __init__(self, language: str) -> None:
        self.catalogue = i18n.translations(language)

    def __call__(self, message: str, **values: object) -> str:
        return self.catalogue.gettext(message).format(**values)

    def plural(self, singular: str, plural: str, n: int) -> str:
        return self.catalogue.ngettext(singular, plural, n).format(n=n)

    def pattern(self, message: str) -> re.Pattern[str]:
        """The message with any text in place of each placeholder."""
        parts = re.split(r"\{\w+\}", self.catalogue.gettext(message))
        return re.compile(r"\S+".join(re.escape(part) for part in parts))


def upload(page: Page, path: Path, say: Say) -> None:
    """Choose a file through the uploader's own file chooser and index it."""
    uploader = page.get_by_test_id("stFileUploader")
    with page.expect_file_chooser() as chooser:
        uploader.get_by_role("button", name="Upload", exact=True).click()
    chooser.value.set_files(str(path))
    expect(uploader).to_contain_text(path.name)
    page.get_by_role("button", name=say.plural("Index {n} file", "Index {n} files", 1)).click()


def ask(page: Page, question: str) -> Locator:
    """Send a question from the chat input; returns the answer's chat message once its
    first cited source is on screen."""
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled()
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").filter(
        has=page.get_by_test_id("stChatMessageAvatarAssistant")
    )
    expect(expander(answer, "[1] ")).to_be_visible()
    settle(page)
    return answer


def expander(scope: Locator, label: str) -> Locator:
    """The expander in `scope` whose label (not its content) contains `label`."""
    return scope.get_by_test_id("stExpander").filter(
        has=scope.page.locator("summary", has_text=label)
    )


def test_upload_ask_dislike_correct_and_review(
    app_server: AppServer, browser_page: Page, tmp_path: Path, language: str
) -> None:
    page, case, say = browser_page, CASES[language], Say(language)
    for old in OUTPUT_DIR.glob(f"*-{language}.png"):
        old.unlink()

    # First visit: an empty data directory, single-user local mode (admin), the model loads,
    # and the page speaks the browser's language.
    page.goto(app_server.url)
    expect(page.get_by_role("heading", name=say("Ask your documents"))).to_be_visible(
        timeout=FIRST_VIEW_TIMEOUT_MS
    )
    expect(page.get_by_role("heading", name=say("No documents yet"))).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(
        say(
            "Single-user local mode: no users are configured, so you are the admin. "
            "Add users to `.streamlit/secrets.toml` to require sign-in."
        ).split("`")[0]
    )

    # The first-run guidance: one click loads the shipped sample documents.
    page.get_by_role("button", name=say("Load the sample documents")).click()
    expect(page.get_by_text(say("Try one of these:"))).to_be_visible()
    settle(page)

    # Documents: upload a Markdown file and see it indexed beside the samples.
    open_page(page, say("Documents"), say("Documents"))
    document = tmp_path / case.document_name
    document.write_text(case.document, encoding="utf-8")
    upload(page, document, say)
    indexed = say("Indexed").lower()
    expect(page.get_by_text(f"{case.document_name}: {indexed}")).to_be_visible()
    expect(
        page.get_by_text(
            say("{done} of {total} files indexed or already present.", done=1, total=1)
        )
    ).to_be_visible()
    five = say.plural("{n} document", "{n} documents", 5)
    expect(page.get_by_role("heading", name=five, exact=True)).to_be_visible()
    save_screenshot(page, f"documents-{language}")

    # Chat: a cited answer, its confidence, and the cited passage.
    open_page(page, say("Chat"), say("Ask your documents"))
    answer = ask(page, case.question)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(case.question)
    expect(answer).to_contain_text(case.quoted)
    expect(answer).to_contain_text("[1]")
    expect(answer).to_contain_text(say.pattern("{label} confidence · {score}"))
    source = expander(answer, f"[1] {case.document_name}")
    source.locator("summary").click()
    expect(source.get_by_test_id("stExpanderDetails")).to_contain_text(case.quoted)
    save_screenshot(page, f"chat-{language}")

    # Feedback: thumbs down, then a comment and a corrected answer.
    thumbs_down = answer.get_by_role("radio", name="Thumbs down")  # Streamlit's own label
    thumbs_down.click()
    expect(toast(page, say("Rating saved. Thank you!"))).to_be_visible()
    expect(thumbs_down).to_have_attribute("aria-checked", "true")
    correct = expander(answer, say("Comment or correct this answer"))
    correct.locator("summary").click()
    correct.get_by_role("textbox", name=say("Comment"), exact=True).fill(case.comment)
    correct.get_by_role("textbox", name=say("Corrected answer"), exact=True).fill(case.correction)
    correct.get_by_role("button", name=say("Save feedback")).click()
    expect(toast(page, say("Correction saved."))).to_be_visible()
    expect(answer).to_contain_text(say("Your correction: {answer}", answer=case.correction))
    settle(page)

    # A reload shows the same conversation, with the feedback read back from SQL.
    page.reload()
    expect(page.get_by_role("heading", name=say("Ask your documents"))).to_be_visible()
    answer = page.get_by_test_id("stChatMessage").filter(has_text="[1]")
    expect(answer).to_contain_text(say("Your correction: {answer}", answer=case.correction))
    expect(answer.get_by_role("radio", name="Thumbs down")).to_have_attribute(
        "aria-checked", "true"
    )
    save_screenshot(page, f"chat-feedback-{language}")

    # Review: the disliked answer waits in the queue (not yet reviewed: feedback given on the
    # chat page is not a review, even from an admin) with the feedback it got.
    open_page(page, say("Review"), say("Review answers"))
    expect(
        page.get_by_text(
            say("{reviewed} reviewed · {remaining} remaining", reviewed=0, remaining=1)
        )
    ).to_be_visible()
    expect(page.get_by_role("heading", name=case.question)).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text(say("Comment: {comment}", comment=case.comment))
    expect(main).to_contain_text(say("Corrected answer: {answer}", answer=case.correction))
    expect(main.get_by_role("button", name=say("Save review"))).to_be_visible()
    save_screenshot(page, f"review-{language}")

    # Insights: the question is counted, and the feedback export carries the correction.
    open_page(page, say("Insights"), say("Insights"))
    questions = page.get_by_test_id("stMetric").filter(has_text=say("Questions"))
    expect(questions.get_by_test_id("stMetricValue")).to_have_text("1")
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name=say("Feedback as CSV")).click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert case.correction in exported and case.comment in exported
    save_screenshot(page, f"insights-{language}")
