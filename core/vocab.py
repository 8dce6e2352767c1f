"""Loupe's shared vocabulary: the names every layer agrees on, in one place.

Plain string enums, so they compare equal to the strings stored in SQL and sent over the CLI,
and so pages and the answer flow can use them without importing the database layer.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """Each role includes the one before: `user` asks and gives feedback, `expert` also
    reviews answers, `admin` also manages documents and reads insights."""

    user = "user"
    expert = "expert"
    admin = "admin"


REVIEWER_ROLES: tuple[Role, ...] = (Role.expert, Role.admin)


class DocumentStatus(enum.StrEnum):
    pending = "pending"
    indexing = "indexing"
    ready = "ready"
    failed = "failed"


class Rating(enum.StrEnum):
    up = "up"
    down = "down"


class Verdict(enum.StrEnum):
    """An expert's judgement of one cited passage."""

    supports = "supports"
    does_not_support = "does_not_support"


class FeedbackSource(enum.StrEnum):
    """Where feedback was given: a reaction while asking, the expert queue, or the CLI/API."""

    chat = "chat"
    review = "review"
    api = "api"


def is_review(role: str, source: str) -> bool:
    """An expert's considered verdict: given in the review queue or through the API, not a
    thumb in chat (in single-user mode the chat user is an admin)."""
    return role in REVIEWER_ROLES and source != FeedbackSource.chat
