"""The extractive answerer quotes statements only: never a heading or an FAQ question."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from core.answer.extractive import ExtractiveAnswerer
from core.config import Settings
from core.embeddings import get_embeddings


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(get_embeddings(Settings()))


def test_headings_and_questions_are_not_quoted(answerer: ExtractiveAnswerer) -> None:
    passages = [
        Document(
            page_content="## Training budget\nEach employee has a training budget of 1,000 euros."
        ),
        Document(page_content="What is the training budget?\n\nAsk your manager about courses."),
    ]
    ranked = answerer.rank("What is the training budget?", passages)
    quoted = [c.sentence for c in ranked]
    assert "Each employee has a training budget of 1,000 euros." in quoted
    assert not any(s.startswith("#") or s.endswith("?") for s in quoted)
    answer = answerer.answer("What is the training budget?", passages)
    assert answer.startswith("Each employee has a training budget of 1,000 euros. [1]")


def test_bracketed_references_in_passages_are_not_citations(answerer: ExtractiveAnswerer) -> None:
    passages = [Document(page_content="The limit is 200 euros per night, as shown in [2].")]
    assert answerer.answer("What is the hotel limit?", passages).endswith("(2). [1]")
