"""Review (experts): the answers most in need of an expert, thumbs-down and low confidence first.
For each: the question, the answer beside its passages, the feedback so far; the expert
approves, edits or rejects it with a reason and judges each citation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

import streamlit as st

import i18n
import ui as shared
from core.records import FeedbackEntry, ReviewItem
from core.service import Decision
from core.vocab import Rating
from i18n import N_, _

DECISIONS: dict[Decision, str] = {
    "approve": N_("Approve"),
    "edit": N_("Approve with my correction"),
    "reject": N_("Reject"),
}
RATING_FILTER = {N_("Any rating"): None, N_("Thumbs down"): Rating.down, N_("Thumbs up"): Rating.up}
TABLE = "review_table"

actor = shared.require_role("expert")
engine = shared.engine()


def submit_review(item: ReviewItem) -> None:
    """Form callback: save the expert's decision and verdicts through core."""
    answer = item.answer
    answer_id = answer.answer_id or ""
    verdicts: dict[str | int, str] = {}
    for source in answer.citations:
        verdict = st.session_state.get(f"review_verdict_{answer_id}_{source.n}")
        if verdict:
            verdicts[source.n] = verdict
    decision = cast(Decision, st.session_state[f"review_decision_{answer_id}"])
    try:
        engine.review(
            answer_id,
            decision,
            reason=st.session_state[f"review_reason_{answer_id}"].strip() or None,
            edited_answer=st.session_state[f"review_edit_{answer_id}"],
            citation_verdicts=verdicts or None,
            actor=actor,
        )
    except (ValueError, LookupError, PermissionError) as exc:
        st.toast(
            _("Not saved: {error}", error=shared.inert(i18n.core_text(str(exc)))),
            icon=":material/error:",
        )
        return
    st.toast(
        _("Review saved: {decision}.", decision=_(DECISIONS[decision]).lower()),
        icon=":material/check_circle:",
    )


def filtered_queue() -> list[ReviewItem]:
    """The filter controls, and the queue they select."""
    documents = {doc.id: doc.name for doc in engine.documents()}
    today = datetime.now(UTC).date()
    anything = _("Any document")
    dates, rating, document, done = st.columns([2, 1, 2, 1], vertical_alignment="bottom")
    period = dates.date_input(
        _("Asked between"), value=(today - timedelta(days=30), today), key="review_dates"
    )
    rating_label = rating.selectbox(
        _("Rating"), list(RATING_FILTER), format_func=i18n.labels({}), key="review_rating"
    )
    document_id = document.selectbox(
        _("Document among its passages"),
        [None, *documents],
        format_func=lambda d: anything if d is None else documents[d],
        key="review_document",
    )
    include_reviewed = done.toggle(_("Show reviewed"), key="review_include_reviewed")
    # While a range is being picked the widget holds only its first day: filter from it on.
    days = [d for d in (period if isinstance(period, tuple) else [period]) if isinstance(d, date)]
    return engine.review_queue(
        since=_start_of(days[0]) if days else None,
        until=_start_of(days[1] + timedelta(days=1)) if len(days) == 2 else None,
        rating=RATING_FILTER[rating_label],
        document_id=document_id,
        reviewed=None if include_reviewed else False,
        actor=actor,
    )


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def queue_table(queue: list[ReviewItem]) -> ReviewItem:
    """The queue as a table with one row always selected; returns the selected item."""
    event = st.dataframe(
        [
            {
                _("Question"): item.answer.question,
                _("Confidence"): shared.confidence_label(item.answer.confidence.label)
                + " "
                + i18n.percent(item.answer.confidence.score),
                "👎": item.count(Rating.down),
                "👍": item.count(Rating.up),
                _("Reviewed"): _("yes") if item.reviewed else "",
                i18n.pgettext("date", "Asked"): shared.when(item.created_at),
            }
            for item in queue
        ],
        hide_index=True,
        key=TABLE,
        on_select="rerun",
        selection_mode="single-row-required",
        height=shared.table_height(len(queue), max_rows=8),
    )
    rows = event.selection.rows
    return queue[min(rows[0], len(queue) - 1) if rows else 0]


def previous_feedback(feedback: Sequence[FeedbackEntry]) -> None:
    st.markdown(_("**Feedback so far**"))
    if not feedback:
        st.caption(_("None yet."))
    for fb in feedback:
        who = fb.user or _("anonymous")
        parts = [
            _(
                "{user} ({role}), {date}",
                user=shared.inert(who),
                role=shared.role_name(fb.role),
                date=shared.when(fb.created_at),
            )
        ]
        if fb.rating is not None:
            parts.append("👍" if fb.rating == Rating.up else "👎")
        if fb.citation_verdicts:
            parts.append(
                ", ".join(
                    f"[{n}] {shared.verdict_label(v).lower()}"
                    for n, v in sorted(fb.citation_verdicts.items())
                )
            )
        st.caption(" · ".join(parts))
        # What people typed is shown as typed, never rendered as Markdown.
        if fb.comment:
            shared.show_text(_("Comment: {comment}", comment=fb.comment))
        if fb.edited_answer:
            shared.show_text(_("Corrected answer: {answer}", answer=fb.edited_answer))


def review_form(item: ReviewItem) -> None:
    answer = item.answer
    answer_id = answer.answer_id or ""
    latest_edit = next(
        (fb.edited_answer for fb in reversed(item.feedback) if fb.edited_answer), None
    )
    with st.form(f"review_form_{answer_id}"):
        st.markdown(_("**Your review**"))
        st.radio(
            _("Decision"),
            list(DECISIONS),
            format_func=i18n.labels(dict(DECISIONS)),
            horizontal=True,
            key=f"review_decision_{answer_id}",
        )
        st.text_area(
            _("Corrected answer (used when you approve with a correction)"),
            value=latest_edit or answer.answer,
            key=f"review_edit_{answer_id}",
        )
        st.text_input(
            _("Reason (required to reject)"),
            key=f"review_reason_{answer_id}",
            placeholder=_("e.g. outdated policy; the 2024 handbook says otherwise"),
        )
        for source in answer.citations:
            st.segmented_control(
                shared.inert(_("Source [{n}] {document}", n=source.n, document=source.document)),
                options=list(shared.VERDICT_LABELS),
                format_func=shared.verdict_labels(),
                key=f"review_verdict_{answer_id}_{source.n}",
            )
        st.form_submit_button(
            _("Save review"), type="primary", on_click=submit_review, args=(item,)
        )


def main() -> None:
    st.title(_("Review answers"))
    reviewed, remaining = engine.review_progress(actor=actor)
    total = reviewed + remaining
    st.progress(
        reviewed / total if total else 1.0,
        text=_(
            "{reviewed} reviewed · {remaining} remaining",
            reviewed=i18n.number(reviewed),
            remaining=i18n.number(remaining),
        ),
    )
    queue = filtered_queue()
    if not queue:
        st.success(_("Nothing to review with these filters."), icon=":material/task_alt:")
        return
    st.caption(
        i18n.ngettext(
            "{n} answer, thumbs-down and least confident first.",
            "{n} answers, thumbs-down and least confident first.",
            len(queue),
        )
    )
    item = queue_table(queue)
    answer = item.answer

    st.divider()
    st.subheader(shared.inert(answer.question))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(_("**Answer**"))
        shared.answer_notices(answer)
        shared.show_text(answer.answer)
        shared.confidence_badge(answer)
        st.caption(shared.generator_caption(answer))
        previous_feedback(item.feedback)
    with right:
        st.markdown(_("**Passages**"))
        if not answer.sources:
            st.caption(_("No passage was retrieved."))
        shared.sources(answer)
    review_form(item)


main()
