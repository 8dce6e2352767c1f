"""LangChain's own standard suite for retrievers, run against `StoreRetriever` over a real
LanceDB store and the bundled embedding model: LangChain users rely on what it checks (`k` in
the constructor and at call time, documents back, sync and async)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.embeddings import dimension, get_embeddings
from core.stores.lancedb import LanceDBStore
from tests.factories import make_chunk

TEXTS = (
    "The canteen opens at 11:30 and closes at 14:00.",
    "New employees receive 22 days of annual leave.",
    "Remote work is allowed up to three days a week.",
    "Travel expenses are reimbursed within 30 days.",
    "The office is closed on public holidays.",
)


class TestStoreRetrieverStandard(RetrieversIntegrationTests):
    params: dict[str, Any] = {}

    @pytest.fixture(autouse=True, scope="class")
    def indexed(
        self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[None]:
        embeddings = get_embeddings(Settings())
        store = LanceDBStore(tmp_path_factory.mktemp("lancedb"), dimension=dimension(embeddings))
        vectors = embeddings.embed_documents(list(TEXTS))
        store.upsert(
            [
                make_chunk(f"doc{i}", 0, text, tuple(vector))
                for i, (text, vector) in enumerate(zip(TEXTS, vectors, strict=True))
            ]
        )
        request.cls.params = {"store": store, "embeddings": embeddings}
        yield
        store.close()

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return StoreRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "How many days of leave do new employees get?"
