"""The retrieval chain: condense → retrieve → numbered, fenced context → generate (streamed)
→ citations checked → confidence.

Each stage is a LangChain runnable, invoked one at a time so every stage is timed and so the
chain can fall back to the extractive answerer even after the LLM has started streaming (a
runnable's `with_fallbacks` cannot take back tokens already shown).
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from core.answer.citations import MarkerStream, parse_citations
from core.answer.confidence import compute_confidence
from core.answer.extractive import MODEL_NAME as EXTRACTIVE_MODEL
from core.answer.extractive import ExtractiveAnswerer
from core.answer.injection import looks_like_instructions
from core.answer.llm import (
    Deadline,
    IncompleteStream,
    LLMFailure,
    LLMGuard,
    describe,
    finish_reason,
)
from core.answer.prompts import ANSWER, CONDENSE, NO_ANSWER, format_passage
from core.answer.retrieval import StoreRetriever
from core.answer.types import AnswerResult, AskEvent, GeneratorKind, Source
from core.embeddings import SimilarityScale
from core.stores.base import SearchFilter

# A follow-up that leans on the previous turn ("what about its population?").
_REFERRING = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there)\b|^(그|이|저)\s", re.I
)
_MAX_HISTORY_TURNS = 6
# Condensing a follow-up may use at most this share of the budget, so the answer keeps the rest.
_CONDENSE_SHARE = 0.5
# What generation returns once streaming ends: text, generator kind, notice, token usage and
# the model's finish reason (None when it did not finish or was not asked).
Generated = tuple[str, GeneratorKind, str | None, dict[str, Any], str | None]


@dataclass(frozen=True)
class Condensed:
    """A question made standalone, with the deadline its answer must also meet."""

    standalone: str
    failure: Exception | None
    deadline: Deadline
    seconds: float


def format_history(history: Sequence[tuple[str, str]]) -> str:
    turns = history[-_MAX_HISTORY_TURNS:]
    return "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in turns)


class RagChain:
    def __init__(
        self,
        *,
        retriever: StoreRetriever,
        extractive: ExtractiveAnswerer,
        chat_model: BaseChatModel | None,
        model_name: str,
        scale: SimilarityScale,
        guard: LLMGuard | None = None,
    ) -> None:
        self.retriever = retriever
        self.guard = guard or LLMGuard()
        self.extractive = extractive
        self.chat_model = chat_model
        self.model_name = model_name if chat_model is not None else EXTRACTIVE_MODEL
        self.scale = scale
        self.condense_chain: Runnable[dict[str, str], str] | None = None
        self.answer_chain: Runnable[dict[str, str], Any] | None = None
        if chat_model is not None:
            self.condense_chain = CONDENSE.template | chat_model | StrOutputParser()
            self.answer_chain = ANSWER.template | chat_model

    def prepare(self, question: str, history: Sequence[tuple[str, str]]) -> Condensed:
        """Start a question: its deadline (one budget for every model call it makes) and its
        standalone form."""
        start = time.perf_counter()
        deadline = self.guard.deadline()
        standalone, failure = self.condense(question, history, deadline)
        return Condensed(standalone, failure, deadline, time.perf_counter() - start)

    def condense(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        deadline: Deadline | None = None,
    ) -> tuple[str, Exception | None]:
        """A question that stands alone, for retrieval, and the model's failure if it failed.
        Without an LLM (or when it fails, or while the circuit breaker is open), a short or
        referring follow-up is joined to the previous question instead."""
        previous = [text for role, text in history if role == "user"]
        if not previous:
            return question, None
        failure: Exception | None = None
        if self.condense_chain is not None and not self.guard.breaker.open_for():
            deadline = (deadline or self.guard.deadline()).sooner(
                self.guard.budget * _CONDENSE_SHARE
            )
            try:
                rewritten = "".join(
                    self.guard.stream(
                        self.condense_chain,
                        {"history": format_history(history), "question": question},
                        deadline,
                    )
                ).strip()
                if rewritten:
                    return rewritten, None
            except Exception as exc:  # noqa: BLE001 - condensing is an optimisation; fall through
                failure = exc
        if len(question.split()) <= 4 or _REFERRING.search(question):
            return f"{previous[-1]} {question}", failure
        return question, failure

    def covers(self, passages: Sequence[Document]) -> bool:
        """Whether the documents plausibly answer: the best passage must be close in meaning
        (keyword-only retrieval has no similarity to judge by, so any hit counts)."""
        sims = [p.metadata.get("vector_score") for p in passages]
        known = [s for s in sims if s is not None]
        if not passages:
            return False
        return not known or max(known) >= self.scale.threshold

    def stream(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: SearchFilter | None = None,
        condensed: Condensed | None = None,
    ) -> Iterator[AskEvent]:
        """`condensed`: the question already condensed by the caller with `prepare` (who
        checked it against the verified answers first), so a follow-up is not condensed twice
        and condense and answer share one budget."""
        timings: dict[str, float] = {}
        start = time.perf_counter() - (condensed.seconds if condensed else 0.0)
        condensed = condensed or self.prepare(question, history)
        standalone, condense_failure, deadline = (
            condensed.standalone,
            condensed.failure,
            condensed.deadline,
        )
        timings["condense"] = condensed.seconds

        mark = time.perf_counter()
        retriever = self.retriever.model_copy(update={"filters": filters})
        passages = retriever.invoke(standalone)
        timings["retrieve"] = time.perf_counter() - mark

        mark = time.perf_counter()
        text, generator, notice, usage, finish = yield from self._generate(
            standalone, passages, timings, mark, deadline, condense_failure
        )
        timings["generate"] = time.perf_counter() - mark

        parsed = parse_citations(text, len(passages))
        flagged = [looks_like_instructions(p.page_content) for p in passages]
        abstained = generator == "none" or parsed.text.strip() == NO_ANSWER
        confidence = compute_confidence(
            standalone,
            parsed.text,
            passages,
            scale=self.scale,
            abstained=abstained,
            flagged_passages=sum(flagged),
            truncated=finish == "length",
        )
        sources = [
            Source(
                n=n,
                chunk_id=p.metadata["chunk_id"],
                document_id=p.metadata["document_id"],
                document=p.metadata["document"],
                page=p.metadata.get("page"),
                heading=p.metadata.get("heading"),
                quote=p.page_content,
                score=float(p.metadata.get("score") or 0.0),
                keyword_score=p.metadata.get("keyword_score"),
                vector_score=p.metadata.get("vector_score"),
                cited=n in parsed.cited,
                flagged=flagged[n - 1],
                content_hash=p.metadata.get("content_hash"),
            )
            for n, p in enumerate(passages, start=1)
        ]
        timings["total"] = time.perf_counter() - start
        result = AnswerResult(
            question=question,
            standalone_question=standalone,
            answer=parsed.text,
            sources=sources,
            confidence=confidence,
            generator=generator,
            model=self.model_name if generator == "llm" else EXTRACTIVE_MODEL,
            prompt_version=ANSWER.id if generator in ("llm", "fallback") else None,
            notice=notice,
            timings={k: round(v, 4) for k, v in timings.items()},
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
        )
        yield AskEvent("done", result=result)

    def _generate(
        self,
        question: str,
        passages: Sequence[Document],
        timings: dict[str, float],
        started: float,
        deadline: Deadline,
        condense_failure: Exception | None = None,
    ) -> Generator[AskEvent, None, Generated]:
        """Streams tokens; returns (text, generator, notice, token usage, finish reason)."""
        if not self.covers(passages):
            yield AskEvent("token", NO_ANSWER)
            notice = "No passage in the documents is close enough to this question."
            return NO_ANSWER, "none", notice, {}, None
        if self.answer_chain is None:
            text = yield from self._extractive(question, passages)
            return text, "extractive", None, {}, None
        breaker = self.guard.breaker
        if condense_failure is not None:
            # The model just failed on this very question: asking it again would only spend
            # what is left of the budget.
            breaker.record(ok=False)
            text = yield from self._extractive(question, passages)
            notice = _fallback_notice(
                f"{describe(condense_failure)}, while rewriting the follow-up question"
            )
            return text, "fallback", notice, {}, None
        if cooldown := breaker.open_for():
            text = yield from self._extractive(question, passages)
            notice = (
                f"The language model failed on the last {breaker.consecutive_failures} "
                f"questions, so it is not asked for the next {cooldown:.0f} s. "
                "This answer was extracted from the passages instead."
            )
            return text, "fallback", notice, {}, None

        context = "\n\n".join(
            format_passage(n, p.metadata["document"], p.metadata.get("page"), p.page_content)
            for n, p in enumerate(passages, start=1)
        )
        streamed: list[str] = []
        usage: UsageMetadata | None = None
        finish: str | None = None
        markers = MarkerStream(len(passages))
        try:
            inputs = {"context": context, "question": question}
            for chunk in self.guard.stream(self.answer_chain, inputs, deadline):
                piece = chunk.content if isinstance(chunk.content, str) else ""
                if piece:
                    if not streamed:
                        timings["first_token"] = time.perf_counter() - started
                    streamed.append(piece)
                    if shown := markers.feed(piece):
                        yield AskEvent("token", shown)
                # Providers may split usage over chunks (input first, output last): add up.
                if chunk_usage := getattr(chunk, "usage_metadata", None):
                    usage = add_usage(usage, chunk_usage)
                finish = finish_reason(getattr(chunk, "response_metadata", {})) or finish
            if not "".join(streamed).strip():
                raise LLMFailure("the model returned an empty answer")
            if finish is None:
                raise IncompleteStream(
                    "the answer stream ended before the model finished (no finish reason)"
                )
            if tail := markers.flush():
                yield AskEvent("token", tail)
        except Exception as exc:  # noqa: BLE001 - any model failure falls back, with a notice
            breaker.record(ok=False)
            if streamed:
                yield AskEvent("reset")
            text = yield from self._extractive(question, passages)
            return text, "fallback", _fallback_notice(describe(exc)), dict(usage or {}), None
        breaker.record(ok=True)
        flag: str | None = None
        if finish == "length":
            flag = (
                "The answer was cut off at the model's length limit (LOUPE_LLM_MAX_TOKENS): "
                "it may be incomplete."
            )
        elif finish not in ("stop", "end_turn", "tool_calls"):
            flag = f"The model stopped for an unusual reason ({finish}): check the answer."
        return "".join(streamed), "llm", flag, dict(usage or {}), finish

    def _extractive(
        self, question: str, passages: Sequence[Document]
    ) -> Generator[AskEvent, None, str]:
        pieces = []
        for piece in self.extractive.stream(question, passages):
            pieces.append(piece)
            yield AskEvent("token", piece)
        if not "".join(pieces).strip():
            # Nothing quotable (e.g. only tables or run-on lists): abstain rather than guess.
            yield AskEvent("token", NO_ANSWER)
            return NO_ANSWER
        return "".join(pieces)


def _fallback_notice(reason: str) -> str:
    return (
        f"The language model failed ({reason}). "
        "This answer was extracted from the passages instead."
    )
