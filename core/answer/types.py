"""The answer flow's plain data: what the chain returns and what pages, the CLI and the API show.

Plain dataclasses with no SQLAlchemy or Streamlit in them, so every layer can pass them around
and tests can build them by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.answer.prompts import NO_ANSWER

# `verified`: an expert-verified answer served as it was verified, with no generation.
GeneratorKind = Literal["llm", "extractive", "fallback", "none", "verified"]


@dataclass(frozen=True)
class Confidence:
    score: float
    label: str
    reasons: list[str]
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedAnswer:
    answer_id: str
    question: str
    answer: str
    expert: str | None
    verified_at: datetime
    similarity: float = 1.0


@dataclass(frozen=True)
class Source:
    """A passage given to the model, numbered as in the prompt."""

    n: int
    chunk_id: str
    document_id: str
    document: str
    page: int | None
    heading: str | None
    quote: str
    score: float
    keyword_score: float | None
    vector_score: float | None
    cited: bool = False
    flagged: bool = False
    # The version (content hash) of the document the passage was quoted from, so exports and
    # reviews can tell which version an answer rested on.
    content_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnswerResult:
    question: str
    standalone_question: str
    answer: str
    sources: list[Source]
    confidence: Confidence
    generator: GeneratorKind
    model: str
    prompt_version: str | None
    notice: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer_id: str | None = None
    # An expert-verified answer to a near-identical earlier question, offered alongside.
    verified: VerifiedAnswer | None = None

    @property
    def citations(self) -> list[Source]:
        return [s for s in self.sources if s.cited]

    @property
    def abstained(self) -> bool:
        return self.generator == "none" or self.answer.strip() == NO_ANSWER


@dataclass(frozen=True)
class AskEvent:
    """`token`: text to append; `reset`: discard what was streamed (the LLM failed mid-answer,
    a fallback answer follows); `done`: the final, checked result."""

    kind: Literal["token", "reset", "done"]
    text: str = ""
    result: AnswerResult | None = None
