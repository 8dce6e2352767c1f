"""Loupe's web app: `streamlit run app.py`.

This file signs the visitor in and registers only the pages their role may use (chat for
everyone, review for experts, documents and insights for admins); the pages themselves and
`core` check the role again. The sidebar says who is signed in and how.

Every page keeps its address whoever asks for it: before sign-in each address shows the sign-in
form (so a deep link lands on the page asked for once signed in), and an address the role may
not use says so instead of "Page not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import i18n
import ui as shared
from core.auth import Actor, AuthConfig, Role, allows
from i18n import N_, _

# A local file: a `:material/...:` or emoji icon makes every browser fetch it from a CDN.
FAVICON = Path(__file__).parent / "assets" / "favicon.png"

st.set_page_config(page_title="Loupe", page_icon=str(FAVICON), layout="wide")


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str
    role: Role
    section: str
    visible: bool = True


# Titles and sections are marked for the catalogue and translated on every run.
PAGES = (
    PageSpec("pages/chat.py", N_("Chat"), ":material/chat:", "chat", "user", N_("Ask")),
    PageSpec("pages/source.py", N_("Source"), ":material/article:", "source", "user", N_("Ask"),
             False),
    PageSpec("pages/review.py", N_("Review"), ":material/rate_review:", "review", "expert",
             N_("Improve")),
    PageSpec("pages/documents.py", N_("Documents"), ":material/description:", "documents",
             "admin", N_("Admin")),
    PageSpec("pages/insights.py", N_("Insights"), ":material/monitoring:", "insights", "admin",
             N_("Admin")),
)  # fmt: skip


def sign_in_page() -> None:
    """Single sign-on buttons for each configured OIDC provider, and/or the local form."""
    config = shared.auth_config()
    st.title(_("Sign in to Loupe"))
    st.caption(_("Loupe answers questions from your organisation's documents, with citations."))
    for provider in config.providers:
        label = (
            _("Sign in with {provider}", provider=provider.capitalize())
            if provider
            else _("Sign in with single sign-on")
        )
        if st.button(label, icon=":material/login:", key=f"oidc_{provider or 'default'}"):
            st.login(provider)
    if not config.users:
        return
    with st.form("sign_in"):
        username = st.text_input(_("User name"), autocomplete="username")
        password = st.text_input(_("Password"), type="password", autocomplete="current-password")
        submitted = st.form_submit_button(_("Sign in"), type="primary")
    if submitted:
        actor = config.check_password(username, password)
        if actor is None:
            st.error(_("Wrong user name or password."))
        else:
            shared.start_sign_in(config.users[actor.name])
            st.rerun()  # the same address, now with the pages the role may use


def refusal(spec: PageSpec, actor: Actor) -> Callable[[], None]:
    def refuse() -> None:
        st.title(_(spec.title))
        shared.stop_with_error(
            _(
                "{page} needs the {role} role; {name} is signed in as {actor_role}.",
                page=_(spec.title),
                role=shared.role_name(spec.role),
                name=shared.inert(i18n.word(actor.label)),
                actor_role=shared.role_name(actor.role),
            )
        )

    return refuse


def sidebar(actor: Actor, config: AuthConfig) -> None:
    with st.sidebar:
        st.markdown(f"**{shared.inert(i18n.word(actor.label))}** · {shared.role_name(actor.role)}")
        i18n.switch()
        if config.mode == "single-user":
            st.caption(
                _(
                    "Single-user local mode: no users are configured, so you are the admin. "
                    "Add users to `.streamlit/secrets.toml` to require sign-in."
                )
            )
        elif st.button(_("Sign out"), icon=":material/logout:", key="sign_out"):
            # Forget everything the session held (its conversation too), not only the name.
            shared.end_sign_in()
            if actor.source == "oidc":
                st.logout()
            st.rerun()
        st.divider()


def remember_language() -> None:
    """Ask the browser to keep a language just picked with the switch."""
    if (picked := i18n.pending_cookie()) is not None:
        shared.set_cookie(i18n.COOKIE, picked, i18n.COOKIE_MAX_AGE, key=f"language_{picked}")


def main() -> None:
    try:
        config = shared.auth_config()
    except ValueError as exc:
        shared.stop_with_error(
            _("The [auth] section of .streamlit/secrets.toml is wrong: {error}", error=exc)
        )
    shared.write_pending_cookie()
    remember_language()
    actor = shared.resolve_actor(config)
    st.session_state[shared.ACTOR] = actor
    if actor is None:
        title = _("Sign in")
        sign_in = [st.Page(sign_in_page, title=title, icon=":material/login:", default=True)]
        sign_in += [
            st.Page(sign_in_page, title=title, url_path=spec.url_path, visibility="hidden")
            for spec in PAGES
        ]
        with st.sidebar:
            i18n.switch()
        st.navigation(sign_in).run()
        return

    pages: dict[str, list[st.Page]] = {}
    for spec in PAGES:
        allowed = allows(actor, spec.role)
        page = st.Page(
            spec.path if allowed else refusal(spec, actor),
            title=_(spec.title),
            icon=spec.icon,
            url_path=spec.url_path,
            default=spec.path == "pages/chat.py",
            visibility="visible" if allowed and spec.visible else "hidden",
        )
        pages.setdefault(_(spec.section) if allowed else "", []).append(page)
    page = st.navigation(pages)
    sidebar(actor, config)
    page.run()


main()
