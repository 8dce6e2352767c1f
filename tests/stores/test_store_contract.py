"""The contract every vector store must honour. It runs on LanceDB always, and on Weaviate
whenever WEAVIATE_URL points at a server (otherwise those cases report as skipped, with why).

Vectors are small hand-made unit vectors so each expectation follows from geometry, not from
an embedding model's opinion.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator

import pytest

from core.config import Settings
from core.stores.base import SearchFilter, VectorStore
from tests.factories import make_chunk

DIM = 8


def unit(i: int, j: int | None = None, mix: float = 0.0) -> tuple[float, ...]:
    """Unit vector along axis i, optionally tilted towards axis j."""
    v = [0.0] * DIM
    v[i] = 1.0 - mix
    if j is not None:
        v[j] = mix
    norm = math.sqrt(sum(x * x for x in v))
    return tuple(x / norm for x in v)


@pytest.fixture(params=["lancedb", "weaviate"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[VectorStore]:
    if request.param == "lancedb":
        from core.stores.lancedb import LanceDBStore

        lance = LanceDBStore(tmp_path / "lancedb", dimension=DIM)
        yield lance
        lance.close()
        return
    url = os.environ.get("WEAVIATE_URL")
    if not url:
        pytest.skip("WEAVIATE_URL is not set: no Weaviate server to run the contract against")
    from core.stores.weaviate import WeaviateStore

    settings = Settings(
        weaviate_url=url,
        weaviate_api_key=os.environ.get("WEAVIATE_API_KEY"),
        weaviate_tokenization=os.environ.get("WEAVIATE_TOKENIZATION", "kagome_kr"),
    )
    weaviate_store = WeaviateStore(
        settings, dimension=DIM, collection=f"LoupeTest{uuid.uuid4().hex[:8]}"
    )
    yield weaviate_store
    weaviate_store.drop()
    weaviate_store.close()


CORPUS = [
    make_chunk(
        "alpha",
        0,
        "Solar panels convert sunlight into electricity.",
        unit(0),
        tags=("energy",),
        page=1,
        heading="Solar",
    ),
    make_chunk(
        "alpha", 1, "Wind turbines turn moving air into power.", unit(1), tags=("energy",), page=2
    ),
    make_chunk("beta", 0, "The recipe needs flour, butter and sugar.", unit(2), tags=("food",)),
    make_chunk("beta", 1, "Bake the cake for forty minutes.", unit(3), tags=("food", "baking")),
    make_chunk(
        "gamma", 0, "서울은 대한민국의 수도이며 문서에서 자주 언급된다.", unit(4), tags=("ko",)
    ),
]


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.upsert(CORPUS)
    return store


def test_upsert_counts_and_is_idempotent(filled: VectorStore) -> None:
    assert filled.count() == len(CORPUS)
    filled.upsert(CORPUS)
    assert filled.count() == len(CORPUS)
    assert filled.count("alpha") == 2
    assert filled.count("nobody") == 0


def test_upsert_replaces_by_id(filled: VectorStore) -> None:
    changed = make_chunk("beta", 0, "The recipe needs rice and beans.", unit(2), tags=("food",))
    filled.upsert([changed])
    hits = filled.search("rice", unit(2), k=3, alpha=0.0)
    assert hits and hits[0].chunk.id == changed.id
    assert hits[0].chunk.text == "The recipe needs rice and beans."
    assert filled.count() == len(CORPUS)


def test_vector_search_orders_by_cosine(filled: VectorStore) -> None:
    hits = filled.search("", unit(1, 0, mix=0.2), k=3, alpha=1.0)
    assert [h.chunk.document_id for h in hits][:2] == ["alpha", "alpha"]
    assert hits[0].chunk.position == 1
    assert hits[0].vector_score == pytest.approx(math.cos(math.atan2(0.2, 0.8)), abs=1e-3)
    assert hits[0].vector_score > hits[1].vector_score
    assert all(h.keyword_score is None for h in hits)


def test_keyword_search_finds_terms(filled: VectorStore) -> None:
    hits = filled.search("butter flour", unit(7), k=3, alpha=0.0)
    assert hits[0].chunk.document_id == "beta" and hits[0].chunk.position == 0
    assert hits[0].keyword_score is not None and hits[0].keyword_score > 0
    assert all(h.vector_score is None for h in hits)
    assert all("butter" in h.chunk.text or "flour" in h.chunk.text for h in hits)


def test_hybrid_fuses_both_parts(filled: VectorStore) -> None:
    # Keyword points at the wind chunk, the vector at the solar chunk: at alpha 0.5 both parts
    # count, and the chunk found by both methods carries both scores.
    hits = filled.search("wind turbines", unit(1, 0, mix=0.3), k=5, alpha=0.5)
    top = hits[0]
    assert top.chunk.document_id == "alpha" and top.chunk.position == 1
    assert top.keyword_score is not None and top.vector_score is not None
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 + 1e-6 for s in scores)


def test_alpha_moves_ranking_between_keyword_and_vector(filled: VectorStore) -> None:
    query, vector = "sugar", unit(0)  # keyword says recipe, vector says solar
    keyword_first = filled.search(query, vector, k=2, alpha=0.1)[0].chunk
    vector_first = filled.search(query, vector, k=2, alpha=0.9)[0].chunk
    assert keyword_first.document_id == "beta"
    assert vector_first.document_id == "alpha"


def test_k_is_respected(filled: VectorStore) -> None:
    assert len(filled.search("the", unit(0), k=2, alpha=0.5)) == 2


def test_filters_by_document_and_tag(filled: VectorStore) -> None:
    only_beta = filled.search(
        "power", unit(1), k=5, alpha=0.5, filters=SearchFilter(document_ids=("beta",))
    )
    assert only_beta and {h.chunk.document_id for h in only_beta} == {"beta"}
    baking = filled.search(
        "cake", unit(3), k=5, alpha=0.5, filters=SearchFilter(tags=("baking", "nope"))
    )
    assert [h.chunk.position for h in baking] == [1]
    both = SearchFilter(document_ids=("alpha", "beta"), tags=("food",))
    assert {
        h.chunk.document_id for h in filled.search("x", unit(2), k=5, alpha=1.0, filters=both)
    } == {"beta"}


def test_metadata_round_trip(filled: VectorStore) -> None:
    hit = filled.search("solar sunlight", unit(0), k=1, alpha=0.5)[0]
    chunk = hit.chunk
    assert (chunk.document_id, chunk.position, chunk.page, chunk.heading) == (
        "alpha",
        0,
        1,
        "Solar",
    )
    assert chunk.title == "alpha.txt" and chunk.content_hash == "v1" and chunk.tags == ("energy",)


def test_korean_keyword_search(filled: VectorStore) -> None:
    # "문서" appears only inside "문서에서" (with a particle attached).
    hits = filled.search("문서", unit(7), k=3, alpha=0.0)
    assert hits and hits[0].chunk.document_id == "gamma"
    assert filled.search("수도", unit(7), k=1, alpha=0.0)[0].chunk.document_id == "gamma"


def test_delete_document(filled: VectorStore) -> None:
    assert filled.delete_document("beta") == 2
    assert filled.count("beta") == 0
    assert filled.count() == len(CORPUS) - 2
    assert all(
        h.chunk.document_id != "beta" for h in filled.search("flour", unit(2), k=5, alpha=0.5)
    )
    assert filled.delete_document("beta") == 0


def test_delete_keeps_one_version(filled: VectorStore) -> None:
    new_version = make_chunk("alpha", 0, "Solar panels, new edition.", unit(0), content_hash="v2")
    filled.upsert([new_version])
    assert filled.count("alpha") == 3
    assert filled.delete_document("alpha", keep_content_hash="v2") == 2
    remaining = filled.search(
        "solar", unit(0), k=5, alpha=0.5, filters=SearchFilter(document_ids=("alpha",))
    )
    assert [h.chunk.content_hash for h in remaining] == ["v2"]


def test_iter_chunks_returns_everything_with_vectors(filled: VectorStore) -> None:
    batches = list(filled.iter_chunks(batch_size=2))
    assert all(len(b) <= 2 for b in batches)
    chunks = {c.id: c for batch in batches for c in batch}
    assert set(chunks) == {c.id for c in CORPUS}
    for original in CORPUS:
        assert chunks[original.id].vector == pytest.approx(original.vector, abs=1e-5)


def test_empty_store_and_health(store: VectorStore) -> None:
    assert store.search("anything", unit(0), k=3, alpha=0.5) == []
    health = store.health()
    assert health.ok and health.chunks == 0
    store.upsert(CORPUS[:1])
    assert store.health().chunks == 1


def test_rejects_chunk_without_vector(store: VectorStore) -> None:
    with pytest.raises(ValueError):
        store.upsert([make_chunk("x", 0, "no vector", unit(0)).without_vector()])


def test_version_counts_per_document_and_content_hash(filled: VectorStore) -> None:
    """What `core check` compares with SQL: one entry per version held, with its chunk count."""
    counts = filled.version_counts()
    assert sum(counts.values()) == len(CORPUS)
    by_document: dict[str, int] = {}
    for (document_id, _), n in counts.items():
        by_document[document_id] = by_document.get(document_id, 0) + n
    assert by_document == {"alpha": 2, "beta": 2, "gamma": 1}
    assert all(digest for _, digest in counts)
