"""How much an answer can be trusted: P(right), computed from evidence rather than asked of
the model.

The features (`core.answer.features`) describe the evidence: how strongly the best passage
matches by meaning and by keywords, how clearly it beats the rest, whether the two searches
agree, how much of the question the cited sentences cover, and more. A fitted calibration
(`core.answer.calibration`) turns them into a probability that the answer is right, measured
on labelled data, and ranks the reasons by how much each moved it. Without a calibration for
the embedding model in use, a hand-set prior gives a score that is *not* a probability, and
the reasons say so.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document

from core.answer.calibration import Calibration
from core.answer.citations import citations_in, strip_markers
from core.answer.features import DESCRIPTIONS, compute_features
from core.answer.text import content_terms, coverage, split_sentences
from core.answer.types import Confidence
from core.embeddings import SimilarityScale

# The prior used only when no calibration fits the embedding model.
PRIOR_WEIGHTS = {"strength": 0.40, "margin": 0.10, "question_coverage": 0.20, "support": 0.30}
HIGH, MEDIUM = 0.70, 0.45
# Reasons shown beside a confidence: the strongest pushes of the fitted score.
MAX_REASONS = 4


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def label_for(score: float) -> str:
    return "high" if score >= HIGH else "medium" if score >= MEDIUM else "low"


def answer_support(answer: str, passages: Sequence[Document]) -> tuple[float, int, int]:
    """(mean support, uncited sentences, sentences): a sentence's support is the share of its
    terms found in the passages it cites; an uncited sentence has none."""
    sentences = [s for s in split_sentences(answer) if content_terms(strip_markers(s))]
    if not sentences:
        return 0.0, 0, 0
    total, uncited = 0.0, 0
    for sentence in sentences:
        cited = [n for n in citations_in(sentence) if 1 <= n <= len(passages)]
        if not cited:
            uncited += 1
            continue
        cited_terms: set[str] = set()
        for n in cited:
            cited_terms |= content_terms(passages[n - 1].page_content)
        total += coverage(content_terms(strip_markers(sentence)), cited_terms)
    return total / len(sentences), uncited, len(sentences)


def _reason(name: str, push: float, value: float) -> str:
    direction = "raises" if push > 0 else "lowers"
    return f"{DESCRIPTIONS.get(name, name).capitalize()} ({value:g}) {direction} it."


def compute_confidence(
    question: str,
    answer: str,
    passages: Sequence[Document],
    *,
    scale: SimilarityScale,
    abstained: bool = False,
    flagged_passages: int = 0,
    truncated: bool = False,
    generator: str = "extractive",
    logprob_mean: float | None = None,
    calibration: Calibration | None = None,
    threshold: float | None = None,
    extractive: dict[str, float] | None = None,
) -> Confidence:
    """P(right) of `answer` (with its `[n]` markers) given the passages it was drawn from.
    `truncated`: the model stopped at its length limit, so the answer may be incomplete."""
    if not passages:
        return Confidence(
            0.0,
            "low",
            ["No passage matched the question."],
            {"passages": 0},
            calibration.version if calibration else None,
            threshold,
        )
    features = compute_features(
        question,
        "" if abstained else answer,
        passages,
        generator=generator,
        logprob_mean=logprob_mean,
        flagged_passages=flagged_passages,
        extractive=extractive,
    )
    if calibration is not None and not calibration.applies_to(generator):
        calibration = None  # fitted on other answers: its number would not mean P(right)
    if calibration is not None:
        score = 0.0 if abstained else calibration.predict(features)
        reasons = [
            _reason(name, push, features.get(name, 0.0))
            for name, push in calibration.contributions(features)[:MAX_REASONS]
            if abs(push) >= 0.05
        ]
    else:
        score, reasons = _prior(question, answer, passages, scale, features)
        if abstained:
            score = min(score, 0.3)
    if abstained:
        reasons.insert(0, "The documents do not answer this question.")
    if flagged_passages:
        reasons.append(
            f"{flagged_passages} passage(s) contain text that tries to instruct the model."
        )
    if truncated:
        # However well the first part is supported, the rest of the answer is missing.
        score = min(score, MEDIUM - 0.01)
        reasons.insert(0, "The answer was cut off at the model's length limit.")
    features["abstained"] = float(abstained)
    features["truncated"] = float(truncated)
    score = round(_clip(score), 4)
    return Confidence(
        score=score,
        label=label_for(score),
        reasons=reasons,
        features=features,
        calibration=calibration.version if calibration else None,
        threshold=threshold,
    )


def _prior(
    question: str,
    answer: str,
    passages: Sequence[Document],
    scale: SimilarityScale,
    features: dict[str, float],
) -> tuple[float, list[str]]:
    """The hand-set score for embedding models that have no calibration yet: not a
    probability, which the first reason says."""
    strength = scale.strength(features["top_cosine"])
    fused = sorted((float(p.metadata.get("score") or 0.0) for p in passages), reverse=True)
    margin = _clip(fused[0] - fused[1]) if len(fused) > 1 else 1.0
    q_coverage = coverage(content_terms(question), content_terms(passages[0].page_content))
    support, _, _ = answer_support(answer, passages)
    parts = {
        "strength": strength,
        "margin": margin,
        "question_coverage": q_coverage,
        "support": support,
    }
    score = sum(PRIOR_WEIGHTS[name] * parts[name] for name in PRIOR_WEIGHTS)
    if features["flagged_passages"]:
        score *= 0.7
    return score, [
        "Uncalibrated: no calibration fits this embedding model, so this is a hand-set score, "
        "not a probability (run `python -m core calibrate`).",
        f"Best passage similarity {features['top_cosine']:.2f}.",
        f"The best passage contains {q_coverage:.0%} of the question's key terms.",
    ]
