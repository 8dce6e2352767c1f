"""Where a question's time goes: cProfile over the query hot path at 100k chunks.

The profiled path is the end-to-end one of the query benchmark (embed the question, hybrid
search, extractive answer, confidence) on the 100k-chunk store (which carries its vector index).
cProfile sees Python frames only: LanceDB's Rust search and torch's kernels show up as the time
of the Python call that entered them, which is enough to say which call to make cheaper.

Output: the functions with the most cumulative and own time, and a breakdown into the parts of
the path, in bench/results/profile.json (RESULTS.md renders it).
"""

from __future__ import annotations

import cProfile
import inspect
import io
import pstats
import sys
from typing import Any

from bench.common import DIM, load_embeddings, load_xquad, log, machine, sample, save_result, scale
from bench.query import store_dir
from core.answer.chain import RagChain
from core.answer.extractive import ExtractiveAnswerer
from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.stores.lancedb import LanceDBStore
from core.wiring import make_chain


def parts_of_path(embeddings: Any) -> list[tuple[str, Any]]:
    """The functions whose cumulative time splits the path into parts, found by their code
    objects (cProfile knows file, line and name, not the class)."""
    from lancedb.query import LanceQueryBuilder

    from core.answer.confidence import compute_confidence
    from core.stores import lancedb as lance_store
    from core.stores.base import fuse

    # The model under the query cache: a forward pass is `_encode` on onnxruntime, `encode`
    # on torch.
    model = getattr(embeddings, "inner", embeddings)
    model_call = getattr(type(model), "_encode", None) or type(model.model).encode
    return [
        ("whole question (RagChain.stream)", RagChain.stream),
        ("retrieve (StoreRetriever.search)", StoreRetriever.search),
        ("  embed the question", type(embeddings).embed_query),
        ("  store search (LanceDBStore.search)", lance_store.LanceDBStore.search),
        ("    LanceDB query to Python rows (to_list)", LanceQueryBuilder.to_list),
        ("    rows to Chunk objects (_chunk)", lance_store._chunk),
        ("    fusion (fuse)", fuse),
        ("extractive answer (ExtractiveAnswerer.rank)", ExtractiveAnswerer.rank),
        ("  embed the passages' sentences", type(embeddings).embed_documents),
        ("confidence (compute_confidence)", compute_confidence),
        (
            f"all model forward passes ({type(model).__name__}.{model_call.__name__})",
            model_call,
        ),
    ]


def cumulative(stats: pstats.Stats, function: Any) -> tuple[float, int]:
    """Cumulative seconds and calls of one function."""
    code = inspect.unwrap(function).__code__
    key = (code.co_filename, code.co_firstlineno, code.co_name)
    entry = stats.stats.get(key)  # type: ignore[attr-defined]
    return (entry[3], entry[1]) if entry else (0.0, 0)


def top(stats: pstats.Stats, key: str, n: int = 25) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(n)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(line.replace(sys.prefix + "/lib/python3.11/site-packages/", "")
                     for line in lines[start:] if line.strip())  # fmt: skip


def main() -> None:
    s = scale()
    settings = Settings()
    size = s.baseline_size
    embeddings = load_embeddings()
    store = LanceDBStore(store_dir(size), dimension=DIM)
    chain = make_chain(settings, store, embeddings, chat_model=None)
    questions = [q for q, _ in sample(load_xquad().questions, s.profile_queries + 5, salt=9)]

    def ask(question: str) -> None:
        for _ in chain.stream(question):
            pass

    for question in questions[:5]:
        ask(question)
    log(f"profile: {len(questions) - 5} questions at {size} chunks")
    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions[5:]:
        ask(question)
    profiler.disable()
    stats = pstats.Stats(profiler)
    n = len(questions) - 5
    parts: list[dict[str, Any]] = []
    for label, function in parts_of_path(embeddings):
        seconds, calls = cumulative(stats, function)
        parts.append({"part": label, "ms_per_question": seconds / n * 1000, "calls": calls})
    save_result(
        "profile",
        {
            "machine": machine(),
            "size": size,
            "questions": n,
            "parts": parts,
            "top_cumulative": top(stats, "cumulative"),
            "top_own": top(stats, "tottime"),
        },
    )
    log("profile: done")


if __name__ == "__main__":
    sys.exit(main())
