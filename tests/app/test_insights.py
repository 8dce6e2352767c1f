"""The insights page (admins) and the SQL behind it: the aggregations run on SQLite and, when a
server is available, on Postgres, and must agree with what was recorded."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from core.auth import Actor
from core.db import insights
from core.db.models import Answer, Feedback, Rating
from core.db.session import Database
from core.records import FEEDBACK_COLUMNS
from core.service import Loupe
from tests.app.support import LEAVE_QUESTION, make_app, on_page, run

HOTEL_QUESTION = "What is the hotel limit in Oslo?"
UMA = Actor("uma", "user")


@pytest.fixture
def history(documents: Loupe) -> Loupe:
    """Three answers: one thumbs-up, one thumbs-down, one asked 20 days ago."""
    up = documents.ask(LEAVE_QUESTION, actor=UMA)
    down = documents.ask(HOTEL_QUESTION, actor=UMA)
    old = documents.ask("Can employees work remotely?", actor=UMA)
    documents.feedback(up.answer_id or "", rating="down", actor=UMA)
    documents.feedback(up.answer_id or "", rating="up", actor=UMA)  # a changed mind counts
    documents.feedback(down.answer_id or "", rating="down", comment="wrong city", actor=UMA)
    with documents.db.session() as s:
        s.execute(
            update(Answer)
            .where(Answer.id == old.answer_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=20))
        )
    return documents


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_page_draws_every_chart_and_offers_the_exports(history: Loupe) -> None:
    at = on_page(make_app(signed_in="ada"), "pages/insights.py")
    assert metric(at, "Questions") == "3"
    assert metric(at, "Thumbs-up rate") == "50%"
    assert metric(at, "Rated answers") == "2"
    # Questions per day, thumbs-up rate, confidence, latency, most cited, cited in thumbs-down.
    assert len(at.get("vega_lite_chart")) == 6
    models = next(df.value for df in at.dataframe if "Model" in df.value.columns)
    assert models["Model"].tolist() == ["extractive"]
    assert models["Answers"].tolist() == [3]
    assert models["Estimated cost (USD)"].tolist() == [0.0]
    labels = [b.label for b in at.download_button]
    assert "Feedback as CSV" in labels and "Feedback as JSON Lines" in labels
    assert any(label.startswith("Fine-tuning examples") for label in labels)

    run(at.button_group(key="insights_period").set_value("7 days"))
    assert metric(at, "Questions") == "2"


def test_feedback_exports_as_csv_and_jsonl(history: Loupe) -> None:
    rows = list(csv.DictReader(io.StringIO(history.export_feedback("csv"))))
    assert [row["rating"] for row in rows] == ["down", "up", "down"]
    assert rows[2]["comment"] == "wrong city" and rows[2]["question"] == HOTEL_QUESTION
    assert json.loads(rows[0]["citation_verdicts"]) == {}

    lines = [json.loads(line) for line in history.export_feedback("jsonl").splitlines()]
    assert [line["feedback_id"] for line in lines] == [int(row["feedback_id"]) for row in rows]
    assert set(lines[0]) == set(FEEDBACK_COLUMNS)


def test_empty_insights_say_there_is_nothing_yet(engine: Loupe) -> None:
    at = on_page(make_app(), "pages/insights.py")
    assert metric(at, "Questions") == "0" and metric(at, "Thumbs-up rate") == "–"
    assert not at.get("vega_lite_chart")
    assert "No questions in this period." in [c.value for c in at.caption]


def add_answer(
    db: Database,
    *,
    model: str,
    confidence: float,
    label: str,
    cited: list[str],
    timings: dict[str, float],
    tokens: tuple[int, int] | None = None,
    rating: Rating | None = None,
) -> str:
    with db.session() as s:
        answer = Answer(
            workspace="default",
            question="q",
            standalone_question="q",
            answer="a [1]",
            sources=[
                {"n": n, "document_id": doc, "document": f"{doc}.md", "cited": True}
                for n, doc in enumerate(cited, start=1)
            ]
            + [{"n": 9, "document_id": "uncited", "document": "uncited.md", "cited": False}],
            model=model,
            generator="llm",
            confidence=confidence,
            confidence_label=label,
            timings=timings,
            prompt_tokens=tokens[0] if tokens else None,
            completion_tokens=tokens[1] if tokens else None,
        )
        s.add(answer)
        s.flush()
        if rating is not None:
            s.add(Feedback(answer_id=answer.id, rating=rating, role="user"))
        return answer.id


def test_aggregations_agree_on_every_backend(db: Database) -> None:
    add_answer(
        db,
        model="gpt-4o-mini-2024-07-18",
        confidence=0.91,
        label="high",
        cited=["a", "b"],
        timings={"retrieve": 0.1, "generate": 2.0, "total": 2.2},
        tokens=(1000, 200),
        rating=Rating.up,
    )
    add_answer(
        db,
        model="local-llama",
        confidence=0.3,
        label="low",
        cited=["a"],
        timings={"retrieve": 0.3, "generate": 4.0, "total": 4.4},
        tokens=(10, 5),
        rating=Rating.down,
    )
    add_answer(
        db,
        model="extractive",
        confidence=0.55,
        label="medium",
        cited=[],
        timings={"retrieve": 0.2, "total": 0.5},
    )
    with db.session() as s:
        report = insights.report(s, "default")

    assert (report.questions, report.rated, report.thumbs_up) == (3, 2, 1)
    assert report.mean_confidence == pytest.approx((0.91 + 0.3 + 0.55) / 3)
    [today] = report.questions_per_day
    assert today == {"day": datetime.now(UTC).strftime("%Y-%m-%d"), "questions": 3}
    assert report.ratings_per_day[0]["rate"] == 0.5
    assert {(row["bucket"], row["label"], row["answers"]) for row in report.confidence} == {
        (0.3, "low", 1),
        (0.5, "medium", 1),
        (0.9, "high", 1),
    }
    latency = {row["stage"]: row for row in report.latency}
    assert list(latency) == ["retrieve", "generate", "total"]
    assert (latency["retrieve"]["p50"], latency["retrieve"]["p95"]) == (0.2, 0.3)
    assert latency["generate"]["answers"] == 2
    costs = {row["model"]: row["cost_usd"] for row in report.models}
    assert costs["gpt-4o-mini-2024-07-18"] == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)
    assert costs["extractive"] == 0.0 and costs["local-llama"] is None
    assert [(r["document_id"], r["answers"]) for r in report.most_cited] == [("a", 2), ("b", 1)]
    assert [r["document_id"] for r in report.cited_in_thumbs_down] == ["a"]


def test_prices_match_model_families() -> None:
    assert insights.price_for("gpt-4o-mini-2024-07-18") == insights.PRICES["gpt-4o-mini"]
    assert insights.price_for("gpt-4o-2024-08-06") == insights.PRICES["gpt-4o"]
    assert insights.price_for("llama3.1:8b") is None


WORLD_CUP = (
    "Who won the football world cup in 1998?",
    "Which team won the 1998 football World Cup?",
    "Who won the football world cup in 1998?",
)


def test_what_the_documents_dont_cover(history: Loupe) -> None:
    for question in WORLD_CUP:
        assert history.ask(question, actor=UMA).abstained
    at = on_page(make_app(), "pages/insights.py")
    assert "What the documents don't cover" in [h.value for h in at.subheader]
    table = next(df.value for df in at.dataframe if "Also asked as" in df.value.columns)
    rows = {row["Question"]: row for _, row in table.iterrows()}
    # The three world-cup questions are one gap (two wordings); the disliked hotel answer
    # is another, pointing at the document that came closest.
    world_cup = rows[WORLD_CUP[0]]
    assert (world_cup["Asked"], world_cup["Not answered"], world_cup["Thumbs down"]) == (3, 3, 0)
    assert list(world_cup["Also asked as"]) == [WORLD_CUP[1]]
    hotel = rows[HOTEL_QUESTION]
    assert (hotel["Asked"], hotel["Not answered"], hotel["Thumbs down"]) == (1, 0, 1)
    assert list(hotel["Closest documents"])[0].startswith("travel.md (")
    # The thumbs-up answer (a changed mind) is not a gap.
    assert LEAVE_QUESTION not in rows
    assert list(table["Question"])[0] == WORLD_CUP[0]  # most asked first
