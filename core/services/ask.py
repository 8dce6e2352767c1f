"""Asking: stream an answer through the chain, record it with everything needed to reproduce
and learn from it, and read conversations back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from typing import Any, cast

from core.answer.chain import RagChain
from core.answer.types import AnswerResult, AskEvent, Confidence, GeneratorKind, Source
from core.auth import Actor, allows
from core.config import Settings
from core.db import queries
from core.db.models import Answer
from core.db.session import Database
from core.embeddings import model_name
from core.services.conversations import readable, title_from
from core.stores.base import SearchFilter
from core.vocab import Role

_SOURCE_FIELDS = {f.name for f in fields(Source)}
# (question, standalone question, filters) → (verified result to serve, or why one was not)
VerifiedLookup = Callable[[str, str, SearchFilter | None], tuple[AnswerResult | None, str | None]]


class AskService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        chain: RagChain,
        verified: VerifiedLookup,
    ) -> None:
        """`verified` finds the expert-verified answer to a question before anything is
        generated (ReviewService.verified_answer)."""
        self.settings = settings
        self.db = db
        self.chain = chain
        self.verified = verified

    def ask_stream(
        self,
        question: str,
        *,
        conversation_id: str | None,
        history: Sequence[tuple[str, str]] | None,
        filters: SearchFilter | None,
        actor: Actor,
    ) -> Iterator[AskEvent]:
        """Streams the answer; the final `done` event carries the result, already saved, in
        `actor`'s name. A conversation is continued only by its owner (not even an admin may
        add to someone else's: the question would be condensed with their history and land in
        it); the check runs before the model is asked."""
        question = question.strip()
        if not question:
            raise ValueError("The question is empty.")
        if conversation_id is not None:
            turns = self._owned_turns(conversation_id, actor, readers_too=False)
            history = turns if history is None else history
        return self._stream(question, conversation_id, history, filters, actor)

    def _stream(
        self,
        question: str,
        conversation_id: str | None,
        history: Sequence[tuple[str, str]] | None,
        filters: SearchFilter | None,
        actor: Actor,
    ) -> Iterator[AskEvent]:
        started = time.perf_counter()
        condensed = self.chain.prepare(question, history or ())
        served, notice = self.verified(question, condensed.standalone, filters)
        if served is not None:
            # A match is the answer: no retrieval, no generation, no LLM call.
            served.timings["total"] = time.perf_counter() - started
            yield AskEvent("token", served.answer)
            served.answer_id = self._save(served, conversation_id, filters, actor.name)
            yield AskEvent("done", result=served)
            return
        events = self.chain.stream(
            question, history=history or (), filters=filters, condensed=condensed
        )
        for event in events:
            if event.kind == "done" and event.result is not None:
                if notice:
                    event.result.notice = " ".join(filter(None, [event.result.notice, notice]))
                event.result.answer_id = self._save(
                    event.result, conversation_id, filters, actor.name
                )
            yield event

    def relevance(self, source: Source) -> float:
        """The one relevance figure a passage shows: its similarity on the embedding model's
        own scale (`SimilarityScale.relevance`). The fused score cannot say this: it ranks
        passages within one result, so the best of a poor lot still scores 1; it stands in
        only for a keyword-only hit, which has no similarity."""
        if source.vector_score is None:
            return source.score
        return self.chain.scale.relevance(source.vector_score)

    def conversation_history(self, conversation_id: str, *, actor: Actor) -> list[tuple[str, str]]:
        """The turns of a conversation its owner (or an admin) may read, oldest first."""
        return self._owned_turns(conversation_id, actor, readers_too=True)

    def _owned_turns(
        self, conversation_id: str, actor: Actor, *, readers_too: bool
    ) -> list[tuple[str, str]]:
        """The conversation's turns, once `actor` is found to own it (or, with `readers_too`,
        to be an admin, who may read every conversation but continue none but their own)."""
        with self.db.session() as s:
            conversation = queries.open_conversation(s, self.settings.workspace, conversation_id)
            if conversation is None:  # unknown, another workspace's, or deleted
                raise LookupError(f"No conversation {conversation_id}")
            if conversation.user != actor.name and not (readers_too and allows(actor, Role.admin)):
                raise PermissionError("This conversation belongs to someone else.")
            turns: list[tuple[str, str]] = []
            for answer in queries.conversation_answers(s, conversation_id):
                turns += [("user", answer.question), ("assistant", answer.answer)]
            return turns

    def new_conversation(self, title: str | None, *, actor: Actor) -> str:
        """A new conversation owned by `actor`, titled from its first question (`title_from`)."""
        with self.db.session() as s:
            clean = title_from(title) if title else None
            return queries.create_conversation(s, self.settings.workspace, actor.name, clean).id

    def conversation(self, conversation_id: str, *, actor: Actor) -> list[AnswerResult]:
        """A conversation's answers as they were given, oldest first, for showing it again
        (after a reload). Only its owner and admins may read it."""
        with self.db.session() as s:
            readable(s, self.settings.workspace, conversation_id, actor)  # deleted: LookupError
            rows = queries.conversation_answers(s, conversation_id)
            return [result_from_row(row) for row in rows]

    def _save(
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
                    "embedding_model": model_name(self.chain.retriever.embeddings),
                    "alpha": self.settings.hybrid_alpha,
                },
                timings=result.timings,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
            s.add(row)
            s.flush()
            return row.id


def result_from_row(row: Answer) -> AnswerResult:
    """An answer as the chain returned it, rebuilt from its SQL row."""
    features: dict[str, Any] = dict(row.confidence_features or {})
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
