"""Insights (admins): how much Loupe is used, how well it answers, what it costs, which documents
it leans on (and which mislead), what the documents don't cover, and the feedback as CSV or
JSON Lines to take elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt
import streamlit as st

import i18n
import ui as shared
from core.records import Report, to_jsonl
from i18n import N_, _

PERIODS = {N_("7 days"): 7, N_("30 days"): 30, N_("90 days"): 90, N_("All time"): None}
LABELS = ("low", "medium", "high")
LABEL_RANGE = ["#d9534f", "#f0ad4e", "#5cb85c"]
# Counts are whole numbers: no 0.5-question ticks.
_COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")
DATASETS = {
    "finetune": N_("Fine-tuning examples (chat JSONL) from verified answers"),
    "preferences": N_("Preference pairs: expert edit chosen, original rejected"),
    "eval": N_("Evaluation set for `python -m core eval`"),
}
# The pipeline stages timed in core.insights.STAGE_ORDER, as the latency chart names them.
STAGES = {
    "condense": N_("condense"),
    "retrieve": N_("retrieve"),
    "first_token": N_("first token"),
    "generate": N_("generate"),
    "total": N_("total"),
}

actor = shared.require_role("admin")
engine = shared.engine()


def chart(title: str, rows: list[dict[str, Any]], build: Any, empty: str) -> None:
    """A titled Altair chart, or a line saying there is nothing to draw yet."""
    st.markdown(f"**{title}**")
    if not rows:
        st.caption(empty)
        return
    st.altair_chart(build(alt.Chart(alt.Data(values=rows))), width="stretch")


def day_axis() -> alt.Axis:
    """Days on a time axis as the language writes them (Vega would name English months)."""
    return alt.Axis(format=_("%b %d"), labelAngle=0)


def headline(report: Report) -> None:
    questions, rate, confidence, rated = st.columns(4)
    questions.metric(_("Questions"), report.questions)
    rate.metric(
        _("Thumbs-up rate"),
        "–" if report.thumbs_up_rate is None else i18n.percent(report.thumbs_up_rate),
        help=_("Of the rated answers, the share whose newest rating is a thumbs-up."),
    )
    confidence.metric(
        _("Mean confidence"),
        "–" if report.mean_confidence is None else i18n.percent(report.mean_confidence),
    )
    rated.metric(_("Rated answers"), report.rated)


def usage_and_quality(report: Report) -> None:
    left, right = st.columns(2)
    with left:
        chart(
            _("Questions per day"),
            report.questions_per_day,
            lambda c: c.mark_bar().encode(
                x=alt.X("day:T", title=None, axis=day_axis()),
                y=alt.Y("questions:Q", title=_("questions"), axis=_COUNT_AXIS),
                tooltip=[
                    alt.Tooltip("day:T", title=_("day"), format=_("%b %d")),
                    alt.Tooltip("questions:Q", title=_("questions")),
                ],
            ),
            _("No questions in this period."),
        )
        chart(
            _("Confidence of answers"),
            [{**row, "label": shared.confidence_label(row["label"])} for row in report.confidence],
            lambda c: c.mark_bar().encode(
                x=alt.X("bucket:O", title=_("confidence (bucket start)")),
                y=alt.Y("answers:Q", title=_("answers"), axis=_COUNT_AXIS),
                color=alt.Color(
                    "label:N",
                    scale=alt.Scale(
                        domain=[shared.confidence_label(label) for label in LABELS],
                        range=LABEL_RANGE,
                    ),
                    title=_("shown as"),
                ),
                tooltip=[
                    alt.Tooltip("bucket:O", title=_("confidence (bucket start)")),
                    alt.Tooltip("answers:Q", title=_("answers")),
                    alt.Tooltip("label:N", title=_("shown as")),
                ],
            ),
            _("No answers in this period."),
        )
    with right:
        chart(
            _("Thumbs-up rate per day"),
            report.ratings_per_day,
            lambda c: c.mark_line(point=True).encode(
                x=alt.X("day:T", title=None, axis=day_axis()),
                y=alt.Y(
                    "rate:Q",
                    title=_("thumbs up"),
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                tooltip=[
                    alt.Tooltip("day:T", title=_("day"), format=_("%b %d")),
                    alt.Tooltip("rated:Q", title=_("rated")),
                    alt.Tooltip("up:Q", title=_("thumbs up")),
                    alt.Tooltip("rate:Q", title=_("rate"), format=".0%"),
                ],
            ),
            _("No rated answers in this period."),
        )
        chart(
            _("Latency per stage (seconds)"),
            [{**row, "stage": _(STAGES.get(row["stage"], row["stage"]))} for row in report.latency],
            lambda c: (
                c.transform_fold(["p50", "p95"], as_=["percentile", "seconds"])
                .mark_bar()
                .encode(
                    x=alt.X("stage:N", sort=None, title=None),
                    xOffset="percentile:N",
                    y=alt.Y("seconds:Q", title=_("seconds")),
                    color=alt.Color("percentile:N", title=_("percentile")),
                    tooltip=[
                        alt.Tooltip("stage:N", title=_("stage")),
                        alt.Tooltip("percentile:N", title=_("percentile")),
                        alt.Tooltip("seconds:Q", title=_("seconds"), format=".2f"),
                    ],
                )
            ),
            _("No timings in this period."),
        )
        reliability(report)


def reliability(report: Report) -> None:
    """Stated confidence against how often experts judged the answers right: points on the
    diagonal mean the percentages can be taken at their word."""
    diagonal = alt.Chart(alt.Data(values=[{"x": 0, "y": 0}, {"x": 1, "y": 1}])).mark_line(
        strokeDash=[4, 4], color="gray"
    )
    chart(
        _("Confidence against expert verdicts"),
        report.reliability,
        lambda c: (
            diagonal.encode(x="x:Q", y="y:Q")
            + c.mark_circle().encode(
                x=alt.X(
                    "mean_confidence:Q",
                    title=_("stated confidence"),
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                y=alt.Y(
                    "right:Q",
                    title=_("judged right by experts"),
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                size=alt.Size("judged:Q", title="answers judged"),
                tooltip=[
                    alt.Tooltip("bucket:Q", title=_("bucket")),
                    "judged:Q",
                    alt.Tooltip("mean_confidence:Q", format=".0%"),
                    alt.Tooltip("right:Q", format=".0%"),
                ],
            )
        ),
        _(
            "No answer has an expert verdict in this period (approve, reject or correct one "
            "in Review)."
        ),
    )


def cost(report: Report) -> None:
    st.markdown(_("**Tokens and estimated cost per model**"))
    if not report.models:
        st.caption(_("No answers in this period."))
        return
    st.dataframe(
        [
            {
                _("Model"): row["model"],
                _("Answers"): row["answers"],
                _("Prompt tokens"): row["prompt_tokens"],
                _("Completion tokens"): row["completion_tokens"],
                _("Estimated cost (USD)"): row["cost_usd"],
            }
            for row in report.models
        ],
        hide_index=True,
        column_config={
            _("Estimated cost (USD)"): st.column_config.NumberColumn(format="$%.4f"),
        },
    )
    st.caption(
        _(
            "Cost uses list prices per million tokens (core/db/insights.py); a model without a "
            "known price (a local server's) shows no cost."
        )
    )


def documents(report: Report) -> None:
    left, right = st.columns(2)

    def bars(c: alt.Chart) -> alt.Chart:
        return c.mark_bar().encode(
            y=alt.Y("document:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("answers:Q", title=_("answers citing it"), axis=_COUNT_AXIS),
            tooltip=[
                alt.Tooltip("document:N", title=_("document")),
                alt.Tooltip("answers:Q", title=_("answers")),
                alt.Tooltip("citations:Q", title=_("citations")),
            ],
        )

    with left:
        chart(_("Most cited documents"), report.most_cited, bars, _("Nothing cited yet."))
    with right:
        chart(
            _("Most cited in thumbs-down answers"),
            report.cited_in_thumbs_down,
            bars,
            _("No thumbs-down answers cite a document."),
        )


def not_covered(since: datetime | None) -> None:
    """Questions the documents did not answer (abstentions, thumbs-down), grouped by similar
    question, with the documents that came closest: what to add or fix."""
    st.subheader(_("What the documents don't cover"))
    gaps = engine.not_covered(since=since, actor=actor)
    if not gaps:
        st.caption(_("Every question in this period was answered and none got a thumbs-down."))
        return
    st.caption(
        _(
            "Questions Loupe could not answer from the documents, or whose answer got a "
            "thumbs-down, grouped by similar question. The closest documents are where an "
            "answer was looked for: add what is missing there, or a new document."
        )
    )
    st.dataframe(
        [
            {
                _("Question"): gap.question,
                _("Asked"): gap.asked,
                _("Not answered"): gap.abstained,
                _("Thumbs down"): gap.thumbs_down,
                _("Also asked as"): list(gap.examples),
                _("Closest documents"): [
                    f"{name} ({i18n.percent(relevance)})"
                    for name, relevance in gap.closest_documents
                ],
                _("Last asked"): gap.last_asked.astimezone(),
            }
            for gap in gaps
        ],
        hide_index=True,
        height=shared.table_height(len(gaps)),
        column_config={
            _("Question"): st.column_config.TextColumn(_("Question"), width="large"),
            _("Also asked as"): st.column_config.ListColumn(_("Also asked as")),
            _("Closest documents"): st.column_config.ListColumn(
                _("Closest documents"), help=_("Relevance of the best passage each one offered.")
            ),
            _("Last asked"): st.column_config.DatetimeColumn(
                _("Last asked"), format="YYYY-MM-DD HH:mm"
            ),
        },
    )


def exports(since: datetime | None) -> None:
    st.subheader(_("Export"))
    csv_col, jsonl_col = st.columns(2)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    csv_col.download_button(
        _("Feedback as CSV"),
        engine.export_feedback("csv", since=since, actor=actor),
        file_name=f"loupe-feedback-{stamp}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
    jsonl_col.download_button(
        _("Feedback as JSON Lines"),
        engine.export_feedback("jsonl", since=since, actor=actor),
        file_name=f"loupe-feedback-{stamp}.jsonl",
        mime="application/jsonl",
        icon=":material/download:",
        on_click="ignore",
    )
    with st.expander(_("Datasets from expert feedback (all time)")):
        for kind, description in DATASETS.items():
            rows = engine.export(kind, actor=actor)
            st.download_button(
                _(description) + " · " + i18n.ngettext("{n} record", "{n} records", len(rows)),
                to_jsonl(rows),
                file_name=f"loupe-{kind}-{stamp}.jsonl",
                mime="application/jsonl",
                key=f"dataset_{kind}",
                on_click="ignore",
            )


def main() -> None:
    st.title(_("Insights"))
    period = st.segmented_control(
        _("Period"),
        list(PERIODS),
        format_func=i18n.labels({}),
        default="30 days",
        key="insights_period",
        required=True,
    )
    days = PERIODS[period or "30 days"]
    since = None if days is None else datetime.now(UTC) - timedelta(days=days)
    report = engine.insights(since=since, actor=actor)
    headline(report)
    usage_and_quality(report)
    cost(report)
    documents(report)
    not_covered(since)
    exports(since)


main()
