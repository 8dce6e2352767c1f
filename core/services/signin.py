"""Local sign-ins that last: reloading the page or opening a deep link keeps a local user
signed in until the sign-in expires, they sign out, or their password changes.

Streamlit forgets its session state on every reload, so the browser keeps a cookie with a
random token (`COOKIE`); SQL keeps only the token's SHA-256, with the user, an expiry, and a
fingerprint of the user's bcrypt hash. The token is checked against that row on every page
load, so signing out revokes it for good (not just in this tab), and a changed password in the
secrets no longer matches the fingerprint, which ends every sign-in made with the old one.
OIDC users are not handled here: `st.login` keeps its own signed cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.auth import Actor, AuthConfig, LocalUser
from core.db import queries
from core.db.models import utcnow
from core.db.session import Database

COOKIE = "loupe_session"
_TOKEN_BYTES = 32


@dataclass(frozen=True)
class IssuedSignIn:
    """What the browser is to keep: the token for the cookie and how long it is good for."""

    token: str
    expires_at: datetime
    max_age_seconds: int


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def password_fingerprint(user: LocalUser) -> str:
    """Changes whenever the user's password (hence its bcrypt hash) changes."""
    return _digest(user.password_hash)


class SignInService:
    def __init__(self, db: Database, lifetime: timedelta) -> None:
        self.db = db
        self.lifetime = lifetime

    def issue(self, user: LocalUser, *, now: datetime | None = None) -> IssuedSignIn:
        """A new sign-in for a user whose password was just checked."""
        now = now or utcnow()
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        expires_at = now + self.lifetime
        with self.db.session() as s:
            queries.forget_expired_sign_ins(s, now)
            queries.add_sign_in(
                s, _digest(token), user.name, password_fingerprint(user), expires_at
            )
        return IssuedSignIn(token, expires_at, int(self.lifetime.total_seconds()))

    def resolve(
        self, token: str | None, config: AuthConfig, *, now: datetime | None = None
    ) -> Actor | None:
        """The local user this token signs in, or None when it is unknown, expired, revoked,
        made before a password change, or its user was removed from the secrets."""
        if not token:
            return None
        with self.db.session() as s:
            sign_in = queries.live_sign_in(s, _digest(token), now or utcnow())
            if sign_in is None:
                return None
            name, fingerprint = sign_in.user, sign_in.password_fingerprint
        user = config.users.get(name)
        if user is None or not secrets.compare_digest(fingerprint, password_fingerprint(user)):
            return None
        return Actor(user.name, user.role, user.display_name, "local")

    def revoke(self, token: str | None, *, now: datetime | None = None) -> bool:
        """End the sign-in (signing out): the token no longer works anywhere."""
        if not token:
            return False
        with self.db.session() as s:
            return queries.revoke_sign_in(s, _digest(token), now or utcnow())
