"""A question in a language the embedding model was not trained on is searched and answered by
its words: the English-only MiniLM's similarities on Korean are noise (bench/KOREAN.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from core.answer.extractive import ExtractiveAnswerer
from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.embeddings import get_embeddings, vector_languages
from core.language import vectors_read
from core.stores.lancedb import LanceDBStore
from tests.factories import make_chunk

PASSAGES = [
    "주차 허가증은 한 달에 30,000원이며 인사팀에서 신청합니다.",
    "연차 휴가는 입사 첫해 15일이며 매년 하루씩 늘어납니다.",
    "The parking permit costs 25 euros a month and is requested from HR.",
]


class CountingEmbeddings(Embeddings):
    """The bundled MiniLM, counting the texts it is asked to embed as passages."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.passages = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.passages += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture(scope="module")
def minilm() -> Embeddings:
    return get_embeddings(Settings())


def test_the_default_model_reads_english_only() -> None:
    english_only = vector_languages(Settings())
    assert english_only == frozenset({"en"})
    assert not vectors_read("주차 허가증은 얼마인가요?", english_only)
    assert vectors_read("How much is the parking permit?", english_only)
    assert vectors_read("주차 허가증은 얼마인가요?", vector_languages(Settings(embeddings="e5")))


def test_a_korean_question_is_searched_by_keywords_when_the_model_reads_english_only(
    tmp_path: Path, minilm: Embeddings
) -> None:
    vectors = minilm.embed_documents(PASSAGES)
    store = LanceDBStore(tmp_path, dimension=len(vectors[0]))
    pairs = enumerate(zip(PASSAGES, vectors, strict=True))
    store.upsert([make_chunk(f"d{i}", 0, text, tuple(v)) for i, (text, v) in pairs])
    try:
        english_only = StoreRetriever(
            store=store, embeddings=minilm, k=3, vector_languages=frozenset({"en"})
        )
        korean = english_only.search("주차 허가증은 한 달에 얼마인가요?")
        assert korean[0].chunk.document_id == "d0"
        assert all(h.vector_score is None for h in korean)  # the vectors took no part
        english = english_only.search("How much is the parking permit?")
        assert english[0].chunk.document_id == "d2"
        assert any(h.vector_score is not None for h in english)
        # A model that reads Korean (None: many languages) searches it hybrid, as before.
        multilingual = StoreRetriever(store=store, embeddings=minilm, k=3)
        assert any(h.vector_score is not None for h in multilingual.search("주차 허가증"))
    finally:
        store.close()


def test_a_korean_question_is_answered_by_shared_words_without_embedding_sentences(
    minilm: Embeddings,
) -> None:
    counting = CountingEmbeddings(minilm)
    answerer = ExtractiveAnswerer(counting, vector_languages=frozenset({"en"}))
    passage = Document(page_content=" ".join([PASSAGES[1], PASSAGES[0]]))
    answer = answerer.answer("주차 허가증은 한 달에 얼마인가요?", [passage])
    assert answer.startswith("주차 허가증은 한 달에 30,000원이며") and "연차" not in answer
    assert counting.passages == 0  # its sentence vectors would have meant nothing
    answerer.answer("How much is the parking permit?", [Document(page_content=PASSAGES[2])])
    assert counting.passages == 1
