"""Loupe's web app: `streamlit run app.py`.

This file signs the visitor in and registers only the pages their role may use (chat for
everyone, review for experts, documents and insights for admins); the pages themselves and
`core` check the role again. The sidebar says who is signed in and how.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import ui as shared
from core.auth import Actor, AuthConfig, allows

# A local file: a `:material/...:` or emoji icon makes every browser fetch it from a CDN.
FAVICON = Path(__file__).parent / "assets" / "favicon.png"

st.set_page_config(page_title="Loupe", page_icon=str(FAVICON), layout="wide")


def sign_in_page() -> None:
    """Single sign-on buttons for each configured OIDC provider, and/or the local form."""
    config = shared.auth_config()
    st.title("Sign in to Loupe")
    st.caption("Loupe answers questions from your organisation's documents, with citations.")
    for provider in config.providers:
        label = (
            f"Sign in with {provider.capitalize()}" if provider else "Sign in with single sign-on"
        )
        if st.button(label, icon=":material/login:", key=f"oidc_{provider or 'default'}"):
            st.login(provider)
    if not config.users:
        return
    with st.form("sign_in"):
        username = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        actor = config.check_password(username, password)
        if actor is None:
            st.error("Wrong user name or password.")
        else:
            st.session_state[shared.LOCAL_USER] = actor.name
            st.rerun()


def sidebar(actor: Actor, config: AuthConfig) -> None:
    with st.sidebar:
        st.markdown(f"**{shared.inert(actor.label)}** · {actor.role}")
        if config.mode == "single-user":
            st.caption(
                "Single-user local mode: no users are configured, so you are the admin. "
                "Add users to `.streamlit/secrets.toml` to require sign-in."
            )
        elif st.button("Sign out", icon=":material/logout:", key="sign_out"):
            # Forget everything the session held (its conversation too), not only the name.
            st.session_state.clear()
            if actor.source == "oidc":
                st.logout()
            st.rerun()
        st.divider()


def main() -> None:
    try:
        config = shared.auth_config()
    except ValueError as exc:
        shared.stop_with_error(f"The [auth] section of .streamlit/secrets.toml is wrong: {exc}")
    actor = shared.resolve_actor(config)
    st.session_state[shared.ACTOR] = actor
    if actor is None:
        st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:")]).run()
        return

    pages: dict[str, list[st.Page]] = {
        "Ask": [st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True)]
    }
    if allows(actor, "expert"):
        pages["Improve"] = [
            st.Page("pages/review.py", title="Review", icon=":material/rate_review:")
        ]
    if allows(actor, "admin"):
        pages["Admin"] = [
            st.Page("pages/documents.py", title="Documents", icon=":material/description:"),
            st.Page("pages/insights.py", title="Insights", icon=":material/monitoring:"),
        ]
    page = st.navigation(pages)
    sidebar(actor, config)
    page.run()


main()
