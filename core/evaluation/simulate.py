"""`eval --squad FILE --simulate-verdicts` and `eval --beir DIR --simulate-verdicts`: what
expert verdicts on passages do to retrieval, measured.

Every question is asked once. On the *taught* half (every other question) a simulated expert
judges the passages as an expert reviewing that answer would: the gold passage supports it,
every other passage the answer cited (SQuAD), or that ranked above the gold one (BEIR, which
has no answers), does not. Then every question is asked again. Reported per half: hit@1
before and after; for the taught half also the misses fixed, the hits broken, and how many of
the taught questions whose gold passage was retrieved but not first now have it first. The
untouched half shows what the boosts do to questions nobody judged.

SQuAD runs through the product (answers saved, verdicts given with `Loupe.feedback`, boosts
read back from SQL); BEIR runs on the retriever with the same boost arithmetic
(core/learn/boosts.py), since its documents are not answers anyone reviews.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.auth import Actor
from core.config import Settings
from core.learn.boosts import Boosts, PassageVerdict
from core.vocab import Role, Verdict

if TYPE_CHECKING:
    from core.answer.types import Source
    from core.stores.base import Hit

Progress = Callable[[str, int, int], None]
EXPERT = Actor("simulated-expert", Role.expert)


@dataclass(frozen=True)
class Outcome:
    """One question's first place before and after, and whether its gold was retrieved."""

    question_id: str
    taught: bool
    before: bool
    after: bool
    gold_retrieved_before: bool
    # The first passage after is not gold but a word-for-word copy of a gold document: ArguAna
    # repeats whole debates under two ids, queries and counter-arguments alike.
    after_is_copy: bool = False


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The figures of both halves, from each question's outcome."""
    taught = [o for o in outcomes if o.taught]
    untouched = [o for o in outcomes if not o.taught]
    second_or_lower = [o for o in taught if o.gold_retrieved_before and not o.before]

    def half(rows: Sequence[Outcome]) -> dict[str, Any]:
        before = _share(sum(o.before for o in rows), len(rows))
        after = _share(sum(o.after for o in rows), len(rows))
        return {
            "questions": len(rows),
            "hit@1_before": before,
            "hit@1_after": after,
            "delta_points": None
            if before is None or after is None
            else round(100 * (after - before), 2),
            "misses_fixed": sum(1 for o in rows if o.after and not o.before),
            "hits_broken": sum(1 for o in rows if o.before and not o.after),
            "hits_broken_to_a_copy": sum(
                1 for o in rows if o.before and not o.after and o.after_is_copy
            ),
            # Which ones, so a broken hit can be looked up in the dataset.
            "broken_ids": [o.question_id for o in rows if o.before and not o.after],
        }

    return {
        "taught": {
            **half(taught),
            "gold_retrieved_not_first": len(second_or_lower),
            "of_those_now_first": sum(o.after for o in second_or_lower),
            "share_fixed": _share(sum(o.after for o in second_or_lower), len(second_or_lower)),
        },
        "untouched": half(untouched),
    }


def _first_is_gold(sources: Sequence[Source], gold: Callable[[Source], bool]) -> bool:
    return bool(sources) and gold(sources[0])


def simulate_squad(
    path: Path,
    settings: Settings,
    *,
    limit_questions: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The SQuAD simulation through `Loupe`; returns the record's metrics."""
    from core.evaluation.datasets import load_squad
    from core.evaluation.feedback import _replay
    from core.evaluation.records import isolated_settings
    from core.evaluation.squad import _from_paragraph, squad_markdown
    from core.ingest.pipeline import IngestItem
    from core.service import Loupe

    dataset = load_squad(path)
    questions = dataset.questions[:limit_questions] if limit_questions else dataset.questions
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="loupe-verdicts-") as tmp:
        loupe = Loupe(isolated_settings(settings, Path(tmp), None))
        try:
            documents = squad_markdown(dataset)
            loupe.ingest([IngestItem(name, text.encode()) for name, text in documents])
            first = []
            for i, q in enumerate(questions):
                gold = _from_paragraph(q.article, q.paragraph)
                result = loupe.ask(q.question)
                first.append((result, gold))
                if progress:
                    progress("ask", i + 1, len(questions))
            for i, (result, gold) in enumerate(first):
                if i % 2:
                    continue
                verdicts: dict[str | int, str] = {
                    str(s.n): Verdict.supports if gold(s) else Verdict.does_not_support
                    for s in result.sources
                    if gold(s) or s.cited
                }
                if verdicts and result.answer_id:
                    loupe.feedback(
                        result.answer_id,
                        citation_verdicts=verdicts,
                        role="expert",
                        source="review",
                        actor=EXPERT,
                    )
            for i, (q, (result, gold)) in enumerate(zip(questions, first, strict=True)):
                again = _replay(loupe, q.question)
                outcomes.append(
                    Outcome(
                        question_id=q.id,
                        taught=i % 2 == 0,
                        before=_first_is_gold(result.sources, gold),
                        after=_first_is_gold(again.sources, gold),
                        gold_retrieved_before=any(gold(s) for s in result.sources),
                    )
                )
                if progress:
                    progress("ask again", i + 1, len(questions))
        finally:
            loupe.close()
    return {"questions": len(questions), "k": settings.retrieval_k, **summarise(outcomes)}


def simulate_beir(
    folder: Path,
    settings: Settings,
    *,
    limit_queries: int | None = None,
    limit_corpus: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The BEIR simulation on the retriever: one chunk per document, the configured alpha and
    k; verdicts on the top-k as an expert would give them; returns the record's metrics."""
    from core.answer.retrieval import StoreRetriever
    from core.embeddings import dimension, get_embeddings
    from core.evaluation.beir import index_corpus
    from core.evaluation.datasets import limit_beir, load_beir
    from core.stores.lancedb import LanceDBStore

    dataset = limit_beir(load_beir(folder), queries=limit_queries, corpus=limit_corpus)
    embeddings = get_embeddings(settings)
    now = datetime.now(UTC)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="loupe-verdicts-beir-") as tmp:
        store = LanceDBStore(Path(tmp), dimension=dimension(embeddings), table="beir")
        try:
            index_corpus(store, embeddings, dataset.corpus, settings.embed_batch_size, progress)
            # One more than k: an ArguAna query is a corpus document itself, and finding
            # itself is neither a hit nor something an expert would judge (BEIR's
            # ignore_identical_ids, as `eval --beir` does).
            retriever = StoreRetriever(
                store=store,
                embeddings=embeddings,
                k=settings.retrieval_k + 1,
                alpha=settings.hybrid_alpha,
            )

            def search(query_id: str, text: str) -> list[Hit]:
                hits = [h for h in retriever.search(text) if h.chunk.document_id != query_id]
                return hits[: settings.retrieval_k]

            items = list(dataset.queries.items())
            first: list[tuple[list[str], set[str]]] = []
            verdicts: list[PassageVerdict] = []
            for i, (query_id, text) in enumerate(items):
                gold = {d for d, grade in dataset.qrels[query_id].items() if grade > 0}
                hits = search(query_id, text)
                ranked = [hit.chunk.document_id for hit in hits]
                first.append((ranked, gold))
                if i % 2 == 0:
                    question = embeddings.embed_query(text)
                    gold_rank = next((r for r, d in enumerate(ranked) if d in gold), 1)
                    for rank, hit in enumerate(hits):
                        if hit.chunk.document_id in gold:
                            verdicts.append(
                                PassageVerdict(hit.chunk.id, Verdict.supports, now, question)
                            )
                        elif rank < gold_rank:
                            verdicts.append(
                                PassageVerdict(
                                    hit.chunk.id, Verdict.does_not_support, now, question
                                )
                            )
                if progress:
                    progress("search", i + 1, len(items))
            retriever.boosts = Boosts(verdicts, now)

            def same_text(doc: str) -> str:
                return " ".join(dataset.corpus[doc].text.split()).lower()

            for i, ((query_id, text), (ranked, gold)) in enumerate(zip(items, first, strict=True)):
                again = [hit.chunk.document_id for hit in search(query_id, text)]
                gold_texts = {same_text(d) for d in gold if d in dataset.corpus}
                outcomes.append(
                    Outcome(
                        question_id=query_id,
                        taught=i % 2 == 0,
                        before=bool(ranked) and ranked[0] in gold,
                        after=bool(again) and again[0] in gold,
                        gold_retrieved_before=any(d in gold for d in ranked),
                        after_is_copy=bool(again) and same_text(again[0]) in gold_texts,
                    )
                )
        finally:
            store.close()
    return {
        "queries": len(dataset.queries),
        "documents": len(dataset.corpus),
        "k": settings.retrieval_k,
        **summarise(outcomes),
    }


def run_simulated_verdicts(
    kind: str, path: Path, settings: Settings, **options: Any
) -> dict[str, Any]:
    """Run one simulation and save its record (kind: squad or beir)."""
    from core.evaluation.records import save_record

    started = time.perf_counter()
    metrics = (
        simulate_squad(path, settings, **options)
        if kind == "squad"
        else simulate_beir(path, settings, **options)
    )
    return save_record(
        f"verdicts-{kind}",
        settings,
        dataset={"path": str(path), "name": path.name},
        config={
            "hybrid_alpha": settings.hybrid_alpha,
            "retrieval_k": settings.retrieval_k,
            "embeddings": settings.embeddings,
        },
        metrics=metrics,
        notes=[
            "Taught half: every other question, whose passages a simulated expert judged "
            "(gold supports; other cited passages, or for BEIR those ranked above the gold, "
            "do not). Untouched half: nobody judged them.",
            "hit@1: the first passage is gold. share_fixed: of the taught questions whose gold "
            "passage was retrieved but not first, how many now have it first.",
            "hits_broken_to_a_copy: broken hits whose new first passage is a word-for-word copy "
            "of a gold document under another id (ArguAna repeats whole debates).",
        ],
        started=started,
    )
