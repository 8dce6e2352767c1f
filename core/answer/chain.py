"""The retrieval chain: condense → retrieve → numbered, fenced context → generate (streamed)
→ citations checked → calibrated confidence → answer or abstain.

Loupe answers only when the calibrated P(right) reaches the answer threshold; below it, the
reply says the documents may not cover the question and the closest passages are shown as
leads, not as an answer.

Each stage is a LangChain runnable, invoked one at a time so every stage is timed and so the
chain can fall back to the extractive answerer even after the LLM has started streaming (a
runnable's `with_fallbacks` cannot take back tokens already shown).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from core.answer.calibration import Calibration
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
from core.answer.text import content_terms, coverage
from core.answer.types import AnswerResult, AskEvent, GeneratorKind, Source
from core.embeddings import SimilarityScale
from core.language import language_of
from core.stores.base import SearchFilter

_MAX_HISTORY_TURNS = 6
# Without an LLM, a follow-up is searched together with the previous question only when that
# measurably helps: the joined search's best passage must be closer in meaning by this much
# and hold at least this share of the follow-up's own key terms.
_JOIN_MIN_GAIN = 0.05
_JOIN_MIN_COVERAGE = 0.5
NOT_COVERED = (
    "The documents may not cover this question. The closest passages are listed below as "
    "leads, not as an answer."
)
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
        calibration: Calibration | None = None,
        threshold: float | None = None,
        by_language: Mapping[str, tuple[Calibration, float | None]] | None = None,
    ) -> None:
        self.retriever = retriever
        self.calibration = calibration
        # P(right) below which Loupe abstains; None: the calibration's recommended one.
        self.threshold = (
            threshold if threshold is not None or calibration is None else calibration.threshold
        )
        # Calibrations (and thresholds) for questions in another language than the documents'
        # default: a Korean question is scored by the Korean fit, whose keyword and similarity
        # scales differ from English ones.
        self.by_language = dict(by_language or {})
        # Off only to record every candidate answer (labelled data for calibration).
        self.selective = True
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
        """The LLM's standalone rewrite of a follow-up, and the model's failure if it failed.
        Without a rewrite (no LLM, it failed, or the circuit breaker is open) the question
        comes back as asked, and `retrieve` decides from the evidence whether the previous
        turn helps."""
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
        return question, failure

    def retrieve(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        retriever: StoreRetriever,
        rewritten: str | None = None,
    ) -> tuple[str, list[Document]]:
        """(what was searched, passages). Without an LLM rewrite, the question is searched
        alone and, after a previous question, joined to it; the joined search is used only
        when it measurably helps: its best passage is closer in meaning than the alone one's
        and holds most of the follow-up's own key terms, so an unrelated predecessor cannot
        lend its topic to a question the documents do not cover."""
        if rewritten:
            return rewritten, retriever.invoke(rewritten)
        alone = retriever.invoke(question)
        previous = [text for role, text in history if role == "user"]
        if not previous:
            return question, alone
        joined_query = f"{previous[-1]} {question}"
        joined = retriever.invoke(joined_query)
        if self._joining_helps(question, alone, joined):
            return joined_query, joined
        return question, alone

    @staticmethod
    def _joining_helps(
        question: str, alone: Sequence[Document], joined: Sequence[Document]
    ) -> bool:
        if not joined:
            return False
        best_alone = _top_similarity(alone)
        best_joined = _top_similarity(joined)
        own_terms = content_terms(question)
        covered = coverage(own_terms, content_terms(joined[0].page_content))
        return best_joined >= best_alone + _JOIN_MIN_GAIN and covered >= _JOIN_MIN_COVERAGE

    def calibration_for(self, question: str) -> tuple[Calibration | None, float | None]:
        """The calibration and threshold that score an answer to `question`."""
        language = language_of(question)
        if language is not None and language in self.by_language:
            return self.by_language[language]
        return self.calibration, self.threshold

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
        rewritten = standalone if standalone != question else None
        standalone, passages = self.retrieve(question, history, retriever, rewritten)
        timings["retrieve"] = time.perf_counter() - mark
        # The question the answer must address: the rewrite when the LLM made one, else the
        # question as asked (the previous turn may have helped the search, not the answer).
        asked = rewritten or question

        mark = time.perf_counter()
        calibration, threshold = self.calibration_for(asked)
        text, generator, notice, usage, finish = yield from self._generate(
            asked, passages, timings, mark, deadline, calibration, condense_failure
        )
        timings["generate"] = time.perf_counter() - mark

        parsed = parse_citations(text, len(passages))
        flagged = [looks_like_instructions(p.page_content) for p in passages]
        abstained = generator == "none" or parsed.text.strip() == NO_ANSWER
        confidence = compute_confidence(
            asked,
            parsed.text,
            passages,
            scale=self.scale,
            abstained=abstained,
            flagged_passages=sum(flagged),
            truncated=finish == "length",
            generator=generator,
            logprob_mean=usage.get("logprob_mean"),
            calibration=calibration,
            threshold=threshold,
            extractive=usage.get("extractive"),
        )
        answer, cited = parsed.text, parsed.cited
        withheld = (
            self.selective
            and not abstained
            and confidence.calibration is not None
            and threshold is not None
            and confidence.score < threshold
        )
        if withheld:
            if generator == "llm":
                yield AskEvent("reset")
            withheld_because = (
                f"P(right) {confidence.score:.0%} is below the answer threshold {threshold:.0%}."
            )
            # A withheld fallback still says the model failed: that is what to fix first.
            notice = (
                f"The language model failed ({failure}). The answer extracted instead was "
                f"withheld: {withheld_because}"
                if generator == "fallback" and (failure := usage.get("failure"))
                else f"Withheld: {withheld_because}"
            )
            answer, cited, generator = NOT_COVERED, [], "none"
        if generator != "llm":
            yield from _words(answer)
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
                cited=n in cited,
                flagged=flagged[n - 1],
                content_hash=p.metadata.get("content_hash"),
            )
            for n, p in enumerate(passages, start=1)
        ]
        timings["total"] = time.perf_counter() - start
        result = AnswerResult(
            question=question,
            standalone_question=standalone,
            answer=answer,
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
        calibration: Calibration | None,
        condense_failure: Exception | None = None,
    ) -> Generator[AskEvent, None, Generated]:
        """Streams the LLM's tokens as they come; returns (text, generator, notice, token
        usage, finish reason). Other answers are streamed by `stream` once confidence has been
        checked. Without a calibration for the answer, the similarity threshold of `covers`
        decides; the LLM is never called for passages that fail it. `calibration` is the one
        that will score this answer."""
        calibrated = calibration is not None and calibration.applies_to(
            "llm" if self.answer_chain is not None else "extractive"
        )
        gated = self.selective and (not calibrated or self.answer_chain is not None)
        if not passages or (gated and not self.covers(passages)):
            notice = "No passage in the documents is close enough to this question."
            return NO_ANSWER, "none", notice, {}, None
        if self.answer_chain is None:
            text, scores = self._extractive(question, passages)
            return text, "extractive", None, {"extractive": scores}, None
        breaker = self.guard.breaker
        if condense_failure is not None:
            # The model just failed on this very question: asking it again would only spend
            # what is left of the budget.
            breaker.record(ok=False)
            text, scores = self._extractive(question, passages)
            failure = f"{describe(condense_failure)}, while rewriting the follow-up question"
            details: dict[str, Any] = {"extractive": scores, "failure": failure}
            return text, "fallback", _fallback_notice(failure), details, None
        if cooldown := breaker.open_for():
            text, scores = self._extractive(question, passages)
            notice = (
                f"The language model failed on the last {breaker.consecutive_failures} "
                f"questions, so it is not asked for the next {cooldown:.0f} s. "
                "This answer was extracted from the passages instead."
            )
            failure = f"on the last {breaker.consecutive_failures} questions"
            return text, "fallback", notice, {"extractive": scores, "failure": failure}, None

        context = "\n\n".join(
            format_passage(n, p.metadata["document"], p.metadata.get("page"), p.page_content)
            for n, p in enumerate(passages, start=1)
        )
        streamed: list[str] = []
        usage: UsageMetadata | None = None
        finish: str | None = None
        logprobs: list[float] = []
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
                logprobs += token_logprobs(getattr(chunk, "response_metadata", None))
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
            text, scores = self._extractive(question, passages)
            failure = describe(exc)
            details = {**dict(usage or {}), "extractive": scores, "failure": failure}
            return text, "fallback", _fallback_notice(failure), details, None
        breaker.record(ok=True)
        flag: str | None = None
        if finish == "length":
            flag = (
                "The answer was cut off at the model's length limit (LOUPE_LLM_MAX_TOKENS): "
                "it may be incomplete."
            )
        elif finish not in ("stop", "end_turn", "tool_calls"):
            flag = f"The model stopped for an unusual reason ({finish}): check the answer."
        measured: dict[str, Any] = dict(usage or {})
        if logprobs:
            measured["logprob_mean"] = sum(logprobs) / len(logprobs)
        return "".join(streamed), "llm", flag, measured, finish

    def _extractive(
        self, question: str, passages: Sequence[Document]
    ) -> tuple[str, dict[str, float]]:
        text, scores = self.extractive.answer_scored(question, passages)
        # Nothing quotable (e.g. only tables or run-on lists): abstain rather than guess.
        return (text, scores) if text.strip() else (NO_ANSWER, {})


def token_logprobs(metadata: Any) -> list[float]:
    """The token log-probabilities in a streamed chunk's metadata, as OpenAI-compatible
    servers return them when asked (`logprobs: {"content": [{"token", "logprob"}, ...]}`)."""
    if not isinstance(metadata, dict):
        return []
    content = (metadata.get("logprobs") or {}).get("content") or []
    return [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]


def _top_similarity(passages: Sequence[Document]) -> float:
    known = [p.metadata.get("vector_score") for p in passages]
    return max((float(s) for s in known if s is not None), default=0.0)


def _words(text: str) -> Iterator[AskEvent]:
    """Word by word, so the UI streams the same way for every generator."""
    for i, word in enumerate(text.split(" ")):
        yield AskEvent("token", word if i == 0 else " " + word)


def _fallback_notice(reason: str) -> str:
    return (
        f"The language model failed ({reason}). "
        "This answer was extracted from the passages instead."
    )
