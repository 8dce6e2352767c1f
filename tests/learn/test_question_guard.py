"""The precision guard refuses a verified answer for a question that asks for something else,
and lets through questions that only differ in form. Pairs from issue #11 and the samples."""

from __future__ import annotations

import pytest

from core.learn.questions import analyse, refusal

DIFFERENT = [
    # The pairs: each got another question's verified answer on cosine alone.
    ("When did the last glacial end?", "When did the last glacial start?"),
    (
        "Who wrote the paper that the graph was based on?",
        "When was the paper published that the graph was based on?",
    ),
    ("Who won the AFC Championship?", "Who won the NFC Championship?"),
    ("Who is the vice-chair of the IPCC?", "Who is the chair of the IPCC?"),
    ("What is the nickname for the Delta?", "What is the name of the Delta?"),
    ("Where did the movement begin?", "When did the movement begin?"),
    ("What is the hotel limit in Singapore?", "What is the hotel limit in Oslo?"),
    ("what is the hotel limit in singapore", "What is the hotel limit in Oslo?"),
    ("Is multi-factor authentication not required?", "Is multi-factor authentication required?"),
    ("Can't I use my own USB drives?", "Can I use my own USB drives?"),
    ("How many days of leave after 5 years?", "How many days of leave after 10 years?"),
    ("How many days of leave after five years?", "How many days of leave?"),
    ("What is the hotel limit in Oslo for managers?", "What is the hotel limit in Oslo?"),
    ("Why is a doctor's certificate required?", "When is a doctor's certificate required?"),
    ("How much is the training budget per month?", "How much is the training budget per year?"),
]

SAME = [
    ("when did the last glacial start", "When did the last glacial start?"),
    ("Could you tell me what the hotel limit in Oslo is?", "What is the hotel limit in Oslo?"),
    ("What's the hotel limit for oslo?", "What is the hotel limit in Oslo?"),
    ("When did Tesla die?", "What year did Tesla die?"),
    ("Am I allowed to use my own USB drive?", "May I use my own USB drives?"),
    ("How long does parental leave last?", "How long is parental leave?"),
    ("What is the yearly training budget?", "How much is the training budget per year?"),
    ("Is multi-factor authentication mandatory?", "Is multi-factor authentication required?"),
    ("Didn't the committee meet?", "Did not the committee meet?"),
]


@pytest.mark.parametrize(("asked", "verified"), DIFFERENT)
def test_refuses_a_question_that_asks_for_something_else(asked: str, verified: str) -> None:
    assert refusal(asked, verified) is not None
    assert refusal(verified, asked) is not None  # the guard is symmetric


@pytest.mark.parametrize(("asked", "verified"), SAME)
def test_accepts_a_question_that_differs_only_in_form(asked: str, verified: str) -> None:
    assert refusal(asked, verified) is None


def test_reasons_name_the_difference() -> None:
    assert "afc" in (refusal("Who won the AFC title?", "Who won the NFC title?") or "")
    assert "person" in (refusal("Who wrote it?", "When was it written?") or "")
    assert refusal("Is it not required?", "Is it required?") == "one is negated"


def test_analysis() -> None:
    q = analyse("In what year did the Broncos beat the Panthers 24-10?")
    assert q.asks == "time" and q.entities == {"broncos", "panthers"}
    assert "year" not in q.terms and not q.negated
    assert analyse("How many teams didn't score?").negated
