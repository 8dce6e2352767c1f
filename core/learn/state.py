"""What feedback has taught, shared by every process on one database.

Boosts and verified answers are derived from the SQL feedback log, never kept only in the
memory of the process that received the feedback: two app replicas, or the app and the CLI,
must agree. Before each question `refresh()` asks SQL for the log's marker (row count and
newest id, one indexed aggregate); when it moved, only the rows after the last one applied are
read and folded in. If the count says rows were missed (committed late with a lower id) or
removed (deleted with their answer), the log is read again from the start.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from langchain_core.embeddings import Embeddings
from sqlalchemy.orm import Session

from core.answer.types import VerifiedAnswer
from core.db import learning
from core.db.learning import AnswerRecord, FeedbackEvent, FeedbackMarker
from core.db.session import Database
from core.learn.boosts import Boosts, PassageVerdict
from core.learn.review import current_decision
from core.learn.verified import CANDIDATE_SIMILARITY, VerifiedIndex
from core.vocab import Verdict

# Boosts decay by the day; recomputing them this often keeps them current without work per
# question when no feedback arrives.
_BOOST_RECOMPUTE_SECONDS = 3600.0


class LearnedState:
    """Verified answers and retrieval boosts of one workspace, kept in step with SQL."""

    def __init__(
        self,
        db: Database,
        workspace: str,
        embeddings: Embeddings,
        *,
        match_threshold: float = CANDIDATE_SIMILARITY,
    ) -> None:
        self.db = db
        self.workspace = workspace
        self.embeddings = embeddings
        self.index = VerifiedIndex(embeddings, threshold=match_threshold)
        self._lock = threading.Lock()
        self._marker = FeedbackMarker(0, 0)
        self._verdicts: dict[tuple[str, str, str], PassageVerdict] = {}
        # Answer id → embedding of its standalone question, embedded once for its verdicts.
        self._question_vectors: dict[str, list[float]] = {}
        self._verified: dict[str, VerifiedAnswer] = {}
        self._answers: dict[str, AnswerRecord] = {}
        self._boosts = Boosts((), datetime.now(UTC))
        self._boosts_at: datetime | None = None
        self.full_reads = 0  # how often the whole log was read (tests check it stays rare)
        self.rows_read = 0

    @property
    def boosts(self) -> Boosts:
        return self._boosts

    def answer(self, answer_id: str) -> AnswerRecord | None:
        """The answer row a verified answer came from (question, passages, model)."""
        return self._answers.get(answer_id)

    def refresh(self, now: datetime | None = None) -> bool:
        """Catch up with the feedback log; True when anything changed."""
        now = now or datetime.now(UTC)
        with self._lock:
            with self.db.session() as s:
                marker = learning.feedback_marker(s, self.workspace)
                changed = marker != self._marker
                if changed:
                    rows = learning.feedback_after(
                        s, self.workspace, self._marker.last_id, up_to=marker.last_id
                    )
                    if self._marker.count + len(rows) != marker.count:
                        self._reset()
                        rows = learning.feedback_after(s, self.workspace, 0, up_to=marker.last_id)
                        self.full_reads += 1
                    self.rows_read += len(rows)
                    self._apply(s, rows)
                    # The count of rows applied, which may differ from the marker's if a row
                    # committed meanwhile; the next check then reads again.
                    self._marker = FeedbackMarker(
                        self._marker.count + len(rows),
                        max([self._marker.last_id, *(r.id for r in rows)]),
                    )
            stale_boosts = (
                self._boosts_at is None
                or (now - self._boosts_at).total_seconds() > _BOOST_RECOMPUTE_SECONDS
            )
            if changed or stale_boosts:
                self._boosts = Boosts(self._verdicts.values(), now)
                self._boosts_at = now
            return changed

    def _reset(self) -> None:
        self._marker = FeedbackMarker(0, 0)
        self._verdicts.clear()
        self._question_vectors.clear()
        for answer_id in list(self._verified):
            self.index.remove(answer_id)
        self._verified.clear()
        self._answers.clear()

    def _apply(self, s: Session, rows: list[FeedbackEvent]) -> None:
        missing = sorted({r.answer_id for r in rows} - self._answers.keys())
        self._answers.update(learning.answer_records(s, missing))
        self._embed_questions(rows)
        touched: set[str] = set()
        for row in rows:
            answer = self._answers.get(row.answer_id)
            if answer is None:  # deleted meanwhile
                continue
            chunks = {str(src.get("n")): src.get("chunk_id") for src in answer.sources}
            who = row.user or f"#{row.id}"  # anonymous verdicts each count once
            for n, verdict in row.verdicts.items():
                chunk = chunks.get(n)
                if chunk and verdict in Verdict.__members__.values():
                    self._verdicts[(row.answer_id, n, who)] = PassageVerdict(
                        chunk,
                        Verdict(verdict),
                        row.created_at,
                        self._question_vectors[row.answer_id],
                    )
            decision = current_decision(answer.answer, [row])
            if decision is not None:
                touched.add(row.answer_id)
                if decision.answer is None:  # rejected: the verification is withdrawn
                    self._verified.pop(answer.id, None)
                else:
                    self._verified[answer.id] = VerifiedAnswer(
                        answer.id,
                        answer.standalone_question,
                        decision.answer,
                        decision.reviewer,
                        decision.at,
                    )
        fresh = [self._verified[a] for a in touched if a in self._verified]
        for answer_id in touched - self._verified.keys():
            self.index.remove(answer_id)
        self.index.put_many(fresh)

    def _embed_questions(self, rows: list[FeedbackEvent]) -> None:
        """Embed, once per answer, the standalone question of answers that got verdicts."""
        fresh = sorted(
            {
                r.answer_id
                for r in rows
                if r.verdicts
                and r.answer_id in self._answers
                and r.answer_id not in self._question_vectors
            }
        )
        if not fresh:
            return
        # embed_query, as the retriever embeds the question it compares with (some models
        # embed queries and documents differently).
        for answer_id in fresh:
            question = self._answers[answer_id].standalone_question
            self._question_vectors[answer_id] = self.embeddings.embed_query(question)
