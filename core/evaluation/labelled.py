"""Labelled answers with no human in the loop, for fitting and checking the confidence.

From any SQuAD-format file: the articles are split into k folds; for each fold Loupe indexes
every article but that fold's, then asks
- the next fold's questions, which the index can answer (*answerable*),
- this fold's questions, whose article is missing (*unanswerable*: same domain, near-topic
  distractors, no answer present),
- a share of off-topic questions (ArguAna's arguments, which XQuAD never covers).
Each question goes through the real chain with selective answering off, so its candidate
answer, the evidence and the features are what production computes. A candidate is *right*
when it cites the gold paragraph and contains a gold answer (normalised as SQuAD does); no
candidate to an unanswerable or off-topic question is right.

The records are written as JSON Lines, a header line first, and keep the evidence (passages
with their scores, the answer with its citations), so features can be recomputed after a
feature change (`refeaturize`) and the whole store replayed through the current chain after a
model or prompt change (`replay`) without the original run's settings.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from core.answer.citations import strip_markers
from core.answer.features import compute_features
from core.config import Settings
from core.evaluation.datasets import SquadDataset, SquadQuestion, load_queries, load_squad
from core.evaluation.metrics import contains_answer

if TYPE_CHECKING:
    from core.answer.types import AnswerResult

Progress = Callable[[str, int, int], None]
Record = dict[str, Any]
KINDS = ("answerable", "unanswerable", "off_topic")
STORE_FORMAT = 1
DEFAULT_FOLDS = 5
DEFAULT_OFF_TOPIC = 400


def article_name(article: int) -> str:
    return f"article-{article:03d}.md"


def paragraph_heading(paragraph: int) -> str:
    return f"Paragraph {paragraph + 1}"


def squad_documents(dataset: SquadDataset, articles: Iterable[int]) -> list[tuple[str, str]]:
    """(file name, Markdown) per article, a heading per paragraph, so every passage's heading
    names the paragraph it came from."""
    documents = []
    for a in articles:
        article = dataset.articles[a]
        parts = [f"# {article.title}"]
        parts += [
            f"## {paragraph_heading(p)}\n\n{text}" for p, text in enumerate(article.paragraphs)
        ]
        documents.append((article_name(a), "\n\n".join(parts)))
    return documents


def is_gold(source: dict[str, Any], article: int, paragraph: int) -> bool:
    """Whether a source passage comes from this paragraph: the loader's heading path ends
    with the paragraph's heading ("Title > Paragraph 3")."""
    heading = (source.get("heading") or "").split(" > ")[-1]
    return source.get("document") == article_name(article) and heading == paragraph_heading(
        paragraph
    )


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folds_of(articles: int, k: int) -> list[list[int]]:
    """Articles dealt round-robin into k folds (file order), so every fold mixes topics."""
    if not 2 <= k <= articles:
        raise ValueError(f"need 2 <= folds <= {articles} articles, got {k}")
    return [[a for a in range(articles) if a % k == f] for f in range(k)]


@dataclass(frozen=True)
class Question:
    """One question to ask a fold's index, with what makes its answer right."""

    id: str
    kind: str
    text: str
    golds: tuple[str, ...] = ()
    article: int | None = None
    paragraph: int | None = None
    previous: str | None = None  # an unrelated earlier question (conversational check)


def label(record: Record) -> bool:
    """Right: an answer (not an abstention) that cites the gold paragraph and contains a gold
    answer. Nothing is right for a question whose article is not indexed."""
    if record["kind"] != "answerable" or record["abstained"]:
        return False
    article, paragraph = record["article"], record["paragraph"]
    cites_gold = any(s["cited"] and is_gold(s, article, paragraph) for s in record["sources"])
    return cites_gold and bool(contains_answer(strip_markers(record["answer"]), record["golds"]))


def featurize(record: Record) -> dict[str, float]:
    """The features, recomputed from the stored evidence exactly as the chain computes them."""
    return compute_features(
        record["standalone"],
        record["answer"] if not record["abstained"] else "",
        record["sources"],
        generator=record["generator"],
        logprob_mean=record.get("logprob_mean"),
        flagged_passages=sum(bool(s.get("flagged")) for s in record["sources"]),
        extractive=record.get("extractive"),
    )


def to_record(question: Question, fold: int, result: AnswerResult) -> Record:
    record: Record = {
        "id": question.id,
        "kind": question.kind,
        "fold": fold,
        "question": question.text,
        "previous": question.previous,
        "golds": list(question.golds),
        "article": question.article,
        "paragraph": question.paragraph,
        "standalone": result.standalone_question,
        "answer": result.answer,
        "abstained": result.abstained,
        "generator": result.generator,
        "extractive": {
            k: result.confidence.features[k]
            for k in ("sentence_score", "sentence_margin")
            if k in result.confidence.features
        },
        "logprob_mean": result.confidence.features.get("logprob_mean")
        if result.confidence.features.get("has_logprob")
        else None,
        "sources": [
            {
                k: getattr(s, k)
                for k in (
                    "n",
                    "document",
                    "heading",
                    "quote",
                    "score",
                    "keyword_score",
                    "vector_score",
                    "cited",
                    "flagged",
                )
            }
            for s in result.sources
        ],
    }
    record["features"] = featurize(record)
    record["right"] = label(record)
    record["hit_at_1"] = bool(
        question.kind == "answerable"
        and result.sources
        and is_gold(record["sources"][0], question.article or 0, question.paragraph or 0)
    )
    return record


def plan_questions(
    dataset: SquadDataset,
    k: int,
    off_topic: Sequence[str],
) -> list[tuple[list[int], list[Question]]]:
    """Per fold: the articles to index and the questions to ask."""
    folds = folds_of(len(dataset.articles), k)
    by_fold: list[list[SquadQuestion]] = [[] for _ in folds]
    fold_of = {a: f for f, members in enumerate(folds) for a in members}
    for q in dataset.questions:
        by_fold[fold_of[q.article]].append(q)
    plan = []
    for f, held_out in enumerate(folds):
        indexed = [a for a in range(len(dataset.articles)) if a not in set(held_out)]
        asked = [
            Question(q.id, "answerable", q.question, q.answers, q.article, q.paragraph)
            for q in by_fold[(f + 1) % k]
        ]
        asked += [
            Question(q.id, "unanswerable", q.question, q.answers, q.article, q.paragraph)
            for q in by_fold[f]
        ]
        asked += [
            Question(f"off-topic-{i}", "off_topic", text)
            for i, text in enumerate(off_topic)
            if i % k == f
        ]
        plan.append((indexed, asked))
    return plan


def _first_of_each_kind(asked: Sequence[Question], n: int) -> list[Question]:
    return [q for kind in KINDS for q in [x for x in asked if x.kind == kind][:n]]


def _off_topic(folder: Path | None, limit: int, seed: int) -> list[str]:
    if folder is None or limit <= 0:
        return []
    queries = load_queries(folder)
    return random.Random(seed).sample(queries, min(limit, len(queries)))


def _ask(chain: Any, question: str, history: Sequence[tuple[str, str]] = ()) -> AnswerResult:
    """One question through the chain, without saving an Answer row."""
    for event in chain.stream(question, history=history):
        if event.result is not None:
            return event.result
    raise RuntimeError("the chain ended without a result")


class _RememberedDocuments(Embeddings):
    """Remembers document vectors by text: every fold re-indexes most of the same articles,
    and embedding them again would be most of a run's time."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", None)
        self._vectors: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self._vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def _isolated(settings: Settings, data_dir: Path) -> Settings:
    return settings.model_copy(
        update={"data_dir": data_dir, "database_url": None, "vector_store": "lancedb"}
    )


@dataclass(frozen=True)
class Header:
    dataset: str
    dataset_sha256: str
    off_topic: str | None
    off_topic_limit: int
    folds: int
    seed: int
    language: str
    embedding_model: str
    generator: str
    created_at: str
    limit_questions: int | None = None
    articles: str | None = None  # "0-69": the articles of the file used, None for all

    def as_dict(self) -> dict[str, Any]:
        return {"type": "header", "format": STORE_FORMAT, **self.__dict__}


def generate(
    squad: Path,
    settings: Settings,
    *,
    folds: int = DEFAULT_FOLDS,
    off_topic: Path | None = None,
    off_topic_limit: int = DEFAULT_OFF_TOPIC,
    seed: int = 0,
    language: str = "en",
    limit_questions: int | None = None,
    articles: str | None = None,
    conversational: bool = False,
    progress: Progress | None = None,
) -> tuple[Header, list[Record]]:
    """Ask every planned question through a fresh Loupe per fold; return the records.

    `limit_questions` keeps about that many questions per kind (the first of each fold), for
    quick runs; `conversational` also asks each answerable question after an unrelated one
    (the previous answerable question of another article) and records that answer too."""
    from core.embeddings import model_name
    from core.ingest.pipeline import IngestItem
    from core.wiring import build

    dataset = load_squad(squad, articles)
    plan = plan_questions(dataset, folds, _off_topic(off_topic, off_topic_limit, seed))
    if limit_questions:
        per_fold = max(1, limit_questions // folds)
        plan = [
            (
                indexed,
                [q for kind in KINDS for q in [x for x in asked if x.kind == kind][:per_fold]],
            )
            for indexed, asked in plan
        ]
    total = sum(len(asked) for _, asked in plan)
    records: list[Record] = []
    embedding = ""
    generator = ""
    done = 0
    extractive: Any = None  # one answerer for every fold, so its sentence vectors are reused
    remembered: _RememberedDocuments | None = None
    for f, (indexed, asked) in enumerate(plan):
        with tempfile.TemporaryDirectory(prefix="loupe-labelled-") as tmp:
            parts = build(_isolated(settings, Path(tmp)))
            try:
                chain = parts.chain
                chain.selective = False
                extractive = extractive or chain.extractive
                chain.extractive = extractive
                remembered = remembered or _RememberedDocuments(parts.embeddings)
                parts.ingestor.embeddings = remembered
                embedding = model_name(parts.embeddings)
                generator = chain.model_name
                items = [IngestItem(n, t.encode()) for n, t in squad_documents(dataset, indexed)]
                failed = [r for r in parts.ingestor.ingest(items) if r.outcome != "indexed"]
                if failed:
                    raise RuntimeError(f"Could not index {failed[0].name}: {failed[0].error}")
                # The latest answered question of each article, with its answer: a question's
                # predecessor is the latest one of another article.
                latest: dict[int | None, tuple[Question, str]] = {}
                for q in asked:
                    result = _ask(chain, q.text)
                    records.append(to_record(q, f, result))
                    if conversational and q.kind == "answerable":
                        others = [v for a, v in latest.items() if a != q.article]
                        previous = others[-1] if others else None
                        if previous is not None:
                            history = [("user", previous[0].text), ("assistant", previous[1])]
                            follow = Question(
                                q.id + "#after",
                                "answerable",
                                q.text,
                                q.golds,
                                q.article,
                                q.paragraph,
                                previous=previous[0].text,
                            )
                            records.append(to_record(follow, f, _ask(chain, q.text, history)))
                        latest.pop(q.article, None)
                        latest[q.article] = (q, result.answer)
                    done += 1
                    if progress is not None:
                        progress("ask", done, total)
            finally:
                parts.close()
    header = Header(
        dataset=str(squad),
        dataset_sha256=file_hash(squad),
        off_topic=str(off_topic) if off_topic else None,
        off_topic_limit=off_topic_limit,
        folds=folds,
        seed=seed,
        language=language,
        embedding_model=embedding,
        generator=generator,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        limit_questions=limit_questions,
        articles=articles,
    )
    return header, records


def write_store(path: Path, header: Header, records: Iterable[Record]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(header.as_dict(), ensure_ascii=False) + "\n")
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_store(path: Path) -> tuple[Header, list[Record]]:
    lines = _lines(path)
    first = next(lines, None)
    if first is None or first.get("type") != "header":
        raise ValueError(f"{path} is not a store of labelled records (no header line)")
    if first.get("format") != STORE_FORMAT:
        raise ValueError(f"{path}: unknown labelled-store format {first.get('format')!r}")
    fields = {k: v for k, v in first.items() if k in Header.__dataclass_fields__}
    return Header(**fields), list(lines)


def _lines(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def refeaturize(records: Iterable[Record]) -> list[Record]:
    """The records with features and labels recomputed from their stored evidence: what a
    feature or labelling change does, without asking anything again."""
    return [{**r, "features": featurize(r), "right": label(r)} for r in records]


def replay(
    path: Path, settings: Settings, *, progress: Progress | None = None
) -> tuple[Header, list[Record]]:
    """The stored questions asked again through the current chain (after a model or prompt
    change), with the folds, off-topic sample and limits of the original run. The data set must
    be the one the store was built from."""
    header, _ = read_store(path)
    squad = Path(header.dataset)
    if file_hash(squad) != header.dataset_sha256:
        raise ValueError(f"{squad} is not the data set {path} was built from (sha256 differs)")
    return generate(
        squad,
        settings,
        folds=header.folds,
        off_topic=Path(header.off_topic) if header.off_topic else None,
        off_topic_limit=header.off_topic_limit,
        seed=header.seed,
        language=header.language,
        limit_questions=header.limit_questions,
        articles=header.articles,
        progress=progress,
    )


def store_hash(records: Sequence[Record]) -> str:
    """A hash of what a fit learns from (ids, kinds, features, labels), so a calibration
    names the exact data behind it."""
    digest = hashlib.sha256()
    for r in records:
        row = [r["id"], r["kind"], r["right"], sorted(r["features"].items())]
        digest.update(json.dumps(row, sort_keys=True).encode())
    return digest.hexdigest()
