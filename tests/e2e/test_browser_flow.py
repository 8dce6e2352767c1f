"""The whole loop in a real browser: an admin loads the sample documents and uploads a PDF of
their own, asks about it, gets a cited answer, opens `[1]` at its PDF page with the passage
highlighted, gives the answer a thumbs-down with a correction, finds it in the expert review
queue, and resumes the conversation from the sidebar after a reload. With local users: a
sign-in survives a reload and lands deep links on their page; a plain user's deep link to an
admin page is refused.

It drives `streamlit run app.py` in Debian's headless Chromium (see conftest.py) and saves a
screenshot of every page under test-output/e2e/: look at them after a UI change.
"""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF
from PIL import Image
from playwright.sync_api import Locator, Page, expect

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

DOCUMENT_NAME = "commuting-guide.pdf"
PAGES = (
    "Commuting guide. This guide explains how to get to the office: by train, by bus, by "
    "bicycle or by car. Trains stop at Harbour Central every ten minutes on weekdays.",
    "Bicycle parking. The secure bicycle room is on the basement level of the north garage. "
    "Reception hands out the key card for it once you have signed the bike policy.",
    "Car parking. Parking permits cost 40 euros per month and are issued by the facilities team.",
)
QUESTION = "Where is the secure bicycle room?"
OTHER_QUESTION = "How much does a parking permit cost per month?"
COMMENT = "Say how to get the key card."
CORRECTION = (
    "The secure bicycle room is on the basement level of the north garage; reception hands out "
    "the key card once you have signed the bike policy [1]."
)


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


def upload(page: Page, path: Path) -> None:
    """Choose a file through the uploader's own file chooser and index it."""
    uploader = page.get_by_test_id("stFileUploader")
    with page.expect_file_chooser() as chooser:
        uploader.get_by_role("button", name="Upload", exact=True).click()
    chooser.value.set_files(str(path))
    expect(uploader).to_contain_text(path.name)
    page.get_by_role("button", name="Index 1 file").click()


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
    app_server: AppServer, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    for old in OUTPUT_DIR.glob("*.png"):
        old.unlink()

    # First visit: an empty data directory, single-user local mode (admin), the model loads.
    page.goto(app_server.url)
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible(
        timeout=FIRST_VIEW_TIMEOUT_MS
    )
    expect(page.get_by_role("heading", name="No documents yet")).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Single-user local mode")

    # The first-run guidance: one click loads the shipped sample documents.
    page.get_by_role("button", name="Load the sample documents").click()
    expect(page.get_by_text("Try one of these:")).to_be_visible()
    settle(page)

    # Documents: upload a Markdown file and see it indexed beside the samples.
    open_page(page, "Documents", "Documents")
    document = write_pdf(tmp_path / DOCUMENT_NAME)
    upload(page, document)
    expect(page.get_by_text(f"{DOCUMENT_NAME}: indexed")).to_be_visible()
    expect(page.get_by_text("1 of 1 files indexed or already present.")).to_be_visible()
    expect(page.get_by_role("heading", name="5 documents", exact=True)).to_be_visible()
    save_screenshot(page, "documents")

    # Chat: a cited answer, its confidence, and the cited passage.
    open_page(page, "Chat", "Ask your documents")
    answer = ask(page, QUESTION)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(QUESTION)
    expect(answer).to_contain_text("basement level of the north garage")
    expect(answer).to_contain_text("[1]")
    expect(answer).to_contain_text("ikely right (")
    source = expander(answer, f"[1] {DOCUMENT_NAME}, p. 2")
    source.locator("summary").click()
    expect(source.get_by_test_id("stExpanderDetails")).to_contain_text(
        "The secure bicycle room is on the basement level"
    )
    save_screenshot(page, "chat")

    # [1] in the answer is a link: it opens the PDF at the cited page, passage highlighted.
    with page.context.expect_page() as opened:
        answer.get_by_role("link", name="[1]", exact=True).first.click()
    original = opened.value
    expect(original.get_by_role("heading", name="Source", exact=True)).to_be_visible()
    settle(original)
    picture = original.get_by_test_id("stImage").locator("img")
    expect(picture).to_be_visible()
    expect(original.get_by_test_id("stImage")).to_contain_text(f"{DOCUMENT_NAME}, page 2")
    expect(original.get_by_label("Page (of 3)")).to_have_value("2")
    shown = original.request.get(str(picture.get_attribute("src")), max_redirects=0)
    assert highlighted(shown.body())
    expect(original.get_by_role("button", name="Download the original")).to_be_visible()
    save_screenshot(original, "source-pdf")
    original.close()

    # Feedback: thumbs down, then a comment and a corrected answer.
    thumbs_down = answer.get_by_role("radio", name="Thumbs down")
    thumbs_down.click()
    expect(toast(page, "Rating saved")).to_be_visible()
    expect(thumbs_down).to_have_attribute("aria-checked", "true")
    correct = expander(answer, "Comment or correct this answer")
    correct.locator("summary").click()
    correct.get_by_role("textbox", name="Comment", exact=True).fill(COMMENT)
    correct.get_by_role("textbox", name="Corrected answer", exact=True).fill(CORRECTION)
    correct.get_by_role("button", name="Save feedback").click()
    expect(toast(page, "Correction saved.")).to_be_visible()
    expect(answer).to_contain_text(f"Your correction: {CORRECTION}")
    settle(page)

    # A reload shows the same conversation, with the feedback read back from SQL.
    page.reload()
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
    answer = page.get_by_test_id("stChatMessage").filter(has_text="[1]")
    expect(answer).to_contain_text(f"Your correction: {CORRECTION}")
    expect(answer.get_by_role("radio", name="Thumbs down")).to_have_attribute(
        "aria-checked", "true"
    )
    save_screenshot(page, "chat-feedback")

    # Review: the disliked answer waits in the queue (not yet reviewed: feedback given on the
    # chat page is not a review, even from an admin) with the feedback it got.
    open_page(page, "Review", "Review answers")
    expect(page.get_by_text("0 reviewed · 1 remaining")).to_be_visible()
    expect(page.get_by_role("heading", name=QUESTION)).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text(f"Comment: {COMMENT}")
    expect(main).to_contain_text(f"Corrected answer: {CORRECTION}")
    expect(main.get_by_role("button", name="Save review")).to_be_visible()
    save_screenshot(page, "review")

    # Insights: the question is counted, and the feedback export carries the correction.
    open_page(page, "Insights", "Insights")
    questions = page.get_by_test_id("stMetric").filter(has_text="Questions")
    expect(questions.get_by_test_id("stMetricValue")).to_have_text("1")
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Feedback as CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert CORRECTION in exported and COMMENT in exported
    save_screenshot(page, "insights")

    # A second conversation, then a fresh visit: both are listed, newest first, and a click
    # resumes the first one, which a reload keeps.
    open_page(page, "Chat", "Ask your documents")
    page.get_by_role("button", name="New conversation").click()
    settle(page)
    ask(page, OTHER_QUESTION)
    page.goto(app_server.url)
    sidebar = page.get_by_test_id("stSidebar")
    listed = sidebar.get_by_role("button").filter(has_text="?")
    expect(listed.first).to_have_text(OTHER_QUESTION)
    expect(listed.nth(1)).to_have_text(QUESTION)
    listed.nth(1).click()
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(QUESTION)
    settle(page)
    page.reload()
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text(QUESTION)
    expect(page.get_by_test_id("stChatMessage").filter(has_text=OTHER_QUESTION)).to_have_count(0)
    save_screenshot(page, "conversations")


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
