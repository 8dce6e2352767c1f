"""The chat page, driven like a user drives it: ask, read the cited answer and its confidence,
give feedback, reload. Checked against what the page shows and the rows left in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.db.models import Answer, Conversation, Feedback, Rating
from core.ingest.samples import SAMPLE_TAG
from core.service import Loupe
from tests.app.support import HANDBOOK, LEAVE_QUESTION, answer_shown, make_app, run, texts


def answers(engine: Loupe) -> list[Answer]:
    with engine.db.session() as s:
        return list(s.scalars(select(Answer).order_by(Answer.created_at, Answer.id)))


def feedback_rows(engine: Loupe) -> list[Feedback]:
    with engine.db.session() as s:
        return list(s.scalars(select(Feedback).order_by(Feedback.id)))


def ask(at: AppTest, question: str) -> AppTest:
    return run(at.chat_input[0].set_value(question))


def node_order(block: Any) -> list[Any]:
    return [node for node in block]


def test_first_run_guides_to_the_samples_and_answers_from_them(engine: Loupe) -> None:
    at = run(make_app())
    assert "No documents yet" in [h.value for h in at.subheader]
    assert at.chat_input[0].disabled
    assert "Single-user local mode" in texts(at)

    run(next(b for b in at.button if b.label == "Load the sample documents").click())
    docs = engine.documents()
    assert sorted(d.name for d in docs) == [
        "benefits-ko.md",
        "harborlight-handbook.md",
        "it-security-faq.html",
        "travel-expense-limits.csv",
    ]
    assert all(d.status == "ready" and SAMPLE_TAG in d.tags for d in docs)
    assert not at.chat_input[0].disabled

    suggestion = next(b for b in at.button if b.label.startswith("How many days of annual"))
    run(suggestion.click())
    reply = at.chat_message[1]
    assert "22 days" in answer_shown(reply) and "[1]" in answer_shown(reply)
    assert reply.expander[0].label.startswith(_shared.inert("[1] harborlight-handbook.md"))


def test_answer_streams_in_with_citations_and_confidence(documents: Loupe) -> None:
    at = ask(run(make_app()), LEAVE_QUESTION)

    question, reply = at.chat_message
    assert question.name == "user" and question.text[0].value == LEAVE_QUESTION
    assert reply.name == "assistant"
    answer_text = answer_shown(reply)
    assert "25 days" in answer_text and "[1]" in answer_text
    cited = reply.expander[0]
    assert cited.label.startswith(_shared.inert("[1] handbook.md — Annual leave") + " · relevance ")
    assert "New employees receive 25 days" in cited.text[0].value
    badge = next(m.value for m in reply.markdown if "ikely right (" in m.value)
    assert "Likely right (" in badge
    assert "Quoted from the passages" in texts(at)

    [row] = answers(documents)
    assert row.answer == answer_text and row.user == "local"
    assert at.query_params["conversation_id"] == row.conversation_id
    assert at.feedback[0].key == f"thumbs_{row.id}"


def test_follow_up_questions_share_the_conversation(documents: Loupe) -> None:
    at = ask(run(make_app()), LEAVE_QUESTION)
    ask(at, "And remote work?")

    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2
    first, second = answers(documents)
    assert first.conversation_id == second.conversation_id is not None
    # The follow-up names its own subject, so it is searched alone (context is joined only
    # when it measurably helps), and the standalone question says what was searched.
    assert second.standalone_question == "And remote work?"
    assert answer_shown(at.chat_message[3]) == second.answer

    run(next(b for b in at.button if b.label == "New conversation").click())
    assert not at.chat_message and "conversation_id" not in at.query_params
    ask(at, "What is the hotel limit in Oslo?")
    assert answers(documents)[-1].conversation_id != first.conversation_id


def test_feedback_is_saved_at_once_and_read_back_after_a_reload(documents: Loupe) -> None:
    at = ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    [answer] = answers(documents)

    run(at.feedback[0].set_value(0))  # thumbs down
    assert [t.value for t in at.toast] == ["Rating saved. Thank you!"]
    run(at.button_group(key=f"verdict_{answer.id}_1").set_value("does_not_support"))
    assert "Verdict on source [1] saved." in [t.value for t in at.toast]
    at.text_area(key=f"comment_{answer.id}").input("The handbook changed in 2025.")
    at.text_area(key=f"edit_{answer.id}").input("New employees receive 27 days [1].")
    run(next(b for b in at.button if b.label == "Save feedback").click())
    assert "Correction saved." in [t.value for t in at.toast]
    assert at.text_area(key=f"comment_{answer.id}").value == ""

    rating, verdict, correction = feedback_rows(documents)
    assert (rating.rating, rating.role, rating.user) == (Rating.down, "user", "uma")
    assert verdict.citation_verdicts == {"1": "does_not_support"} and verdict.rating is None
    assert correction.comment == "The handbook changed in 2025."
    assert correction.edited_answer == "New employees receive 27 days [1]."
    assert {fb.answer_id for fb in (rating, verdict, correction)} == {answer.id}

    # A reload is a new session: only the URL survives, everything else comes from SQL.
    reloaded = make_app(signed_in="uma")
    reloaded.query_params["conversation_id"] = answer.conversation_id
    run(reloaded)
    assert reloaded.chat_message[0].text[0].value == LEAVE_QUESTION
    assert reloaded.feedback(key=f"thumbs_{answer.id}").value == 0
    assert reloaded.button_group(key=f"verdict_{answer.id}_1").value == "does_not_support"
    # What people typed is shown inert: as Markdown escaped to show as written.
    shown = texts(reloaded)
    assert "Your correction: " + _shared.inert("New employees receive 27 days [1].") in shown
    assert "Your last comment: " + _shared.inert("The handbook changed in 2025.") in shown


def test_someone_elses_conversation_is_not_shown(documents: Loupe) -> None:
    at = ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    other = make_app(signed_in="ursula")
    other.query_params["conversation_id"] = at.query_params["conversation_id"]
    run(other)
    assert not other.chat_message
    assert "conversation_id" not in other.query_params


def test_feedback_that_says_nothing_is_not_saved(documents: Loupe) -> None:
    at = ask(run(make_app()), LEAVE_QUESTION)
    run(next(b for b in at.button if b.label == "Save feedback").click())
    assert [t.value for t in at.toast] == [
        "Nothing to save: write a comment or change the answer text."
    ]
    assert feedback_rows(documents) == []


def test_unanswerable_and_low_confidence_answers_warn_and_show_passages_first(
    documents: Loupe,
) -> None:
    at = ask(run(make_app()), "What is the capital of Mongolia?")
    reply = at.chat_message[1]
    assert "is below the answer threshold" in reply.info[0].value
    order = node_order(reply)
    passages = next(i for i, node in enumerate(order) if node.type == "expander")
    # Below the threshold the reply says the documents may not cover it; passages are leads.
    answer_text = next(m for m in reply.markdown if "may not cover this question" in m.value)
    assert passages < order.index(answer_text)
    assert reply.expander[0].proto.expanded

    # An answered question whose stored confidence is low: warning, passages first.
    ask(at, LEAVE_QUESTION)
    with documents.db.session() as s:
        row = s.scalars(select(Answer).where(Answer.question == LEAVE_QUESTION)).one()
        row.confidence, row.confidence_label = 0.2, "low"
    run(at)
    reply = at.chat_message[3]
    assert "Low confidence: read the passages below" in reply.warning[0].value
    order = node_order(reply)
    first_passage = next(i for i, node in enumerate(order) if node.type == "expander")
    answer_text = next(t for t in order if t.type == "markdown" and "25 days" in t.value)
    assert first_passage < order.index(answer_text)
    assert reply.expander[0].proto.expanded


def test_scope_limits_the_search_to_chosen_documents_and_tags(documents: Loupe) -> None:
    travel = next(d for d in documents.documents() if d.name == "travel.md")
    at = run(make_app())
    at.multiselect(key="scope_documents").set_value([travel.id])
    at.multiselect(key="scope_tags").set_value(["policies"])
    ask(at, LEAVE_QUESTION)

    [row] = answers(documents)
    assert row.filters == {"document_ids": [travel.id], "tags": ["policies"]}
    assert {source["document"] for source in row.sources} <= {"travel.md"}
    assert "25 days" not in answer_shown(at.chat_message[1])


def test_a_failing_language_model_is_said_so(monkeypatch: Any) -> None:
    # A real OpenAI client pointed at a port where nothing listens: the connection fails.
    monkeypatch.setenv("LOUPE_LLM", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("LOUPE_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("LOUPE_LLM_TIMEOUT", "5")
    engine = _shared.engine()  # built now, from these settings
    engine.ingest([HANDBOOK])

    at = ask(run(make_app()), LEAVE_QUESTION)
    reply = at.chat_message[1]
    assert "The language model failed" in reply.warning[0].value
    assert "25 days" in answer_shown(reply)
    assert "after the language model failed" in texts(at)
    assert [row.generator for row in answers(engine)] == ["fallback"]


def test_a_reset_replaces_the_partial_answer() -> None:
    def script() -> None:
        import streamlit as st

        import ui as _shared
        from core.answer.types import AnswerResult, AskEvent, Confidence

        result = AnswerResult(
            question="q",
            standalone_question="q",
            answer="Extracted answer [1].",
            sources=[],
            confidence=Confidence(0.5, "medium", []),
            generator="fallback",
            model="extractive",
            prompt_version=None,
        )
        events = [
            AskEvent("token", "A half-written "),
            AskEvent("token", "model answer"),
            AskEvent("reset"),
            AskEvent("token", "Extracted answer [1]."),
            AskEvent("done", result=result),
        ]
        final = _shared.stream_answer(iter(events))
        st.markdown(f"final: {final.answer}")

    at = AppTest.from_function(script, default_timeout=60)
    run(at)
    shown = texts(at)
    assert "final: Extracted answer [1]." in shown
    assert "half-written" not in shown


def test_conversation_rows_belong_to_the_signed_in_user(documents: Loupe) -> None:
    ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    with documents.db.session() as s:
        conversation = s.scalars(select(Conversation)).one()
        assert conversation.user == "uma" and conversation.title == LEAVE_QUESTION
