"""Fixtures for the browser test: the real app under `streamlit run`, and Debian's Chromium.

The server runs `app.py` from this checkout on a free loopback port, in a temporary working
directory holding a copy of the repository's `.streamlit/config.toml` and an empty secrets file:
a developer's `.env` or `.streamlit/secrets.toml` never leaks in, so the app runs in single-user
local mode (the one user is an admin), on its embedded defaults (SQLite and LanceDB in a fresh
data directory), with the extractive answerer.

Chromium is Debian's `/usr/bin/chromium` (`make test` installs it), driven by Playwright with
`executable_path` and a fresh profile: no browser is ever downloaded. When the test fails, the
server's log and a screenshot of the page at that moment are added to the failure report.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.support import (
    ACTION_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCAL_USERS,
    OUTPUT_DIR,
    REPO,
    SERVER_START_TIMEOUT,
    VIEWPORT,
    AppServer,
)

# Settings a developer's shell may hold that would point the app elsewhere.
FOREIGN_SETTINGS = {"DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "WEAVIATE_URL"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path) -> dict[str, str]:
    """This environment without Loupe's, Streamlit's or the services' settings, plus the
    test's own: a fresh data directory and the extractive answerer."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOUPE_", "STREAMLIT_")) and name not in FOREIGN_SETTINGS
    }
    env["LOUPE_DATA_DIR"] = str(data_dir)
    env["LOUPE_LLM"] = "extractive"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for_health(server: AppServer, timeout: float) -> None:
    """Poll `/_stcore/health` until it answers `ok`; fail at once if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"streamlit exited with code {server.process.returncode} before it was "
                f"healthy. Its log:\n{server.log()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except OSError:  # refused while starting (URLError is an OSError)
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit was not healthy within {timeout:.0f} s. Its log:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it has not exited in 10 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def serve(tmp_path: Path, secrets_toml: str) -> Iterator[AppServer]:
    """`streamlit run app.py` on a free loopback port, with an empty data directory and the
    given secrets file."""
    workdir = tmp_path / "app"
    (workdir / ".streamlit").mkdir(parents=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", workdir / ".streamlit" / "config.toml")
    secrets = workdir / ".streamlit" / "secrets.toml"
    secrets.write_text(secrets_toml)
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--secrets.files", str(secrets),  # not ~/.streamlit/secrets.toml either
    ]  # fmt: skip
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=server_env(tmp_path / "data"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches any children
        )
    server = AppServer(f"http://127.0.0.1:{port}", log_path, process)
    try:
        wait_for_health(server, SERVER_START_TIMEOUT)
        yield server
    finally:
        stop(process)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServer]:
    """The app in single-user local mode (no users configured: the one user is an admin)."""
    with serve(tmp_path, "# Empty: no users, so the app runs in single-user local mode.\n") as s:
        yield s


@pytest.fixture
def users_server(tmp_path: Path) -> Iterator[AppServer]:
    """The app with local users (`LOCAL_USERS`: name → role; the password is NAME-secret)."""
    lines = []
    for name, role in LOCAL_USERS.items():
        hashed = bcrypt.hashpw(f"{name}-secret".encode(), bcrypt.gensalt(4)).decode()
        lines += [f"[auth.users.{name}]", f'role = "{role}"', f'name = "{name.title()}"']
        lines += [f'password_hash = "{hashed}"', ""]
    with serve(tmp_path, "\n".join(lines)) as s:
        yield s


@pytest.fixture
def browser_locale() -> str:
    """The language the browser asks for (a test may override this fixture)."""
    return "en-US"


@pytest.fixture
def browser_page(tmp_path: Path, browser_locale: str) -> Iterator[Page]:
    """A page in Debian's headless Chromium, with a fresh profile, speaking `browser_locale`."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed at {CHROMIUM} "
            "(`make test` installs it: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            locale=browser_locale,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        expect.set_options(timeout=ACTION_TIMEOUT_MS)  # `expect` has its own bound (5 s)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, attach the server's log and a screenshot of the page as it was."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    page: Page | None = funcargs.get("browser_page")
    if page is not None and not page.is_closed():
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        shot = OUTPUT_DIR / f"failure-{item.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True, timeout=10_000)
            report.sections.append(("browser", f"screenshot at the failure: {shot}"))
        except Exception as exc:  # a failing screenshot must not hide the test's failure
            report.sections.append(("browser", f"no screenshot at the failure: {exc}"))
    server: AppServer | None = funcargs.get("app_server") or funcargs.get("users_server")
    if server is not None:
        report.sections.append(("streamlit server log", server.log()))
    return report
