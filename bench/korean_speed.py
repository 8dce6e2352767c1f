"""Korean through the product, end to end: ingestion paragraphs/s and question latency.

KorQuAD 1.0 dev paragraphs of articles 0-69 (the development split), one `.txt` file each (its
article title, then the paragraph), go through `Loupe.ingest` into a fresh data directory (SQL
rows, stored originals, chunking, embedding, LanceDB), as an upload does. Then questions of
those paragraphs go through `Loupe.ask` with the extractive answerer (no LLM), one at a time,
as the chat asks them: retrieval, answer, confidence, saving the answer row.

Runtimes, in one run so they can be compared as ratios: the default (bundled MiniLM on
onnxruntime int8), multilingual-e5-small on onnxruntime int8, and e5 on torch (the reference
the issue measured). Each model is loaded and warmed up (one query, one passage) before its
clock starts, as a running app would have it.

    .venv/bin/python -m bench.korean_speed [--paragraphs 120] [--questions 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import WORK_DIR, log, machine, sample, save_result
from bench.e5_runtimes import korquad_dev_articles

RUNTIMES = (("minilm", "onnx-int8"), ("e5", "onnx-int8"), ("e5", "torch"))


def items_and_questions(paragraphs: int) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The first `paragraphs` paragraphs of the development articles as files, and their
    questions."""
    files: list[tuple[str, bytes]] = []
    questions: list[str] = []
    for a, article in enumerate(korquad_dev_articles()):
        for p, paragraph in enumerate(article["paragraphs"]):
            if len(files) == paragraphs:
                return files, questions
            text = f"{article['title']}\n\n{paragraph['context']}"
            files.append((f"korquad-{a:02d}-{p:02d}.txt", text.encode()))
            questions += [qa["question"] for qa in paragraph["qas"]]
    return files, questions


def run(
    embeddings: str, runtime: str, files: list[tuple[str, bytes]], questions: list[str]
) -> dict[str, Any]:
    from core.config import Settings
    from core.evaluation.records import isolated_settings
    from core.ingest.pipeline import IngestItem
    from core.service import Loupe

    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix="korean-speed-") as tmp:
        settings = Settings(embeddings=embeddings, embedding_runtime=runtime, llm="extractive")
        loupe = Loupe(isolated_settings(settings, Path(tmp), None))
        try:
            loupe.embeddings.embed_query("준비")  # load and warm the model off the clock
            loupe.embeddings.embed_documents(["준비 운동"])
            start = time.perf_counter()
            results = loupe.ingest([IngestItem(name, data) for name, data in files])
            ingest_s = time.perf_counter() - start
            failed = [r for r in results if r.outcome != "indexed"]
            if failed:
                raise RuntimeError(f"{len(failed)} files failed, e.g. {failed[0]}")
            latencies = []
            for question in questions:
                start = time.perf_counter()
                loupe.ask(question)
                latencies.append(1000 * (time.perf_counter() - start))
        finally:
            loupe.close()
    chunks = sum(r.chunks for r in results)
    return {
        "embeddings": embeddings,
        "runtime": runtime,
        "paragraphs": len(files),
        "chunks": chunks,
        "ingest_s": round(ingest_s, 2),
        "paragraphs_per_s": round(len(files) / ingest_s, 2),
        "questions": len(latencies),
        "question_p50_ms": round(statistics.median(latencies), 1),
        "question_p90_ms": round(statistics.quantiles(latencies, n=10)[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=120)
    parser.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    files, questions = items_and_questions(args.paragraphs)
    questions = sample(questions, args.questions, salt=14)
    rows = []
    for embeddings, runtime in RUNTIMES:
        log(f"korean speed: {embeddings} {runtime}")
        rows.append(run(embeddings, runtime, files, questions))
        log(f"korean speed: {rows[-1]}")
    torch_rate = rows[-1]["paragraphs_per_s"]
    for row in rows:
        row["ingest_vs_e5_torch"] = round(row["paragraphs_per_s"] / torch_rate, 2)
    save_result("korean-speed", {"machine": machine(), "rows": rows})
    print("| model | runtime | paragraphs/s | vs e5 torch | chunks | question p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['embeddings']} | {r['runtime']} | {r['paragraphs_per_s']} | "
            f"{r['ingest_vs_e5_torch']}× | {r['chunks']} | {r['question_p50_ms']} | "
            f"{r['question_p90_ms']} |"
        )


if __name__ == "__main__":
    main()
