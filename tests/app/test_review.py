"""The review page (experts): the queue puts thumbs-down and low confidence first, filters
narrow it, and an expert approves, corrects or rejects an answer and judges its citations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.auth import Actor
from core.db.models import Feedback, Rating
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from tests.app.support import LEAVE_QUESTION, make_app, on_page, run, texts

HOTEL_QUESTION = "What is the hotel limit in Oslo?"
UMA = Actor("uma", "user")


@pytest.fixture
def asked(documents: Loupe) -> dict[str, str]:
    """Two answers to a user's questions; the hotel one got a thumbs-down. Question → id."""
    ids = {}
    for question in (LEAVE_QUESTION, HOTEL_QUESTION):
        ids[question] = documents.ask(question, actor=UMA).answer_id or ""
    documents.feedback(ids[HOTEL_QUESTION], rating="down", comment="too vague", actor=UMA)
    return ids


def review_page() -> AppTest:
    return on_page(make_app(signed_in="erin"), "pages/review.py")


def expert_rows(engine: Loupe) -> list[Feedback]:
    with engine.db.session() as s:
        return list(s.scalars(select(Feedback).where(Feedback.role == "expert")))


def save_review(at: AppTest) -> AppTest:
    return run(next(b for b in at.button if b.label == "Save review").click())


def queue_questions(at: AppTest) -> list[str]:
    return list(at.dataframe(key="review_table").value["Question"])


def test_queue_shows_thumbs_down_first_with_answer_passages_and_feedback(
    documents: Loupe, asked: dict[str, str]
) -> None:
    at = review_page()
    assert at.progress[0].text == "0 reviewed · 2 remaining"
    assert queue_questions(at) == [HOTEL_QUESTION, LEAVE_QUESTION]
    assert at.dataframe(key="review_table").value["👎"].tolist() == [1, 0]

    # The first row is selected: its question, answer beside its passages, feedback so far.
    assert at.subheader[0].value == HOTEL_QUESTION
    answer_column, passages_column = at.columns[-2:]
    assert "190 euros" in " ".join(t.value for t in answer_column.text)
    assert "uma (user, " in " ".join(c.value for c in answer_column.caption)
    assert "Not reviewed yet." in texts(at)
    assert "too vague" in texts(at)
    assert passages_column.expander[0].label.startswith(_shared.inert("[1] travel.md"))

    at.session_state["review_table"] = {"selection": {"rows": [1]}}
    run(at)
    assert at.subheader[0].value == LEAVE_QUESTION


def test_approve_with_citation_verdicts_verifies_the_answer(
    documents: Loupe, asked: dict[str, str]
) -> None:
    answer_id = asked[HOTEL_QUESTION]
    at = review_page()
    at.button_group(key=f"review_verdict_{answer_id}_1").set_value("supports")
    save_review(at)
    assert "Review saved: approve." in [t.value for t in at.toast]

    [row] = expert_rows(documents)
    assert (row.answer_id, row.rating, row.user) == (answer_id, Rating.up, "erin")
    assert row.citation_verdicts == {"1": "supports"}
    assert at.progress[0].text == "1 reviewed · 1 remaining"
    assert queue_questions(at) == [LEAVE_QUESTION]  # reviewed answers leave the queue
    at.toggle(key="review_include_reviewed").set_value(True)
    run(at)
    assert queue_questions(at)[0] == HOTEL_QUESTION
    assert at.dataframe(key="review_table").value["Reviewed"].tolist()[0] == "yes"

    # The approved answer is offered to whoever asks the same question next.
    chat = run(make_app(signed_in="ursula"))
    run(chat.chat_input[0].set_value(HOTEL_QUESTION))
    assert "Expert-verified answer" in texts(chat)
    assert "Verified by erin" in texts(chat)


def test_edit_saves_the_correction(documents: Loupe, asked: dict[str, str]) -> None:
    answer_id = asked[HOTEL_QUESTION]
    at = review_page()
    at.radio(key=f"review_decision_{answer_id}").set_value("edit")
    at.text_area(key=f"review_edit_{answer_id}").input("Oslo hotels: up to 190 euros a night [1].")
    save_review(at)

    [row] = expert_rows(documents)
    assert row.edited_answer == "Oslo hotels: up to 190 euros a night [1]."
    assert row.rating is None
    chosen = documents.export("preferences")[0]["chosen"]
    assert chosen == [{"role": "assistant", "content": row.edited_answer}]


def test_reject_needs_a_reason(documents: Loupe, asked: dict[str, str]) -> None:
    answer_id = asked[HOTEL_QUESTION]
    at = review_page()
    at.radio(key=f"review_decision_{answer_id}").set_value("reject")
    save_review(at)
    assert "Not saved: Say why the answer is rejected." in [t.value for t in at.toast]
    assert expert_rows(documents) == []

    at.text_input(key=f"review_reason_{answer_id}").input("The limit changed to 210 euros.")
    save_review(at)
    [row] = expert_rows(documents)
    assert (row.rating, row.comment) == (Rating.down, "The limit changed to 210 euros.")


def test_filters_narrow_the_queue(documents: Loupe, asked: dict[str, str]) -> None:
    at = review_page()
    at.selectbox(key="review_rating").set_value("Thumbs down")
    run(at)
    assert queue_questions(at) == [HOTEL_QUESTION]

    # A document added after both questions were answered is among no answer's passages.
    [later] = documents.ingest([IngestItem("later.txt", b"The canteen opens at 11:30.")])
    at.selectbox(key="review_rating").set_value("Any rating")
    run(at)
    at.selectbox(key="review_document").set_value(later.document_id)
    run(at)
    assert "Nothing to review with these filters." in texts(at)
    travel = next(d.id for d in documents.documents() if d.name == "travel.md")
    at.selectbox(key="review_document").set_value(travel)
    run(at)
    assert set(queue_questions(at)) == {HOTEL_QUESTION, LEAVE_QUESTION}

    at.selectbox(key="review_document").set_value(None)
    long_ago = datetime.now(UTC).date() - timedelta(days=90)
    at.date_input(key="review_dates").set_value((long_ago, long_ago + timedelta(days=10)))
    run(at)
    assert "Nothing to review with these filters." in texts(at)


def test_a_rejected_answer_reads_as_rejected_and_the_form_starts_from_it(
    documents: Loupe, asked: dict[str, str]
) -> None:
    answer_id = asked[HOTEL_QUESTION]
    documents.review(answer_id, "reject", reason="Wrong city's row.", actor=Actor("erin", "expert"))
    at = review_page()
    assert queue_questions(at) == [LEAVE_QUESTION]  # decided: out of the queue
    at.toggle(key="review_include_reviewed").set_value(True)
    run(at)
    assert at.dataframe(key="review_table").value["Status"].tolist()[0] == "rejected"
    assert "Rejected by erin" in texts(at) and "Reason: Wrong city's row." in texts(at)
    assert at.radio(key=f"review_decision_{answer_id}").value == "reject"
    assert at.text_input(key=f"review_reason_{answer_id}").value == "Wrong city's row."


def test_a_follow_up_shows_the_conversation_before_it(documents: Loupe) -> None:
    conversation = documents.new_conversation(actor=UMA)
    documents.ask(HOTEL_QUESTION, conversation_id=conversation, actor=UMA)
    follow_up = documents.ask("and meals?", conversation_id=conversation, actor=UMA)
    at = review_page()
    questions = queue_questions(at)
    at.session_state["review_table"] = {
        "selection": {"rows": [questions.index(follow_up.standalone_question)]}
    }
    run(at)
    assert at.subheader[0].value == follow_up.standalone_question
    assert "Conversation before (1 turn)" in [e.label for e in at.expander]
    assert f"Asked: {HOTEL_QUESTION}" in texts(at)
    # The question as typed is shown beside the standalone one only when they differ.
    joined = follow_up.standalone_question != "and meals?"
    assert ("Asked “and meals?”" in texts(at)) == joined
