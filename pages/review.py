"""Review (experts): the answers most in need of an expert, thumbs-down and low confidence first.
Each reads like a history: the conversation turns before it, the standalone question that was
searched, its current decision as a status, and every piece of feedback with what it decided.
The form starts from the current decision; repeated questions are grouped; verified questions
leave the queue until their passages change (stale)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

import streamlit as st

import i18n
import ui as shared
from core.records import FeedbackEntry, ReviewDecision, ReviewItem
from core.service import Decision
from core.vocab import Rating
from i18n import N_, _

DECISIONS: dict[Decision, str] = {
    "approve": N_("Approve"),
    "edit": N_("Approve with my correction"),
    "reject": N_("Reject"),
}
# The form's starting choice for each current decision.
FORM_DECISION: dict[str, Decision] = {
    "approved": "approve",
    "corrected": "edit",
    "rejected": "reject",
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
    for source in answer.sources:
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
                _("Question"): item.answer.standalone_question,
                _("Status"): status_label(item),
                _("Times asked"): 1 + len(item.repeats),
                _("Confidence"): shared.confidence_phrase(item.answer.confidence),
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


# Decision states and feedback sources as the page names them.
STATES = {
    "approved": N_("approved"),
    "corrected": N_("corrected"),
    "rejected": N_("rejected"),
    "stale": N_("stale"),
    "not reviewed": N_("not reviewed"),
}
FEEDBACK_SOURCES = {"chat": N_("chat"), "review": N_("review"), "api": N_("api")}


def state_name(state: str) -> str:
    return _(STATES[state]) if state in STATES else state


def status_label(item: ReviewItem) -> str:
    if item.stale:
        return state_name("stale")
    return state_name(item.decision.kind if item.decision else "not reviewed")


def show_status(item: ReviewItem) -> None:
    """The current decision, as a status rather than one comment among others."""
    decision = item.decision
    if decision is None:
        st.info(_("Not reviewed yet."), icon=":material/pending:")
        return
    reviewer = decision.reviewer or _("an expert")
    by = _(
        "by {reviewer} on {date}", reviewer=shared.inert(reviewer), date=shared.when(decision.at)
    )
    kind = state_name(decision.kind)
    if item.stale:
        st.warning(
            _(
                "Stale: {decision} {by}, but {why}. Review it again.",
                decision=kind,
                by=by,
                why=shared.inert(item.stale),
            ),
            icon=":material/history:",
        )
    elif decision.kind == "rejected":
        st.error(_("Rejected {by}.", by=by), icon=":material/block:")
    else:
        st.success(f"{kind.capitalize()} {by}.", icon=":material/verified:")
    if decision.reason:
        label = _("Reason: {text}") if decision.kind == "rejected" else _("Note: {text}")
        shared.show_text(label.format(text=decision.reason))
    if decision.kind == "corrected" and decision.answer:
        shared.show_text(_("Corrected answer: {answer}", answer=decision.answer))


def what_it_decided(fb: FeedbackEntry) -> str | None:
    if not fb.is_review:
        return None
    if fb.edited_answer:
        return "corrected"
    if fb.rating is not None:
        return "approved" if fb.rating == Rating.up else "rejected"
    return None


def previous_feedback(feedback: Sequence[FeedbackEntry]) -> None:
    st.markdown(_("**History**"))
    if not feedback:
        st.caption(_("No feedback yet."))
    for fb in feedback:
        decided = what_it_decided(fb)
        who = fb.user or _("anonymous")
        parts = [
            _(
                "{user} ({role}, {source}), {date}",
                user=shared.inert(who),
                role=shared.role_name(fb.role),
                source=_(FEEDBACK_SOURCES.get(fb.source, fb.source)),
                date=shared.when(fb.created_at),
            )
        ]
        if decided:
            parts.append(state_name(decided))
        elif fb.rating is not None:
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
            label = _("Reason: {comment}") if decided == "rejected" else _("Comment: {comment}")
            shared.show_text(label.format(comment=fb.comment))
        if fb.edited_answer:
            shared.show_text(_("Corrected answer: {answer}", answer=fb.edited_answer))


def conversation_before(item: ReviewItem) -> None:
    """The turns before a follow-up, and the question that was actually searched."""
    answer = item.answer
    if item.history:
        turns = len(item.history)
        label = i18n.ngettext(
            "Conversation before ({n} turn)", "Conversation before ({n} turns)", turns
        )
        with st.expander(label, expanded=True):
            for question, reply in item.history:
                shared.show_text(_("Asked: {question}", question=question))
                st.caption(shared.inert(reply))
    if answer.standalone_question.strip() != answer.question.strip():
        st.caption(
            _(
                "Asked “{question}”; searched as the standalone question above.",
                question=shared.inert(answer.question),
            )
        )
    if item.repeats:
        st.caption(
            i18n.ngettext(
                "Asked {n} time; reviewing this answer decides it.",
                "Asked {n} times; reviewing this answer decides it.",
                1 + len(item.repeats),
            )
        )


def latest_verdicts(item: ReviewItem) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    for fb in item.feedback:
        if fb.is_review:
            verdicts.update(fb.citation_verdicts)
    return verdicts


def review_form(item: ReviewItem) -> None:
    """The form, starting from the current decision: a rejected answer opens as rejected with
    its reason, a corrected one with its correction."""
    answer = item.answer
    answer_id = answer.answer_id or ""
    decision: ReviewDecision | None = item.decision
    start = FORM_DECISION[decision.kind] if decision else "approve"
    correction = decision.answer if decision and decision.kind == "corrected" else None
    reason = decision.reason if decision and decision.kind == "rejected" else None
    verdicts = latest_verdicts(item)
    with st.form(f"review_form_{answer_id}"):
        st.markdown(_("**Your review**"))
        st.radio(
            _("Decision"),
            list(DECISIONS),
            index=list(DECISIONS).index(start),
            format_func=i18n.labels(dict(DECISIONS)),
            horizontal=True,
            key=f"review_decision_{answer_id}",
        )
        st.text_area(
            _("Corrected answer (used when you approve with a correction)"),
            value=correction or answer.answer,
            key=f"review_edit_{answer_id}",
        )
        st.text_input(
            _("Reason (required to reject)"),
            value=reason or "",
            key=f"review_reason_{answer_id}",
            placeholder=_("e.g. outdated policy; the 2024 handbook says otherwise"),
        )
        st.caption(_("Judge any passage: one that holds the answer is ranked higher next time."))
        for source in answer.sources:
            st.segmented_control(
                shared.inert(
                    _("Passage [{n}] {document}", n=source.n, document=source.document)
                    + (" " + _("(cited)") if source.cited else "")
                ),
                options=list(shared.VERDICT_LABELS),
                format_func=shared.verdict_labels(),
                default=verdicts.get(str(source.n)),
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
            "{n} answer, thumbs-down and least confident first; repeated questions grouped; "
            "verified questions leave the queue unless their passages changed.",
            "{n} answers, thumbs-down and least confident first; repeated questions grouped; "
            "verified questions leave the queue unless their passages changed.",
            len(queue),
        )
    )
    item = queue_table(queue)
    answer = item.answer

    st.divider()
    st.subheader(shared.inert(answer.standalone_question))
    conversation_before(item)
    show_status(item)
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
