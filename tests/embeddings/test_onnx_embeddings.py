"""The ONNX runtime of the bundled MiniLM must compute what torch computes (int8 within
quantization error), rank passages the same way, and export once per machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import Settings
from core.embeddings import bundled_minilm_path, get_embeddings
from core.embeddings.onnx_minilm import OnnxMiniLMEmbeddings, onnx_model_file

TEXTS = [
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "노르만족은 10세기와 11세기에 프랑스 노르망디 지역에 이름을 준 사람들이다.",
    "short",
    "",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    model = get_embeddings(Settings(embedding_runtime="torch"))
    return np.asarray(model.embed_documents(TEXTS))


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Settings().model_cache_dir


@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.9999), ("int8", 0.97)])
def test_vectors_match_torch(
    precision: str, floor: float, torch_vectors: np.ndarray, cache_dir: Path
) -> None:
    model = OnnxMiniLMEmbeddings(
        Path(bundled_minilm_path()), cache_dir, precision=precision, batch_size=2, threads=1
    )
    vectors = np.asarray(model.embed_documents(TEXTS))
    assert vectors.shape == torch_vectors.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() > floor, cosines
    # Batching and length sorting change nothing beyond int8's dynamic activation ranges,
    # which depend on the batch: one at a time gives (almost) the same vectors.
    one_by_one = np.asarray([model.embed_query(text) for text in TEXTS])
    assert (one_by_one * vectors).sum(axis=1).min() > floor
    assert model.embed_documents([]) == []


def test_retrieval_ranks_like_torch(cache_dir: Path) -> None:
    question = "Which region of France is named after the Normans?"
    onnx = get_embeddings(Settings(embedding_runtime="onnx-int8", model_cache_dir=cache_dir))
    torch = get_embeddings(Settings(embedding_runtime="torch"))
    for model in (onnx, torch):
        scores = np.asarray(model.embed_documents(TEXTS[:3])) @ np.asarray(
            model.embed_query(question)
        )
        assert scores.argmax() == 0
        assert scores[1] < scores[0] - 0.3


def test_export_is_made_once_and_reused(tmp_path: Path) -> None:
    model_dir = Path(bundled_minilm_path())
    first = onnx_model_file(model_dir, tmp_path, "int8")
    stamp = first.stat().st_mtime_ns
    assert onnx_model_file(model_dir, tmp_path, "int8") == first
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".onnx", ".onnx"]  # no scratch left
