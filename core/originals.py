"""Open the original behind a citation: which document and page answer `[n]` of an answer
cited, whether the original is still kept, and its bytes for a download.

Who may open it: whoever may read the answer that cited it, i.e. the person who asked and
experts and admins (who review every answer). Loupe has no per-document permissions, so "a
reader of that document" is a reader of an answer that quoted it; the passage itself is already
on their screen, the original only shows it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from core.auth import Actor, allows
from core.chain import Source
from core.db import queries
from core.db.session import Database

_SOURCE_FIELDS = {f.name for f in fields(Source)}
MIME_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/csv",
}


@dataclass(frozen=True)
class CitedOriginal:
    """A cited passage and the original it came from (`path` None once the document was
    deleted or its file is gone: the passage as quoted is all that is left)."""

    answer_id: str
    question: str
    source: Source
    document_id: str
    name: str
    kind: str
    path: Path | None

    @property
    def mime(self) -> str:
        return MIME_TYPES.get(self.kind, "application/octet-stream")


def may_read_answer(actor: Actor, answer_user: str | None) -> bool:
    return answer_user == actor.name or allows(actor, "expert")


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
    path = Path(document.stored_path) if document is not None and document.stored_path else None
    return CitedOriginal(
        answer_id=answer_id,
        question=question,
        source=source,
        document_id=source.document_id,
        name=document.name if document is not None else source.document,
        kind=document.kind if document is not None else "",
        path=path if path is not None and path.exists() else None,
    )
