"""Evaluation metrics as pure functions, so every runner scores the same way.

Ranking metrics follow trec_eval / BEIR conventions (linear gain for nDCG, a document counts
as relevant when its grade is above zero, a query with no relevant document scores 0), so our
figures can be set beside published leaderboards. Answer metrics follow the official SQuAD
v1.1 script (normalised exact match and token F1, best over the gold answers).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from core.language import HANGUL

Relevance = Mapping[str, float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def _relevant(relevance: Relevance) -> set[str]:
    return {doc for doc, grade in relevance.items() if grade > 0}


def distinct_documents(document_ids: Iterable[str], *, skip: str | None = None) -> list[str]:
    """A ranking of documents from a ranking of their chunks: each document once, at its best
    chunk's rank. Without this a document found through two chunks earns its gain twice and
    nDCG can pass 1. `skip` drops the query's own document, as BEIR's `ignore_identical_ids`
    does for ArguAna, whose queries are corpus documents themselves."""
    return list(dict.fromkeys(doc for doc in document_ids if doc != skip))


def ndcg_at_k(ranked: Sequence[str], relevance: Relevance, k: int) -> float:
    """Normalised discounted cumulative gain with graded relevance: gain = grade (linear, as
    trec_eval and BEIR use), discount = log2(rank + 1), ideal = the grades sorted best first."""
    dcg = sum(
        relevance.get(doc, 0.0) / math.log2(rank + 1)
        for rank, doc in enumerate(ranked[:k], start=1)
        if relevance.get(doc, 0.0) > 0
    )
    ideal_grades = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, start=1))
    return dcg / ideal if ideal > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Relevance, k: int) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = _relevant(relevance)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Relevance, k: int) -> float:
    """Reciprocal rank of the first relevant document in the top k (0 when none is there)."""
    relevant = _relevant(relevance)
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def hit_at_k(ranked: Sequence[str], relevance: Relevance, k: int) -> float:
    """1 when any relevant document is in the top k, else 0."""
    return 1.0 if _relevant(relevance).intersection(ranked[:k]) else 0.0


# KorQuAD 1.0's official evaluation script (built on SQuAD's) first turns these marks into
# spaces: Korean text quotes titles as 《포브스》 and 〈…〉, which SQuAD's ASCII punctuation misses.
_KORQUAD_MARKS = str.maketrans({ch: " " for ch in "'\"《》<>〈〉()‘’"})


def normalize_answer(text: str, *, korean: bool = False) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop articles, collapse whitespace;
    `korean`: KorQuAD's, which first turns its quote and bracket marks into spaces."""
    if korean:
        text = text.translate(_KORQUAD_MARKS)
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1 when the normalised prediction equals any normalised gold answer."""
    normalised = normalize_answer(prediction)
    return max((float(normalised == normalize_answer(g)) for g in golds), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        # Both empty is a match (e.g. an answer that is only an article); one empty is not.
        return float(pred_tokens == gold_tokens)
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Token-overlap F1 after normalisation, best over the gold answers."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def contains_answer(prediction: str, golds: Sequence[str]) -> float:
    """1 when a normalised gold answer appears inside the normalised prediction as whole
    words: the fair measure for answerers that quote whole sentences, where EM is 0 by
    construction. In an answer with Korean in it (normalised as KorQuAD does) a gold answer
    must start a word but may have a particle or ending attached ("패배" in "패배하게",
    "포브스" in "《포브스》는", "Worldwide Associates Inc" in "Worldwide Associates Inc.의")."""
    korean = HANGUL.search(prediction) is not None
    normalised = f" {normalize_answer(prediction, korean=korean)} "

    def found(gold: str) -> bool:
        if not korean:
            return f" {gold} " in normalised
        after = "" if HANGUL.match(gold[-1]) else rf"(?=\s|{HANGUL.pattern})"
        return re.search(rf"(?<= ){re.escape(gold)}{after}", normalised) is not None

    normalised_golds = [normalize_answer(g, korean=korean) for g in golds]
    return max((float(found(g)) for g in normalised_golds if g), default=0.0)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative, ties counting half (Mann-Whitney U with average ranks). None when only one class
    is present, since the area is then undefined."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    positives = int(sum(bool(x) for x in labels))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    values = np.asarray(scores, dtype=float)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct value: the ranks it spans, averaged.
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    positive_rank_sum = float(ranks[np.asarray(labels, dtype=bool)].sum())
    u = positive_rank_sum - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def expected_calibration_error(
    confidences: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float | None:
    """How far stated confidence is from observed accuracy: over `bins` equal-width bins of
    [0, 1], the sample-weighted mean of |accuracy - mean confidence|. A confidence of exactly
    1.0 falls in the last bin. None for no samples."""
    if len(confidences) != len(labels):
        raise ValueError("confidences and labels differ in length")
    if not confidences:
        return None
    conf = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    correct = np.asarray(labels, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            gap = abs(float(correct[members].mean()) - float(conf[members].mean()))
            total += members.sum() / len(conf) * gap
    return float(total)
