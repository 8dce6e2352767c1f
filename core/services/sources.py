"""Open the original behind a citation: which document and page answer `[n]` of an answer
cited, and whether the original is still kept (for the Source page and its download); and the
questions a new conversation offers, drawn from the originals' headings.

Who may open it: whoever may read the answer that cited it, i.e. the person who asked and
experts and admins (who review every answer). Loupe has no per-document permissions, so "a
reader of that document" is a reader of an answer that quoted it; the passage itself is already
on their screen, the original only shows it in place.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from pathlib import Path

from core.answer.types import Source
from core.auth import Actor, allows
from core.db import queries
from core.db.session import Database
from core.records import CitedOriginal, DocumentInfo
from core.suggestions import Indexed, suggested_questions
from core.vocab import Role

_SOURCE_FIELDS = {f.name for f in fields(Source)}
MIME_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/csv",
}


def may_read_answer(actor: Actor, answer_user: str | None) -> bool:
    return answer_user == actor.name or allows(actor, Role.expert)


def cited_original(
    db: Database, workspace: str, answer_id: str, n: int, *, actor: Actor
) -> CitedOriginal:
    """Passage `n` of the answer and its original. LookupError when there is no such answer
    or passage; PermissionError when the actor may not read the answer."""
    with db.session() as s:
        answer = queries.get_answer(s, answer_id)
        if answer is None or answer.workspace != workspace:
            raise LookupError(f"No answer {answer_id}")
        if not may_read_answer(actor, answer.user):
            raise PermissionError("This answer was given to someone else.")
        raw = next((src for src in answer.sources if src.get("n") == n), None)
        if raw is None:
            raise LookupError(f"The answer has no passage [{n}].")
        source = Source(**{k: v for k, v in raw.items() if k in _SOURCE_FIELDS})
        document = queries.get_document(s, source.document_id)
        question = answer.question
        path = Path(document.stored_path) if document and document.stored_path else None
        kind = document.kind if document is not None else ""
        name = document.name if document is not None else source.document
    return CitedOriginal(
        answer_id=answer_id,
        question=question,
        source=source,
        document_id=source.document_id,
        name=name,
        kind=kind,
        path=path if path is not None and path.exists() else None,
        mime=MIME_TYPES.get(kind, "application/octet-stream"),
    )


# Documents whose headings suggestions are drawn from: the newest, so new uploads show up.
SUGGESTION_DOCUMENTS = 8


def suggestions(documents: list[DocumentInfo], limit: int = 4) -> list[str]:
    """Questions drawn from the newest ready documents' headings (`core.suggestions`)."""
    newest = tuple(
        (d.name, d.stored_path, d.content_hash) for d in documents[:SUGGESTION_DOCUMENTS]
    )
    return list(_suggestions(newest, limit))


@lru_cache(maxsize=32)
def _suggestions(documents: tuple[tuple[str, str | None, str], ...], limit: int) -> tuple[str, ...]:
    """Cached by name, stored path and content hash: reading the originals is not free, and
    the same documents give the same questions."""
    indexed = [Indexed(name, Path(path) if path else None) for name, path, _ in documents]
    return tuple(suggested_questions(indexed, limit))
