"""The whole loop in a real browser: an admin loads the sample documents and uploads a PDF of
their own, asks about it, gets a cited answer, opens `[1]` at its PDF page with the passage
highlighted, gives the answer a thumbs-down with a correction, finds it in the expert review
queue, and resumes the conversation from the sidebar after a reload. With local users: a
sign-in survives a reload and lands deep links on their page; a plain user's deep link to an
admin page is refused.

The main loop runs once per UI language, with the browser set to that language (English,
then Korean: the app follows the browser's locale) and a document and questions in it (the
Korean document is Markdown: its cited passage opens in its text). What the test looks for on
screen comes from the app's own catalogue.

It drives `streamlit run app.py` in Debian's headless Chromium (see conftest.py) and saves a
screenshot of every page under test-output/e2e/ (NAME.png in English, NAME-ko.png in Korean):
look at them after a UI change.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image
from playwright.sync_api import Locator, Page, expect

import i18n
from core.ingest.viewer import HIGHLIGHT_EDGE
from tests.e2e.support import (
    FIRST_VIEW_TIMEOUT_MS,
    OUTPUT_DIR,
    AppServer,
    open_page,
    save_screenshot,
    settle,
    toast,
)

PAGES = (
    "Commuting guide. This guide explains how to get to the office: by train, by bus, by "
    "bicycle or by car. Trains stop at Harbour Central every ten minutes on weekdays.",
    "Bicycle parking. The secure bicycle room is on the basement level of the north garage. "
    "Reception hands out the key card for it once you have signed the bike policy.",
    "Car parking. Parking permits cost 40 euros per month and are issued by the facilities team.",
)
KOREAN_GUIDE = (
    "# 통근 안내\n\n## 자전거 주차\n\n"
    "보안 자전거 보관실은 북쪽 주차장 지하층에 있습니다. "
    "자전거 이용 규정에 서명하면 안내 데스크에서 보관실 출입 카드를 발급합니다.\n\n"
    "## 자동차 주차\n\n주차 허가증은 월 40유로이며 시설관리팀에서 발급합니다.\n"
)


@dataclass(frozen=True)
class Case:
    """The user's own document, two questions about it, a comment and a correction."""

    browser_locale: str
    document_name: str
    question: str
    quoted: str  # what the (extractive) answer quotes from the document
    other_question: str
    comment: str
    correction: str
    cited_page: int | None = None  # the PDF page the answer cites (None: not a PDF)

    @property
    def screenshot_suffix(self) -> str:
        return "" if self.browser_locale.startswith("en") else "-" + self.browser_locale[:2]


CASES = {
    "en": Case(
        browser_locale="en-US",
        document_name="commuting-guide.pdf",
        question="Where is the secure bicycle room?",
        quoted="basement level of the north garage",
        other_question="How much does a parking permit cost per month?",
        comment="Say how to get the key card.",
        correction=(
            "The secure bicycle room is on the basement level of the north garage; reception "
            "hands out the key card once you have signed the bike policy [1]."
        ),
        cited_page=2,
    ),
    "ko": Case(
        browser_locale="ko-KR",
        document_name="commuting-ko.md",
        question="보안 자전거 보관실은 어디에 있나요?",
        quoted="북쪽 주차장 지하층",
        other_question="주차 허가증은 한 달에 얼마인가요?",
        comment="출입 카드 받는 방법도 알려 주세요.",
        correction=(
            "보안 자전거 보관실은 북쪽 주차장 지하층에 있으며, 자전거 이용 규정에 서명하면 "
            "안내 데스크에서 출입 카드를 발급합니다 [1]."
        ),
    ),
}


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


def write_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=13)
    for text in PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 9, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def highlighted(png: bytes) -> bool:
    """Whether the page image carries the passage highlight's edge colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    return any(colour == HIGHLIGHT_EDGE[:3] for _, colour in colours)


def upload(page: Page, path: Path, say: Say | None = None) -> None:
    """Choose a file through the uploader's own file chooser and index it (the page in
    `say`'s language, English by default)."""
    say = say or Say("en")
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


# The browser speaks each language in turn (conftest's `browser_page` uses `browser_locale`).
@pytest.mark.parametrize(
    "browser_locale", [case.browser_locale for case in CASES.values()], ids=list(CASES)
)
def test_upload_ask_dislike_correct_and_review(
    app_server: AppServer, browser_page: Page, tmp_path: Path, browser_locale: str
) -> None:
    language = i18n.from_browser(browser_locale)
    page, case, say = browser_page, CASES[language], Say(language)
    shots = sorted(OUTPUT_DIR.glob("*.png"))
    for old in shots if language == "en" else [p for p in shots if p.stem.endswith("-ko")]:
        old.unlink()

    def screenshot(on: Page, name: str) -> None:
        save_screenshot(on, name + case.screenshot_suffix)

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
        ).split(":")[0]
    )

    # The first-run guidance: one click loads the shipped sample documents.
    page.get_by_role("button", name=say("Load the sample documents")).click()
    expect(page.get_by_text(say("Try one of these:"))).to_be_visible()
    settle(page)

    # Documents: upload a file and see it indexed beside the samples.
    open_page(page, say("Documents"), say("Documents"))
    document = tmp_path / case.document_name
    if case.cited_page:
        write_pdf(document)
    else:
        document.write_text(KOREAN_GUIDE, encoding="utf-8")
    upload(page, document, say)
    expect(page.get_by_text(f"{case.document_name}: {say('Indexed').lower()}")).to_be_visible()
    expect(
        page.get_by_text(
            say("{done} of {total} files indexed or already present.", done=1, total=1)
        )
    ).to_be_visible()
    five = say.plural("{n} document", "{n} documents", 5)
    expect(page.get_by_role("heading", name=five, exact=True)).to_be_visible()
    screenshot(page, "documents")

    # Chat: a cited answer, its confidence, and the cited passage.
    open_page(page, say("Chat"), say("Ask your documents"))
    answer = ask(page, case.question)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(case.question)
    expect(answer).to_contain_text(case.quoted)
    expect(answer).to_contain_text("[1]")
    expect(answer).to_contain_text(say.pattern("{label} ({score})"))
    where = say(", p. {page}", page=case.cited_page) if case.cited_page else ""
    source = expander(answer, f"[1] {case.document_name}{where}")
    source.locator("summary").click()
    expect(source.get_by_test_id("stExpanderDetails")).to_contain_text(case.quoted)
    screenshot(page, "chat")

    # [1] in the answer is a link: it opens the original at the cited place (a PDF at its
    # page with the passage highlighted; text with the passage framed in its context).
    with page.context.expect_page() as opened:
        answer.get_by_role("link", name="[1]", exact=True).first.click()
    original = opened.value
    expect(original.get_by_role("heading", name=say("Source"), exact=True)).to_be_visible()
    settle(original)
    if case.cited_page:
        picture = original.get_by_test_id("stImage").locator("img")
        expect(picture).to_be_visible()
        expect(original.get_by_test_id("stImage")).to_contain_text(
            say("{name}, page {page}", name=case.document_name, page=case.cited_page)
        )
        expect(original.get_by_label(say("Page (of {pages})", pages=3))).to_have_value("2")
        shown = original.request.get(str(picture.get_attribute("src")), max_redirects=0)
        assert highlighted(shown.body())
    else:
        cited = original.locator(".st-key-cited_passage")
        expect(cited).to_contain_text(say("Cited passage [{n}]", n=1))
        expect(cited).to_contain_text(case.quoted)
    expect(original.get_by_role("button", name=say("Download the original"))).to_be_visible()
    screenshot(original, "source-pdf" if case.cited_page else "source-text")
    original.close()

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
    screenshot(page, "chat-feedback")

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
    screenshot(page, "review")

    # Insights: the question is counted, and the feedback export carries the correction.
    open_page(page, say("Insights"), say("Insights"))
    questions = page.get_by_test_id("stMetric").filter(has_text=say("Questions"))
    expect(questions.get_by_test_id("stMetricValue")).to_have_text("1")
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name=say("Feedback as CSV")).click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert case.correction in exported and case.comment in exported
    screenshot(page, "insights")

    # A second conversation, then a fresh visit: both are listed, newest first, and a click
    # resumes the first one, which a reload keeps.
    open_page(page, say("Chat"), say("Ask your documents"))
    page.get_by_role("button", name=say("New conversation")).click()
    settle(page)
    ask(page, case.other_question)
    page.goto(app_server.url)
    sidebar = page.get_by_test_id("stSidebar")
    listed = sidebar.get_by_role("button").filter(has_text="?")
    expect(listed.first).to_have_text(case.other_question)
    expect(listed.nth(1)).to_have_text(case.question)
    listed.nth(1).click()
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(case.question)
    settle(page)
    page.reload()
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(case.question)
    expect(page.get_by_test_id("stChatMessage").filter(has_text=case.other_question)).to_have_count(
        0
    )
    screenshot(page, "conversations")

    # The sidebar switch changes the language at once, and the browser remembers it.
    other = "ko" if language == "en" else "en"
    sidebar.get_by_role("radio", name=i18n.LANGUAGES[other], exact=True).click()
    expect(page.get_by_role("heading", name=Say(other)("Ask your documents"))).to_be_visible()
    settle(page)
    page.reload()
    expect(page.get_by_role("heading", name=Say(other)("Ask your documents"))).to_be_visible()


def sign_in(page: Page, name: str) -> None:
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(f"{name}-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"{name.title()} ·")
    # The browser keeps the sign-in once the app has handed it the cookie.
    page.wait_for_function("document.cookie.includes('loupe_session=')")
    settle(page)


def sign_out(page: Page) -> None:
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Loupe")).to_be_visible()
    page.wait_for_function("!document.cookie.includes('loupe_session=')")


def test_sign_in_lasts_and_deep_links_land_on_their_page(
    users_server: AppServer, browser_page: Page
) -> None:
    page = browser_page
    page.goto(users_server.url)
    expect(page.get_by_role("heading", name="Sign in to Loupe")).to_be_visible(
        timeout=FIRST_VIEW_TIMEOUT_MS
    )
    save_screenshot(page, "sign-in")
    sign_in(page, "ada")
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()

    # A reload keeps the admin signed in; a deep link opens its page straight away.
    page.reload()
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Ada · admin")
    page.goto(f"{users_server.url}/documents")
    expect(page.get_by_role("heading", name="Documents", exact=True)).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)

    # Signing out ends it: a reload asks to sign in again.
    sign_out(page)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Loupe")).to_be_visible()

    # Signed out, a deep link shows the sign-in form, then the page asked for.
    page.goto(f"{users_server.url}/insights")
    expect(page.get_by_role("heading", name="Sign in to Loupe")).to_be_visible()
    sign_in(page, "ada")
    expect(page.get_by_role("heading", name="Insights", exact=True)).to_be_visible()
    sign_out(page)

    # A plain user's deep link to Documents is refused, by name.
    sign_in(page, "uma")
    page.goto(f"{users_server.url}/documents")
    expect(
        page.get_by_text("Documents needs the admin role; Uma is signed in as user.")
    ).to_be_visible()
    expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
    save_screenshot(page, "refused")
