"""Helpers for the browser test: the server under test, and waiting on and photographing a
Streamlit page.

Streamlit reruns the script asynchronously after every interaction, so nothing here sleeps:
each wait is on something visible (a text, a locator) or on the app's own state (the
`data-test-script-state` attribute of the app root, and no loading skeleton on screen), and
every wait is bounded.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, expect

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIR = REPO / "test-output" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
# Local users of the signed-in flow: name → role (each one's password is NAME-secret).
LOCAL_USERS = {"ada": "admin", "uma": "user"}

# Bounds on the waits. The first page view loads the embedding model (10-20 s here).
SERVER_START_TIMEOUT = 60.0
FIRST_VIEW_TIMEOUT_MS = 180_000
ACTION_TIMEOUT_MS = 30_000
LOG_TAIL_CHARS = 20_000

# The app has finished this run: the script is not running and nothing is still loading.
_SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app !== null
        && app.dataset.testScriptState === "notRunning"
        && document.querySelector(
            '[data-testid="stSkeleton"], [data-testid="stSpinner"], [data-testid="stStatusWidget"]'
        ) === null;
}"""

# The height of the scrolling area once it has stopped changing (an expander opens with an
# animation, a chart draws after the run): unchanged for 5 frames in a row, at most ~5 s.
_STABLE_HEIGHT = """async (main) => {
    const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
    let last = -1;
    for (let i = 0, same = 0; i < 300 && same < 5; i++) {
        await frame();
        same = main.scrollHeight === last ? same + 1 : 0;
        last = main.scrollHeight;
    }
    return last;
}"""


@dataclass
class AppServer:
    """A running `streamlit run app.py`."""

    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """The end of the server's output (stdout and stderr together)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-LOG_TAIL_CHARS:] or "(the server wrote nothing)"


def settle(page: Page, timeout_ms: int = ACTION_TIMEOUT_MS) -> None:
    """Wait until the app's current run has finished and the page has drawn all of it."""
    page.wait_for_function(_SETTLED, timeout=timeout_ms)


def expect_no_exception(page: Page) -> None:
    """The page shows no Python exception (Streamlit draws them in place of the page)."""
    expect(page.get_by_test_id("stException")).to_have_count(0)


def open_page(page: Page, nav_label: str, title: str) -> None:
    """Open a page through the sidebar navigation and wait for its title."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=nav_label, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    settle(page)
    expect_no_exception(page)


def toast(page: Page, text: str) -> Locator:
    """The toast that says `text` (Streamlit shows a confirmation for a few seconds)."""
    return page.get_by_test_id("stToast").filter(has_text=text)


def save_screenshot(page: Page, name: str) -> Path:
    """A screenshot of the whole page under test-output/e2e/NAME.png.

    Streamlit scrolls its `<main>` area inside the window, so a browser "full page" shot would
    stop at the window's edge: the window is made as tall as the content for the shot.
    Toasts are let go first, and the mouse is moved off the content (a chart under it shows
    its toolbar), so neither covers the page.
    """
    size = page.viewport_size or VIEWPORT
    page.mouse.move(size["width"] - 2, size["height"] // 2)  # the empty right margin
    settle(page)
    expect_no_exception(page)
    expect(page.get_by_test_id("stToast")).to_have_count(0, timeout=15_000)
    for _ in range(3):  # a taller window can reflow the page: repeat until the height holds
        height = int(page.locator("main").evaluate(_STABLE_HEIGHT))
        current = page.viewport_size or size
        if height <= current["height"]:
            break
        page.set_viewport_size({"width": size["width"], "height": height})
        settle(page)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    page.set_viewport_size(size)
    return path
