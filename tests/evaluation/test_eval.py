"""`python -m core eval` on small data written here: a tiny BEIR folder, a tiny SQuAD file, and
an eval set made from a real expert edit. Real store, real embedding model, extractive answers."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.auth import Actor
from core.config import Settings
from core.db.models import Answer
from core.evaluation.beir import run_beir
from core.evaluation.datasets import limit_beir, load_beir
from core.evaluation.feedback import run_feedback
from core.evaluation.squad import run_squad
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from tests.cli import cli_env, run_core

DANA = Actor("dana", "expert")
ROOT = Path(__file__).resolve().parents[2]

DOCS = {
    "solar": ("Solar power", "Photovoltaic panels turn sunlight into electricity on rooftops."),
    "bees": ("Honey bees", "Bees pollinate flowering crops and make honey from nectar."),
    "tides": ("Ocean tides", "The gravity of the moon pulls the oceans and causes the tides."),
    "bread": ("Baking bread", "Yeast ferments the dough so bread rises before baking."),
    "chess": ("Chess openings", "The Sicilian Defence answers the king's pawn opening in chess."),
    "volcano": ("Volcanoes", "Magma rises through the crust and erupts from volcanoes as lava."),
    "coffee": ("Coffee", "Roasted coffee beans are ground and brewed with hot water."),
    "glaciers": ("Glaciers", "Glaciers are rivers of ice that carve valleys as they move."),
    "bees-2": ("Bee decline", "Pesticides and habitat loss threaten bee colonies worldwide."),
    # ArguAna-style: a query that is itself a corpus document must not count as its own hit.
    "q-tea": ("Tea", "Why is green tea good for your health?"),
}
QUERIES = {
    "q-solar": "How do solar panels make electricity from sunlight?",
    "q-bees": "Why are bees important for crops and what threatens them?",
    "q-tides": "What causes ocean tides?",
    "q-chess": "Which defence answers the king's pawn opening?",
    "q-tea": "Why is green tea good for your health?",
}
QRELS = [
    ("q-solar", "solar", 1),
    ("q-bees", "bees", 2),
    ("q-bees", "bees-2", 1),
    ("q-tides", "tides", 1),
    ("q-chess", "chess", 1),
    ("q-tea", "coffee", 1),
]
MODES = ("keyword", "vector", "hybrid", "hybrid_best")
RANKING = ("ndcg@10", "recall@10", "recall@100", "mrr@10")

SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Rivers",
            "paragraphs": [
                {
                    "context": "The Nile is the longest river in Africa. It flows north into "
                    "the Mediterranean Sea through Egypt.",
                    "qas": [
                        {
                            "id": "r1",
                            "question": "Into which sea does the Nile flow?",
                            "answers": [{"text": "the Mediterranean Sea", "answer_start": 70}],
                        }
                    ],
                },
                {
                    "context": "The Amazon carries more water than any other river. Its basin "
                    "covers much of Brazil.",
                    "qas": [
                        {
                            "id": "r2",
                            "question": "Which river carries the most water?",
                            "answers": [{"text": "The Amazon", "answer_start": 0}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "Mountains",
            "paragraphs": [
                {
                    "context": "Mount Everest is the highest mountain above sea level. It lies "
                    "in the Himalayas on the border of Nepal and China.",
                    "qas": [
                        {
                            "id": "m1",
                            "question": "In which mountain range is Mount Everest?",
                            "answers": [{"text": "the Himalayas", "answer_start": 65}],
                        },
                        {
                            "id": "m2",
                            "question": "What is the highest mountain above sea level?",
                            "answers": [{"text": "Mount Everest", "answer_start": 0}],
                        },
                    ],
                }
            ],
        },
    ],
}

POLICY = IngestItem(
    "policy.txt",
    b"New employees receive 25 days of paid annual leave.\n\n"
    b"Unused leave can be carried over until the end of March of the following year.",
)


def write_beir(folder: Path, *, layout: str = "flat") -> Path:
    """BEIR files: gzipped corpus and queries; qrels as `qrels-test.tsv` with a header line
    (the shared ArguAna copy) or as BEIR's `qrels/test.tsv`."""
    folder.mkdir(parents=True)
    with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        for doc_id, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    lines = [f"{q}\t{d}\t{g}" for q, d, g in QRELS]
    if layout == "flat":
        (folder / "qrels-test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines))
    else:
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def run_cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_core(["eval", *args], cli_env(data_dir))


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, llm="extractive", database_url=None, hybrid_alpha=0.5)


def in_unit_range(value: Any) -> bool:
    return isinstance(value, float | int) and 0.0 <= value <= 1.0


def test_beir_reader_accepts_both_qrels_layouts(tmp_path: Path) -> None:
    flat = load_beir(write_beir(tmp_path / "flat"))
    nested = load_beir(write_beir(tmp_path / "nested", layout="nested"))
    assert flat == nested
    assert list(flat.queries) == list(QUERIES)
    assert flat.qrels["q-bees"] == {"bees": 2, "bees-2": 1}
    assert flat.corpus["solar"].title == "Solar power"
    assert flat.missing_relevant == 0


def test_corpus_limit_keeps_every_relevant_document(tmp_path: Path) -> None:
    dataset = load_beir(write_beir(tmp_path / "beir"))
    small = limit_beir(dataset, queries=2, corpus=4)
    assert list(small.queries) == ["q-solar", "q-bees"]
    assert {"solar", "bees", "bees-2"} <= set(small.corpus)
    assert len(small.corpus) == 4
    # a limit below the relevant documents still keeps them all
    tiny = limit_beir(dataset, corpus=1)
    assert {"solar", "bees", "bees-2", "tides", "chess", "coffee"} <= set(tiny.corpus)


def test_cli_explains_wrong_usage(tmp_path: Path) -> None:
    wrong_limit = run_cli(["--squad", "x.json", "--limit-queries", "3"], tmp_path / "data")
    assert wrong_limit.returncode == 1
    assert "apply to --beir only" in wrong_limit.stderr
    missing = run_cli(["--beir", str(tmp_path / "nowhere")], tmp_path / "data")
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_beir_through_the_cli_and_compare(tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "beir")
    data_dir = tmp_path / "data"
    done = run_cli(["--beir", str(beir), "--json"], data_dir)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)

    saved = Path(record["path"])
    assert saved.parent == data_dir / "evals" and saved.name.endswith("-beir.json")
    assert json.loads(saved.read_text()) == record
    assert record["dataset"]["documents"] == len(DOCS)
    assert record["dataset"]["queries"] == len(QUERIES)
    assert record["config"]["embedding_model"].startswith("all-MiniLM-L6-v2")
    assert record["config"]["hybrid_alpha"] == 0.5
    assert set(record["versions"]) == {"lancedb", "sentence-transformers", "langchain-core"}
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["python"]
    assert "commit" in record["git"]

    modes = record["metrics"]["modes"]
    assert set(modes) == set(MODES)
    assert [modes[m]["alpha"] for m in ("keyword", "vector", "hybrid")] == [0.0, 1.0, 0.5]
    assert modes["hybrid_best"]["alpha"] in (0.3, 0.5, 0.7)
    assert set(record["metrics"]["sweep"]) == {"0.3", "0.5", "0.7"}
    for mode in MODES:
        assert all(in_unit_range(modes[mode][m]) for m in RANKING), modes[mode]
        assert modes[mode]["qps"] > 0
    # Vector search ranks all ten documents, so every relevant one is in the top 100.
    assert modes["vector"]["recall@100"] == 1.0
    assert modes["vector"]["ndcg@10"] > 0.5 and modes["keyword"]["ndcg@10"] > 0.5

    other = run_beir(beir, settings_for(data_dir), alpha=0.3, limit_queries=3, limit_corpus=6)
    assert other["dataset"]["queries"] == 3 and other["dataset"]["documents"] == 6
    assert other["metrics"]["modes"]["hybrid"]["alpha"] == 0.3

    compared = run_cli(["--compare", record["path"], other["path"], "--json"], data_dir)
    assert compared.returncode == 0, compared.stderr
    payload = json.loads(compared.stdout)
    rows = {row["key"]: row for row in payload["metrics"]}
    row = rows["modes.vector.ndcg@10"]
    assert row["delta"] == pytest.approx(row["b"] - row["a"], abs=1e-4)
    changes = {row["key"]: (row["a"], row["b"]) for row in payload["config_changes"]}
    assert changes["hybrid_alpha"] == (0.5, 0.3)

    table = run_cli(["--compare", record["path"], other["path"]], data_dir)
    assert table.returncode == 0, table.stderr
    assert "modes.hybrid.ndcg@10" in table.stdout and "hybrid_alpha: 0.5 → 0.3" in table.stdout


def test_a_query_is_not_credited_with_finding_itself(tmp_path: Path) -> None:
    """As in BEIR: ArguAna's queries are corpus documents too, and would otherwise rank first."""
    folder = tmp_path / "self"
    folder.mkdir()
    corpus = [
        {"_id": "q-tea", "title": "", "text": QUERIES["q-tea"]},
        {"_id": "coffee", "title": "Coffee", "text": DOCS["coffee"][1]},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (folder / "queries.jsonl").write_text(json.dumps(corpus[0]) + "\n")
    (folder / "qrels-test.tsv").write_text("q-tea\tcoffee\t1\n")
    record = run_beir(folder, settings_for(tmp_path / "data"))
    modes = record["metrics"]["modes"]
    # The query's own document would be first; dropped, the only other one is.
    assert modes["vector"]["mrr@10"] == 1.0 and modes["hybrid"]["mrr@10"] == 1.0


def test_squad_answers_go_through_the_chain(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    data_dir = tmp_path / "data"
    record = run_squad(squad, settings_for(data_dir))

    assert Path(record["path"]).parent == data_dir / "evals"
    assert record["dataset"]["questions"] == 4 and record["dataset"]["paragraphs"] == 3
    metrics = record["metrics"]
    retrieval, answers, confidence = (
        metrics["retrieval"],
        metrics["answers"],
        metrics["confidence"],
    )
    assert set(retrieval) == {"hit@1", "hit@5", "mrr@5"}
    assert all(in_unit_range(v) for v in retrieval.values())
    assert retrieval["hit@1"] <= retrieval["mrr@5"] <= retrieval["hit@5"]
    assert retrieval["hit@5"] == 1.0  # three paragraphs, five passages: gold is always there
    for key in ("exact_match", "token_f1", "contains_gold", "cites_gold", "abstained"):
        assert in_unit_range(answers[key]), key
    assert answers["contains_gold"] > 0  # the extractive answer quotes the gold sentence
    assert sum(answers["generators"].values()) == 4
    assert confidence["right_means"] == "token F1 >= 0.5"
    for view in (confidence, metrics["confidence_contains"]):
        assert view["auroc"] is None or in_unit_range(view["auroc"])  # None: one class only
        assert in_unit_range(view["ece"]) and in_unit_range(view["mean_confidence"])
        assert in_unit_range(view["right_share"])
    # the private Loupe was temporary: nothing was ingested into the configured data dir
    assert not (data_dir / "lancedb").exists() and not (data_dir / "loupe.db").exists()


def test_feedback_replay_of_an_expert_edit(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    loupe = Loupe(settings_for(data_dir))
    try:
        loupe.ingest([POLICY])
        asked = loupe.ask("How many days of paid annual leave do new employees get?")
        loupe.feedback(
            asked.answer_id or "",
            edited_answer="New employees receive 25 days of paid annual leave [1].",
            role="expert",
            actor=DANA,
        )
        eval_set = tmp_path / "eval.jsonl"
        eval_set.write_text("".join(json.dumps(row) + "\n" for row in loupe.export("eval")))
        with loupe.db.session() as s:
            answers_before = s.scalar(select(func.count()).select_from(Answer))
    finally:
        loupe.close()

    from_file = run_feedback(settings_for(data_dir), eval_set)
    assert from_file["dataset"]["items"] == 1 and from_file["dataset"]["items_with_documents"] == 1
    assert from_file["metrics"]["answers"]["token_f1"] >= 0.8
    assert from_file["metrics"]["answers"]["cites_gold"] == 1.0
    assert from_file["metrics"]["retrieval"]["hit@1"] == 1.0

    done = run_cli(["--feedback", "--json"], data_dir)  # no file: the eval set in SQL
    assert done.returncode == 0, done.stderr
    from_sql = json.loads(done.stdout)
    assert from_sql["kind"] == "feedback" and from_sql["dataset"]["items"] == 1
    assert from_sql["metrics"]["answers"] == from_file["metrics"]["answers"]
    assert len(list((data_dir / "evals").glob("*-feedback*.json"))) == 2

    # replaying asks the real chain but records no answers
    check = Loupe(settings_for(data_dir))
    try:
        with check.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Answer)) == answers_before
    finally:
        check.close()


def test_an_article_range_keeps_only_those_articles(tmp_path: Path) -> None:
    from core.evaluation.datasets import load_squad, parse_articles

    path = tmp_path / "squad.json"
    data = [
        {
            "title": f"A{a}",
            "paragraphs": [
                {
                    "context": f"Text {a}.",
                    "qas": [
                        {"id": f"q{a}", "question": f"What is {a}?", "answers": [{"text": str(a)}]}
                    ],
                }
            ],
        }
        for a in range(5)
    ]
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    kept = load_squad(path, "1-3")
    assert [a.title for a in kept.articles] == ["A1", "A2", "A3"]
    assert [q.id for q in kept.questions] == ["q1", "q2", "q3"]
    assert [q.article for q in kept.questions] == [0, 1, 2]
    assert len(load_squad(path).articles) == 5
    for wrong in ("3-1", "70", "a-b"):
        with pytest.raises(ValueError):
            parse_articles(wrong)
