"""Readers for the evaluation data: BEIR folders, SQuAD v1.1 JSON, and the feedback eval set.

Each reader returns plain dataclasses, so the runners never care which file layout (gzipped or
not, `qrels-test.tsv` or BEIR's `qrels/test.tsv`) the data came in.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BeirDoc:
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    """Corpus and queries in file order; qrels: query id → {document id: grade}. Only queries
    with judgements are kept, as BEIR evaluates."""

    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def missing_relevant(self) -> int:
        """Judged-relevant documents absent from the corpus (they can never be retrieved)."""
        return sum(
            1
            for judged in self.qrels.values()
            for doc, grade in judged.items()
            if grade > 0 and doc not in self.corpus
        )


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    article: int
    paragraph: int


@dataclass(frozen=True)
class SquadArticle:
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class SquadDataset:
    articles: tuple[SquadArticle, ...]
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True)
class FeedbackItem:
    """One expert-verified answer from `python -m core export eval`."""

    question: str
    answer: str
    document_ids: tuple[str, ...]
    answer_id: str | None = None


def _open_text(path: Path) -> Any:
    return (
        gzip.open(path, "rt", encoding="utf-8")
        if path.suffix == ".gz"
        else path.open(encoding="utf-8")
    )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _first_existing(folder: Path, names: Iterable[str]) -> Path:
    candidates = [folder / name for name in names]
    for path in candidates:
        if path.exists():
            return path
    raise FileNotFoundError(
        f"None of {', '.join(str(c.relative_to(folder)) for c in candidates)} in {folder}"
    )


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 4:  # TREC layout: query, iteration, document, grade
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise ValueError(f"{path}:{number + 1}: expected query-id corpus-id score")
            query, doc, grade = fields
            try:
                qrels.setdefault(query, {})[doc] = int(float(grade))
            except ValueError:
                if number == 0:  # the header line "query-id corpus-id score"
                    continue
                raise ValueError(f"{path}:{number + 1}: score '{grade}' is not a number") from None
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """A BEIR folder: corpus.jsonl[.gz] (`_id`, `title`, `text`), queries.jsonl[.gz] (`_id`,
    `text`), and the qrels of `split` as `qrels-<split>.tsv` or `qrels/<split>.tsv`."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    corpus_path = _first_existing(folder, ["corpus.jsonl", "corpus.jsonl.gz"])
    queries_path = _first_existing(folder, ["queries.jsonl", "queries.jsonl.gz"])
    qrels_path = _first_existing(folder, [f"qrels-{split}.tsv", f"qrels/{split}.tsv"])
    qrels = _read_qrels(qrels_path)
    corpus = {
        str(row["_id"]): BeirDoc(row.get("title") or "", row.get("text") or "")
        for row in _jsonl(corpus_path)
    }
    queries = {
        str(row["_id"]): str(row["text"])
        for row in _jsonl(queries_path)
        if str(row["_id"]) in qrels
    }
    return BeirDataset(corpus, queries, {q: qrels[q] for q in queries})


def limit_beir(
    dataset: BeirDataset, *, queries: int | None = None, corpus: int | None = None
) -> BeirDataset:
    """The first `queries` queries, and a corpus of about `corpus` documents that always keeps
    every relevant document of the kept queries (so their scores stay meaningful), topped up
    with other documents in file order as distractors."""
    kept_queries = dict(list(dataset.queries.items())[:queries] if queries else dataset.queries)
    qrels = {q: dataset.qrels[q] for q in kept_queries}
    if corpus is None:
        return BeirDataset(dataset.corpus, kept_queries, qrels)
    needed = {d for judged in qrels.values() for d, g in judged.items() if g > 0}
    kept_docs = {d: doc for d, doc in dataset.corpus.items() if d in needed}
    for doc_id, doc in dataset.corpus.items():
        if len(kept_docs) >= corpus:
            break
        kept_docs.setdefault(doc_id, doc)
    ordered = {d: doc for d, doc in dataset.corpus.items() if d in kept_docs}
    return BeirDataset(ordered, kept_queries, qrels)


def parse_articles(spec: str) -> range:
    """ "0-69" (inclusive, as data READMEs write it): the articles of a SQuAD file, in file
    order, that a run may use; KorQuAD keeps 70-139 for release checks."""
    first, sep, last = spec.partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise ValueError(f"Articles must be a range like 0-69, not {spec!r}.")
    if int(last) < int(first):
        raise ValueError(f"The article range {spec!r} is empty.")
    return range(int(first), int(last) + 1)


def load_squad(path: Path, articles: str | None = None) -> SquadDataset:
    """SQuAD v1.1 JSON: paragraphs are the corpus, each question's paragraph is its relevant
    passage, and its answers' texts are the gold answers. `articles` ("0-69") keeps only those
    articles, numbered from 0 in the order kept."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    if articles is not None:
        kept = parse_articles(articles)
        data = data[kept.start : kept.stop]
    kept_articles: list[SquadArticle] = []
    questions: list[SquadQuestion] = []
    for a, article in enumerate(data):
        paragraphs = []
        for p, paragraph in enumerate(article["paragraphs"]):
            paragraphs.append(paragraph["context"])
            for qa in paragraph["qas"]:
                questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=" ".join(qa["question"].split()),
                        answers=tuple(ans["text"] for ans in qa["answers"]),
                        article=a,
                        paragraph=p,
                    )
                )
        kept_articles.append(
            SquadArticle(article.get("title") or f"Article {a + 1}", tuple(paragraphs))
        )
    return SquadDataset(tuple(kept_articles), tuple(questions))


def feedback_items(rows: Iterable[Mapping[str, Any]]) -> list[FeedbackItem]:
    """Eval-set records (as `Loupe.export("eval")` returns them) as items to replay."""
    return [
        FeedbackItem(
            question=str(row["question"]),
            answer=str(row["answer"]),
            document_ids=tuple(row.get("document_ids") or ()),
            answer_id=row.get("answer_id"),
        )
        for row in rows
    ]


def load_feedback(path: Path) -> list[FeedbackItem]:
    """The JSONL file written by `python -m core export eval --out FILE`."""
    return feedback_items(_jsonl(path))


def load_queries(folder: Path) -> list[str]:
    """A BEIR folder's query texts in file order, judged or not: off-topic questions for a
    corpus they were never written for (ArguAna's arguments against XQuAD's paragraphs)."""
    path = _first_existing(folder, ["queries.jsonl", "queries.jsonl.gz"])
    return [" ".join(str(row["text"]).split()) for row in _jsonl(path)]
