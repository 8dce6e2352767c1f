"""Helpers for the AppTest suites: the app with or without local users, runs that fail on any
exception the page showed, the sample files, and the page text for `in` checks."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import bcrypt
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.auth import AuthConfig
from core.ingest.pipeline import IngestItem

APP = Path(__file__).resolve().parents[2] / "app.py"
# The first run in a process loads the embedding model; later runs take a second or two.
TIMEOUT = 300
ROLES = {"ada": "admin", "erin": "expert", "uma": "user", "ursula": "user"}

HANDBOOK = IngestItem(
    "handbook.md",
    b"# Handbook\n\n## Annual leave\n\nNew employees receive 25 days of paid annual leave.\n\n"
    b"## Remote work\n\nEmployees may work remotely up to three days per week.\n",
)
TRAVEL = IngestItem(
    "travel.md",
    b"# Travel\n\n## Hotels\n\nThe hotel limit in Oslo is 190 euros per night.\n",
)
LEAVE_QUESTION = "How many days of paid annual leave do new employees receive?"


def password(name: str) -> str:
    return f"{name}-secret"


@cache
def users_secrets() -> dict[str, Any]:
    """Local users of every role, with real bcrypt hashes (cheap rounds: tests only)."""
    users = {
        name: {
            "name": name.title(),
            "role": role,
            "password_hash": bcrypt.hashpw(password(name).encode(), bcrypt.gensalt(4)).decode(),
        }
        for name, role in ROLES.items()
    }
    return {"auth": {"users": users}}


def sign_in_token(name: str, secrets: dict[str, Any] | None = None) -> str:
    """A live sign-in for a local user, as the sign-in form makes one."""
    config = AuthConfig.from_secrets((secrets or users_secrets())["auth"])
    return _shared.engine().sign_ins.issue(config.users[name]).token


def make_app(*, signed_in: str | None = None, secrets: dict[str, Any] | None = None) -> AppTest:
    """The app, in single-user mode by default, or with local users and `signed_in` as one
    (signed in in this browser session, as after the sign-in form)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if secrets is None:
        secrets = users_secrets() if signed_in else {"auth": {}}
    at.secrets = secrets
    if signed_in:
        at.session_state[_shared.SIGN_IN_TOKEN] = sign_in_token(signed_in, secrets)
    return at


def run(target: AppTest | Any) -> AppTest:
    """Run the app (given it, or a widget just set or clicked) and fail on any exception the
    page showed."""
    at: AppTest = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def on_page(at: AppTest, page: str) -> AppTest:
    """Run the app once (navigation registers the pages), then open `page`."""
    return run(run(at).switch_page(page))


# A citation marker as the chat links it: `[\[1\]](./source?answer=…&n=1)`.
LINKED_MARKER = re.compile(r"\[\\\[(\d+)\\\]\]\(\./source\?answer=\w+&n=\d+\)")
INERT_ESCAPE = re.compile(r"\\(.)")


def answer_shown(reply: Any) -> str:
    """The answer text in an assistant chat message, as the reader sees it: its Markdown
    block outside the source expanders (inert text, `ui.inert`, whose only links are the
    citations), with the links and escapes taken off again."""
    answer = next(
        str(node.value)
        for node in reply.children.values()
        if node.type == "markdown" and "-badge[" not in str(node.value)
    )
    plain = LINKED_MARKER.sub(lambda m: f"[{m.group(1)}]", answer)
    plain = INERT_ESCAPE.sub(r"\1", plain.replace("  \n", "\n"))
    return plain.replace("\u2060", "").replace("\u00a0", " ")


def texts(at: AppTest) -> str:
    """Every markdown, caption, text and alert on the page, for `in` checks."""
    parts: list[Any] = []
    for kind in ("markdown", "caption", "text", "info", "warning", "success", "error"):
        parts += [element.value for element in getattr(at, kind)]
    return "\n".join(str(part) for part in parts)
