"""Datasets from expert reviews: fine-tuning examples, preference pairs, the eval set.

Each is built from the current review decision of each answer (core/learn/review.py):

- `finetune`: OpenAI's chat fine-tuning format, one `{"messages": [system, user, assistant]}`
  object a line and nothing else (unknown keys are refused by the format). The system and user
  messages are the prompt version the answer was generated with, filled with the passages the
  model saw, so tuning teaches the product's real task; the assistant message is the answer
  the expert approved or wrote.
- `preferences`: TRL's DPO trainer layout in its conversational form: `prompt` is the system
  and user messages, `chosen` the expert's correction, `rejected` the original answer, each a
  list of chat messages.
- `eval`: the regression set `python -m core eval --feedback` replays: the standalone question
  (a follow-up such as "and for managers?" means nothing without its conversation), the answer
  the expert stands by, the documents it cited and their versions, the reviewer, prompt version
  and model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from core.answer.prompts import ALL_PROMPTS, ANSWER, VersionedPrompt, format_passage
from core.db.learning import ReviewedAnswer
from core.learn.review import current_decision
from core.records import ReviewDecision

_PROMPTS = {prompt.id: prompt for prompt in ALL_PROMPTS}


def _prompt(version: str | None) -> VersionedPrompt:
    """The answer prompt an answer was made with; answers without an LLM prompt (extractive)
    are taught with the current one, which is what a tuned model will be run with."""
    prompt = _PROMPTS.get(version or "")
    return prompt if prompt is not None and prompt.name == ANSWER.name else ANSWER


def _messages(reviewed: ReviewedAnswer) -> list[dict[str, str]]:
    answer = reviewed.answer
    prompt = _prompt(answer.prompt_version)
    context = "\n\n".join(
        format_passage(s["n"], s["document"], s.get("page"), s["quote"]) for s in answer.sources
    )
    return [
        {"role": "system", "content": prompt.system},
        {
            "role": "user",
            "content": prompt.human.format(context=context, question=answer.standalone_question),
        },
    ]


def _decided(reviewed: Sequence[ReviewedAnswer]) -> Iterator[tuple[ReviewedAnswer, ReviewDecision]]:
    for item in reviewed:
        decision = current_decision(item.answer.answer, item.feedback)
        if decision is not None:
            yield item, decision


def export_finetune(reviewed: Sequence[ReviewedAnswer]) -> Iterator[dict[str, Any]]:
    for item, decision in _decided(reviewed):
        if decision.answer is not None:
            yield {
                "messages": [
                    *_messages(item),
                    {"role": "assistant", "content": decision.answer},
                ]
            }


def export_preferences(reviewed: Sequence[ReviewedAnswer]) -> Iterator[dict[str, Any]]:
    for item, decision in _decided(reviewed):
        original = item.answer.answer
        if decision.kind == "corrected" and decision.answer is not None:
            if decision.answer.strip() != original.strip():
                yield {
                    "prompt": _messages(item),
                    "chosen": [{"role": "assistant", "content": decision.answer}],
                    "rejected": [{"role": "assistant", "content": original}],
                }


def cited_documents(reviewed: ReviewedAnswer) -> list[dict[str, Any]]:
    """The documents an answer cited, each with the version it was answered from."""
    seen: dict[str, dict[str, Any]] = {}
    for s in reviewed.answer.sources:
        if s.get("cited") and s.get("document_id") not in seen:
            seen[s["document_id"]] = {
                "document_id": s["document_id"],
                "document": s.get("document"),
                "content_hash": s.get("content_hash"),
            }
    return list(seen.values())


def export_eval_set(reviewed: Sequence[ReviewedAnswer]) -> Iterator[dict[str, Any]]:
    for item, decision in _decided(reviewed):
        if decision.answer is None:
            continue
        documents = cited_documents(item)
        yield {
            "question": item.answer.standalone_question,
            "asked": item.answer.question,
            "answer": decision.answer,
            "document_ids": sorted(d["document_id"] for d in documents),
            "documents": documents,
            "answer_id": item.answer.id,
            "decision": decision.kind,
            "verified_by": decision.reviewer,
            "verified_at": decision.at.isoformat(),
            "prompt_version": item.answer.prompt_version,
            "model": item.answer.model,
        }


EXPORTERS = {
    "finetune": export_finetune,
    "preferences": export_preferences,
    "eval": export_eval_set,
}
