"""The evidence an answer's confidence is computed from, as named numbers.

Every feature is cheap, computed from what the chain already has (the retrieved passages with
their raw keyword and vector scores, the answer and its citations, the generator and, when the
server returns them, token log-probabilities), and means the same for any generator, so one
fitted calibration (`core.answer.calibration`) turns them into P(right). The names are the
columns a calibration file stores coefficients for: add a feature, refit, and older
calibrations keep working because a feature they do not name is simply not used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.answer.citations import citations_in, strip_markers
from core.answer.text import content_terms, coverage, split_sentences, stemmed_terms

# Questions that ask for a quantity or a date expect a digit (or a number word) in the answer.
_EXPECTS_NUMBER = re.compile(
    r"\b(how (many|much|long|old|far|big|tall|high|large|often)|what (year|percentage|"
    r"percent|number|amount|date)|when|which year|in what year)\b|몇|얼마|언제",
    re.I,
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|half|dozen|first|second|third)\b",
    re.I,
)

# "When" questions expect a date; "who" questions a name the question does not already hold.
_ASKS_WHEN = re.compile(r"^\s*(when|what year|in what year|which year)\b|언제", re.I)
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})\b|\b(january|february|march|april|may|june|july|august|"
    r"september|october|november|december|century|centuries)\b|\d+\s*(년|월|일)",
    re.I,
)
_ASKS_WHO = re.compile(r"^\s*(who|whom|whose)\b|누가|누구", re.I)
_NAME = re.compile(r"\b[A-Z][a-z]+")

# The feature names, in the order calibrations list them.
FEATURE_NAMES: tuple[str, ...] = (
    "top_cosine",
    "cosine_gap",
    "bm25_top",
    "bm25_gap",
    "rank_agreement",
    "question_coverage_cited",
    "question_coverage_passage",
    "question_coverage_stemmed",
    "answer_words",
    "cited_passages",
    "first_cited_rank",
    "support",
    "number_missing",
    "date_missing",
    "name_missing",
    "novel_share",
    "coverage_margin",
    "passage_sentences",
    "question_terms",
    "sentence_score",
    "sentence_margin",
    "generator_llm",
    "generator_fallback",
    "logprob_mean",
    "has_logprob",
    "flagged_passages",
)

# What each feature says, for the reasons shown beside a confidence ("why 83%?").
DESCRIPTIONS: dict[str, str] = {
    "top_cosine": "how close in meaning the best passage is",
    "cosine_gap": "how clearly the best passage beats the others in meaning",
    "bm25_top": "how many of the question's words the best keyword match shares",
    "bm25_gap": "how clearly the best keyword match beats the others",
    "rank_agreement": "whether keyword and meaning search agree on the best passage",
    "question_coverage_cited": "share of the question's key terms in the cited sentences",
    "question_coverage_passage": "share of the question's key terms in the cited passage",
    "question_coverage_stemmed": "share of the question's words, in any form, in the cited "
    "sentences",
    "answer_words": "the answer's length",
    "cited_passages": "how many passages the answer cites",
    "first_cited_rank": "the search rank of the passage the answer cites first",
    "support": "how much of the answer's wording its cited passages back",
    "number_missing": "whether a question asking for a number got an answer without one",
    "date_missing": "whether a question asking when got an answer without a date",
    "name_missing": "whether a question asking who got an answer naming no one new",
    "novel_share": "share of the answer's key terms that the question does not already hold",
    "coverage_margin": "how much better the quoted sentence covers the question than the "
    "cited passage's next best",
    "passage_sentences": "how many sentences the cited passage has to choose from",
    "question_terms": "how many key terms the question has",
    "sentence_score": "how well the quoted sentence matched the question",
    "sentence_margin": "how clearly the quoted sentence beat the next best",
    "generator_llm": "the answer was written by the language model",
    "generator_fallback": "the language model failed and the answer was extracted instead",
    "logprob_mean": "how sure the language model was of its words",
    "has_logprob": "whether the language model reported how sure it was",
    "flagged_passages": "passages that try to instruct the model",
}


def _scores(passages: Sequence[Any], key: str) -> list[float | None]:
    return [_metadata(p).get(key) for p in passages]


def _metadata(passage: Any) -> Mapping[str, Any]:
    """A LangChain Document's metadata, or a plain mapping (as stored in a labelled record)."""
    return passage.metadata if hasattr(passage, "metadata") else passage


def _text(passage: Any) -> str:
    return str(passage.page_content if hasattr(passage, "page_content") else passage["quote"])


def _top_and_gap(values: Sequence[float | None]) -> tuple[float, float, int | None]:
    """(best, best minus the mean of the rest, index of the best); missing scores count as
    the weakest seen (a passage the method did not return at all)."""
    known = [v for v in values if v is not None]
    if not known:
        return 0.0, 0.0, None
    floor = min(known)
    filled = [floor if v is None else float(v) for v in values]
    best = max(range(len(filled)), key=filled.__getitem__)
    rest = [v for i, v in enumerate(filled) if i != best]
    gap = filled[best] - (sum(rest) / len(rest)) if rest else filled[best]
    return filled[best], gap, best


def _coverage_margin(
    q_terms: set[str], cited_terms: set[str], passages: Sequence[Any], cited: Sequence[int]
) -> tuple[float, int]:
    """(question coverage of the answer minus that of the first cited passage's second-best
    sentence, that passage's sentence count): an answer that beats its passage's other
    sentences clearly was likely picked for a reason."""
    if not cited:
        return 0.0, 0
    sentences = [s for s in split_sentences(_text(passages[cited[0] - 1])) if content_terms(s)]
    covered = sorted((coverage(q_terms, content_terms(s)) for s in sentences), reverse=True)
    runner_up = covered[1] if len(covered) > 1 else 0.0
    return coverage(q_terms, cited_terms) - runner_up, len(sentences)


def answer_sentences(answer: str) -> list[str]:
    return [s for s in split_sentences(answer) if content_terms(strip_markers(s))]


def compute_features(
    question: str,
    answer: str,
    passages: Sequence[Any],
    *,
    generator: str,
    logprob_mean: float | None = None,
    flagged_passages: int = 0,
    extractive: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The features of one answer. `passages` are the retrieved Documents in rank order (or
    their stored dicts); `answer` carries its `[n]` markers; `extractive` holds the extractive
    answerer's sentence scores when it wrote the answer."""
    cos_top, cos_gap, cos_best = _top_and_gap(_scores(passages, "vector_score"))
    kw_top, kw_gap, kw_best = _top_and_gap(_scores(passages, "keyword_score"))
    sentences = answer_sentences(answer)
    cited: list[int] = []
    cited_text: list[str] = []
    support_total = 0.0
    for sentence in sentences:
        numbers = [n for n in citations_in(sentence) if 1 <= n <= len(passages)]
        cited += [n for n in numbers if n not in cited]
        if numbers:
            cited_text.append(strip_markers(sentence))
            terms: set[str] = set()
            for n in numbers:
                terms |= content_terms(_text(passages[n - 1]))
            support_total += coverage(content_terms(strip_markers(sentence)), terms)
    q_terms = content_terms(question)
    plain = strip_markers(answer)
    cited_terms = content_terms(" ".join(cited_text))
    passage_terms = content_terms(_text(passages[cited[0] - 1])) if cited else set()
    expects_number = bool(_EXPECTS_NUMBER.search(question))
    answer_terms = content_terms(plain)
    margin, choices = _coverage_margin(q_terms, cited_terms, passages, cited)
    new_names = set(_NAME.findall(plain)) - set(_NAME.findall(question))
    return {
        "top_cosine": round(cos_top, 4),
        "cosine_gap": round(cos_gap, 4),
        "bm25_top": round(math.log1p(max(kw_top, 0.0)), 4),
        "bm25_gap": round(math.log1p(max(kw_gap, 0.0)), 4),
        "rank_agreement": float(kw_best is not None and kw_best == cos_best),
        "question_coverage_cited": round(coverage(q_terms, cited_terms) if cited else 0.0, 4),
        "question_coverage_passage": round(coverage(q_terms, passage_terms) if cited else 0.0, 4),
        # "established" asked, "establishment" quoted: the same word to a reader.
        "question_coverage_stemmed": round(
            coverage(stemmed_terms(question), stemmed_terms(" ".join(cited_text)))
            if cited
            else 0.0,
            4,
        ),
        "answer_words": round(math.log1p(len(plain.split())), 4),
        "cited_passages": float(len(cited)),
        "first_cited_rank": float(cited[0]) if cited else 0.0,
        "support": round(support_total / len(sentences), 4) if sentences else 0.0,
        "number_missing": float(expects_number and not _NUMBER.search(plain)),
        "date_missing": float(bool(_ASKS_WHEN.search(question)) and not _DATE.search(plain)),
        "name_missing": float(bool(_ASKS_WHO.search(question)) and not new_names),
        "novel_share": round(len(answer_terms - q_terms) / len(answer_terms), 4)
        if answer_terms
        else 0.0,
        "coverage_margin": round(margin, 4),
        "passage_sentences": round(math.log1p(choices), 4),
        "question_terms": round(math.log1p(len(q_terms)), 4),
        "sentence_score": float((extractive or {}).get("sentence_score", 0.0)),
        "sentence_margin": float((extractive or {}).get("sentence_margin", 0.0)),
        "generator_llm": float(generator == "llm"),
        "generator_fallback": float(generator == "fallback"),
        "logprob_mean": round(logprob_mean, 4) if logprob_mean is not None else 0.0,
        "has_logprob": float(logprob_mean is not None),
        "flagged_passages": float(flagged_passages),
    }
