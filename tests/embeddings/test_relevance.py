"""The one relevance figure a passage shows."""

from __future__ import annotations

import pytest

from core.embeddings import SimilarityScale

MINILM = SimilarityScale(0.20, 0.70)


def test_relevance_reads_the_similarity_on_the_models_scale() -> None:
    assert MINILM.relevance(0.20) == pytest.approx(0.10)
    assert MINILM.relevance(0.45) == pytest.approx(0.50)
    assert MINILM.relevance(0.70) == pytest.approx(0.90)
    sims = [-0.2, 0.0, 0.1, 0.3, 0.5, 0.8, 1.0]
    values = [MINILM.relevance(s) for s in sims]
    assert values == sorted(values)


def test_a_weakly_similar_cited_passage_does_not_read_zero() -> None:
    # A passage cited for its words (BM25) can sit below the model's unrelated level; the
    # old figure clipped it to "relevance 0%" beside a rank score of 1.00.
    assert MINILM.strength(0.15) == 0.0
    assert f"{MINILM.relevance(0.15):.0%}" not in ("0%", "100%")
    assert f"{MINILM.relevance(0.95):.0%}" != "100%"
