"""Confidence is computed from evidence (retrieval strength and margin, question coverage, how
much of the answer its cited passages back, ...): a calibrated P(right) with the shipped
calibration, a hand-set prior without one. Passages are built the way the retriever
builds them (`hit_to_document`), so the metadata matches production."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from core.answer.calibration import find_calibration
from core.answer.confidence import HIGH, MEDIUM, answer_support, compute_confidence, label_for
from core.answer.features import DESCRIPTIONS, FEATURE_NAMES
from core.answer.retrieval import hit_to_document
from core.answer.types import Confidence
from core.config import Settings
from core.embeddings import SimilarityScale, similarity_scale
from core.stores.base import Chunk, Hit

SCALE = SimilarityScale(unrelated=0.2, related=0.7)

TOWER = "The Eiffel Tower in Paris is 330 metres tall and was completed in 1889."
BEES = "Honeybees communicate the location of flowers with a waggle dance."
RIVER = "한강은 서울을 가로지르는 강이다. 한강의 길이는 약 494킬로미터이다."
QUESTION = "How tall is the Eiffel Tower?"


def passage(
    text: str,
    *,
    score: float,
    vector: float | None,
    keyword: float | None = None,
    position: int = 0,
) -> Document:
    chunk = Chunk(
        id=f"chunk-{position}",
        document_id=f"doc-{position}",
        text=text,
        title=f"Document {position}",
        position=position,
        content_hash="hash",
        page=1,
    )
    return hit_to_document(Hit(chunk, score=score, keyword_score=keyword, vector_score=vector))


def strong_passages() -> list[Document]:
    return [
        passage(TOWER, score=1.0, vector=0.85, keyword=4.2),
        passage(BEES, score=0.05, vector=0.02, position=1),
    ]


def weak_passages() -> list[Document]:
    return [
        passage(BEES, score=0.52, vector=0.27),
        passage(RIVER, score=0.48, vector=0.25, position=1),
    ]


def test_passages_carry_the_retriever_metadata() -> None:
    meta = strong_passages()[0].metadata
    assert meta["vector_score"] == 0.85 and meta["score"] == 1.0 and meta["keyword_score"] == 4.2
    assert meta["chunk_id"] == "chunk-0" and meta["document"] == "Document 0"


def test_a_strong_supported_answer_scores_higher_than_a_weak_one() -> None:
    strong = compute_confidence(
        QUESTION, "The Eiffel Tower is 330 metres tall [1].", strong_passages(), scale=SCALE
    )
    weak = compute_confidence(
        QUESTION, "The tower is probably 300 metres tall [1].", weak_passages(), scale=SCALE
    )
    assert strong.score > weak.score
    assert strong.label == "high"
    assert weak.label == "low"
    for name in ("top_cosine", "cosine_gap", "question_coverage_passage", "support"):
        assert strong.features[name] > weak.features[name], name


def test_an_uncited_answer_scores_lower_than_a_cited_one() -> None:
    passages = strong_passages()
    cited = compute_confidence(
        QUESTION, "The Eiffel Tower is 330 metres tall [1].", passages, scale=SCALE
    )
    uncited = compute_confidence(
        QUESTION, "The Eiffel Tower is 330 metres tall.", passages, scale=SCALE
    )
    assert uncited.score < cited.score
    assert uncited.features["support"] == 0.0
    assert uncited.features["cited_passages"] == 0.0


def test_citing_the_wrong_passage_scores_lower_than_citing_the_right_one() -> None:
    passages = strong_passages()
    right = compute_confidence(QUESTION, "The tower is 330 metres tall [1].", passages, scale=SCALE)
    wrong = compute_confidence(QUESTION, "The tower is 330 metres tall [2].", passages, scale=SCALE)
    assert wrong.features["support"] < right.features["support"]
    assert wrong.score < right.score


def test_score_rises_with_retrieval_strength() -> None:
    answer = "The Eiffel Tower is 330 metres tall [1]."
    scores = [
        compute_confidence(
            QUESTION, answer, [passage(TOWER, score=1.0, vector=similarity)], scale=SCALE
        ).score
        for similarity in (0.25, 0.45, 0.65)
    ]
    assert scores == sorted(scores) and len(set(scores)) == 3


def test_an_abstained_answer_is_low_even_with_strong_retrieval() -> None:
    confidence = compute_confidence(
        QUESTION, "The documents do not say.", strong_passages(), scale=SCALE, abstained=True
    )
    assert confidence.score <= 0.3
    assert confidence.label == "low"
    assert confidence.reasons[0] == "The documents do not answer this question."
    assert confidence.features["abstained"] == 1.0


def test_flagged_passages_lower_the_score() -> None:
    args = (QUESTION, "The Eiffel Tower is 330 metres tall [1].", strong_passages())
    clean = compute_confidence(*args, scale=SCALE)
    flagged = compute_confidence(*args, scale=SCALE, flagged_passages=1)
    assert flagged.score < clean.score
    assert flagged.score == pytest.approx(clean.score * 0.7, abs=1e-3)
    assert flagged.features["flagged_passages"] == 1.0
    assert any("instruct the model" in reason for reason in flagged.reasons)
    assert not any("instruct the model" in reason for reason in clean.reasons)


def test_no_passages_gives_zero() -> None:
    confidence = compute_confidence(QUESTION, "Anything [1].", [], scale=SCALE)
    assert confidence.score == 0.0
    assert confidence.label == "low"
    assert confidence.reasons


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (1.0, "high"),
        (HIGH, "high"),
        (HIGH - 0.0001, "medium"),
        (MEDIUM, "medium"),
        (MEDIUM - 0.0001, "low"),
        (0.0, "low"),
    ],
)
def test_label_thresholds(score: float, label: str) -> None:
    assert label_for(score) == label


@pytest.mark.parametrize(
    ("answer", "passages"),
    [
        ("The Eiffel Tower is 330 metres tall [1].", strong_passages()),
        ("The tower is probably 300 metres tall [1].", weak_passages()),
        ("The Eiffel Tower is 330 metres tall.", strong_passages()),
        ("Bees dance [1]. The tower is tall.", [passage(BEES, score=1.0, vector=0.5)]),
    ],
)
def test_computed_label_matches_the_score(answer: str, passages: list[Document]) -> None:
    confidence = compute_confidence(QUESTION, answer, passages, scale=SCALE)
    assert 0.0 <= confidence.score <= 1.0
    assert confidence.label == label_for(confidence.score)


def test_uncalibrated_reasons_say_the_score_is_no_probability() -> None:
    confidence = compute_confidence(
        QUESTION, "The Eiffel Tower is 330 metres tall [1].", strong_passages(), scale=SCALE
    )
    assert confidence.calibration is None
    assert confidence.reasons[0].startswith("Uncalibrated")
    assert "0.85" in confidence.reasons[1]


def test_features_are_recorded() -> None:
    answer = "The Eiffel Tower is 330 metres tall [1]. Bees dance [2]. It is old."
    features = compute_confidence(QUESTION, answer, strong_passages(), scale=SCALE).features
    assert set(FEATURE_NAMES) <= set(features)
    assert features["top_cosine"] == 0.85
    assert features["cosine_gap"] == pytest.approx(0.83)
    assert features["rank_agreement"] == 1.0  # keyword and vector agree on passage 1
    assert features["cited_passages"] == 2.0 and features["first_cited_rank"] == 1.0
    assert features["question_coverage_cited"] == 1.0  # "eiffel", "tower", "tall"
    assert features["number_missing"] == 0.0  # "how tall" got "330"
    assert 0.0 < features["support"] < 1.0
    assert features["flagged_passages"] == 0.0 and features["abstained"] == 0.0


def test_a_question_for_a_number_answered_without_one_is_marked() -> None:
    features = compute_confidence(
        QUESTION, "The tower stands in Paris [1].", strong_passages(), scale=SCALE
    ).features
    assert features["number_missing"] == 1.0


# With the shipped calibration -------------------------------------------------------------

SHIPPED = find_calibration(None, "all-MiniLM-L6-v2 (onnx int8)")


# The shipped fit is for extractive answers, which always carry how well their sentence
# matched the question and how clearly it beat the next one.
CLEAR_SENTENCE = {"sentence_score": 0.8, "sentence_margin": 0.3}
POOR_SENTENCE = {"sentence_score": 0.2, "sentence_margin": 0.02}


def calibrated(
    answer: str, passages: list[Document], sentence: dict[str, float], **kwargs: object
) -> Confidence:
    assert SHIPPED is not None
    return compute_confidence(
        QUESTION,
        answer,
        passages,
        scale=SCALE,
        calibration=SHIPPED,
        threshold=0.5,
        generator="extractive",
        extractive=sentence,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_bundled_model_has_a_shipped_calibration() -> None:
    assert SHIPPED is not None
    assert SHIPPED.embedding_model.startswith("all-MiniLM-L6-v2")
    assert SHIPPED.cv["auroc"] >= 0.9 and SHIPPED.cv["ece"] <= 0.05


def test_calibrated_confidence_is_a_probability_with_its_version_and_threshold() -> None:
    strong = calibrated(
        "The Eiffel Tower is 330 metres tall [1].", strong_passages(), CLEAR_SENTENCE
    )
    weak = calibrated("Bees dance with a waggle [1].", weak_passages(), POOR_SENTENCE)
    assert 0.0 <= weak.score < strong.score <= 1.0
    assert strong.calibration == SHIPPED.version if SHIPPED else False
    assert strong.threshold == 0.5
    assert strong.phrase == f"likely right ({strong.score:.0%})"


def test_calibrated_reasons_are_ranked_by_their_contribution() -> None:
    assert SHIPPED is not None
    confidence = calibrated(
        "The Eiffel Tower is 330 metres tall [1].", strong_passages(), CLEAR_SENTENCE
    )
    pushes = SHIPPED.contributions(confidence.features)
    shown = [name for name, push in pushes if abs(push) >= 0.05][: len(confidence.reasons)]
    assert confidence.reasons
    for reason, name in zip(confidence.reasons, shown, strict=True):
        assert reason.startswith(DESCRIPTIONS[name].capitalize())
    assert [abs(p) for _, p in pushes] == sorted((abs(p) for _, p in pushes), reverse=True)


def test_an_abstention_has_no_chance_of_being_right() -> None:
    confidence = calibrated(
        "The documents do not say.", strong_passages(), POOR_SENTENCE, abstained=True
    )
    assert confidence.score == 0.0
    assert confidence.reasons[0] == "The documents do not answer this question."


def test_an_explicit_minimum_similarity_becomes_the_threshold() -> None:
    default = similarity_scale(Settings(embeddings="minilm"))
    explicit = similarity_scale(Settings(embeddings="minilm", min_vector_similarity=0.4))
    assert explicit.threshold == pytest.approx(0.4)
    assert explicit.related - explicit.unrelated == pytest.approx(
        default.related - default.unrelated
    )


def test_answer_support_measures_terms_found_in_the_cited_passage() -> None:
    passages = strong_passages()
    assert answer_support("The Eiffel Tower is 330 metres tall [1].", passages) == (1.0, 0, 1)
    half, uncited, sentences = answer_support("Paris dances beautifully [1].", passages)
    assert (uncited, sentences) == (0, 1)
    assert half == pytest.approx(1 / 3)


def test_answer_support_ignores_markers_that_point_nowhere() -> None:
    assert answer_support("The Eiffel Tower is 330 metres tall [9].", strong_passages()) == (
        0.0,
        1,
        1,
    )


def test_answer_support_checks_korean_by_bigrams() -> None:
    passages = [passage(RIVER, score=1.0, vector=0.6)]
    support, uncited, _ = answer_support("한강의 길이는 약 494킬로미터이다 [1].", passages)
    assert uncited == 0
    assert support == 1.0


def test_a_marker_after_the_full_stop_still_cites_the_sentence() -> None:
    support, uncited, sentences = answer_support(
        "The Eiffel Tower is 330 metres tall. [1]", strong_passages()
    )
    assert (support, uncited, sentences) == (1.0, 0, 1)


def test_question_words_count_in_any_form_in_the_stemmed_coverage() -> None:
    from core.answer.features import compute_features

    passage = Document(
        page_content="The establishment of the committee followed in July 1961.",
        metadata={"vector_score": 0.6, "keyword_score": 3.0},
    )
    features = compute_features(
        "When was the committee established?",
        "The establishment of the committee followed in July 1961. [1]",
        [passage],
        generator="extractive",
    )
    assert features["question_coverage_stemmed"] == 1.0
    assert features["question_coverage_cited"] < 1.0  # "established" != "establishment"
