"""Citation markers: every visible `[n]` must open a real passage; the rest of the text is kept."""

from __future__ import annotations

import pytest

from core.answer.citations import citations_in, parse_citations, strip_markers


def test_valid_markers_are_kept_and_listed() -> None:
    parsed = parse_citations("Paris is the capital [1]. It lies on the Seine [2].", 2)
    assert parsed.text == "Paris is the capital [1]. It lies on the Seine [2]."
    assert parsed.cited == [1, 2]
    assert parsed.dropped == []


def test_out_of_range_markers_are_dropped_from_text_and_reported() -> None:
    parsed = parse_citations("Paris is the capital [1]. Berlin is larger [4]. Rome [0] too.", 3)
    assert parsed.text == "Paris is the capital [1]. Berlin is larger. Rome too."
    assert "[4]" not in parsed.text and "[0]" not in parsed.text
    assert parsed.cited == [1]
    assert sorted(parsed.dropped) == [0, 4]


def test_no_passages_means_every_marker_is_dropped() -> None:
    parsed = parse_citations("A claim [1].", 0)
    assert parsed.text == "A claim."
    assert parsed.cited == []
    assert parsed.dropped == [1]


@pytest.mark.parametrize(
    ("text", "expected_text", "cited", "dropped"),
    [
        ("Both agree [1, 2].", "Both agree [1][2].", [1, 2], []),
        ("Both agree [1,2].", "Both agree [1][2].", [1, 2], []),
        ("Both agree [1; 2].", "Both agree [1][2].", [1, 2], []),
        ("Only one is real [1,3].", "Only one is real [1].", [1], [3]),
        ("Neither is real [5, 7].", "Neither is real.", [], [5, 7]),
        ("Adjacent markers [2][1].", "Adjacent markers [2][1].", [2, 1], []),
    ],
)
def test_grouped_markers(
    text: str, expected_text: str, cited: list[int], dropped: list[int]
) -> None:
    parsed = parse_citations(text, 2)
    assert parsed.text == expected_text
    assert parsed.cited == cited
    assert parsed.dropped == dropped


def test_cited_is_in_order_of_first_use_without_duplicates() -> None:
    parsed = parse_citations("First [3]. Then [1]. Again [3]. Both [1, 3]. Twice [2, 2].", 3)
    assert parsed.cited == [3, 1, 2]
    # A repeated number inside one group is shown once.
    assert parsed.text.endswith("Twice [2].")
    # Repeated use across sentences is kept: each sentence shows its own source.
    assert parsed.text.count("[3]") == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It is tall [9].", "It is tall."),
        ("It is tall [9], and old.", "It is tall, and old."),
        ("It is tall[9]; very.", "It is tall; very."),
        ("Is it tall [9]?", "Is it tall?"),
        ("It is tall [9] [1].", "It is tall [1]."),
        ("[9] It is tall.", "It is tall."),
        ("It is tall [9] and old [1].", "It is tall and old [1]."),
    ],
)
def test_dropping_a_marker_leaves_no_dangling_space(text: str, expected: str) -> None:
    assert parse_citations(text, 1).text == expected


def test_text_without_markers_is_unchanged() -> None:
    text = "Nothing is cited here, and nothing should change."
    parsed = parse_citations(text, 3)
    assert parsed.text == text
    assert parsed.cited == [] and parsed.dropped == []


def test_korean_text_keeps_its_markers() -> None:
    parsed = parse_citations("한강은 서울을 지난다 [1]. 길이는 약 494킬로미터이다 [7].", 1)
    assert parsed.text == "한강은 서울을 지난다 [1]. 길이는 약 494킬로미터이다."
    assert parsed.cited == [1]
    assert parsed.dropped == [7]


def test_spaces_before_punctuation_unrelated_to_markers_are_kept() -> None:
    text = "Edit your .env file [1]. It runs on .NET [1]."
    assert parse_citations(text, 1).text == text


def test_a_marker_starting_a_line_keeps_the_line_break() -> None:
    text = "The tower is 330 metres tall.\n[1] It was completed in 1889."
    assert parse_citations(text, 1).text == text


def test_citations_in_one_sentence() -> None:
    assert citations_in("Both agree [1, 2][4].") == [1, 2, 4]
    assert citations_in("Semicolons too [3; 1].") == [3, 1]
    assert citations_in("No markers here.") == []
    assert citations_in("Brackets with words [see above] are not markers.") == []


def test_strip_markers_removes_every_marker_and_its_space() -> None:
    assert strip_markers("Tall [1]. Old [2, 3][4].") == "Tall. Old."
    assert strip_markers("[1] Starts with one.") == "Starts with one."
    assert strip_markers("Plain text.") == "Plain text."
