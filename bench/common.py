"""What every benchmark step shares: sizes, data readers, synthetic data, timers, metrics, results.

Each step (ingest, query, baseline, embedding backends, profile) runs in its own process, started
by `run_all.py`, so that a memory figure belongs to one system at one size and no step inherits
another's caches. Steps talk to each other only through JSON files in `bench/results/` and arrays
cached in the work directory.

Everything random is drawn from generators seeded here, so two runs on the same machine build
the same corpora, pick the same queries and differ only by timing noise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from langchain_core.embeddings import Embeddings

from core.evaluation.datasets import limit_beir, load_beir
from core.evaluation.metrics import ndcg_at_k
from core.evaluation.records import machine_info, package_versions

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = Path(os.environ.get("LOUPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR", Path(tempfile.gettempdir()) / "loupe-bench"))
SEED = 20240611
DIM = 384  # all-MiniLM-L6-v2


# --- sizes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big each benchmark is. `full` is what `make bench` runs and RESULTS.md reports;
    `quick` (BENCH_QUICK=1) exercises every code path in a few minutes, for development only."""

    name: str
    xquad_docs: int  # XQuAD paragraphs ingested through the real pipeline (of 240)
    arguana_ingest_docs: int  # ArguAna documents ingested through the real pipeline (of 8,674)
    generated_docs: int  # generated Markdown documents ...
    generated_chunks_per_doc: int  # ... of this many chunks each
    generated_embed_sample: int  # chunks of the generated corpus embedded for real
    query_sizes: tuple[int, ...]  # store sizes for the latency benchmark
    latency_queries: int  # timed queries per size and mode (after warm-up)
    e2e_queries: int  # timed end-to-end questions per size
    arguana_corpus_docs: int | None  # None: the whole corpus for nDCG@10
    arguana_queries: int | None  # None: every judged query
    baseline_quality_queries: int  # seeded sample of them scored by both systems side by side
    baseline_latency_queries: int
    baseline_size: int  # synthetic chunks for the latency comparison with the baseline
    backend_texts: int  # passages per throughput measurement of an embedding backend
    # ArguAna subset (documents, queries) on which torch and int8 are compared for nDCG@10: the
    # reference runtime embedding the whole corpus again would take a quarter of the run.
    backend_quality: tuple[int, int] | None
    profile_queries: int


FULL = Scale(
    name="full",
    xquad_docs=240,
    arguana_ingest_docs=500,
    generated_docs=100,
    generated_chunks_per_doc=1_000,
    generated_embed_sample=500,
    query_sizes=(10_000, 100_000, 1_000_000),
    latency_queries=200,
    e2e_queries=50,
    arguana_corpus_docs=None,
    arguana_queries=None,
    baseline_quality_queries=150,
    baseline_latency_queries=150,
    baseline_size=100_000,
    backend_texts=128,
    backend_quality=(1_200, 300),
    profile_queries=60,
)
QUICK = Scale(
    name="quick",
    xquad_docs=40,
    arguana_ingest_docs=60,
    generated_docs=5,
    generated_chunks_per_doc=400,
    generated_embed_sample=64,
    query_sizes=(2_000, 60_000),
    latency_queries=40,
    e2e_queries=8,
    arguana_corpus_docs=600,
    arguana_queries=60,
    baseline_quality_queries=40,
    baseline_latency_queries=30,
    baseline_size=60_000,
    backend_texts=64,
    backend_quality=None,
    profile_queries=30,
)


def scale() -> Scale:
    return QUICK if os.environ.get("BENCH_QUICK") == "1" else FULL


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArguAna:
    """BEIR ArguAna: each query is an argument, its relevant document the best counter-argument."""

    corpus: dict[str, tuple[str, str]]  # id -> (title, text), in file order
    queries: dict[str, str]  # judged queries only, in file order
    qrels: dict[str, dict[str, int]]


def load_arguana(max_docs: int | None = None, max_queries: int | None = None) -> ArguAna:
    """The shared ArguAna files, read and cut down exactly as `core eval --beir` does: with
    limits (quick runs), the first queries and a corpus that holds their relevant documents plus
    others in file order, so scores stay meaningful and match the eval runner's subset."""
    data = limit_beir(load_beir(DATA_DIR / "arguana"), queries=max_queries, corpus=max_docs)
    return ArguAna(
        corpus={doc_id: (doc.title, doc.text) for doc_id, doc in data.corpus.items()},
        queries=data.queries,
        qrels=data.qrels,
    )


def arguana_file_text(title: str, text: str) -> str:
    """A document as a user would upload it: the (keyword-list) title, then the argument.
    BEIR evaluates on title + text too."""
    return f"{title}\n\n{text}" if title else text


@dataclass(frozen=True)
class XQuAD:
    paragraphs: list[tuple[str, str]]  # (article title, paragraph text)
    questions: list[tuple[str, int]]  # (question, index into paragraphs)


def load_xquad() -> XQuAD:
    data = json.loads((DATA_DIR / "xquad-en" / "xquad.en.json").read_text(encoding="utf-8"))
    paragraphs: list[tuple[str, str]] = []
    questions: list[tuple[str, int]] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            paragraphs.append((article["title"], paragraph["context"]))
            questions += [(qa["question"], len(paragraphs) - 1) for qa in paragraph["qas"]]
    return XQuAD(paragraphs=paragraphs, questions=questions)


def sample(items: Sequence[Any], n: int, *, salt: int = 0) -> list[Any]:
    """A seeded random sample in original order (the same one every run)."""
    if n >= len(items):
        return list(items)
    picked = np.random.default_rng(SEED + salt).choice(len(items), size=n, replace=False)
    return [items[i] for i in sorted(picked)]


# --- embeddings --------------------------------------------------------------------------------


def load_embeddings() -> Embeddings:
    """The configured default model (bundled all-MiniLM-L6-v2), exactly as Loupe loads it."""
    from core.config import Settings
    from core.embeddings import get_embeddings

    return get_embeddings(Settings())


class PrecomputedEmbeddings(Embeddings):
    """Serves vectors already computed in one batch by the same model, so that quality runs
    (1,406 long ArguAna queries, scored for two systems) do not pay to embed the same text
    again. Unknown text goes to the model. Never used where embedding time is measured."""

    def __init__(self, model: Embeddings, known: Mapping[str, Sequence[float]]) -> None:
        self.model = model
        self.known = {text: list(map(float, vector)) for text, vector in known.items()}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.known]
        if missing:
            self.known.update(zip(missing, self.model.embed_documents(missing), strict=True))
        return [self.known[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


# --- synthetic corpus --------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+")
_WORDS_PER_SENTENCE = 15
_SENTENCES_PER_CHUNK = 8
# Synthetic vectors are copies of real MiniLM vectors with this much Gaussian noise: a copy has
# cosine ~0.86 with its source and ~0.74 with a sibling, which is how close related passages of
# a real corpus sit, so vector indexes see clusters rather than uniform noise.
_NOISE = 0.6
_BLOCK = 10_000


def vocabulary(max_words: int = 50_000) -> tuple[list[str], np.ndarray]:
    """Words of the real corpora (ArguAna and XQuAD) with their frequencies: synthetic text drawn
    from it has a realistic (Zipfian) word distribution, so full-text posting lists are as long as
    on real text and real questions find matches."""
    cache = WORK_DIR / "vocabulary.json"
    if cache.exists():
        words, counts = json.loads(cache.read_text())
    else:
        counter: Counter[str] = Counter()
        for title, text in load_arguana().corpus.values():
            counter.update(_WORD.findall(f"{title} {text}".lower()))
        for _, text in load_xquad().paragraphs:
            counter.update(_WORD.findall(text.lower()))
        common = counter.most_common(max_words)
        words, counts = [w for w, _ in common], [c for _, c in common]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps([words, counts]))
    freq = np.asarray(counts, dtype=np.float64)
    return words, freq / freq.sum()


def seed_vectors(embeddings: Embeddings | None = None) -> np.ndarray:
    """Real MiniLM vectors of the 240 XQuAD paragraphs plus 760 ArguAna documents (seeded
    sample), computed once per run and cached: the sources the synthetic vectors are copied from.
    XQuAD's questions then find close synthetic passages, so the end-to-end path (answer
    extraction, not an early "documents do not cover this") is what gets measured."""
    cache = WORK_DIR / "seed_vectors.npy"
    if cache.exists():
        return np.load(cache)
    model = embeddings or load_embeddings()
    texts = [text for _, text in load_xquad().paragraphs]
    arguana = load_arguana().corpus
    texts += [arguana_file_text(*arguana[d]) for d in sample(list(arguana), 760, salt=7)]
    vectors = np.asarray(model.embed_documents(texts), dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


class SyntheticCorpus:
    """Chunks of generated text with generated vectors, addressable by index: block b is drawn
    from a generator seeded with (SEED, b), so any range comes out the same in any process."""

    def __init__(self, seeds: np.ndarray) -> None:
        self.seeds = seeds
        words, self.probs = vocabulary()
        self.words = np.asarray(words, dtype=object)
        self._cumulative = np.cumsum(self.probs)

    def _block(self, b: int) -> tuple[list[str], np.ndarray]:
        rng = np.random.default_rng([SEED, b])
        per_chunk = _WORDS_PER_SENTENCE * _SENTENCES_PER_CHUNK
        picks = np.searchsorted(self._cumulative, rng.random((_BLOCK, per_chunk)))
        picks = np.minimum(picks, len(self.words) - 1)
        drawn = self.words[picks]
        texts = []
        for row in drawn:
            sentences = (
                " ".join(row[i : i + _WORDS_PER_SENTENCE])
                for i in range(0, per_chunk, _WORDS_PER_SENTENCE)
            )
            texts.append(". ".join(s.capitalize() for s in sentences) + ".")
        sources = self.seeds[rng.integers(0, len(self.seeds), _BLOCK)]
        noise = rng.standard_normal((_BLOCK, self.seeds.shape[1])).astype(np.float32)
        vectors = sources + noise * (_NOISE / math.sqrt(self.seeds.shape[1]))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return texts, vectors.astype(np.float32)

    def chunks(self, start: int, stop: int) -> tuple[list[str], np.ndarray]:
        """Texts and vectors of chunks [start, stop)."""
        texts: list[str] = []
        vectors: list[np.ndarray] = []
        for b in range(start // _BLOCK, (stop - 1) // _BLOCK + 1):
            block_texts, block_vectors = self._block(b)
            lo, hi = max(start - b * _BLOCK, 0), min(stop - b * _BLOCK, _BLOCK)
            texts += block_texts[lo:hi]
            vectors.append(block_vectors[lo:hi])
        return texts, np.concatenate(vectors)

    def query_vectors(self, n: int) -> np.ndarray:
        """Fresh draws from the same distribution (not stored): queries for recall checks."""
        rng = np.random.default_rng([SEED, 999_999])
        sources = self.seeds[rng.integers(0, len(self.seeds), n)]
        noise = rng.standard_normal((n, self.seeds.shape[1])).astype(np.float32)
        vectors = sources + noise * (_NOISE / math.sqrt(self.seeds.shape[1]))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


# --- measuring ---------------------------------------------------------------------------------


class Stopwatch:
    """Accumulates wall time under names: `with watch("embed"): ...` any number of times."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, timed under `name` on every call."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(name):
                return fn(*args, **kwargs)

        return timed


def timed_calls(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 10) -> list[float]:
    """Seconds per call of `fn(item)` for the items after the first `warmup`, which are run
    untimed first (lazy loading, caches). Warm-up items are never timed again: Loupe caches
    query vectors, and a repeated question would time the cache, not the query."""
    for item in items[:warmup]:
        fn(item)
    samples = []
    for item in items[warmup:]:
        start = time.perf_counter()
        fn(item)
        samples.append(time.perf_counter() - start)
    return samples


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean in milliseconds (linear interpolation between samples)."""
    ms = np.asarray(samples) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
        "n": len(ms),
    }


def rss_mb() -> float:
    """Resident memory of this process now."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """The most resident memory this process has had: its own VmHWM (KiB), not ru_maxrss,
    which Linux carries over from the parent across exec."""
    status = Path("/proc/self/status").read_text()
    [kib] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")]
    return int(kib) / 1024


# --- retrieval quality -------------------------------------------------------------------------


def mean_ndcg(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> float:
    return float(np.mean([ndcg_at_k(rankings[q], qrels[q], 10) for q in rankings]))


# --- results and machine -----------------------------------------------------------------------


def save_result(step: str, data: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{step}.json"
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    return path


def load_result(step: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{step}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


_PACKAGES = (
    "torch", "sentence-transformers", "transformers", "lancedb", "pylance", "pyarrow", "numpy",
    "langchain", "langchain-core", "langchain-classic", "langchain-community", "faiss-cpu",
    "rank-bm25", "onnxruntime", "onnx",
)  # fmt: skip


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the same record `core eval` keeps), with the versions
    of every package the benchmarks compare."""
    return {**machine_info(), "packages": package_versions(_PACKAGES)}


def log(message: str) -> None:
    """Progress on stderr with a timestamp, so a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True, file=sys.stderr)


if __name__ == "__main__":
    # `python -m bench.common`: build the shared caches (vocabulary, seed vectors) up front, so
    # no later step's timing includes them.
    log("setup: vocabulary and seed vectors")
    vocabulary()
    seed_vectors()
    log("setup: done")
