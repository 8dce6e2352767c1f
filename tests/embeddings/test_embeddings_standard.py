"""LangChain's own standard suite for embeddings, run against the bundled models as Loupe
builds them (through the `EMBEDDINGS` registry, so the default runtime is what is tested)."""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from core.config import Settings
from core.embeddings import EMBEDDINGS


def bundled(name: str) -> type[Embeddings]:
    """A constructor with no arguments (what the suite calls) for a registered model."""

    class Bundled(Embeddings):
        def __init__(self) -> None:
            self.inner = EMBEDDINGS[name].build(Settings(embeddings=name))

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.inner.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return self.inner.embed_query(text)

    return Bundled


class TestBundledMiniLM(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return bundled("minilm")

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}
