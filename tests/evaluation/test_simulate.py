"""`eval --beir --simulate-verdicts` on an ArguAna-shaped data set, where every query is a corpus
document too: the query's own document is neither a first-place hit nor judged by the
simulated expert (before the fix every query found itself first, so hit@1 was 0.0 on
ArguAna and the "expert" demoted the query's own text)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from core.evaluation.simulate import simulate_beir
from tests.evaluation.test_eval import DOCS, QRELS, QUERIES, settings_for


def write_beir(
    folder: Path,
    corpus: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: list[tuple[str, str, int]],
) -> Path:
    folder.mkdir(parents=True)
    with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        for doc_id, (title, text) in corpus.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with gzip.open(folder / "queries.jsonl.gz", "wt", encoding="utf-8") as f:
        for query_id, text in queries.items():
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = [f"{q}\t{d}\t{g}" for q, d, g in qrels]
    (folder / "qrels-test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines))
    return folder


def write_arguana_like(folder: Path) -> Path:
    corpus = {**{d: v for d, v in DOCS.items() if d != "q-tea"}}
    corpus |= {q: (f"Question {q}", text) for q, text in QUERIES.items()}  # queries are documents
    return write_beir(folder, corpus, QUERIES, QRELS)


def test_a_query_finding_itself_is_not_a_hit_nor_judged(tmp_path: Path) -> None:
    folder = write_arguana_like(tmp_path / "beir")
    metrics = simulate_beir(folder, settings_for(tmp_path / "data"))
    taught, untouched = metrics["taught"], metrics["untouched"]
    assert metrics["queries"] == len(QUERIES)
    # Solar, bees, tides and chess have their gold document first once the query's own
    # document is set aside; the tea query's gold (coffee) is a weak match.
    before = (taught["hit@1_before"] * taught["questions"]) + (
        untouched["hit@1_before"] * untouched["questions"]
    )
    assert round(before) >= 3
    assert taught["hits_broken"] == 0
    assert taught["hit@1_after"] >= taught["hit@1_before"]


def test_a_hit_broken_by_a_twin_query_with_a_copied_gold_is_told_apart(tmp_path: Path) -> None:
    # ArguAna repeats whole debates under two ids: the same query text twice, each with its
    # own copy of the same counter-argument as gold. One ranking cannot put both copies first,
    # so teaching both twins breaks one hit, to a word-for-word copy of its gold document.
    argument = "Zoos protect endangered species and pay for conservation in the wild."
    corpus = {
        "zoo-con": ("Zoos", argument),
        "zoo-con-copy": ("Zoos", argument),
        "tides": DOCS["tides"],
        "bread": DOCS["bread"],
        "chess": DOCS["chess"],
    }
    question = "Zoos should be banned because animals suffer in captivity."
    queries = {"q-zoo": question, "q-tides": QUERIES["q-tides"], "q-zoo-copy": question}
    qrels = [("q-zoo", "zoo-con", 1), ("q-tides", "tides", 1), ("q-zoo-copy", "zoo-con-copy", 1)]
    folder = write_beir(tmp_path / "beir", corpus, queries, qrels)

    taught = simulate_beir(folder, settings_for(tmp_path / "data"))["taught"]
    assert taught["questions"] == 2  # the two twins (positions 0 and 2)
    assert taught["hits_broken"] == taught["hits_broken_to_a_copy"] == 1
    assert taught["misses_fixed"] == 1  # the other twin
