"""Copying a corpus between two real LanceDB stores: everything arrives with its vector, and an
interrupted copy resumes from its checkpoint instead of starting over."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.stores.base import Chunk
from core.stores.lancedb import LanceDBStore
from core.stores.migrate import migrate_store
from tests.factories import make_chunk

DIM = 4


def make_chunks(doc: str, n: int) -> list[Chunk]:
    return [
        make_chunk(
            doc,
            i,
            f"{doc} passage {i} about copying stores",
            (1.0, float(i), 0.5, -float(i) / 10),
            content_hash="h1",
            title=f"{doc}.pdf",
            page=i // 3 + 1,
            heading="Intro" if i % 2 else None,
            tags=("manual",) if i % 3 == 0 else (),
        )
        for i in range(n)
    ]


@pytest.fixture
def source(tmp_path: Path) -> LanceDBStore:
    store = LanceDBStore(tmp_path / "source", dimension=DIM)
    store.upsert(make_chunks("alpha", 7) + make_chunks("beta", 5))
    return store


def all_chunks(store: LanceDBStore) -> dict[str, Chunk]:
    return {chunk.id: chunk for batch in store.iter_chunks(100) for chunk in batch}


def test_copies_every_chunk_with_its_vector(source: LanceDBStore, tmp_path: Path) -> None:
    target = LanceDBStore(tmp_path / "target", dimension=DIM)
    seen: list[tuple[int, int]] = []

    copied = migrate_store(source, target, batch_size=5, progress=lambda d, t: seen.append((d, t)))

    assert copied == 12
    assert target.count() == 12 and target.count("beta") == 5
    expected, actual = all_chunks(source), all_chunks(target)
    assert actual.keys() == expected.keys()
    for chunk_id_, chunk in expected.items():
        assert actual[chunk_id_] == chunk  # every field, vector included
    assert seen[-1] == (12, 12)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_migrated_store_answers_searches(source: LanceDBStore, tmp_path: Path) -> None:
    target = LanceDBStore(tmp_path / "target", dimension=DIM)
    migrate_store(source, target)
    query = "beta passage 3"
    vector = (1.0, 3.0, 0.5, -0.3)
    before = [h.chunk.id for h in source.search(query, vector, k=3, alpha=0.5)]
    after = [h.chunk.id for h in target.search(query, vector, k=3, alpha=0.5)]
    assert after == before


class FailsAfter:
    """Wraps a target (migration only calls `upsert`): accepts `ok_batches` batches, then fails
    like a server going away. Records what it was sent."""

    name = "flaky"

    def __init__(self, inner: LanceDBStore, ok_batches: int) -> None:
        self.inner = inner
        self.ok_batches = ok_batches
        self.sent: list[str] = []

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if self.ok_batches == 0:
            raise ConnectionError("target went away")
        self.ok_batches -= 1
        self.sent += [chunk.id for chunk in chunks]
        self.inner.upsert(chunks)


def test_interrupted_copy_resumes_from_checkpoint(source: LanceDBStore, tmp_path: Path) -> None:
    target = LanceDBStore(tmp_path / "target", dimension=DIM)
    checkpoint = tmp_path / "state" / "migrate.ids"

    with pytest.raises(ConnectionError):
        migrate_store(source, FailsAfter(target, 2), batch_size=4, checkpoint=checkpoint)
    assert target.count() == 8
    assert len(checkpoint.read_text().split()) == 8

    resumed = FailsAfter(target, ok_batches=100)
    copied = migrate_store(source, resumed, batch_size=4, checkpoint=checkpoint)

    assert copied == 4
    assert len(resumed.sent) == 4  # the 8 already copied were not sent again
    assert all_chunks(target).keys() == all_chunks(source).keys()
    assert not checkpoint.exists()  # a finished copy leaves no state behind


def test_empty_source_copies_nothing(tmp_path: Path) -> None:
    empty = LanceDBStore(tmp_path / "empty", dimension=DIM)
    target = LanceDBStore(tmp_path / "target", dimension=DIM)
    assert migrate_store(empty, target, checkpoint=tmp_path / "ids") == 0
    assert target.count() == 0
