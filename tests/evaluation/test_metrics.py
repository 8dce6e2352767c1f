"""Evaluation metrics on cases small enough to check by hand (the arithmetic is in comments)."""

from __future__ import annotations

import math

import pytest

from core.evaluation.metrics import (
    auroc,
    contains_answer,
    distinct_documents,
    exact_match,
    expected_calibration_error,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    token_f1,
)

# Graded judgements: c is judged not relevant, x is not judged at all.
GRADES = {"a": 2.0, "b": 1.0, "c": 0.0, "d": 3.0}


def test_ndcg_uses_linear_gain_and_the_ideal_order() -> None:
    # DCG@4 of [a, c, d, x] = 2/log2(2) + 0 + 3/log2(4) + 0 = 2 + 1.5 = 3.5
    # ideal: grades 3, 2, 1 → 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5 = 4.76186
    expected = 3.5 / (3 + 2 / math.log2(3) + 0.5)
    assert ndcg_at_k(["a", "c", "d", "x"], GRADES, 4) == pytest.approx(expected)
    assert expected == pytest.approx(0.73501, abs=1e-5)
    # @1: DCG = 2 (a), ideal = 3 (d) → 2/3
    assert ndcg_at_k(["a", "c", "d", "x"], GRADES, 1) == pytest.approx(2 / 3)
    # the ideal order itself scores 1
    assert ndcg_at_k(["d", "a", "b"], GRADES, 10) == pytest.approx(1.0)


def test_ndcg_is_zero_without_relevant_documents() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 0.0}, 10) == 0.0
    assert ndcg_at_k([], GRADES, 10) == 0.0


def test_chunk_rankings_become_document_rankings_before_scoring() -> None:
    # Chunks of documents a, a, q (the query itself), b: each document once, at its best rank.
    chunks = ["a", "a", "q", "b", "a"]
    assert distinct_documents(chunks, skip="q") == ["a", "b"]
    assert distinct_documents(chunks) == ["a", "q", "b"]
    # Scored on the raw chunk list, a's gain would count twice and nDCG would pass 1.
    assert ndcg_at_k(chunks, {"a": 1.0}, 10) > 1.0
    assert ndcg_at_k(distinct_documents(chunks, skip="q"), {"a": 1.0}, 10) == pytest.approx(1.0)


def test_recall_counts_only_relevant_documents() -> None:
    relevance = {"a": 1.0, "b": 1.0, "c": 1.0, "z": 0.0}
    ranked = ["a", "z", "b", "y"]
    assert recall_at_k(ranked, relevance, 2) == pytest.approx(1 / 3)  # a of {a, b, c}
    assert recall_at_k(ranked, relevance, 4) == pytest.approx(2 / 3)  # a, b of {a, b, c}
    assert recall_at_k(ranked, {"z": 0.0}, 4) == 0.0


def test_mrr_and_hit_look_at_the_first_relevant_document() -> None:
    relevance = {"b": 1.0, "c": 2.0}
    ranked = ["x", "y", "b", "c"]
    assert mrr_at_k(ranked, relevance, 10) == pytest.approx(1 / 3)  # b at rank 3
    assert mrr_at_k(ranked, relevance, 2) == 0.0  # nothing relevant in the top 2
    assert hit_at_k(ranked, relevance, 2) == 0.0
    assert hit_at_k(ranked, relevance, 3) == 1.0


def test_normalisation_drops_case_punctuation_articles_and_spaces() -> None:
    assert normalize_answer("  An apple, a   day!  ") == "apple day"
    # "the" is dropped only as a word, not inside "theatre"
    assert normalize_answer("The theatre") == "theatre"


def test_exact_match_is_the_best_over_gold_answers() -> None:
    assert exact_match("The Denver Broncos!", ["Denver Broncos"]) == 1.0
    assert exact_match("Broncos", ["Denver Broncos", "broncos."]) == 1.0
    assert exact_match("Carolina Panthers", ["Denver Broncos"]) == 0.0
    assert exact_match("anything", []) == 0.0


def test_token_f1_after_normalisation() -> None:
    # prediction tokens [broncos, of, denver] ("the" dropped)
    # vs "Denver Broncos": 2 shared, P = 2/3, R = 2/2 → F1 = 2·(2/3)·1 / (2/3 + 1) = 0.8
    # vs "Broncos":        1 shared, P = 1/3, R = 1/1 → F1 = 0.5; best = 0.8
    assert token_f1("the Broncos of Denver", ["Denver Broncos", "Broncos"]) == pytest.approx(0.8)
    # repeated tokens count once per gold occurrence: 1 shared, P = 1/2, R = 1 → 2/3
    assert token_f1("Paris Paris", ["Paris"]) == pytest.approx(2 / 3)
    assert token_f1("Lyon", ["Paris"]) == 0.0
    # an answer that normalises to nothing matches only an equally empty gold
    assert token_f1("the", ["a"]) == 1.0
    assert token_f1("the", ["Paris"]) == 0.0


def test_contains_answer_matches_whole_words_only() -> None:
    sentence = "The game was played at Levi's Stadium in Santa Clara, California."
    assert contains_answer(sentence, ["Santa Clara"]) == 1.0
    assert contains_answer("Santa Clarabelle", ["Santa Clara"]) == 0.0
    assert contains_answer(sentence, ["the"]) == 0.0  # normalises to nothing: no evidence


def test_auroc_counts_ties_as_half() -> None:
    # positives 0.9, 0.8; negatives 0.8, 0.3. Pairs (pos, neg):
    # (0.9, 0.8) = 1, (0.9, 0.3) = 1, (0.8, 0.8) = 0.5 (tie), (0.8, 0.3) = 1 → 3.5 / 4
    assert auroc([0.9, 0.8, 0.8, 0.3], [True, True, False, False]) == pytest.approx(0.875)
    assert auroc([0.9, 0.1], [True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [True, False, True]) == pytest.approx(0.5)


def test_auroc_is_undefined_with_one_class() -> None:
    assert auroc([0.2, 0.9], [True, True]) is None
    assert auroc([0.2, 0.9], [False, False]) is None
    assert auroc([], []) is None


def test_expected_calibration_error_worked_example() -> None:
    # bins of width 0.1: 0.95 → bin 9; 0.85, 0.82 → bin 8; 0.15, 0.12 → bin 1
    # bin 9: accuracy 1,   mean confidence 0.95  → |1 - 0.95|    = 0.05,  weight 1/5 → 0.010
    # bin 8: accuracy 1/2, mean confidence 0.835 → |0.5 - 0.835| = 0.335, weight 2/5 → 0.134
    # bin 1: accuracy 0,   mean confidence 0.135 → |0 - 0.135|   = 0.135, weight 2/5 → 0.054
    # ECE = 0.010 + 0.134 + 0.054 = 0.198
    confidences = [0.95, 0.85, 0.82, 0.15, 0.12]
    labels = [True, False, True, False, False]
    assert expected_calibration_error(confidences, labels) == pytest.approx(0.198)


def test_expected_calibration_error_edges() -> None:
    # 1.0 falls in the last bin, 0.0 in the first; both exactly right → 0
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    # always 0.7 sure, right 7 times in 10 → perfectly calibrated
    assert expected_calibration_error([0.7] * 10, [True] * 7 + [False] * 3) == pytest.approx(0.0)
    assert expected_calibration_error([], []) is None
    with pytest.raises(ValueError):
        expected_calibration_error([0.5], [True, False])


def test_a_korean_gold_answer_may_take_a_particle_but_must_start_a_word() -> None:
    # KorQuAD: "패배" is the answer in "...모두 사용한 경우 패배하게 된다"; the word-bound rule
    # for English counted it wrong.
    assert contains_answer("자신의 시간을 모두 사용한 경우 패배하게 된다.", ["패배"]) == 1.0
    assert contains_answer("겨울에는 개골산(皆骨山 바위 뼈 산)으로 불렸다.", ["개골산"]) == 1.0
    assert contains_answer("금강산이라 불리며", ["강산"]) == 0.0  # inside a word, not its start
    assert contains_answer("The ratio is 2:1 overall.", ["2:1 over"]) == 0.0  # English unchanged


def test_a_korean_answer_is_normalised_as_korquad_scores_it() -> None:
    # KorQuAD's official script turns 《》〈〉 and quotes into spaces; SQuAD's ASCII punctuation
    # left "《포브스》는" unmatched. A gold ending in Latin letters may take a particle too.
    assert contains_answer("미국의 경제 전문지 《포브스》는 보도했다.", ["포브스"]) == 1.0
    assert (
        contains_answer(
            "그는 Worldwide Associates Inc.의 회장이 되었다.", ["Worldwide Associates Inc"]
        )
        == 1.0
    )
    assert contains_answer("길이로 약 45~46cm를 가리킨다.", ["45~46cm"]) == 1.0
    assert contains_answer("길이로 약 45~46cms를 가리킨다.", ["45~46cm"]) == 0.0
    assert (
        contains_answer("He wrote ‘Forbes’ and more.", ["Forbes"]) == 0.0
    )  # English: SQuAD's rule
