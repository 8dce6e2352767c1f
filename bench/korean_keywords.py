"""Korean keyword search: Hangul bigrams (today's analyzer) against kiwipiepy morphemes.

On KorQuAD 1.0 dev articles 0-69 (the development split), every paragraph is a chunk of a
document named after its article, indexed in a real `LanceDBStore`; each question's relevant
chunk is its own paragraph. For each analyzer the store is built anew and every question is
searched keyword-only (alpha 0) and hybrid (the configured alpha, e5 int8 vectors, computed once
and shared), reporting hit@1, hit@5 and MRR@10 of the gold paragraph, and the time analysing
all paragraphs takes (kiwi's includes loading its model, ~3 s). kiwipiepy is a bench
dependency (requirements-bench.txt): Loupe kept the bigrams.

    .venv/bin/python -m bench.korean_keywords
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import WORK_DIR, log, machine, sample, save_result
from bench.e5_runtimes import korquad_dev_articles

ANALYZERS = ("bigrams", "kiwi", "kiwi+bigrams")


# Kiwi's part-of-speech tags (Sejong) that carry content: nouns, numerals, pronouns, verb and
# adjective stems, roots, adverbs, determiners, and foreign words, hanja and numbers written
# inside Korean text. Particles (J*), endings (E*), affixes and punctuation are left out.
CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "MAG", "MM", "SL", "SH", "SN"}
)
HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


def morpheme_analyzer() -> Callable[[str], str]:
    """The content morphemes of text that has Hangul, in order, one per token."""
    from kiwipiepy import Kiwi

    kiwi = Kiwi()

    def analyse(text: str) -> str:
        if not HANGUL.search(text):
            return text
        return " ".join(t.form for t in kiwi.tokenize(text) if t.tag in CONTENT_TAGS)

    return analyse


def analyzer(name: str) -> Callable[[str], str]:
    from core.stores.keywords import keyword_text  # Loupe's analyzer: Hangul bigrams

    if name == "bigrams":
        return keyword_text
    morphemes = morpheme_analyzer()
    if name == "kiwi":
        return morphemes
    return lambda text: keyword_text(morphemes(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, help="a seeded sample of the questions")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from core.config import Settings
    from core.embeddings import get_embeddings
    from core.stores import lancedb as lancedb_store
    from core.stores.base import Chunk, chunk_id

    settings = Settings(embeddings="e5")
    articles = korquad_dev_articles()
    chunks: list[Chunk] = []
    questions: list[tuple[str, str]] = []
    texts = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc = f"korquad-{a}-{p}"
            texts.append(paragraph["context"])
            chunks.append(
                Chunk(chunk_id(doc, "h", 0), doc, paragraph["context"], article["title"], 0, "h")
            )
            questions += [(qa["question"], chunks[-1].id) for qa in paragraph["qas"]]
    if args.questions:
        questions = sample(questions, args.questions, salt=45)
    vectors_file = WORK_DIR / "korquad-dev-e5-int8.npy"
    embeddings = get_embeddings(settings)  # e5 on onnxruntime int8, the default runtime
    if vectors_file.exists():
        vectors = np.load(vectors_file)
    else:
        log(f"keywords: embedding {len(texts)} paragraphs")
        vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
        vectors_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(vectors_file, vectors)
    chunks = [
        Chunk(**{**c.__dict__, "vector": tuple(map(float, v))})
        for c, v in zip(chunks, vectors, strict=True)
    ]
    log(f"keywords: embedding {len(questions)} questions")
    query_vectors = [embeddings.embed_query(q) for q, _ in questions]

    results: dict[str, Any] = {}
    for name in ANALYZERS:
        analyse = analyzer(name)
        start = time.perf_counter()
        for text in texts:
            analyse(text)
        analyse_s = time.perf_counter() - start
        lancedb_store.keyword_text = analyse  # the store's analyzer, for indexing and queries
        with tempfile.TemporaryDirectory(dir=WORK_DIR) as folder:
            store = lancedb_store.LanceDBStore(Path(folder), dimension=vectors.shape[1])
            store.upsert(chunks)
            row: dict[str, Any] = {"analyse_all_paragraphs_s": analyse_s}
            for mode, alpha in (("keyword", 0.0), ("hybrid", settings.hybrid_alpha)):
                ranks = []
                for (question, gold), vector in zip(questions, query_vectors, strict=True):
                    hits = store.search(question, vector, k=10, alpha=alpha)
                    ids = [h.chunk.id for h in hits]
                    ranks.append(ids.index(gold) + 1 if gold in ids else None)
                row[mode] = {
                    "hit@1": float(np.mean([r == 1 for r in ranks])),
                    "hit@5": float(np.mean([r is not None and r <= 5 for r in ranks])),
                    "mrr@10": float(np.mean([1 / r if r else 0.0 for r in ranks])),
                }
                log(f"keywords: {name} {mode} {row[mode]}")
            store.close()
        results[name] = row
    out = {
        "machine": machine(),
        "paragraphs": len(chunks),
        "questions": len(questions),
        "questions_sampled": args.questions is not None,
        "alpha": settings.hybrid_alpha,
        "embeddings": "multilingual-e5-small (onnx int8)",
        "results": results,
    }
    save_result("korean-keywords", out)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
