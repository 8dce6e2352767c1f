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


def test_a_table_row_answer_keeps_the_column_the_question_asks_for_in_another_form(
    answerer: ExtractiveAnswerer,
) -> None:
    # "manages" asks for the "manager" column: it was cut off before column names were stemmed.
    table = (
        "Columns: office, city, manager\n"
        "office: HQ; city: Zürich; manager: Renée François\n"
        "office: Lab; city: Genève; manager: José Müller"
    )
    answer = answerer.answer("Who manages the office in Zürich?", [Document(page_content=table)])
    assert "manager: Renée François" in answer and "José" not in answer


def test_a_hard_wrapped_sentence_is_quoted_whole(answerer: ExtractiveAnswerer) -> None:
    # The line break falls inside the second sentence; its first line is short and has no
    # full stop, which read as a heading and was dropped: "회사가 지원합니다." was all that
    # was left, and the question was answered from the wrong sentence.
    korean = Document(
        page_content="모든 직원은 매년 종합 건강검진을 무료로 받을 수 있습니다. 배우자의 건강검진 "
        "비용은 50%를\n회사가 지원합니다. 건강검진 당일은 유급 휴가로 처리됩니다."
    )
    quoted = [
        c.sentence for c in answerer.rank("배우자 건강검진 비용은 얼마나 지원되나요?", [korean])
    ]
    assert "배우자의 건강검진 비용은 50%를 회사가 지원합니다." in quoted
    english = Document(
        page_content="All staff get a free yearly check-up. A spouse's check-up is paid\n"
        "at half by the company."
    )
    assert "A spouse's check-up is paid at half by the company." in [
        c.sentence for c in answerer.rank("Who pays for a spouse's check-up?", [english])
    ]
    # A short line that opens the passage is still a heading.
    headed = Document(page_content="Health cover\nAll staff get a free yearly check-up.")
    assert [c.sentence for c in answerer.rank("Is the check-up free?", [headed])] == [
        "All staff get a free yearly check-up."
    ]
