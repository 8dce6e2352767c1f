"""Who is acting, and what their role lets them do.

Three roles, each including the one before: `user` asks and gives feedback, `expert` also
reviews answers, `admin` also manages documents and reads insights. Pages hide what a role may
not use, and `core` refuses it again with `require`, so a hidden page is never the only guard.

Sign-in is configured in the `[auth]` section of `.streamlit/secrets.toml` (see
`.streamlit/secrets.toml.example`):
- local users in `[auth.users.NAME]` with a bcrypt `password_hash` and a `role`;
- OpenID Connect through Streamlit's `st.login` when Streamlit's own keys are there
  (`redirect_uri`, `cookie_secret`, and a provider's `client_id`, `client_secret`,
  `server_metadata_url`), with roles given by e-mail in `[auth.roles]`;
- neither: single-user local mode, where the one user is an admin.

This module reads a plain mapping (the `[auth]` section), not Streamlit, so it is testable and
usable without a running app.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import bcrypt

from core.vocab import Role

ROLES: tuple[Role, ...] = tuple(Role)
Mode = Literal["single-user", "local", "oidc", "local+oidc"]
# Keys Streamlit needs in `[auth]` (shared) and in each provider's table for `st.login`.
_OIDC_SHARED_KEYS = ("redirect_uri", "cookie_secret")
_OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
# Tables under `[auth]` that are Loupe's, not OIDC providers.
_LOUPE_TABLES = ("users", "roles")


@dataclass(frozen=True)
class Actor:
    """A signed-in person (or the local operator): recorded on answers, feedback, uploads."""

    name: str
    role: Role
    display_name: str = ""
    source: Literal["local", "oidc", "single-user", "operator"] = "local"

    @property
    def label(self) -> str:
        return self.display_name or self.name


# The command line acts as the machine's operator: whoever can run it can already read the data
# directory, so role checks would protect nothing there.
OPERATOR = Actor("operator", Role.admin, "Local operator", "operator")
# The one user of an app with no users configured.
SINGLE_USER = Actor("local", Role.admin, "Local admin", "single-user")


def as_role(value: object) -> Role:
    if value not in ROLES:
        raise ValueError(f"Unknown role {value!r}: use one of {', '.join(ROLES)}.")
    return Role(str(value))


def role_rank(role: str) -> int:
    return ROLES.index(as_role(role))


def allows(actor: Actor | None, role: str) -> bool:
    """Whether the actor's role is at least `role`."""
    return actor is not None and role_rank(actor.role) >= role_rank(role)


def require(actor: Actor | None, role: str) -> Actor:
    """The actor, if their role is at least `role`; PermissionError otherwise."""
    if actor is None:
        raise PermissionError("Sign in first.")
    if not allows(actor, role):
        raise PermissionError(
            f"This needs the {role} role; {actor.label} is signed in as {actor.role}."
        )
    return actor


@dataclass(frozen=True)
class LocalUser:
    name: str
    password_hash: bytes
    role: Role
    display_name: str = ""


@dataclass(frozen=True)
class AuthConfig:
    """Sign-in settings from the `[auth]` section of the secrets."""

    users: dict[str, LocalUser] = field(default_factory=dict)
    # OIDC provider names for `st.login(provider)`; None stands for Streamlit's unnamed default.
    providers: tuple[str | None, ...] = ()
    # E-mail (lower case) → role for OIDC users; anyone else signs in as `default_role`.
    roles: dict[str, Role] = field(default_factory=dict)
    default_role: Role = Role.user

    @classmethod
    def from_secrets(cls, section: Mapping[str, Any] | None) -> AuthConfig:
        """Parse the `[auth]` section; a mistake in it raises ValueError naming the entry,
        because a silently ignored user would fall back to a mode nobody meant."""
        section = section or {}
        users = {}
        for name, entry in dict(section.get("users") or {}).items():
            if not isinstance(entry, Mapping) or not entry.get("password_hash"):
                raise ValueError(f"[auth.users.{name}] needs a password_hash (bcrypt).")
            users[str(name)] = LocalUser(
                str(name),
                str(entry["password_hash"]).encode(),
                as_role(entry.get("role", "user")),
                str(entry.get("name", "")),
            )
        roles = {
            str(email).lower(): as_role(role)
            for email, role in dict(section.get("roles") or {}).items()
        }
        default_role = as_role(section.get("default_role", "user"))
        return cls(users, _oidc_providers(section), roles, default_role)

    @property
    def mode(self) -> Mode:
        if self.users and self.providers:
            return "local+oidc"
        if self.providers:
            return "oidc"
        return "local" if self.users else "single-user"

    def check_password(self, username: str, password: str) -> Actor | None:
        """The user, if the password matches their bcrypt hash; None otherwise."""
        user = self.users.get(username.strip())
        hashed = user.password_hash if user is not None else _dummy_hash()
        try:
            matches = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:  # a malformed hash in the secrets: no one signs in with it
            matches = False
        if user is None or not matches:
            return None
        return Actor(user.name, user.role, user.display_name, "local")

    def oidc_actor(self, claims: Mapping[str, Any]) -> Actor:
        """An OIDC-signed-in user, named by e-mail (or subject) and given their mapped role."""
        email = str(claims.get("email") or "")
        name = email or str(claims.get("sub") or "unknown")
        role = self.roles.get(email.lower(), self.default_role)
        return Actor(name, role, str(claims.get("name") or ""), "oidc")


@cache
def _dummy_hash() -> bytes:
    """Checked when a user name is unknown, so a wrong name takes as long as a wrong password
    and response times do not reveal which names exist."""
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt())


def _oidc_providers(section: Mapping[str, Any]) -> tuple[str | None, ...]:
    """Providers Streamlit can sign in with, given its layout of the `[auth]` section."""
    if not all(section.get(key) for key in _OIDC_SHARED_KEYS):
        return ()
    providers: list[str | None] = []
    if all(section.get(key) for key in _OIDC_PROVIDER_KEYS):
        providers.append(None)
    for name, table in section.items():
        if (
            name not in _LOUPE_TABLES
            and isinstance(table, Mapping)
            and all(table.get(key) for key in _OIDC_PROVIDER_KEYS)
        ):
            providers.append(str(name))
    return tuple(providers)


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m core.auth hash`: print a bcrypt hash for `[auth.users.NAME].password_hash`."""
    parser = argparse.ArgumentParser(prog="python -m core.auth")
    parser.add_argument("command", choices=["hash"])
    parser.parse_args(argv)
    password = getpass.getpass("Password: ")
    if not password or password != getpass.getpass("Again: "):
        print("The passwords are empty or differ.", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
