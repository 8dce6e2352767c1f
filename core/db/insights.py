"""Aggregations for the insights page and the feedback export, run in SQL on SQLite and Postgres.

Counting, grouping and JSON unnesting happen in the database. Two things are finished in
Python, on few rows: latency percentiles (SQLite has no percentile function, and the stages are
keys of a JSON column that differ by generator) and cost (a price table is not data to keep in
SQL). Where the two backends spell something differently (day buckets, unnesting the `sources`
JSON array) one small helper settles it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.db.models import Answer, Feedback, Rating
from core.records import Miss, Report
from core.vocab import is_review

# Most recent misses considered for "what the documents don't cover": enough for weeks of
# use, few enough to cluster at once.
MAX_MISSES = 2000


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


# List prices of OpenAI's API in USD per million tokens (standard tier, mid-2025). A model is
# matched by the longest name here that starts its name, so dated snapshots
# (`gpt-4o-mini-2024-07-18`) price as their family. A model missing here (a local server's)
# shows its tokens with no cost; pass `prices=` to `report` to use other prices.
PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5": Price(1.25, 10.00),
    "o4-mini": Price(1.10, 4.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    # The extractive answerer runs locally and costs nothing.
    "extractive": Price(0.0, 0.0),
}

CONFIDENCE_BUCKETS = 10
# The order stages run in, for charts; stages not listed here follow in name order.
STAGE_ORDER = ("condense", "retrieve", "first_token", "generate", "total")


def report(
    s: Session,
    workspace: str,
    *,
    since: datetime | None = None,
    prices: Mapping[str, Price] = PRICES,
    top: int = 10,
) -> Report:
    """Every aggregation over the answers created since `since` (all answers when None)."""
    where = _answers_where(workspace, since)
    total, mean = s.execute(select(func.count(), func.avg(Answer.confidence)).where(where)).one()
    per_day = ratings_per_day(s, workspace, since=since)
    return Report(
        questions=int(total),
        rated=sum(row["rated"] for row in per_day),
        thumbs_up=sum(row["up"] for row in per_day),
        mean_confidence=None if mean is None else float(mean),
        questions_per_day=questions_per_day(s, workspace, since=since),
        ratings_per_day=per_day,
        confidence=confidence_distribution(s, workspace, since=since),
        latency=latency_percentiles(s, workspace, since=since),
        models=tokens_and_cost(s, workspace, since=since, prices=prices),
        most_cited=most_cited_documents(s, workspace, since=since, limit=top),
        cited_in_thumbs_down=most_cited_documents(
            s, workspace, since=since, limit=top, thumbs_down_only=True
        ),
    )


def _answers_where(workspace: str, since: datetime | None) -> ColumnElement[bool]:
    clauses = [Answer.workspace == workspace]
    if since is not None:
        clauses.append(Answer.created_at >= since)
    return and_(*clauses)


def _day(s: Session, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD', the same text on both backends."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite stores UTC text


def questions_per_day(
    s: Session, workspace: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    day = _day(s, Answer.created_at).label("day")
    rows = s.execute(
        select(day, func.count().label("questions"))
        .where(_answers_where(workspace, since))
        .group_by(day)
        .order_by(day)
    )
    return [{"day": d, "questions": int(n)} for d, n in rows]


def _latest_ratings() -> Any:
    """(answer_id, rating) of the newest rating on each rated answer: a changed mind counts,
    the earlier click does not."""
    newest = (
        select(func.max(Feedback.id).label("id"))
        .where(Feedback.rating.is_not(None))
        .group_by(Feedback.answer_id)
        .subquery()
    )
    return (
        select(Feedback.answer_id, Feedback.rating)
        .join(newest, newest.c.id == Feedback.id)
        .subquery("latest_rating")
    )


def ratings_per_day(
    s: Session, workspace: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Per day of the question: answers rated, rated up, and the thumbs-up rate."""
    latest = _latest_ratings()
    day = _day(s, Answer.created_at).label("day")
    up = func.sum(case((latest.c.rating == Rating.up, 1), else_=0))
    rows = s.execute(
        select(day, func.count().label("rated"), up.label("up"))
        .join(latest, latest.c.answer_id == Answer.id)
        .where(_answers_where(workspace, since))
        .group_by(day)
        .order_by(day)
    )
    return [
        {"day": d, "rated": int(n), "up": int(u or 0), "rate": int(u or 0) / n} for d, n, u in rows
    ]


def confidence_distribution(
    s: Session, workspace: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Answers per confidence bucket of width 0.1, split by the label they were shown with."""
    # Bounds as i/N, not i*(1/N): 3*0.1 is 0.30000000000000004 and would put 0.3 in bucket 2.
    bucket = case(
        *[
            (Answer.confidence < (i + 1) / CONFIDENCE_BUCKETS, literal(i))
            for i in range(CONFIDENCE_BUCKETS - 1)
        ],
        else_=literal(CONFIDENCE_BUCKETS - 1),
    ).label("bucket")
    rows = s.execute(
        select(bucket, Answer.confidence_label, func.count())
        .where(_answers_where(workspace, since))
        .group_by(bucket, Answer.confidence_label)
        .order_by(bucket)
    )
    return [
        {"bucket": int(b) / CONFIDENCE_BUCKETS, "label": label, "answers": int(n)}
        for b, label, n in rows
    ]


def latency_percentiles(
    s: Session, workspace: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """p50 and p95 seconds per pipeline stage (nearest-rank), over answers that ran the stage."""
    values: dict[str, list[float]] = {}
    for (timings,) in s.execute(select(Answer.timings).where(_answers_where(workspace, since))):
        for stage, seconds in (timings or {}).items():
            if isinstance(seconds, int | float):
                values.setdefault(stage, []).append(float(seconds))
    order = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    return [
        {
            "stage": stage,
            "p50": _percentile(values[stage], 50),
            "p95": _percentile(values[stage], 95),
            "answers": len(values[stage]),
        }
        for stage in sorted(values, key=lambda st: (order.get(st, len(order)), st))
    ]


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def price_for(model: str, prices: Mapping[str, Price] = PRICES) -> Price | None:
    matches = [name for name in prices if model == name or model.startswith(f"{name}-")]
    return prices[max(matches, key=len)] if matches else None


def tokens_and_cost(
    s: Session,
    workspace: str,
    *,
    since: datetime | None = None,
    prices: Mapping[str, Price] = PRICES,
) -> list[dict[str, Any]]:
    """Answers, prompt and completion tokens, and estimated USD cost per model."""
    rows = s.execute(
        select(
            Answer.model,
            func.count(),
            func.coalesce(func.sum(Answer.prompt_tokens), 0),
            func.coalesce(func.sum(Answer.completion_tokens), 0),
        )
        .where(_answers_where(workspace, since))
        .group_by(Answer.model)
        .order_by(Answer.model)
    )
    result = []
    for model, answers, prompt_sum, completion_sum in rows:
        prompt, completion = int(prompt_sum or 0), int(completion_sum or 0)
        price = price_for(model, prices)
        cost = None
        if price is not None:
            cost = (prompt * price.input + completion * price.output) / 1_000_000
        result.append(
            {
                "model": model,
                "answers": int(answers),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cost_usd": cost,
            }
        )
    return result


def _cited_sources(s: Session) -> Any:
    """(answer_id, document_id, document) for every cited passage of every answer: the
    `sources` JSON array unnested, with json_each on SQLite and json_array_elements on
    Postgres (both take the answer's column from the row beside them, a lateral join)."""
    if s.get_bind().dialect.name == "postgresql":
        item = func.json_array_elements(Answer.sources).table_valued("value").alias("item")

        def field_of(name: str) -> Any:
            return item.c.value.op("->>")(name)

        cited = field_of("cited") == "true"
    else:
        item = func.json_each(Answer.sources).table_valued("value").alias("item")

        def field_of(name: str) -> Any:
            return func.json_extract(item.c.value, f"$.{name}")

        cited = field_of("cited") == 1
    return (
        select(
            Answer.id.label("answer_id"),
            field_of("document_id").label("document_id"),
            field_of("document").label("document"),
        )
        .select_from(Answer)
        .join(item, true())
        .where(cited)
    )


def most_cited_documents(
    s: Session,
    workspace: str,
    *,
    since: datetime | None = None,
    limit: int = 10,
    thumbs_down_only: bool = False,
) -> list[dict[str, Any]]:
    """Documents by how many answers cite them; with `thumbs_down_only`, only answers whose
    newest rating is a thumbs-down count, which points at documents that mislead."""
    query: Select[Any] = _cited_sources(s).where(_answers_where(workspace, since))
    if thumbs_down_only:
        latest = _latest_ratings()
        query = query.join(latest, latest.c.answer_id == Answer.id).where(
            latest.c.rating == Rating.down
        )
    cited = query.subquery()
    answers = func.count(func.distinct(cited.c.answer_id)).label("answers")
    rows = s.execute(
        select(cited.c.document_id, func.max(cited.c.document), answers, func.count())
        .group_by(cited.c.document_id)
        .order_by(answers.desc(), func.max(cited.c.document))
        .limit(limit)
    )
    return [
        {"document_id": d, "document": name, "answers": int(n), "citations": int(c)}
        for d, name, n, c in rows
    ]


# Export ----------------------------------------------------------------------------------


def _decision(fb: Feedback) -> str | None:
    """What a review row decided (approved, corrected, rejected); chat reactions decide nothing."""
    if not is_review(fb.role, fb.source):
        return None
    if fb.edited_answer:
        return "corrected"
    if fb.rating is not None:
        return "approved" if fb.rating == Rating.up else "rejected"
    return None


def feedback_rows(
    s: Session, workspace: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every feedback row with the question and answer it is about, oldest first."""
    query = (
        select(Feedback, Answer)
        .join(Answer, Answer.id == Feedback.answer_id)
        .where(Answer.workspace == workspace)
        .order_by(Feedback.created_at, Feedback.id)
    )
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    return [
        {
            "feedback_id": fb.id,
            "created_at": fb.created_at.isoformat(),
            "answer_id": answer.id,
            "question": answer.question,
            "answer": answer.answer,
            "rating": None if fb.rating is None else fb.rating.value,
            "comment": fb.comment,
            "edited_answer": fb.edited_answer,
            "citation_verdicts": dict(fb.citation_verdicts or {}),
            "role": fb.role,
            "user": fb.user,
            "source": fb.source,
            "decision": _decision(fb),
            "reviewer": fb.user if is_review(fb.role, fb.source) else None,
            "standalone_question": answer.standalone_question,
            "prompt_version": answer.prompt_version,
            "documents": [
                {"document": src.get("document"), "content_hash": src.get("content_hash")}
                for src in answer.sources
                if src.get("cited")
            ],
            "confidence": answer.confidence,
            "confidence_label": answer.confidence_label,
            "generator": answer.generator,
            "model": answer.model,
        }
        for fb, answer in s.execute(query).tuples()
    ]


def misses(
    s: Session, workspace: str, *, no_answer: str, since: datetime | None = None
) -> list[Miss]:
    """Answers that abstained (or answered `no_answer`) or whose newest rating is a
    thumbs-down, newest first: what the documents did not cover."""
    latest = _latest_ratings()
    rows = s.execute(
        select(Answer, latest.c.rating)
        .outerjoin(latest, latest.c.answer_id == Answer.id)
        .where(
            _answers_where(workspace, since),
            or_(
                Answer.generator == "none",
                Answer.answer == no_answer,
                latest.c.rating == Rating.down,
            ),
        )
        .order_by(Answer.created_at.desc())
        .limit(MAX_MISSES)
    )
    found = []
    for answer, rating in rows:
        closest: dict[str, float] = {}
        for source in answer.sources or []:
            similarity = source.get("vector_score")
            name = str(source.get("document") or "")
            if name and similarity is not None:
                closest[name] = max(closest.get(name, -1.0), float(similarity))
        found.append(
            Miss(
                question=answer.question,
                abstained=answer.generator == "none" or answer.answer.strip() == no_answer,
                thumbs_down=rating == Rating.down,
                closest=closest,
                asked_at=answer.created_at,
            )
        )
    return found
