"""Roles and sign-in: what each role sees, that hidden pages and core calls both refuse a role
that is too low, and the three sign-in modes (single-user, local users, OIDC via st.login)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

import ui as _shared
from core.auth import OPERATOR, SINGLE_USER, Actor, AuthConfig, allows, require
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from tests.app.support import (
    APP,
    LEAVE_QUESTION,
    make_app,
    password,
    run,
    texts,
    users_secrets,
)

UMA, ERIN = Actor("uma", "user"), Actor("erin", "expert")
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "loupe",
    "client_secret": "secret",
    "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
    "roles": {"dana@example.com": "admin", "lee@example.com": "expert"},
}


def registered_pages(at: AppTest) -> set[str]:
    """The page files st.navigation registered on the last run; when there are none, the
    titles of the pages it registered (the sign-in form under every address)."""
    infos = at._registered_pages.values()
    files = {Path(str(info["script_path"])).name for info in infos if info.get("script_path")}
    return files or {str(info["page_name"]) for info in infos}


def deep_link(at: AppTest, url_path: str) -> AppTest:
    """Open the app at `/url_path`, as a bookmark or a pasted link does: the browser asks for
    the page by its address, whose hash names the page (Streamlit hashes `url_path`)."""
    at._page_hash = calc_hash(url_path)
    return at


def with_cookie(monkeypatch: pytest.MonkeyPatch, token: str | None) -> None:
    """The browser's cookie jar: AppTest cannot send cookies, so the one place the app reads
    the sign-in cookie from is replaced (the browser test covers the real cookie)."""
    monkeypatch.setattr(_shared, "browser_cookie", lambda: token)


# The roles ------------------------------------------------------------------------------


def test_roles_include_the_ones_below() -> None:
    assert allows(SINGLE_USER, "admin") and allows(ERIN, "user") and allows(ERIN, "expert")
    assert not allows(UMA, "expert") and not allows(None, "user")
    assert require(ERIN, "expert") is ERIN
    with pytest.raises(PermissionError, match="needs the admin role; erin is signed in as expert"):
        require(ERIN, "admin")
    with pytest.raises(PermissionError, match="Sign in first"):
        require(None, "user")
    with pytest.raises(ValueError, match="Unknown role"):
        require(ERIN, "owner")


@pytest.mark.parametrize(
    ("signed_in", "pages"),
    [
        ("uma", {"chat.py", "source.py"}),
        ("erin", {"chat.py", "source.py", "review.py"}),
        ("ada", {"chat.py", "source.py", "review.py", "documents.py", "insights.py"}),
    ],
)
def test_each_role_sees_only_its_pages(engine: Loupe, signed_in: str, pages: set[str]) -> None:
    at = run(make_app(signed_in=signed_in))
    assert registered_pages(at) == pages
    role = {"uma": "user", "erin": "expert", "ada": "admin"}[signed_in]
    assert f"**{signed_in.title()}** · {role}" in [m.value for m in at.sidebar.markdown]
    for hidden in {"review.py", "documents.py", "insights.py"} - pages:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"pages/{hidden}")


@pytest.mark.parametrize("page", ["documents.py", "insights.py", "review.py"])
def test_pages_refuse_a_user_even_when_opened_directly(engine: Loupe, page: str) -> None:
    at = AppTest.from_file(str(APP.parent / "pages" / page), default_timeout=300)
    at.session_state[_shared.ACTOR] = UMA
    run(at)
    assert "signed in as user" in at.error[0].value
    assert not at.title  # nothing of the page was drawn


def test_core_refuses_calls_above_the_actors_role(documents: Loupe) -> None:
    doc = documents.documents()[0]
    answer = documents.ask(LEAVE_QUESTION, actor=UMA)
    answer_id = answer.answer_id or ""
    refused: list[Callable[[], Any]] = [
        lambda: documents.ingest([IngestItem("x.txt", b"text")], actor=UMA),
        lambda: documents.load_samples(actor=ERIN),
        lambda: documents.delete_document(doc.id, actor=ERIN),
        lambda: documents.reindex(doc.id, actor=UMA),
        lambda: documents.set_document_tags(doc.id, ["x"], actor=UMA),
        lambda: documents.review_queue(actor=UMA),
        lambda: documents.review_progress(actor=UMA),
        lambda: documents.review(answer_id, "approve", actor=UMA),
        lambda: documents.feedback(answer_id, rating="up", role="expert", actor=UMA),
        lambda: documents.insights(actor=ERIN),
        lambda: documents.export_feedback("csv", actor=ERIN),
        lambda: documents.export("finetune", actor=UMA),
    ]
    for call in refused:
        with pytest.raises(PermissionError):
            call()
    assert len(documents.documents()) == 2 and documents.store.count(doc.id) > 0
    # What the role allows goes through; the command line acts as the local operator (admin).
    assert documents.feedback(answer_id, rating="up", role="user", actor=UMA)
    assert documents.review_queue(actor=ERIN)
    assert documents.review_progress() == (0, 1) and OPERATOR.role == "admin"


# Sign-in modes ---------------------------------------------------------------------------


def test_single_user_mode_makes_the_one_user_admin_and_says_so(engine: Loupe) -> None:
    at = run(make_app())
    assert registered_pages(at) == {
        "chat.py",
        "source.py",
        "review.py",
        "documents.py",
        "insights.py",
    }
    assert "Single-user local mode: no users are configured" in texts(at)
    assert not [b for b in at.sidebar.button if b.label == "Sign out"]


def test_local_sign_in_checks_the_bcrypt_password(engine: Loupe) -> None:
    at = run(make_app(secrets=users_secrets()))
    assert at.title[0].value == "Sign in to Loupe" and registered_pages(at) == {"Sign in"}

    at.text_input[0].input("erin")
    at.text_input[1].input("not the password")
    run(at.button[0].click())
    assert at.error[0].value == "Wrong user name or password."

    at.text_input[1].input(password("erin"))
    run(at.button[0].click())
    assert registered_pages(at) == {"chat.py", "source.py", "review.py"}
    assert at.session_state[_shared.ACTOR] == Actor("erin", "expert", "Erin", "local")

    run(next(b for b in at.sidebar.button if b.label == "Sign out").click())
    assert at.title[0].value == "Sign in to Loupe"
    assert _shared.SIGN_IN_TOKEN not in at.session_state


def sign_in_with_form(at: AppTest, name: str) -> AppTest:
    at.text_input[0].input(name)
    at.text_input[1].input(password(name))
    return run(at.button[0].click())


def test_a_local_sign_in_survives_a_reload_until_signing_out(
    engine: Loupe, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in_with_form(run(make_app(secrets=users_secrets())), "erin")
    token = at.session_state[_shared.SIGN_IN_TOKEN]
    # The run after signing in hands the browser its cookie (Streamlit cannot set cookies).
    assert any(type(e).__name__ == "UnknownElement" for e in at.main)

    # A reload is a new session with nothing but the cookie: still signed in, no form.
    with_cookie(monkeypatch, token)
    reloaded = run(make_app(secrets=users_secrets()))
    assert reloaded.session_state[_shared.ACTOR] == Actor("erin", "expert", "Erin", "local")
    assert registered_pages(reloaded) == {"chat.py", "source.py", "review.py"}

    # Signing out (in the reloaded tab) revokes the sign-in: the cookie no longer works,
    # here or in any other tab that still holds it.
    run(next(b for b in reloaded.sidebar.button if b.label == "Sign out").click())
    assert reloaded.title[0].value == "Sign in to Loupe"
    again = run(make_app(secrets=users_secrets()))
    assert again.title[0].value == "Sign in to Loupe" and again.session_state[_shared.ACTOR] is None


def test_a_changed_password_ends_a_lasting_sign_in(
    engine: Loupe, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in_with_form(run(make_app(secrets=users_secrets())), "uma")
    with_cookie(monkeypatch, at.session_state[_shared.SIGN_IN_TOKEN])
    changed = copy.deepcopy(users_secrets())
    changed["auth"]["users"]["uma"]["password_hash"] = bcrypt.hashpw(
        b"a new password", bcrypt.gensalt(4)
    ).decode()
    reloaded = run(make_app(secrets=changed))
    assert reloaded.title[0].value == "Sign in to Loupe"


def test_a_deep_link_lands_on_its_page_after_sign_in(
    engine: Loupe, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed out, /documents shows the sign-in form (not "Page not found")...
    at = run(deep_link(make_app(secrets=users_secrets()), "documents"))
    assert at.title[0].value == "Sign in to Loupe"
    # ...and signing in there opens Documents, the page asked for.
    sign_in_with_form(at, "ada")
    assert at.title[0].value == "Documents"

    # Signed in already (the cookie), a deep link opens its page at once.
    with_cookie(monkeypatch, at.session_state[_shared.SIGN_IN_TOKEN])
    direct = run(deep_link(make_app(secrets=users_secrets()), "insights"))
    assert direct.title[0].value == "Insights"


def test_a_deep_link_above_the_role_is_refused(engine: Loupe) -> None:
    at = run(deep_link(make_app(signed_in="uma"), "documents"))
    assert at.title[0].value == "Documents"
    assert at.error[0].value == "Documents needs the admin role; Uma is signed in as user."
    assert not at.dataframe and not at.file_uploader  # nothing of the real page


def test_oidc_sign_in_maps_roles_by_email(engine: Loupe) -> None:
    at = make_app(secrets={"auth": OIDC})
    at.user = {"is_logged_in": False}
    run(at)
    assert [b.label for b in at.button] == ["Sign in with single sign-on"]
    assert not at.text_input  # no local users, so no password form

    at.user = {"is_logged_in": True, "email": "dana@example.com", "name": "Dana"}
    run(at)
    assert registered_pages(at) == {
        "chat.py",
        "source.py",
        "review.py",
        "documents.py",
        "insights.py",
    }
    assert "**Dana** · admin" in [m.value for m in at.sidebar.markdown]

    other = make_app(secrets={"auth": OIDC})
    other.user = {"is_logged_in": True, "email": "sam@example.com", "name": "Sam"}
    run(other)
    assert registered_pages(other) == {"chat.py", "source.py"}


def test_a_broken_auth_section_is_reported_not_ignored(engine: Loupe) -> None:
    at = run(make_app(secrets={"auth": {"users": {"ada": {"role": "admin"}}}}))
    assert "[auth.users.ada] needs a password_hash" in at.error[0].value
    assert registered_pages(at) == {"app.py"}  # st.navigation never ran: no page is reachable


# The configuration itself ----------------------------------------------------------------


def test_auth_config_modes_and_providers() -> None:
    users = users_secrets()["auth"]
    assert AuthConfig.from_secrets(None).mode == "single-user"
    assert AuthConfig.from_secrets({}).mode == "single-user"
    assert AuthConfig.from_secrets(users).mode == "local"
    assert AuthConfig.from_secrets(OIDC).providers == (None,)
    both = AuthConfig.from_secrets({**OIDC, **users})
    assert both.mode == "local+oidc"

    named: dict[str, Any] = {key: OIDC[key] for key in ("redirect_uri", "cookie_secret")}
    named["okta"] = {key: OIDC[key] for key in ("client_id", "client_secret")}
    assert AuthConfig.from_secrets(named).providers == ()  # a provider without its metadata URL
    named["okta"]["server_metadata_url"] = OIDC["server_metadata_url"]
    named["microsoft"] = dict(named["okta"])
    assert AuthConfig.from_secrets(named).providers == ("okta", "microsoft")
    # Without Streamlit's shared keys no provider can work.
    assert AuthConfig.from_secrets({"okta": named["okta"]}).providers == ()


def test_auth_config_checks_passwords_and_maps_roles() -> None:
    config = AuthConfig.from_secrets(users_secrets()["auth"])
    assert config.check_password("ada", password("ada")) == Actor("ada", "admin", "Ada", "local")
    assert config.check_password(" ada ", password("ada")) is not None
    assert config.check_password("ada", password("erin")) is None
    assert config.check_password("nobody", "anything") is None

    malformed = AuthConfig.from_secrets({"users": {"x": {"password_hash": "not-bcrypt"}}})
    assert malformed.check_password("x", "not-bcrypt") is None

    oidc = AuthConfig.from_secrets({**OIDC, "default_role": "expert"})
    assert oidc.oidc_actor({"email": "Dana@Example.com", "name": "Dana"}).role == "admin"
    assert oidc.oidc_actor({"email": "new@example.com"}).role == "expert"
    assert oidc.oidc_actor({"sub": "abc"}).name == "abc"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"users": {"x": {"role": "admin"}}}, "needs a password_hash"),
        ({"users": {"x": {"password_hash": "h", "role": "owner"}}}, "Unknown role 'owner'"),
        ({"roles": {"a@b.c": "superuser"}}, "Unknown role"),
        ({"default_role": "guest"}, "Unknown role"),
    ],
)
def test_auth_config_refuses_mistakes(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuthConfig.from_secrets(section)


def test_hash_password_makes_a_bcrypt_hash_the_config_accepts() -> None:
    from core.auth import hash_password

    hashed = hash_password("correct horse")
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    config = AuthConfig.from_secrets({"users": {"kim": {"password_hash": hashed}}})
    assert config.check_password("kim", "correct horse") == Actor("kim", "user", "", "local")
