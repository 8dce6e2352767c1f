"""The shared feedback state reads SQL incrementally: after the first read only new rows are
read, a missed or deleted row triggers one full read, and two states on one database agree.
Real SQL (SQLite and Postgres) and the bundled embedding model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.db import queries
from core.db.models import Answer
from core.db.session import Database
from core.embeddings import get_embeddings
from core.learn.state import LearnedState
from core.stores.base import Chunk, Hit

QUESTION = "What is the hotel limit in Oslo?"


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> Embeddings:
    return get_embeddings(Settings(data_dir=tmp_path_factory.mktemp("data")))


def add_answer(db: Database, question: str = QUESTION, text: str = "190 euros [1].") -> str:
    with db.session() as s:
        row = Answer(
            workspace="default",
            question=question,
            standalone_question=question,
            answer=text,
            sources=[
                {
                    "n": 1,
                    "chunk_id": "c-oslo",
                    "document_id": "d1",
                    "document": "limits.csv",
                    "page": None,
                    "heading": None,
                    "quote": "Oslo,Norway,190",
                    "cited": True,
                },
                {
                    "n": 2,
                    "chunk_id": "c-singapore",
                    "document_id": "d1",
                    "document": "limits.csv",
                    "page": None,
                    "heading": None,
                    "quote": "Singapore,210",
                    "cited": True,
                },
            ],
            model="extractive",
            generator="extractive",
            confidence=0.5,
            confidence_label="medium",
        )
        s.add(row)
        s.flush()
        return row.id


def review(db: Database, answer_id: str, **fields: Any) -> None:
    with db.session() as s:
        queries.add_feedback(s, answer_id, role="expert", source="review", user="dana", **fields)


def test_incremental_and_shared(db: Database, embeddings: Embeddings) -> None:
    first, second = (LearnedState(db, "default", embeddings) for _ in range(2))
    assert not first.refresh() and first.index.match(QUESTION) is None

    oslo = add_answer(db)
    review(db, oslo, rating="up", citation_verdicts={"1": "supports", "2": "does_not_support"})
    assert first.refresh()
    assert not first.refresh()  # nothing new: only the marker was read
    match = first.index.match("what's the hotel limit in Oslo")
    assert match is not None and match.answer_id == oslo and match.expert == "dana"
    assert first.boosts["c-oslo"] > 0 > first.boosts["c-singapore"]

    for n in range(5):
        review(db, add_answer(db, f"Question number {n}?"), rating="up")
    rows_before = first.rows_read
    first.refresh()
    assert first.rows_read - rows_before == 5  # only the new rows
    assert first.full_reads == 0

    review(db, oslo, rating="down", comment="Outdated")
    second.refresh()
    first.refresh()
    for state in (first, second):
        assert state.index.match(QUESTION) is None
        assert len(state.index) == 5


def test_changing_a_verdict_replaces_it(db: Database, embeddings: Embeddings) -> None:
    state = LearnedState(db, "default", embeddings)
    oslo = add_answer(db)
    review(db, oslo, citation_verdicts={"1": "does_not_support"})
    state.refresh()
    assert state.boosts["c-oslo"] < 0
    review(db, oslo, citation_verdicts={"1": "supports"})
    state.refresh()
    assert state.boosts["c-oslo"] > 0  # the newest verdict counts, not the sum of both


class TwoPassages:
    """A store that ranks the Oslo row just above the Singapore row for every question."""

    def search(self, query: str, vector: Any, **_: Any) -> list[Hit]:
        def hit(chunk: str, score: float) -> Hit:
            return Hit(Chunk(chunk, "d1", chunk, "limits.csv", 0, chunk), score)

        return [hit("c-oslo", 0.60), hit("c-singapore", 0.55)]


def test_a_verdict_counts_for_its_question_not_for_unrelated_ones(
    db: Database, embeddings: Embeddings
) -> None:
    state = LearnedState(db, "default", embeddings)
    review(db, add_answer(db), citation_verdicts={"1": "does_not_support"})
    state.refresh()
    retriever = StoreRetriever(store=TwoPassages(), embeddings=embeddings, boosts=state.boosts)

    def first(question: str) -> str:
        return retriever.search(question, k=2)[0].chunk.id

    assert first(QUESTION) == "c-singapore"  # demoted for the question it was judged for
    assert first("What is the hotel limit in Oslo") == "c-singapore"  # and its rewrites
    assert first("Who wrote the paper about the last glacial period?") == "c-oslo"


def test_deleted_feedback_forces_one_full_read(db: Database, embeddings: Embeddings) -> None:
    state = LearnedState(db, "default", embeddings)
    oslo = add_answer(db)
    review(db, oslo, rating="up")
    other = add_answer(db, "How long is parental leave?", "16 weeks [1].")
    review(db, other, rating="up")
    state.refresh()
    assert len(state.index) == 2
    with db.session() as s:
        s.delete(s.get_one(Answer, oslo))  # its feedback goes with it (ON DELETE CASCADE)
    state.refresh()
    assert state.full_reads == 1
    assert [a.answer_id for a in state.index.answers] == [other]
