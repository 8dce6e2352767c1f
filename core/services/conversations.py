"""The conversation list: a person's past conversations, newest first, to search, rename,
delete and resume; admins may open anyone's.

Deleting is soft: the conversation disappears from every list and can no longer be opened, but
its row and answers stay, because answers are the audit trail (who was told what, from which
passages) and feed review and insights.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.auth import Actor, allows
from core.db import queries
from core.db.models import Conversation
from core.db.session import Database
from core.records import ConversationSummary
from core.vocab import Role

TITLE_CHARS = 80


def title_from(question: str) -> str:
    """A conversation's title from its first question: its first line, cut at a word."""
    line = " ".join(question.strip().splitlines()[0].split()) if question.strip() else ""
    if len(line) <= TITLE_CHARS:
        return line or "Untitled conversation"
    cut = line[: TITLE_CHARS - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


class ConversationService:
    def __init__(self, db: Database, workspace: str) -> None:
        self.db = db
        self.workspace = workspace

    def list(
        self, actor: Actor, *, search: str | None = None, everyone: bool = False, limit: int = 50
    ) -> list[ConversationSummary]:
        """The actor's conversations (everyone's for an admin who asks), newest first."""
        if everyone and not allows(actor, Role.admin):
            raise PermissionError("Only admins can list everyone's conversations.")
        with self.db.session() as s:
            rows = queries.list_conversations(
                s, self.workspace, user=None if everyone else actor.name, search=search, limit=limit
            )
            return [
                ConversationSummary(c.id, c.title or "Untitled conversation", c.user, last, count)
                for c, last, count in rows
            ]

    def rename(self, conversation_id: str, title: str, *, actor: Actor) -> str:
        """Give the conversation a new title (trimmed); returns it."""
        clean = " ".join(title.split())[:256]
        if not clean:
            raise ValueError("A conversation needs a title.")
        with self.db.session() as s:
            readable(s, self.workspace, conversation_id, actor).title = clean
        return clean

    def delete(self, conversation_id: str, *, actor: Actor) -> None:
        """Hide the conversation from its owner (and everyone); kept in SQL for audit."""
        with self.db.session() as s:
            conversation = readable(s, self.workspace, conversation_id, actor)
            queries.soft_delete_conversation(s, conversation, actor.name)


def readable(s: Session, workspace: str, conversation_id: str, actor: Actor) -> Conversation:
    """The conversation if it is open (not deleted) and the actor's own or the actor is an
    admin; LookupError or PermissionError otherwise."""
    conversation = queries.open_conversation(s, workspace, conversation_id)
    if conversation is None:
        raise LookupError(f"No conversation {conversation_id}")
    if conversation.user != actor.name and not allows(actor, Role.admin):
        raise PermissionError("This conversation belongs to someone else.")
    return conversation
