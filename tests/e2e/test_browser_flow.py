"""The whole loop in a real browser: an admin loads the sample documents and uploads one of
their own, asks about it, gets a cited answer, gives it a thumbs-down with a correction, and
finds it in the expert review queue.

It drives `streamlit run app.py` in Debian's headless Chromium (see conftest.py) and saves a
screenshot of every page under test-output/e2e/: look at them after a UI change.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.e2e.support import (
    FIRST_VIEW_TIMEOUT_MS,
    OUTPUT_DIR,
    AppServer,
    open_page,
    save_screenshot,
    settle,
    toast,
)

DOCUMENT_NAME = "commuting-guide.md"
DOCUMENT = """# Commuting guide

## Bicycle parking

The secure bicycle room is on the basement level of the north garage. Reception hands out the
key card for it once you have signed the bike policy.

## Car parking

Parking permits cost 40 euros per month and are issued by the facilities team.
"""
QUESTION = "Where is the secure bicycle room?"
COMMENT = "Say how to get the key card."
CORRECTION = (
    "The secure bicycle room is on the basement level of the north garage; reception hands out "
    "the key card once you have signed the bike policy [1]."
)


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
    document = tmp_path / DOCUMENT_NAME
    document.write_text(DOCUMENT)
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
    source = expander(answer, f"[1] {DOCUMENT_NAME}")
    source.locator("summary").click()
    expect(source.get_by_test_id("stExpanderDetails")).to_contain_text(
        "The secure bicycle room is on the basement level"
    )
    save_screenshot(page, "chat")

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
