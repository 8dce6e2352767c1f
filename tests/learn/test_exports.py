"""The dataset exports are in the formats their consumers read, checked offline against those
formats' rules: OpenAI's chat fine-tuning JSONL (the checks of OpenAI's data-preparation
guide) and TRL's DPO preference layout (conversational prompt/chosen/rejected)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.answer.prompts import ANSWER
from core.db.learning import AnswerRecord, FeedbackEvent, ReviewedAnswer
from core.learn.exports import export_eval_set, export_finetune, export_preferences
from core.learn.review import current_decision

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
SOURCES = (
    {
        "n": 1,
        "chunk_id": "c1",
        "document_id": "d-csv",
        "document": "limits.csv",
        "page": None,
        "quote": "Oslo,Norway,190,70",
        "cited": True,
        "content_hash": "h1",
    },
    {
        "n": 2,
        "chunk_id": "c2",
        "document_id": "d-md",
        "document": "handbook.md",
        "page": None,
        "quote": "Travel must be booked through the travel desk.",
        "cited": False,
    },
)


def answer(answer_id: str, text: str, question: str = "and in Oslo?") -> AnswerRecord:
    return AnswerRecord(
        id=answer_id,
        question=question,
        standalone_question="What is the hotel limit in Oslo?",
        answer=text,
        sources=SOURCES,
        prompt_version=ANSWER.id,
        model="gpt-4o-mini",
        created_at=T0,
    )


def event(n: int, answer_id: str, **fields: Any) -> FeedbackEvent:
    defaults: dict[str, Any] = {
        "rating": None,
        "comment": None,
        "edited_answer": None,
        "verdicts": {},
        "role": "expert",
        "source": "review",
        "user": "dana",
    }
    return FeedbackEvent(
        id=n, answer_id=answer_id, created_at=T0 + timedelta(minutes=n), **(defaults | fields)
    )


REVIEWED = [
    ReviewedAnswer(answer("a1", "190 euros [1]."), (event(1, "a1", rating="up"),)),
    ReviewedAnswer(
        answer("a2", "210 euros [1]."),
        (
            event(2, "a2", rating="down", comment="wrong row"),
            event(3, "a2", edited_answer="The hotel limit in Oslo is 190 euros per night. [1]"),
        ),
    ),
    ReviewedAnswer(
        answer("a3", "150 euros [1]."), (event(4, "a3", rating="down", comment="Hamburg's"),)
    ),
    # A thumbs-up in chat, even from an admin, decides nothing.
    ReviewedAnswer(
        answer("a4", "190 [1]."), (event(5, "a4", rating="up", role="admin", source="chat"),)
    ),
]

OPENAI_ROLES = {"system", "user", "assistant", "function"}
OPENAI_MESSAGE_KEYS = {"role", "content", "name", "function_call", "weight"}


def openai_format_errors(example: Any) -> list[str]:
    """The format checks of OpenAI's chat fine-tuning data-preparation guide."""
    errors = []
    if not isinstance(example, dict) or set(example) - {"messages", "tools", "functions"}:
        return ["data_type or unrecognized top-level key"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            errors.append("message_missing_key")
            continue
        if set(message) - OPENAI_MESSAGE_KEYS:
            errors.append("message_unrecognized_key")
        if message["role"] not in OPENAI_ROLES:
            errors.append("unrecognized_role")
        if not isinstance(message["content"], str) or not message["content"].strip():
            errors.append("missing_content")
    if not any(m.get("role") == "assistant" for m in messages if isinstance(m, dict)):
        errors.append("example_missing_assistant_message")
    return errors


def is_conversational(value: Any) -> bool:
    """TRL's test for conversational data: a list of {"role", "content"} messages."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value)
    )


def test_finetune_lines_pass_openais_format_checks() -> None:
    lines = [json.dumps(row) for row in export_finetune(REVIEWED)]
    examples = [json.loads(line) for line in lines]
    assert len(examples) == 2  # approved and corrected; not the rejected one, not chat
    for example in examples:
        assert openai_format_errors(example) == []
        assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    assert examples[0]["messages"][0]["content"] == ANSWER.system
    user = examples[0]["messages"][1]["content"]
    assert "Oslo,Norway,190,70" in user and "<passage" in user
    assert "What is the hotel limit in Oslo?" in user  # the standalone question, not "and in Oslo?"
    assert {e["messages"][2]["content"] for e in examples} == {
        "190 euros [1].",
        "The hotel limit in Oslo is 190 euros per night. [1]",
    }


def test_the_format_check_can_fail() -> None:
    assert openai_format_errors({"messages": [{"role": "user", "content": "hi"}]})
    assert openai_format_errors({"messages": [{"role": "bot", "content": "x"}], "meta": 1})


def test_preferences_are_trl_dpo_conversational_pairs() -> None:
    pairs = list(export_preferences(REVIEWED))
    assert len(pairs) == 1
    pair = pairs[0]
    assert set(pair) == {"prompt", "chosen", "rejected"}
    assert all(is_conversational(pair[key]) for key in pair)
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert pair["chosen"] == [
        {"role": "assistant", "content": "The hotel limit in Oslo is 190 euros per night. [1]"}
    ]
    assert pair["rejected"] == [{"role": "assistant", "content": "210 euros [1]."}]
    json.dumps(pair)  # one JSONL line


def test_eval_set_uses_the_standalone_question_and_carries_provenance() -> None:
    rows = {row["answer_id"]: row for row in export_eval_set(REVIEWED)}
    assert set(rows) == {"a1", "a2"}
    row = rows["a2"]
    assert row["question"] == "What is the hotel limit in Oslo?" and row["asked"] == "and in Oslo?"
    assert row["decision"] == "corrected" and row["verified_by"] == "dana"
    assert row["prompt_version"] == ANSWER.id and row["model"] == "gpt-4o-mini"
    assert row["document_ids"] == ["d-csv"]
    assert row["documents"] == [
        {"document_id": "d-csv", "document": "limits.csv", "content_hash": "h1"}
    ]


def test_the_newest_decision_wins() -> None:
    decision = current_decision("210 euros [1].", REVIEWED[1].feedback)
    assert decision is not None and decision.kind == "corrected" and decision.feedback_id == 3
    rejected = current_decision("150 euros [1].", REVIEWED[2].feedback)
    assert rejected is not None and rejected.kind == "rejected" and rejected.reason == "Hamburg's"
    assert current_decision("190 [1].", REVIEWED[3].feedback) is None
