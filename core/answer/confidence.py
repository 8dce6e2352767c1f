"""How much an answer can be trusted, computed from evidence rather than asked of the model.

Features: how strongly the best passage matches (cosine similarity), how clearly it beats the
runner-up, how many of the question's terms it contains, and how much of the answer is backed
by the passages it cites. The weights below are a hand-set prior; calibration against labelled
data (benchmarks first, expert feedback later) refits them from the recorded features.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document

from core.answer.citations import citations_in, strip_markers
from core.answer.text import content_terms, coverage, split_sentences
from core.answer.types import Confidence
from core.embeddings import SimilarityScale

WEIGHTS = {"strength": 0.40, "margin": 0.10, "question_coverage": 0.20, "support": 0.30}
HIGH, MEDIUM = 0.70, 0.45


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


def compute_confidence(
    question: str,
    answer: str,
    passages: Sequence[Document],
    *,
    scale: SimilarityScale,
    abstained: bool = False,
    flagged_passages: int = 0,
    truncated: bool = False,
) -> Confidence:
    """`truncated`: the model stopped at its length limit, so the answer may be incomplete."""
    if not passages:
        return Confidence(0.0, "low", ["No passage matched the question."], {"passages": 0})
    sims = sorted(
        (
            float(p.metadata["vector_score"])
            for p in passages
            if p.metadata.get("vector_score") is not None
        ),
        reverse=True,
    )
    fused = sorted((float(p.metadata.get("score") or 0.0) for p in passages), reverse=True)
    top_sim = sims[0] if sims else 0.0
    strength = scale.strength(top_sim)
    margin = _clip(fused[0] - fused[1]) if len(fused) > 1 else 1.0
    best_terms = content_terms(passages[0].page_content)
    q_coverage = coverage(content_terms(question), best_terms)
    support, uncited, n_sentences = answer_support(answer, passages)
    features = {
        "top_similarity": round(top_sim, 4),
        "strength": round(strength, 4),
        "margin": round(margin, 4),
        "question_coverage": round(q_coverage, 4),
        "support": round(support, 4),
        "uncited_sentences": float(uncited),
        "sentences": float(n_sentences),
        "flagged_passages": float(flagged_passages),
        "abstained": float(abstained),
        "truncated": float(truncated),
    }
    score = sum(WEIGHTS[name] * features[name] for name in WEIGHTS)
    reasons = [
        f"Best passage similarity {top_sim:.2f} ("
        + ("strong" if strength >= 0.7 else "moderate" if strength >= 0.4 else "weak")
        + " match).",
        f"The best passage contains {q_coverage:.0%} of the question's key terms.",
    ]
    if abstained:
        score = min(score, 0.3)
        reasons.insert(0, "The documents do not answer this question.")
    elif n_sentences:
        reasons.append(
            f"{support:.0%} of the answer's wording is backed by the passages it cites"
            + (f"; {uncited} of {n_sentences} sentences cite nothing." if uncited else ".")
        )
    if flagged_passages:
        score *= 0.7
        reasons.append(
            f"{flagged_passages} passage(s) contain text that tries to instruct the model."
        )
    if truncated:
        # However well the first part is supported, the rest of the answer is missing.
        score = min(score, MEDIUM - 0.01)
        reasons.insert(0, "The answer was cut off at the model's length limit.")
    score = round(_clip(score), 4)
    return Confidence(score=score, label=label_for(score), reasons=reasons, features=features)
