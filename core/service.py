"""Loupe's one entry point for the CLI and the web pages: ingest, ask, feedback, review,
documents, insights.

It wires settings to the SQL store, the vector store, the embedding model and the chain, and
records every answer with what is needed to reproduce and learn from it. Role checks live here
(`actor=`), not only in the pages that hide what a role may not use. The CLI acts as the local
operator, an admin, which is the default `actor`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from sqlalchemy import select

from core.auth import OPERATOR, Actor, allows, require
from core.chain import AnswerResult, AskEvent, GeneratorKind, RagChain, Source
from core.confidence import Confidence
from core.config import Settings, get_settings
from core.db import queries
from core.db.models import Answer, Conversation, Document, DocumentStatus, Feedback, Rating
from core.db.session import Database
from core.embeddings import dimension as embedding_dimension
from core.embeddings import get_embeddings, model_name, similarity_scale
from core.extractive import ExtractiveAnswerer
from core.feedback import (
    VerifiedIndex,
    export_eval_set,
    export_finetune,
    export_preferences,
    retrieval_boosts,
    verified_answers,
)
from core.ingest.pipeline import (
    IngestItem,
    Ingestor,
    IngestResult,
    ProgressFn,
    collect_paths,
)
from core.insights import Report, feedback_rows, report, to_csv, to_jsonl
from core.llm import make_chat_model
from core.prompts import ALL_PROMPTS
from core.retrieval import StoreRetriever
from core.samples import SAMPLE_TAG, sample_items
from core.stores import make_store
from core.stores.base import SearchFilter

_FROM_SETTINGS: Any = object()
_SOURCE_FIELDS = {f.name for f in fields(Source)}
Decision = Literal["approve", "edit", "reject"]


@dataclass
class FeedbackState:
    """One person's current feedback on an answer, folded from their append-only rows: the
    newest rating, comment and edit win, and each citation keeps its newest verdict."""

    rating: Rating | None = None
    comment: str | None = None
    edited_answer: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReviewItem:
    """An answer in the review queue with all its feedback, oldest first."""

    answer: AnswerResult
    created_at: datetime
    feedback: list[Feedback]

    @property
    def reviewed(self) -> bool:
        return any(queries.is_review(fb) for fb in self.feedback)

    def count(self, rating: Rating) -> int:
        return sum(fb.rating == rating for fb in self.feedback)


class Loupe:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        chat_model: BaseChatModel | None = _FROM_SETTINGS,
    ) -> None:
        self.settings = settings or get_settings()
        s = self.settings
        self.db = Database.from_settings(s)
        self.embeddings = get_embeddings(s)
        self.store = make_store(s, dimension=embedding_dimension(self.embeddings))
        self.ingestor = Ingestor(
            db=self.db,
            store=self.store,
            embeddings=self.embeddings,
            files_dir=s.files_dir,
            workspace=s.workspace,
            chunk_size=s.chunk_size,
            chunk_overlap=s.chunk_overlap,
            embed_batch_size=s.embed_batch_size,
        )
        model = make_chat_model(s) if chat_model is _FROM_SETTINGS else chat_model
        self.chain = RagChain(
            retriever=StoreRetriever(
                store=self.store, embeddings=self.embeddings, k=s.retrieval_k, alpha=s.hybrid_alpha
            ),
            extractive=ExtractiveAnswerer(self.embeddings),
            chat_model=model,
            model_name=s.llm_model,
            scale=similarity_scale(s),
        )
        with self.db.session() as session:
            for prompt in ALL_PROMPTS:
                queries.ensure_prompt_version(session, prompt.id, prompt.name, prompt.text)
        self.ingestor.recover_interrupted()
        self.verified = VerifiedIndex(self.embeddings, [])
        self.refresh_feedback()

    def refresh_feedback(self) -> None:
        """Re-derive retrieval boosts and verified answers from the feedback rows."""
        with self.db.session() as s:
            self.chain.retriever.boosts = retrieval_boosts(s, self.settings.workspace)
            answers = verified_answers(s, self.settings.workspace)
        self.verified = VerifiedIndex(self.embeddings, answers)

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
        require(actor, "admin")
        results: list[IngestResult] = []
        items: list[IngestItem] = []
        for path in collect_paths(paths):
            try:
                items.append(IngestItem(path.name, path.read_bytes()))
            except OSError as exc:
                results.append(IngestResult(path.name, "failed", error=f"Cannot read file: {exc}"))
        return results + self.ingest(
            items, tags=tags, uploaded_by=uploaded_by, progress=progress, actor=actor
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
        require(actor, "admin")
        return self.ingestor.ingest(items, tags=tags, uploaded_by=uploaded_by, progress=progress)

    def load_samples(
        self, *, progress: ProgressFn | None = None, actor: Actor = OPERATOR
    ) -> list[IngestResult]:
        """Index the sample documents shipped in `samples/`, tagged `sample`."""
        return self.ingest(
            sample_items(),
            tags=[SAMPLE_TAG],
            uploaded_by=actor.name,
            progress=progress,
            actor=actor,
        )

    def documents(self, status: DocumentStatus | None = None) -> list[Document]:
        with self.db.session() as s:
            return queries.list_documents(s, self.settings.workspace, status=status)

    def delete_document(self, document_id: str, *, actor: Actor = OPERATOR) -> bool:
        """Chunks go first: a document row without chunks is harmless, the reverse is not."""
        require(actor, "admin")
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is None:
                return False
            stored = Path(doc.stored_path) if doc.stored_path else None
        self.store.delete_document(document_id)
        with self.db.session() as s:
            queries.delete_document_row(s, document_id)
            # The original goes too, unless another document has the same bytes.
            shared = stored is not None and any(
                d.stored_path == str(stored)
                for d in queries.list_documents(s, self.settings.workspace)
            )
        if stored is not None and not shared:
            stored.unlink(missing_ok=True)
        return True

    def reindex(
        self, document_id: str, progress: ProgressFn | None = None, *, actor: Actor = OPERATOR
    ) -> IngestResult:
        require(actor, "admin")
        return self.ingestor.reindex(document_id, progress)

    def set_document_tags(
        self, document_id: str, tags: Sequence[str], *, actor: Actor = OPERATOR
    ) -> IngestResult | None:
        """Replace a document's tags. Searches filter on the tags stored with each chunk, so a
        ready document is re-indexed from its original to carry the new ones (None when the
        document is not ready and has no chunks to update)."""
        require(actor, "admin")
        clean = sorted({tag.strip() for tag in tags if tag.strip()})
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is None:
                raise LookupError(f"No document {document_id}")
            doc.tags = clean
            ready = doc.status == DocumentStatus.ready
        return self.ingestor.reindex(document_id) if ready else None

    # Questions -----------------------------------------------------------------------------

    def ask_stream(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        history: Sequence[tuple[str, str]] | None = None,
        filters: SearchFilter | None = None,
        user: str | None = None,
    ) -> Iterator[AskEvent]:
        """Streams the answer; the final `done` event carries the result, already saved."""
        question = question.strip()
        if not question:
            raise ValueError("The question is empty.")
        if history is None and conversation_id is not None:
            history = self.conversation_history(conversation_id)
        for event in self.chain.stream(question, history=history or (), filters=filters):
            if event.kind == "done" and event.result is not None:
                result = event.result
                result.verified = self.verified.match(
                    self.embeddings.embed_query(result.standalone_question)
                )
                result.answer_id = self._save_answer(result, conversation_id, filters, user)
            yield event

    def ask(self, question: str, **kwargs: Any) -> AnswerResult:
        for event in self.ask_stream(question, **kwargs):
            if event.result is not None:
                return event.result
        raise RuntimeError("the chain ended without a result")

    def relevance(self, source: Source) -> float:
        """How well a passage matches its question, from 0 (unrelated) to 1 (clearly related),
        on the embedding model's own similarity scale. The fused score cannot say this: it
        ranks passages within one result, so the best of a poor lot still scores 1."""
        if source.vector_score is None:
            return source.score
        return self.chain.scale.strength(source.vector_score)

    def conversation_history(self, conversation_id: str) -> list[tuple[str, str]]:
        with self.db.session() as s:
            turns: list[tuple[str, str]] = []
            for answer in queries.conversation_answers(s, conversation_id):
                turns += [("user", answer.question), ("assistant", answer.answer)]
            return turns

    def new_conversation(self, user: str | None = None, title: str | None = None) -> str:
        with self.db.session() as s:
            return queries.create_conversation(s, self.settings.workspace, user, title).id

    def conversation(self, conversation_id: str, *, actor: Actor = OPERATOR) -> list[AnswerResult]:
        """A conversation's answers as they were given, oldest first, for showing it again
        (after a reload). Only its owner and admins may read it."""
        with self.db.session() as s:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None or conversation.workspace != self.settings.workspace:
                raise LookupError(f"No conversation {conversation_id}")
            if conversation.user != actor.name and not allows(actor, "admin"):
                raise PermissionError("This conversation belongs to someone else.")
            return [
                _result_from_row(row) for row in queries.conversation_answers(s, conversation_id)
            ]

    def _save_answer(
        self,
        result: AnswerResult,
        conversation_id: str | None,
        filters: SearchFilter | None,
        user: str | None,
    ) -> str:
        with self.db.session() as s:
            row = Answer(
                workspace=self.settings.workspace,
                conversation_id=conversation_id,
                user=user,
                question=result.question,
                standalone_question=result.standalone_question,
                answer=result.answer,
                sources=[source.as_dict() for source in result.sources],
                filters={
                    "document_ids": list(filters.document_ids) if filters else [],
                    "tags": list(filters.tags) if filters else [],
                },
                prompt_version=result.prompt_version,
                model=result.model,
                generator=result.generator,
                notice=result.notice,
                confidence=result.confidence.score,
                confidence_label=result.confidence.label,
                confidence_features={
                    **result.confidence.features,
                    "reasons": result.confidence.reasons,
                    "embedding_model": model_name(self.embeddings),
                    "alpha": self.settings.hybrid_alpha,
                },
                timings=result.timings,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
            s.add(row)
            s.flush()
            return row.id

    # Feedback ------------------------------------------------------------------------------

    def feedback(
        self,
        answer_id: str,
        *,
        rating: str | None = None,
        comment: str | None = None,
        edited_answer: str | None = None,
        citation_verdicts: Mapping[str | int, str] | None = None,
        role: str = "user",
        user: str | None = None,
        source: str = "api",
        actor: Actor = OPERATOR,
    ) -> int:
        """Record feedback (a new row, never an update); `role` is the weight it carries, so
        nobody may give it with a role above their own."""
        require(actor, role)
        with self.db.session() as s:
            row = queries.add_feedback(
                s,
                answer_id,
                rating=rating,
                comment=comment,
                edited_answer=edited_answer,
                citation_verdicts=citation_verdicts,
                role=role,
                user=user,
                source=source,
            )
            s.flush()
            feedback_id = row.id
        if citation_verdicts or role in queries.REVIEWER_ROLES:
            self.refresh_feedback()
        return feedback_id

    def feedback_state(
        self, answer_ids: Sequence[str], user: str | None
    ) -> dict[str, FeedbackState]:
        """Each answer's current feedback from `user`, read back from SQL so a reload shows
        what was saved."""
        states: dict[str, FeedbackState] = {answer_id: FeedbackState() for answer_id in answer_ids}
        with self.db.session() as s:
            rows = s.scalars(
                select(Feedback)
                .where(Feedback.answer_id.in_(list(answer_ids)), Feedback.user == user)
                .order_by(Feedback.created_at, Feedback.id)
            )
            for fb in rows:
                state = states[fb.answer_id]
                state.rating = fb.rating or state.rating
                state.comment = fb.comment or state.comment
                state.edited_answer = fb.edited_answer or state.edited_answer
                state.verdicts.update(fb.citation_verdicts or {})
        return states

    # Review (experts) ------------------------------------------------------------------------

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
        """Answers most in need of review first: thumbs-down, then least confident."""
        require(actor, "expert")
        with self.db.session() as s:
            rows = queries.review_queue(
                s,
                self.settings.workspace,
                since=since,
                until=until,
                rating=rating,
                document_id=document_id,
                reviewed=reviewed,
                limit=limit,
            )
            return [ReviewItem(_result_from_row(a), a.created_at, list(a.feedback)) for a in rows]

    def review_progress(self, *, actor: Actor = OPERATOR) -> tuple[int, int]:
        """(reviewed, remaining) answers."""
        require(actor, "expert")
        with self.db.session() as s:
            return queries.review_progress(s, self.settings.workspace)

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
        """An expert's verdict on an answer. Approving or editing makes it a verified answer
        (offered again for the same question); rejecting withdraws that and needs a reason, so
        whoever fixes the documents knows what was wrong."""
        require(actor, "expert")
        rating: str | None = None
        if decision == "approve":
            rating, edited_answer = Rating.up, None
        elif decision == "edit":
            if not (edited_answer or "").strip():
                raise ValueError("Write the corrected answer to save an edit.")
        elif decision == "reject":
            if not (reason or "").strip():
                raise ValueError("Say why the answer is rejected.")
            rating, edited_answer = Rating.down, None
        else:
            raise ValueError(f"Unknown decision {decision!r}: approve, edit or reject.")
        return self.feedback(
            answer_id,
            rating=rating,
            comment=reason,
            edited_answer=edited_answer,
            citation_verdicts=citation_verdicts,
            role=actor.role,
            user=actor.name,
            source="review",
            actor=actor,
        )

    # Insights and exports (admins) -----------------------------------------------------------

    def insights(self, *, since: datetime | None = None, actor: Actor = OPERATOR) -> Report:
        require(actor, "admin")
        with self.db.session() as s:
            return report(s, self.settings.workspace, since=since)

    def export_feedback(
        self,
        fmt: Literal["csv", "jsonl"],
        *,
        since: datetime | None = None,
        actor: Actor = OPERATOR,
    ) -> str:
        """Every feedback row with its question and answer, as CSV or JSON Lines text."""
        require(actor, "admin")
        with self.db.session() as s:
            rows = feedback_rows(s, self.settings.workspace, since=since)
        return to_csv(rows) if fmt == "csv" else to_jsonl(rows)

    def export(self, kind: str, *, actor: Actor = OPERATOR) -> list[dict[str, object]]:
        """Datasets from feedback: `finetune`, `preferences` or `eval`."""
        require(actor, "admin")
        exporters = {
            "finetune": export_finetune,
            "preferences": export_preferences,
            "eval": export_eval_set,
        }
        if kind not in exporters:
            raise ValueError(f"Unknown export '{kind}': choose one of {', '.join(exporters)}.")
        with self.db.session() as s:
            return list(exporters[kind](s, self.settings.workspace))

    def close(self) -> None:
        self.store.close()
        self.db.engine.dispose()


def _result_from_row(row: Answer) -> AnswerResult:
    """An answer as the chain returned it, rebuilt from its SQL row."""
    features = dict(row.confidence_features or {})
    reasons = [str(reason) for reason in features.pop("reasons", [])]
    return AnswerResult(
        question=row.question,
        standalone_question=row.standalone_question,
        answer=row.answer,
        sources=[
            Source(**{k: v for k, v in source.items() if k in _SOURCE_FIELDS})
            for source in row.sources
        ],
        confidence=Confidence(
            row.confidence,
            row.confidence_label,
            reasons,
            {k: v for k, v in features.items() if isinstance(v, int | float)},
        ),
        generator=cast(GeneratorKind, row.generator),
        model=row.model,
        prompt_version=row.prompt_version,
        notice=row.notice,
        timings=dict(row.timings or {}),
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        answer_id=row.id,
    )
