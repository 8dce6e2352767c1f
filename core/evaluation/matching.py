"""`python -m core eval --matching FILE`: how safely verified answers are matched to questions.

Two figures, each for the configured matcher (candidates by similarity, then the precision
guard) and for the matcher without the guard, so the guard's effect is visible in one run:

- **False offers** on a SQuAD-format file (XQuAD-en): one question per paragraph is verified
  (its first), then every other question of those paragraphs is asked. An offer is false when
  the verified question's gold answers share none with the asked question's (normalised text,
  either containing the other): a paragraph sometimes holds the same question twice, and
  serving its answer again is right.
- **Paraphrase recall**: a rewritten question must get the answer verified for its original.
  Two sets, reported apart:
  * `core/evaluation/data/sample_paraphrases.jsonl`: paraphrases of questions about the sample
    documents in samples/, written by hand (each row says how it was rephrased) before the
    guard's rules were written;
  * rule-based rewrites of every verified XQuAD question (`REWRITES`: case and punctuation,
    polite frames, contractions, dropped articles, "what year" → "when"). They change no
    content word, so they measure the guard's tolerance for form, not for synonyms.
  `core/evaluation/data/sample_near_misses.jsonl` holds different questions about the samples
  that differ in one thing (a city, a negation, what is asked, the issue's AFC/NFC pairs); any
  offer there is false.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from core.answer.types import VerifiedAnswer
from core.config import Settings
from core.evaluation.datasets import SquadQuestion, load_squad
from core.evaluation.metrics import normalize_answer
from core.learn.verified import CANDIDATE_SIMILARITY, VerifiedIndex

DATA = Path(__file__).resolve().parent / "data"
PARAPHRASES = DATA / "sample_paraphrases.jsonl"
NEAR_MISSES = DATA / "sample_near_misses.jsonl"
# The matcher before the guard: one cosine threshold.
UNGUARDED_SIMILARITY = 0.92
_EXAMPLES = 12


def _lower_no_punctuation(q: str) -> str | None:
    return re.sub(r"[?!.]+$", "", q.strip()).lower()


def _polite(q: str) -> str | None:
    return f"Could you tell me {q[0].lower()}{q[1:]}"


def _please(q: str) -> str | None:
    return re.sub(r"\s*\?*$", ", please?", q.strip())


def _like_to_know(q: str) -> str | None:
    return f"I'd like to know: {q}"


def _contracted(q: str) -> str | None:
    out = re.sub(r"\b(What|Who|Where|How|When) is\b", r"\1's", q)
    out = re.sub(r"\b(did|does|do|is|was|were|are) not\b", r"\1n't", out)
    return out if out != q else None


def _no_articles(q: str) -> str | None:
    out = re.sub(r"\s+", " ", re.sub(r"\b(the|a|an)\b", "", q, flags=re.I)).strip()
    return out if out != q else None


def _what_year_to_when(q: str) -> str | None:
    out = re.sub(
        r"^(?:In )?(?:what|which) year (did|was|were|is|does|do)\b", r"When \1", q, flags=re.I
    )
    return out if out != q else None


# name → rewrite (None where the rule does not apply to a question).
REWRITES: dict[str, Callable[[str], str | None]] = {
    "lower case, no question mark": _lower_no_punctuation,
    "'Could you tell me' prefix": _polite,
    "', please?' suffix": _please,
    "'I'd like to know:' prefix": _like_to_know,
    "contractions": _contracted,
    "articles dropped": _no_articles,
    "'what year' → 'when'": _what_year_to_when,
}


@dataclass(frozen=True)
class Matcher:
    name: str
    threshold: float
    guard: bool


MATCHERS = (
    Matcher("guarded", CANDIDATE_SIMILARITY, True),
    Matcher("cosine only", UNGUARDED_SIMILARITY, False),
)


def _jsonl(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _verified(key: str, question: str, answer: str) -> VerifiedAnswer:
    return VerifiedAnswer(key, question, answer, "eval", datetime(2000, 1, 1, tzinfo=UTC))


def _same_answer(a: Sequence[str], b: Sequence[str]) -> bool:
    na = {normalize_answer(x) for x in a} - {""}
    nb = {normalize_answer(x) for x in b} - {""}
    return any(x in y or y in x for x in na for y in nb)


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def _false_offers(
    embeddings: Embeddings, matcher: Matcher, questions: Sequence[SquadQuestion]
) -> dict[str, Any]:
    by_paragraph: dict[tuple[int, int], list[SquadQuestion]] = {}
    for q in questions:
        by_paragraph.setdefault((q.article, q.paragraph), []).append(q)
    verified = {group[0].id: group[0] for group in by_paragraph.values()}
    others = [q for group in by_paragraph.values() for q in group[1:]]
    index = VerifiedIndex(
        embeddings,
        [_verified(q.id, q.question, q.answers[0]) for q in verified.values()],
        threshold=matcher.threshold,
        guard=matcher.guard,
    )
    vectors = embeddings.embed_documents([q.question for q in others])
    offered = wrong = 0
    examples: list[dict[str, Any]] = []
    for q, vector in zip(others, vectors, strict=True):
        match = index.match(q.question, vector)
        if match is None:
            continue
        offered += 1
        if not _same_answer(verified[match.answer_id].answers, q.answers):
            wrong += 1
            if len(examples) < _EXAMPLES:
                examples.append(
                    {
                        "asked": q.question,
                        "got": match.question,
                        "similarity": round(match.similarity, 3),
                    }
                )
    return {
        "verified": len(verified),
        "asked": len(others),
        "offered": offered,
        "false_offers": wrong,
        "false_offer_rate": _share(wrong, len(others)),
        "examples": examples,
    }


def _rewrite_recall(
    embeddings: Embeddings, matcher: Matcher, questions: Sequence[SquadQuestion]
) -> dict[str, Any]:
    first: dict[tuple[int, int], SquadQuestion] = {}
    for q in questions:
        first.setdefault((q.article, q.paragraph), q)
    verified = list(first.values())
    index = VerifiedIndex(
        embeddings,
        [_verified(q.id, q.question, q.answers[0]) for q in verified],
        threshold=matcher.threshold,
        guard=matcher.guard,
    )
    asked: list[tuple[str, str, str]] = []  # rule, rewrite, verified id
    for q in verified:
        for rule, rewrite in REWRITES.items():
            text = rewrite(q.question)
            if text is not None and text != q.question:
                asked.append((rule, text, q.id))
    vectors = embeddings.embed_documents([text for _, text, _ in asked])
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    misses: list[dict[str, str]] = []
    for (rule, text, key), vector in zip(asked, vectors, strict=True):
        match = index.match(text, vector)
        totals[rule] += 1
        if match is not None and match.answer_id == key:
            hits[rule] += 1
        elif len(misses) < _EXAMPLES:
            misses.append({"rule": rule, "asked": text})
    return {
        "asked": len(asked),
        "recall": _share(sum(hits.values()), len(asked)),
        "by_rule": {rule: _share(hits[rule], totals[rule]) for rule in totals},
        "misses": misses,
    }


def _samples(embeddings: Embeddings, matcher: Matcher) -> dict[str, Any]:
    paraphrases, near = _jsonl(PARAPHRASES), _jsonl(NEAR_MISSES)
    originals = sorted({row["question"] for row in [*paraphrases, *near]})
    index = VerifiedIndex(
        embeddings,
        [_verified(str(i), q, "") for i, q in enumerate(originals)],
        threshold=matcher.threshold,
        guard=matcher.guard,
    )
    key = {q: str(i) for i, q in enumerate(originals)}
    hits, misses = 0, []
    for row in paraphrases:
        match = index.match(row["paraphrase"])
        if match is not None and match.answer_id == key[row["question"]]:
            hits += 1
        else:
            misses.append({"question": row["question"], "paraphrase": row["paraphrase"]})
    offered = []
    for row in near:
        match = index.match(row["other"])
        if match is not None and match.question != row["other"]:
            offered.append({"asked": row["other"], "got": match.question})
    return {
        "paraphrases": len(paraphrases),
        "recall": _share(hits, len(paraphrases)),
        "misses": misses,
        "near_misses": len(near),
        "near_miss_offers": len(offered),
        "near_miss_offered": offered,
    }


def run_matching(path: Path, settings: Settings) -> dict[str, Any]:
    """Measure the guarded matcher and the cosine-only one; saves and returns the record."""
    from core.embeddings import get_embeddings, model_name
    from core.evaluation.records import save_record

    started_run = time.perf_counter()
    embeddings = get_embeddings(settings)
    questions = load_squad(path).questions
    metrics: dict[str, Any] = {}
    for matcher in MATCHERS:
        started = time.perf_counter()
        metrics[matcher.name] = {
            "candidate_similarity": matcher.threshold,
            "guard": matcher.guard,
            "false_offers": _false_offers(embeddings, matcher, questions),
            "xquad_rewrites": _rewrite_recall(embeddings, matcher, questions),
            "samples": _samples(embeddings, matcher),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return save_record(
        "matching",
        settings,
        dataset={
            "path": str(path),
            "name": path.name,
            "questions": len(questions),
            "paraphrases": str(PARAPHRASES.relative_to(DATA.parents[2])),
            "near_misses": str(NEAR_MISSES.relative_to(DATA.parents[2])),
        },
        config={"embeddings": settings.embeddings, "embedding_model": model_name(embeddings)},
        metrics=metrics,
        notes=[
            "False offer: a verified answer offered for another question of its paragraph "
            "whose gold answers share none with the verified question's.",
            "Paraphrase recall: the rewrite gets the answer verified for its own original.",
            "Sample paraphrases were written by hand before the guard's rules; the rules were "
            "then adjusted on them, so that figure is in-sample. XQuAD rewrites are rule-made.",
        ],
        started=started_run,
    )


def matching_text(record: dict[str, Any]) -> str:
    """The record as a short table: one line per matcher."""
    lines = [
        f"matching {record['dataset']['name']}: {record['dataset']['questions']} questions, "
        f"embeddings {record['config']['embedding_model']}",
        "",
        f"{'matcher':<13}{'cos >=':>7}{'false offers':>16}{'XQuAD rewrites':>16}"
        f"{'sample paraphr.':>17}{'near misses':>13}",
    ]
    for name, m in record["metrics"].items():
        false, rewrites, samples = m["false_offers"], m["xquad_rewrites"], m["samples"]
        lines.append(
            f"{name:<13}{m['candidate_similarity']:>7.2f}"
            f"{false['false_offers']:>6}/{false['asked']} ({false['false_offer_rate']:.2%})"
            f"{rewrites['recall']:>16.2%}{samples['recall']:>17.2%}"
            f"{samples['near_miss_offers']:>7}/{samples['near_misses']} offered"
        )
    lines += ["", *(f"* {note}" for note in record["notes"]), f"Record: {record['path']}"]
    return "\n".join(lines)
