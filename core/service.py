"""Loupe: the one object the pages, the CLI and the API talk to.

A thin facade in the manner of datasette's `Datasette`: it builds the components once (through
`core.wiring`) and hands each call to the small service that owns it (documents, asking,
feedback and review, insights). Role checks happen in those services (`actor=`), not only in the
pages that hide what a role may not use. The CLI acts as the local operator, an admin, which is
the default `actor`. Everything returned is plain data (`core.records`, `core.answer.types`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from core.answer.prompts import ALL_PROMPTS
from core.answer.types import AnswerResult, AskEvent, Source
from core.auth import OPERATOR, Actor
from core.config import Settings, get_settings
from core.db import queries
from core.embeddings import embedding_key
from core.ingest.consistency import CheckReport
from core.ingest.pipeline import IngestItem, IngestResult, ProgressFn
from core.records import (
    CitedOriginal,
    ConversationSummary,
    DocumentInfo,
    FeedbackState,
    Gap,
    Report,
    ReviewItem,
)
from core.services.ask import AskService
from core.services.calibration import CalibrationService, Outcome
from core.services.conversations import ConversationService
from core.services.documents import DocumentService
from core.services.insights import InsightsService
from core.services.review import Decision, ReviewService
from core.services.signin import SignInService
from core.services.sources import cited_original, suggestions
from core.stores.base import SearchFilter
from core.vocab import DocumentStatus, FeedbackSource, Rating
from core.wiring import FROM_SETTINGS, build

__all__ = ["Decision", "Loupe"]


class Loupe:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        chat_model: BaseChatModel | None = FROM_SETTINGS,
    ) -> None:
        self.settings = settings or get_settings()
        parts = build(self.settings, chat_model=chat_model)
        self._parts = parts
        self.db, self.embeddings, self.store = parts.db, parts.embeddings, parts.store
        self.ingestor, self.chain = parts.ingestor, parts.chain
        with self.db.session() as s:
            for prompt in ALL_PROMPTS:
                queries.ensure_prompt_version(s, prompt.id, prompt.name, prompt.text)
        self.ingestor.recover_interrupted()
        self._documents = DocumentService(self.settings, self.db, self.store, self.ingestor)
        self._review = ReviewService(self.settings, self.db, self.embeddings, self.chain.retriever)
        self._ask = AskService(self.settings, self.db, self.chain, self._review.verified_answer)
        self._insights = InsightsService(
            self.settings,
            self.db,
            lambda texts: [self.embeddings.embed_query(text) for text in texts],
            self.chain.scale,
        )
        self._conversations = ConversationService(self.db, self.settings.workspace)
        # Local users' lasting sign-ins (the web app's cookie).
        self.sign_ins = SignInService(self.db, timedelta(hours=self.settings.sign_in_hours))
        self.calibration = CalibrationService(self.settings, self.db, self.chain)

    def refresh_feedback(self) -> None:
        self._review.refresh()

    # Documents -----------------------------------------------------------------------------

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
        actor: Actor = OPERATOR,
    ) -> list[IngestResult]:
        return self._documents.ingest_paths(
            paths, tags=tags, uploaded_by=uploaded_by, progress=progress, actor=actor
        )

    def ingest(
        self,
        items: Sequence[IngestItem],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
        actor: Actor = OPERATOR,
    ) -> list[IngestResult]:
        return self._documents.ingest(
            items, tags=tags, uploaded_by=uploaded_by, progress=progress, actor=actor
        )

    def load_samples(
        self, *, progress: ProgressFn | None = None, actor: Actor = OPERATOR
    ) -> list[IngestResult]:
        return self._documents.load_samples(progress=progress, actor=actor)

    def documents(self, status: DocumentStatus | None = None) -> list[DocumentInfo]:
        return self._documents.documents(status)

    def stale_documents(self) -> list[DocumentInfo]:
        """Documents indexed with another embedding model: not searched until re-indexed."""
        return self._documents.stale()

    @property
    def embedding_model(self) -> str:
        return embedding_key(self.settings)

    def delete_document(self, document_id: str, *, actor: Actor = OPERATOR) -> bool:
        return self._documents.delete(document_id, actor=actor)

    def reindex(
        self, document_id: str, progress: ProgressFn | None = None, *, actor: Actor = OPERATOR
    ) -> IngestResult:
        return self._documents.reindex(document_id, progress, actor=actor)

    def check(self, *, repair: bool = False, actor: Actor = OPERATOR) -> CheckReport:
        """Does the vector store hold exactly what SQL says? (`python -m core check`)"""
        return self._documents.check(repair=repair, actor=actor)

    def set_document_tags(
        self, document_id: str, tags: Sequence[str], *, actor: Actor = OPERATOR
    ) -> IngestResult | None:
        return self._documents.set_tags(document_id, tags, actor=actor)

    # Questions -----------------------------------------------------------------------------

    def ask_stream(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        history: Sequence[tuple[str, str]] | None = None,
        filters: SearchFilter | None = None,
        actor: Actor = OPERATOR,
    ) -> Iterator[AskEvent]:
        """The answer is saved in `actor`'s name; `conversation_id` must be theirs
        (PermissionError otherwise, before anything is asked)."""
        return self._ask.ask_stream(
            question,
            conversation_id=conversation_id,
            history=history,
            filters=filters,
            actor=actor,
        )

    def ask(self, question: str, **kwargs: Any) -> AnswerResult:
        for event in self.ask_stream(question, **kwargs):
            if event.result is not None:
                return event.result
        raise RuntimeError("the chain ended without a result")

    def relevance(self, source: Source) -> float:
        return self._ask.relevance(source)

    def conversation_history(
        self, conversation_id: str, *, actor: Actor = OPERATOR
    ) -> list[tuple[str, str]]:
        return self._ask.conversation_history(conversation_id, actor=actor)

    def new_conversation(self, title: str | None = None, *, actor: Actor = OPERATOR) -> str:
        return self._ask.new_conversation(title, actor=actor)

    def conversation(self, conversation_id: str, *, actor: Actor = OPERATOR) -> list[AnswerResult]:
        return self._ask.conversation(conversation_id, actor=actor)

    def conversations(
        self, actor: Actor, *, search: str | None = None, everyone: bool = False
    ) -> list[ConversationSummary]:
        """The actor's conversations, most recently active first (everyone's for an admin)."""
        return self._conversations.list(actor, search=search, everyone=everyone)

    def rename_conversation(self, conversation_id: str, title: str, *, actor: Actor) -> str:
        return self._conversations.rename(conversation_id, title, actor=actor)

    def delete_conversation(self, conversation_id: str, *, actor: Actor) -> None:
        """Hidden from everyone from now on; kept in SQL for audit."""
        self._conversations.delete(conversation_id, actor=actor)

    def cited_original(self, answer_id: str, n: int, *, actor: Actor) -> CitedOriginal:
        """Passage `n` of an answer and the original it came from (for the Source page)."""
        return cited_original(self.db, self.settings.workspace, answer_id, n, actor=actor)

    def suggested_questions(self, limit: int = 4) -> list[str]:
        """Questions a new conversation offers, drawn from the indexed documents' headings."""
        return suggestions(self.documents(DocumentStatus.ready), limit)

    # Feedback and review --------------------------------------------------------------------

    def feedback(
        self,
        answer_id: str,
        *,
        rating: str | None = None,
        comment: str | None = None,
        edited_answer: str | None = None,
        citation_verdicts: Mapping[str | int, str] | None = None,
        role: str = "user",
        source: str = FeedbackSource.api,
        actor: Actor = OPERATOR,
    ) -> int:
        """Feedback is recorded in `actor`'s name, at most at `actor`'s role."""
        return self._review.feedback(
            answer_id,
            rating=rating,
            comment=comment,
            edited_answer=edited_answer,
            citation_verdicts=citation_verdicts,
            role=role,
            source=source,
            actor=actor,
        )

    def feedback_state(
        self, answer_ids: Sequence[str], *, actor: Actor = OPERATOR
    ) -> dict[str, FeedbackState]:
        return self._review.feedback_state(answer_ids, actor=actor)

    def review_queue(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        rating: Rating | str | None = None,
        document_id: str | None = None,
        reviewed: bool | None = None,
        limit: int = 100,
        actor: Actor = OPERATOR,
    ) -> list[ReviewItem]:
        return self._review.queue(
            since=since,
            until=until,
            rating=rating,
            document_id=document_id,
            reviewed=reviewed,
            limit=limit,
            actor=actor,
        )

    def review_progress(self, *, actor: Actor = OPERATOR) -> tuple[int, int]:
        return self._review.progress(actor=actor)

    def review(
        self,
        answer_id: str,
        decision: Decision,
        *,
        reason: str | None = None,
        edited_answer: str | None = None,
        citation_verdicts: Mapping[str | int, str] | None = None,
        actor: Actor = OPERATOR,
    ) -> int:
        return self._review.review(
            answer_id,
            decision,
            reason=reason,
            edited_answer=edited_answer,
            citation_verdicts=citation_verdicts,
            actor=actor,
        )

    # Insights and exports (admins) -----------------------------------------------------------

    def insights(self, *, since: datetime | None = None, actor: Actor = OPERATOR) -> Report:
        return self._insights.report(since=since, actor=actor)

    def not_covered(self, *, since: datetime | None = None, actor: Actor = OPERATOR) -> list[Gap]:
        """What the documents don't cover: abstentions and thumbs-down by similar question."""
        return self._insights.not_covered(since=since, actor=actor)

    def export_feedback(
        self,
        fmt: Literal["csv", "jsonl"],
        *,
        since: datetime | None = None,
        actor: Actor = OPERATOR,
    ) -> str:
        return self._insights.export_feedback(fmt, since=since, actor=actor)

    def export(self, kind: str, *, actor: Actor = OPERATOR) -> list[dict[str, object]]:
        return self._review.export(kind, actor=actor)

    # Calibration (admins) ---------------------------------------------------------------------

    def calibrate(
        self,
        records: Sequence[dict[str, Any]],
        *,
        dataset: str,
        language: str,
        training_hash: str,
        target_precision: float | None = None,
        install: bool = True,
        without: Sequence[str] = (),
        actor: Actor = OPERATOR,
    ) -> Outcome:
        return self.calibration.fit_records(
            records,
            dataset=dataset,
            language=language,
            training_hash=training_hash,
            target_precision=target_precision,
            install=install,
            without=without,
            actor=actor,
        )

    def refit_from_feedback(self, *, actor: Actor = OPERATOR) -> Outcome:
        return self.calibration.refit_from_feedback(actor=actor)

    def close(self) -> None:
        self._parts.close()
