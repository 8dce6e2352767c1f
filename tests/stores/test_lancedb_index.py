"""LanceDB's approximate vector index: created once the table is big enough, folded forward as
rows arrive, and never at the cost of finding a row (filters included). The size threshold is
lowered so the lifecycle runs on a few hundred rows instead of 50,000."""

from __future__ import annotations

import numpy as np
import pytest

from core.stores import lancedb as lance_module
from core.stores.base import Chunk, SearchFilter
from core.stores.lancedb import VECTOR_INDEX, LanceDBStore
from tests.factories import make_chunk

DIM = 16


def chunks(doc: str, count: int, rng: np.random.Generator) -> list[Chunk]:
    vectors = rng.normal(size=(count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        make_chunk(doc, i, f"passage {i} of {doc}", tuple(float(x) for x in vectors[i]))
        for i in range(count)
    ]


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(lance_module, "VECTOR_INDEX_MIN_ROWS", 256)
    return 256


def vectors_of(store: LanceDBStore, chunk_id: str) -> np.ndarray:
    row = store._table.search().where(f"id = '{chunk_id}'").select(["vector"]).to_list()[0]
    return np.asarray(row["vector"])


def vector_index(store: LanceDBStore):  # noqa: ANN201 - LanceDB's IndexStatistics
    return store._table.index_stats(VECTOR_INDEX)


def test_index_appears_at_threshold_and_search_still_finds_each_row(
    tmp_path, small_threshold: int
) -> None:
    rng = np.random.default_rng(7)
    store = LanceDBStore(tmp_path / "db", dimension=DIM)
    first = chunks("a", small_threshold - 56, rng)
    store.upsert(first)
    assert vector_index(store) is None, "below the threshold search stays exact"

    second = chunks("b", 100, rng)
    store.upsert(second)
    stats = vector_index(store)
    assert stats is not None and stats.num_indexed_rows == store.count() == 300

    for chunk in first[:20] + second[:20]:
        assert chunk.vector is not None
        hits = store.search("", chunk.vector, k=1, alpha=1.0)
        assert hits[0].chunk.id == chunk.id
        assert hits[0].vector_score == pytest.approx(1.0, abs=1e-4)

    # Scores through the index are true cosines (confidence and the "documents do not cover
    # it" check read them), not the quantized index's own distance scale.
    query = np.asarray(first[0].vector)
    for hit in store.search("", tuple(query), k=10, alpha=1.0):
        assert hit.chunk.vector is None
        expected = float(np.dot(query, vectors_of(store, hit.chunk.id)))
        assert hit.vector_score == pytest.approx(expected, abs=1e-4)

    only_b = store.search(
        "", first[0].vector or (), k=5, alpha=1.0, filters=SearchFilter(document_ids=("b",))
    )
    assert only_b and {hit.chunk.document_id for hit in only_b} == {"b"}


def test_rows_added_after_the_index_are_found_and_folded_in(tmp_path, small_threshold: int) -> None:
    rng = np.random.default_rng(11)
    store = LanceDBStore(tmp_path / "db", dimension=DIM)
    store.upsert(chunks("a", 300, rng))
    built = vector_index(store)
    assert built is not None and built.num_indexed_rows == 300

    late = chunks("c", 30, rng)  # a tenth of the table: searched exactly, not yet indexed
    store.upsert(late)
    assert vector_index(store).num_unindexed_rows == 30
    assert late[0].vector is not None
    assert store.search("", late[0].vector, k=1, alpha=1.0)[0].chunk.id == late[0].id

    store.upsert(chunks("d", 60, rng))  # now over a fifth unindexed: optimize folds them in
    stats = vector_index(store)
    assert stats.num_unindexed_rows == 0 and stats.num_indexed_rows == 390

    store.upsert(chunks("e", 1_200, rng))  # the table has grown fourfold: retrained
    assert vector_index(store).num_indexed_rows == store.count() == 1_590
