"""Reading BM25 and vector scores out of Weaviate's hybrid `explain_score`.

Where the strings come from:
- Weaviate's own test `usecases/traverser/hybrid/fusion_test.go` (weaviate/weaviate) asserts that
  relative score fusion explains a hit found by both searches with
  "(Result Set keyword) Document 1: original score 0.5, normalized score: 0.5" and
  "(Result Set vector) Document 1: original score 2, normalized score: 0.5".
- `FusionRelativeScore` (same package) builds each entry as
  "Hybrid (Result Set %v) Document %v: original score %v, normalized score: %v" and joins a
  hit's entries as "\\n<vector entry> - \\n<keyword entry>"; older servers
  (hybrid_fusion.go) wrote "(Result Set '%v')" after "(bm25)" / "(vector) [..]" prefixes.
- The ranked-fusion string is a server response kept verbatim in a public Go project's test
  fixture (found by code search); ranked fusion reports rank contributions, not raw scores.
"""

from __future__ import annotations

import pytest

from core.stores.weaviate import parse_explain_score

DOC = "657f6564-4fc4-464a-bc4b-3a8982bf9d7f"


def entry(result_set: str, original: str, normalized: str = "0.5") -> str:
    """One entry as FusionRelativeScore formats it."""
    return (
        f"Hybrid (Result Set {result_set}) Document {DOC}: "
        f"original score {original}, normalized score: {normalized}"
    )


def test_weaviate_fusion_test_strings_found_by_both_searches() -> None:
    keyword = "(Result Set keyword) Document 1: original score 0.5, normalized score: 0.5"
    vector = "(Result Set vector) Document 1: original score 2, normalized score: 0.5"
    explain = f"\nHybrid {vector} - \nHybrid {keyword}"
    assert parse_explain_score(explain) == (0.5, 2.0)


def test_order_of_entries_does_not_matter() -> None:
    explain = f"\n{entry('keyword', '2.3')} - \n{entry('vector', '0.8427501')}"
    assert parse_explain_score(explain) == (2.3, pytest.approx(0.8427501))


def test_keyword_only_hit() -> None:
    assert parse_explain_score("\n" + entry("keyword", "3.4575", "1")) == (3.4575, None)


def test_vector_only_hit() -> None:
    assert parse_explain_score("\n" + entry("vector", "0.61", "0")) == (None, 0.61)


def test_vector_sub_search_name() -> None:
    assert parse_explain_score(entry("vector,nearVector", "0.7")) == (None, 0.7)


def test_older_quoted_format_with_prefixes() -> None:
    explain = (
        "(vector) [0.1 0.2 0.3] \n"
        f"(Result Set 'vector') Document {DOC}: original score 0.93, normalized score: 0.25 - "
        f"(bm25)\n(Result Set 'keyword') Document {DOC}: original score 1.25, normalized score: 0.5"
    )
    assert parse_explain_score(explain) == (1.25, 0.93)


@pytest.mark.parametrize(
    ("original", "expected"),
    [("1.2e-05", 1.2e-05), ("-0.125", -0.125), ("7", 7.0), ("1e+06", 1e6)],
)
def test_go_float_formats(original: str, expected: float) -> None:
    assert parse_explain_score(entry("vector", original)) == (None, expected)


@pytest.mark.parametrize("original", ["NaN", "+Inf", "-Inf"])
def test_non_finite_scores_are_unknown(original: str) -> None:
    assert parse_explain_score(entry("vector", original)) == (None, None)


def test_ranked_fusion_has_no_raw_scores() -> None:
    explain = (
        f"(bm25)\n(Result Set keyword) Document {DOC} contributed 0.0023584905660377358 to the "
        f"score\n(Result Set vector) Document {DOC} contributed 0.012096774193548387 to the score"
    )
    assert parse_explain_score(explain) == (None, None)


@pytest.mark.parametrize("explain", [None, "", "(bm25)", "garbage: original score x"])
def test_unparseable_gives_none(explain: str | None) -> None:
    assert parse_explain_score(explain) == (None, None)
