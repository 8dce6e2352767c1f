"""Loupe's one entry point for the CLI and the web pages: ingest, ask, feedback, documents.

It wires settings to the SQL store, the vector store, the embedding model and the chain, and
records every answer with what is needed to reproduce and learn from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from core.chain import AnswerResult, AskEvent, RagChain
from core.config import Settings, get_settings
from core.db import queries
from core.db.models import Answer, Document, DocumentStatus
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
from core.llm import make_chat_model
from core.prompts import ALL_PROMPTS
from core.retrieval import StoreRetriever
from core.stores import make_store
from core.stores.base import SearchFilter

_FROM_SETTINGS: Any = object()


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
    ) -> list[IngestResult]:
        results: list[IngestResult] = []
        items: list[IngestItem] = []
        for path in collect_paths(paths):
            try:
                items.append(IngestItem(path.name, path.read_bytes()))
            except OSError as exc:
                results.append(IngestResult(path.name, "failed", error=f"Cannot read file: {exc}"))
        return results + self.ingest(items, tags=tags, uploaded_by=uploaded_by, progress=progress)

    def ingest(
        self,
        items: Sequence[IngestItem],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
    ) -> list[IngestResult]:
        return self.ingestor.ingest(items, tags=tags, uploaded_by=uploaded_by, progress=progress)

    def documents(self, status: DocumentStatus | None = None) -> list[Document]:
        with self.db.session() as s:
            return queries.list_documents(s, self.settings.workspace, status=status)

    def delete_document(self, document_id: str) -> bool:
        """Chunks go first: a document row without chunks is harmless, the reverse is not."""
        with self.db.session() as s:
            if queries.get_document(s, document_id) is None:
                return False
        self.store.delete_document(document_id)
        with self.db.session() as s:
            queries.delete_document_row(s, document_id)
        return True

    def reindex(self, document_id: str, progress: ProgressFn | None = None) -> IngestResult:
        return self.ingestor.reindex(document_id, progress)

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

    def conversation_history(self, conversation_id: str) -> list[tuple[str, str]]:
        with self.db.session() as s:
            turns: list[tuple[str, str]] = []
            for answer in queries.conversation_answers(s, conversation_id):
                turns += [("user", answer.question), ("assistant", answer.answer)]
            return turns

    def new_conversation(self, user: str | None = None, title: str | None = None) -> str:
        with self.db.session() as s:
            return queries.create_conversation(s, self.settings.workspace, user, title).id

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
    ) -> int:
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
            )
            s.flush()
            feedback_id = row.id
        if citation_verdicts or role in ("expert", "admin"):
            self.refresh_feedback()
        return feedback_id

    def export(self, kind: str) -> list[dict[str, object]]:
        """Datasets from feedback: `finetune`, `preferences` or `eval`."""
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
