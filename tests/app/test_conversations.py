"""The chat page's conveniences, driven through AppTest: the conversation list in the sidebar
(resume, search, rename, delete, admins see everyone's), `[n]` links to the source, one
relevance figure per passage, copy / regenerate / edit-and-resend, and questions drawn from
the indexed documents."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.answer.types import AskEvent
from core.db.models import Answer, Conversation
from core.service import Loupe
from tests.app.support import LEAVE_QUESTION, make_app, run, texts

HOTEL_QUESTION = "What is the hotel limit in Oslo?"


def answers(engine: Loupe) -> list[Answer]:
    with engine.db.session() as s:
        return list(s.scalars(select(Answer).order_by(Answer.created_at, Answer.id)))


def conversation_rows(engine: Loupe) -> list[Conversation]:
    with engine.db.session() as s:
        return list(s.scalars(select(Conversation).order_by(Conversation.created_at)))


def ask(at: AppTest, question: str) -> AppTest:
    return run(at.chat_input[0].set_value(question))


def listed(at: AppTest) -> list[str]:
    """Titles in the sidebar's conversation list, top to bottom."""
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith("conversation_")]


def blocks(node: Any, kind: str) -> list[Any]:
    """Every block of `kind` (e.g. "popover") under `node`."""
    found = []
    for child in getattr(node, "children", {}).values():
        if getattr(child, "type", None) == kind:
            found.append(child)
        found += blocks(child, kind)
    return found


def test_conversations_are_listed_newest_first_and_resumed(documents: Loupe) -> None:
    at = ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    run(next(b for b in at.button if b.label == "New conversation").click())
    ask(at, HOTEL_QUESTION)
    assert listed(at) == [HOTEL_QUESTION, LEAVE_QUESTION]

    # A reload (a new session, nothing in the URL) still lists both; a click resumes one.
    reloaded = run(make_app(signed_in="uma"))
    assert listed(reloaded) == [HOTEL_QUESTION, LEAVE_QUESTION] and not reloaded.chat_message
    leave = conversation_rows(documents)[0]
    run(reloaded.sidebar.button(key=f"conversation_{leave.id}").click())
    assert reloaded.chat_message[0].text[0].value == LEAVE_QUESTION
    assert reloaded.query_params["conversation_id"] == leave.id
    # Asking on resumes that conversation, which moves to the top of the list.
    ask(reloaded, "And remote work?")
    assert listed(reloaded)[0] == LEAVE_QUESTION
    assert answers(documents)[-1].conversation_id == leave.id

    # Search reads questions and answers too.
    reloaded.sidebar.text_input(key="conversation_search").input("190 euros")
    assert listed(run(reloaded)) == [HOTEL_QUESTION]

    # Someone else's list does not show them.
    assert listed(run(make_app(signed_in="ursula"))) == []


def test_rename_and_delete_a_conversation(documents: Loupe) -> None:
    at = ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    [conversation] = conversation_rows(documents)
    at.sidebar.text_input(key=f"rename_{conversation.id}").input("Leave questions")
    run(at.sidebar.button(key=f"do_rename_{conversation.id}").click())
    assert "Conversation renamed." in [t.value for t in at.toast]
    assert listed(at) == ["Leave questions"]
    assert conversation_rows(documents)[0].title == "Leave questions"

    run(at.sidebar.button(key=f"delete_{conversation.id}").click())
    assert "Conversation deleted." in [t.value for t in at.toast]
    assert listed(at) == [] and not at.chat_message
    assert "conversation_id" not in at.query_params
    # Kept in SQL for audit, with who deleted it; the answers stay as well.
    [row] = conversation_rows(documents)
    assert row.deleted_by == "uma" and row.deleted_at is not None
    assert [a.conversation_id for a in answers(documents)] == [conversation.id]

    # An old link to it no longer opens it.
    reopened = make_app(signed_in="uma")
    reopened.query_params["conversation_id"] = conversation.id
    run(reopened)
    assert not reopened.chat_message and "conversation_id" not in reopened.query_params


def test_admins_can_list_and_open_anyones_conversations(documents: Loupe) -> None:
    ask(run(make_app(signed_in="uma")), LEAVE_QUESTION)
    [conversation] = conversation_rows(documents)
    admin = run(make_app(signed_in="ada"))
    assert listed(admin) == []
    run(admin.sidebar.toggle(key="conversation_everyone").set_value(True))
    assert listed(admin) == [LEAVE_QUESTION]
    run(admin.sidebar.button(key=f"conversation_{conversation.id}").click())
    assert admin.chat_message[0].text[0].value == LEAVE_QUESTION
    # A plain user has no such toggle.
    assert not run(make_app(signed_in="ursula")).sidebar.toggle


def test_each_citation_links_to_its_source_and_shows_one_relevance(documents: Loupe) -> None:
    at = ask(run(make_app()), LEAVE_QUESTION)
    [row] = answers(documents)
    reply = at.chat_message[1]
    text = reply.markdown[0].value
    assert f"[\\[1\\]](./source?answer={row.id}&n=1)" in text
    cited = reply.expander[0]
    # One figure in the label; the raw parts only behind the details toggle.
    assert re.search(r"· relevance \d+%$", cited.label)
    assert not [c for c in cited.caption if "BM25" in c.value or "rank score" in c.value]
    [details] = [p for p in blocks(cited, "popover") if p.proto.popover.label == "Score details"]
    raw = "\n".join(t.value for t in details.text)
    assert "rank score" in raw and "cosine similarity" in raw and "BM25" in raw
    assert [b.proto.url for b in cited.get("link_button")] == [f"./source?answer={row.id}&n=1"]


def test_copy_regenerate_and_edit_and_resend(documents: Loupe) -> None:
    at = ask(run(make_app()), LEAVE_QUESTION)
    [first] = answers(documents)
    reply = at.chat_message[1]
    copies = [
        e
        for e in reply
        if type(e).__name__ == "UnknownElement"
        and getattr(e.proto, "component_name", "") == "loupe_copy_answer"
    ]
    assert [json.loads(c.proto.json)["text"] for c in copies] == [first.answer]

    run(at.button(key=f"regenerate_{first.id}").click())
    regenerated = answers(documents)[-1]
    assert regenerated.question == LEAVE_QUESTION and regenerated.id != first.id
    assert regenerated.conversation_id == first.conversation_id

    at.text_area(key=f"edit_question_{first.id}").input(HOTEL_QUESTION)
    run(at.button(key=f"resend_{first.id}").click())
    edited = answers(documents)[-1]
    assert edited.question == HOTEL_QUESTION and "190 euros" in edited.answer
    assert edited.conversation_id == first.conversation_id
    assert [m.text[0].value for m in at.chat_message if m.name == "user"] == [
        LEAVE_QUESTION,
        LEAVE_QUESTION,
        HOTEL_QUESTION,
    ]


def test_a_new_conversation_offers_questions_from_the_documents(documents: Loupe) -> None:
    # Not the sample set: the questions come from the headings of what is indexed.
    at = run(make_app())
    offered = [b.label for b in at.button if b.key and b.key.startswith("suggestion_")]
    assert offered == [
        "What does the travel say about hotels?",
        "What does the handbook say about annual leave?",
        "What does the handbook say about remote work?",
    ]
    run(at.button(key="suggestion_1").click())
    assert "25 days" in at.chat_message[1].markdown[0].value
    assert "Try one of these:" not in texts(at)


def test_long_pieces_are_shown_a_word_at_a_time() -> None:
    # The extractive answerer yields whole sentences; model tokens come a word at a time.
    events = iter(
        [
            AskEvent("token", "New employees receive 25 days of paid leave [1]. "),
            AskEvent("token", "Yes"),
        ]
    )
    pieces = list(_shared.AnswerStream(events).tokens())
    assert pieces[:3] == ["New ", "employees ", "receive "] and pieces[-1] == "Yes"
    assert "".join(pieces) == "New employees receive 25 days of paid leave [1]. Yes"
