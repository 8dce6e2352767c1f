"""The shipped sample documents through the real product with the shipped calibration: every
suggested question is answered from the right passage, a table question answers with its row,
and follow-ups never borrow an unrelated topic or answer 22 days to "after five years"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Settings
from core.ingest.samples import SAMPLE_QUESTIONS
from core.service import Loupe


@pytest.fixture(scope="module")
def loupe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loupe]:
    data = tmp_path_factory.mktemp("samples")
    instance = Loupe(Settings(data_dir=Path(data), llm="extractive", database_url=None))
    instance.load_samples()
    yield instance
    instance.close()


EXPECTED = {
    SAMPLE_QUESTIONS[0]: ("harborlight-handbook.md", "22 days"),
    SAMPLE_QUESTIONS[1]: ("harborlight-handbook.md", "three days per week"),
    SAMPLE_QUESTIONS[2]: ("harborlight-handbook.md", "16 weeks"),
    SAMPLE_QUESTIONS[3]: ("benefits-ko.md", "120만 원"),
}


@pytest.mark.parametrize("question", SAMPLE_QUESTIONS)
def test_every_suggested_question_is_answered_from_the_right_passage(
    loupe: Loupe, question: str
) -> None:
    document, words = EXPECTED[question]
    result = loupe.ask(question)
    assert result.generator == "extractive" and result.confidence.calibration
    assert words in result.answer
    assert [s.document for s in result.citations] == [document]
    assert result.confidence.score >= (result.confidence.threshold or 0.0)


def test_a_table_question_answers_with_the_row_as_column_value_pairs(loupe: Loupe) -> None:
    result = loupe.ask("What is the hotel limit per night in Oslo?")
    assert result.answer == "city: Oslo; hotel_per_night_eur: 190 [1]"
    assert result.citations[0].document == "travel-expense-limits.csv"


def test_after_five_years_is_26_days_or_an_abstention(loupe: Loupe) -> None:
    first = loupe.ask("How many days of annual leave do new employees get?")
    history = [("user", first.question), ("assistant", first.answer)]
    follow = loupe.ask("And after five years?", history=history)
    assert "22 days" not in follow.answer
    assert "26 days" in follow.answer or follow.abstained


def test_an_unrelated_follow_up_does_not_borrow_the_previous_topic(loupe: Loupe) -> None:
    first = loupe.ask("How is overtime compensated?")
    history = [("user", first.question), ("assistant", first.answer)]
    question = "Is there a bonus for referring a new employee?"
    follow = loupe.ask(question, history=history)
    alone = loupe.ask(question)
    assert follow.standalone_question == question
    assert follow.abstained and alone.abstained
    # Withheld answers still show the closest passages, as leads.
    assert follow.sources and not follow.citations
    assert "may not cover" in follow.answer
