"""Ingestion throughput of the real pipeline (`core.ingest.pipeline.Ingestor`), stage by stage.

Each corpus goes through `Ingestor.ingest` exactly as `python -m core ingest` sends it: one file
at a time, with SQL rows, stored originals and the LanceDB store. The stages are timed by
wrapping what the pipeline calls (`load_bytes` = parse, `chunk_sections` = chunk, the embedding
model = embed, the store's writes = index); what is left of the total is "other" (SQL rows,
hashing, copying the original file). "Embed alone" is the floor: the same chunk texts embedded
in one call at the configured batch size, with nothing else going on.

Corpora: XQuAD paragraphs (one file each), a seeded sample of ArguAna documents (one file each),
and a generated corpus of 100 Markdown documents of 1,000 chunks each (100,000 chunks). For the
generated corpus the pipeline gets instant synthetic vectors, and the embed stage is the model's
rate measured on a sample of its chunks times the chunk count: it is labelled as extrapolated.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
from langchain_core.embeddings import Embeddings

from bench.common import (
    DIM,
    SEED,
    WORK_DIR,
    Stopwatch,
    SyntheticCorpus,
    arguana_file_text,
    load_arguana,
    load_embeddings,
    load_xquad,
    log,
    machine,
    sample,
    save_result,
    scale,
    seed_vectors,
)
from core.config import Settings
from core.db.session import Database
from core.ingest import pipeline
from core.ingest.chunking import chunk_plan
from core.ingest.pipeline import IngestItem, Ingestor
from core.stores.base import Chunk, SearchFilter, VectorStore
from core.stores.lancedb import LanceDBStore


class TimedEmbeddings(Embeddings):
    """Times every call under "embed" and keeps the texts, to embed them again alone later."""

    def __init__(self, inner: Embeddings, watch: Stopwatch) -> None:
        self.inner = inner
        self.watch = watch
        self.texts: list[str] = []
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        self.calls += 1
        with self.watch("embed"):
            return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class SyntheticEmbeddings(Embeddings):
    """Unit vectors from a seeded generator, instantly: lets 100,000 chunks through the pipeline
    without the ~20 minutes the model would need on two cores. Never used for quality."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(SEED)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.rng.standard_normal((len(texts), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class TimedStore:
    """The store, its writes (upsert, and the delete of a replaced version) timed as "index"."""

    def __init__(self, inner: VectorStore, watch: Stopwatch) -> None:
        self.inner = inner
        self.watch = watch
        self.name = inner.name

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        with self.watch("index"):
            self.inner.upsert(chunks)

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        with self.watch("index"):
            return self.inner.delete_document(document_id, keep_content_hash=keep_content_hash)

    def search(
        self, query: str, vector: Sequence[float], *, k: int, alpha: float,
        filters: SearchFilter | None = None,
    ) -> Any:  # fmt: skip
        return self.inner.search(query, vector, k=k, alpha=alpha, filters=filters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def stage_timers(watch: Stopwatch) -> Iterator[None]:
    """Time the pipeline's parse and chunk calls (the names it imported) for the duration."""
    with (
        mock.patch.object(pipeline, "load_bytes", watch.wrap("parse", pipeline.load_bytes)),
        mock.patch.object(pipeline, "chunk_sections", watch.wrap("chunk", pipeline.chunk_sections)),
    ):
        yield


def run_pipeline(name: str, items: Sequence[IngestItem], embeddings: Embeddings) -> dict[str, Any]:
    """Ingest `items` into a fresh data directory; stage times, counts and rates."""
    settings = Settings()
    folder = WORK_DIR / f"ingest-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db = Database.from_url(f"sqlite:///{folder / 'loupe.db'}")
    watch = Stopwatch()
    store = TimedStore(LanceDBStore(folder / "lancedb", dimension=DIM), watch)
    timed = TimedEmbeddings(embeddings, watch)
    ingestor = Ingestor(
        db=db,
        store=store,
        embeddings=timed,
        files_dir=folder / "files",
        workspace="bench",
        chunking=chunk_plan(settings, embeddings),
        embed_batch_size=settings.embed_batch_size,
    )
    with stage_timers(watch):
        start = time.perf_counter()
        results = ingestor.ingest(items)
        total = time.perf_counter() - start
    failed = [r for r in results if r.outcome != "indexed"]
    if failed:
        raise RuntimeError(f"{len(failed)} {name} files failed, e.g. {failed[0]}")
    stages = {stage: watch.totals.get(stage, 0.0) for stage in ("parse", "chunk", "embed", "index")}
    stages["other"] = total - sum(stages.values())
    db.dispose()
    return {
        "corpus": name,
        "documents": len(items),
        "chunks": sum(r.chunks for r in results),
        "bytes": sum(len(i.data) for i in items),
        "total_s": total,
        "stages_s": stages,
        "embed_calls": timed.calls,
        "texts": timed.texts,
    }


def embed_alone(embeddings: Embeddings, texts: Sequence[str]) -> float:
    """Seconds to embed `texts` in one call at the configured batch size: the floor."""
    start = time.perf_counter()
    embeddings.embed_documents(list(texts))
    return time.perf_counter() - start


def finish(row: dict[str, Any], embed_alone_s: float, **extra: Any) -> dict[str, Any]:
    row.pop("texts", None)
    row["embed_alone_s"] = embed_alone_s
    row["docs_per_s"] = row["documents"] / row["total_s"]
    row["chunks_per_s"] = row["chunks"] / row["total_s"]
    row["total_over_embed_alone"] = row["total_s"] / embed_alone_s
    row.update(extra)
    return row


def xquad_items(n: int) -> list[IngestItem]:
    paragraphs = load_xquad().paragraphs[:n]
    return [
        IngestItem(f"xquad-{i:03d}.txt", f"{title}\n\n{text}".encode())
        for i, (title, text) in enumerate(paragraphs)
    ]


def arguana_items(n: int) -> list[IngestItem]:
    corpus = load_arguana().corpus
    ids = sample(list(corpus), n, salt=1)
    return [IngestItem(f"{d}.txt", arguana_file_text(*corpus[d]).encode()) for d in ids]


def generated_items(docs: int, chunks_per_doc: int) -> list[IngestItem]:
    """Markdown documents of synthetic prose (real-corpus vocabulary), a heading every 20
    paragraphs; each ~730-character paragraph becomes one chunk at the default chunk size."""
    corpus = SyntheticCorpus(seed_vectors())
    texts, _ = corpus.chunks(0, docs * chunks_per_doc)
    items = []
    for d in range(docs):
        lines = [f"# Generated document {d}"]
        for p in range(chunks_per_doc):
            if p % 20 == 0:
                lines.append(f"## Section {p // 20 + 1}")
            lines.append(texts[d * chunks_per_doc + p])
        items.append(IngestItem(f"generated-{d:03d}.md", "\n\n".join(lines).encode()))
    return items


def main() -> None:
    s = scale()
    embeddings = load_embeddings()
    rows = []

    log(f"ingest: XQuAD, {s.xquad_docs} paragraphs")
    row = run_pipeline("xquad", xquad_items(s.xquad_docs), embeddings)
    rows.append(finish(row, embed_alone(embeddings, row["texts"]), sampled=False))

    log(f"ingest: ArguAna, {s.arguana_ingest_docs} documents")
    row = run_pipeline("arguana", arguana_items(s.arguana_ingest_docs), embeddings)
    rows.append(finish(row, embed_alone(embeddings, row["texts"]), sampled=True))

    chunks = s.generated_docs * s.generated_chunks_per_doc
    log(f"ingest: generated corpus, {chunks} chunks")
    row = run_pipeline(
        "generated", generated_items(s.generated_docs, s.generated_chunks_per_doc),
        SyntheticEmbeddings(),
    )  # fmt: skip
    probe = sample(row["texts"], s.generated_embed_sample, salt=2)
    probe_s = embed_alone(embeddings, probe)
    extrapolated = probe_s / len(probe) * len(row["texts"])
    synthetic_embed_s = row["stages_s"]["embed"]
    row["total_s"] += extrapolated - synthetic_embed_s
    row["stages_s"]["embed"] = extrapolated
    rows.append(
        finish(
            row,
            extrapolated,
            embed_extrapolated_from=len(probe),
            embed_probe_s=probe_s,
            synthetic_vectors_s=synthetic_embed_s,
        )
    )
    save_result("ingest", {"scale": s.name, "machine": machine(), "rows": rows})
    log("ingest: done")


if __name__ == "__main__":
    sys.exit(main())
