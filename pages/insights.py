"""Insights (admins): how much Loupe is used, how well it answers, what it costs, which documents
it leans on (and which mislead), what the documents don't cover, and the feedback as CSV or
JSON Lines to take elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt
import streamlit as st

import ui as shared
from core.records import Report, to_jsonl

PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "All time": None}
LABEL_COLORS = alt.Scale(domain=["low", "medium", "high"], range=["#d9534f", "#f0ad4e", "#5cb85c"])
# Counts are whole numbers: no 0.5-question ticks.
_COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")
DATASETS = {
    "finetune": "Fine-tuning examples (chat JSONL) from verified answers",
    "preferences": "Preference pairs: expert edit chosen, original rejected",
    "eval": "Evaluation set for `python -m core eval`",
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


def headline(report: Report) -> None:
    questions, rate, confidence, rated = st.columns(4)
    questions.metric("Questions", report.questions)
    rate.metric(
        "Thumbs-up rate",
        "–" if report.thumbs_up_rate is None else f"{report.thumbs_up_rate:.0%}",
        help="Of the rated answers, the share whose newest rating is a thumbs-up.",
    )
    confidence.metric(
        "Mean confidence",
        "–" if report.mean_confidence is None else f"{report.mean_confidence:.0%}",
    )
    rated.metric("Rated answers", report.rated)


def usage_and_quality(report: Report) -> None:
    left, right = st.columns(2)
    with left:
        chart(
            "Questions per day",
            report.questions_per_day,
            lambda c: c.mark_bar().encode(
                x=alt.X("day:T", title=None),
                y=alt.Y("questions:Q", title="questions", axis=_COUNT_AXIS),
            ),
            "No questions in this period.",
        )
        chart(
            "Confidence of answers",
            report.confidence,
            lambda c: c.mark_bar().encode(
                x=alt.X("bucket:O", title="confidence (bucket start)"),
                y=alt.Y("answers:Q", title="answers", axis=_COUNT_AXIS),
                color=alt.Color("label:N", scale=LABEL_COLORS, title="shown as"),
            ),
            "No answers in this period.",
        )
    with right:
        chart(
            "Thumbs-up rate per day",
            report.ratings_per_day,
            lambda c: c.mark_line(point=True).encode(
                x=alt.X("day:T", title=None),
                y=alt.Y(
                    "rate:Q",
                    title="thumbs up",
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                tooltip=["day:T", "rated:Q", "up:Q", alt.Tooltip("rate:Q", format=".0%")],
            ),
            "No rated answers in this period.",
        )
        chart(
            "Latency per stage (seconds)",
            report.latency,
            lambda c: (
                c.transform_fold(["p50", "p95"], as_=["percentile", "seconds"])
                .mark_bar()
                .encode(
                    x=alt.X("stage:N", sort=None, title=None),
                    xOffset="percentile:N",
                    y=alt.Y("seconds:Q"),
                    color=alt.Color("percentile:N"),
                    tooltip=["stage:N", "percentile:N", alt.Tooltip("seconds:Q", format=".2f")],
                )
            ),
            "No timings in this period.",
        )
        reliability(report)


def reliability(report: Report) -> None:
    """Stated confidence against how often experts judged the answers right: points on the
    diagonal mean the percentages can be taken at their word."""
    diagonal = alt.Chart(alt.Data(values=[{"x": 0, "y": 0}, {"x": 1, "y": 1}])).mark_line(
        strokeDash=[4, 4], color="gray"
    )
    chart(
        "Confidence against expert verdicts",
        report.reliability,
        lambda c: (
            diagonal.encode(x="x:Q", y="y:Q")
            + c.mark_circle().encode(
                x=alt.X(
                    "mean_confidence:Q",
                    title="stated confidence",
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                y=alt.Y(
                    "right:Q",
                    title="judged right by experts",
                    axis=alt.Axis(format=".0%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                size=alt.Size("judged:Q", title="answers judged"),
                tooltip=[
                    alt.Tooltip("bucket:Q", title="bucket"),
                    "judged:Q",
                    alt.Tooltip("mean_confidence:Q", format=".0%"),
                    alt.Tooltip("right:Q", format=".0%"),
                ],
            )
        ),
        "No answer has an expert verdict in this period (approve, reject or correct one in "
        "Review).",
    )


def cost(report: Report) -> None:
    st.markdown("**Tokens and estimated cost per model**")
    if not report.models:
        st.caption("No answers in this period.")
        return
    st.dataframe(
        [
            {
                "Model": row["model"],
                "Answers": row["answers"],
                "Prompt tokens": row["prompt_tokens"],
                "Completion tokens": row["completion_tokens"],
                "Estimated cost (USD)": row["cost_usd"],
            }
            for row in report.models
        ],
        hide_index=True,
        column_config={
            "Estimated cost (USD)": st.column_config.NumberColumn(format="$%.4f"),
        },
    )
    st.caption(
        "Cost uses list prices per million tokens (core/db/insights.py); a model without a known "
        "price (a local server's) shows no cost."
    )


def documents(report: Report) -> None:
    left, right = st.columns(2)

    def bars(c: alt.Chart) -> alt.Chart:
        return c.mark_bar().encode(
            y=alt.Y("document:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("answers:Q", title="answers citing it", axis=_COUNT_AXIS),
            tooltip=["document:N", "answers:Q", "citations:Q"],
        )

    with left:
        chart("Most cited documents", report.most_cited, bars, "Nothing cited yet.")
    with right:
        chart(
            "Most cited in thumbs-down answers",
            report.cited_in_thumbs_down,
            bars,
            "No thumbs-down answers cite a document.",
        )


def not_covered(since: datetime | None) -> None:
    """Questions the documents did not answer (abstentions, thumbs-down), grouped by similar
    question, with the documents that came closest: what to add or fix."""
    st.subheader("What the documents don't cover")
    gaps = engine.not_covered(since=since, actor=actor)
    if not gaps:
        st.caption("Every question in this period was answered and none got a thumbs-down.")
        return
    st.caption(
        "Questions Loupe could not answer from the documents, or whose answer got a "
        "thumbs-down, grouped by similar question. The closest documents are where an answer "
        "was looked for: add what is missing there, or a new document."
    )
    st.dataframe(
        [
            {
                "Question": gap.question,
                "Asked": gap.asked,
                "Not answered": gap.abstained,
                "Thumbs down": gap.thumbs_down,
                "Also asked as": list(gap.examples),
                "Closest documents": [
                    f"{name} ({relevance:.0%})" for name, relevance in gap.closest_documents
                ],
                "Last asked": gap.last_asked.astimezone(),
            }
            for gap in gaps
        ],
        hide_index=True,
        height=shared.table_height(len(gaps)),
        column_config={
            "Question": st.column_config.TextColumn("Question", width="large"),
            "Also asked as": st.column_config.ListColumn("Also asked as"),
            "Closest documents": st.column_config.ListColumn(
                "Closest documents", help="Relevance of the best passage each one offered."
            ),
            "Last asked": st.column_config.DatetimeColumn("Last asked", format="YYYY-MM-DD HH:mm"),
        },
    )


def exports(since: datetime | None) -> None:
    st.subheader("Export")
    csv_col, jsonl_col = st.columns(2)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    csv_col.download_button(
        "Feedback as CSV",
        engine.export_feedback("csv", since=since, actor=actor),
        file_name=f"loupe-feedback-{stamp}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
    jsonl_col.download_button(
        "Feedback as JSON Lines",
        engine.export_feedback("jsonl", since=since, actor=actor),
        file_name=f"loupe-feedback-{stamp}.jsonl",
        mime="application/jsonl",
        icon=":material/download:",
        on_click="ignore",
    )
    with st.expander("Datasets from expert feedback (all time)"):
        for kind, description in DATASETS.items():
            rows = engine.export(kind, actor=actor)
            st.download_button(
                f"{description} · {len(rows)} records",
                to_jsonl(rows),
                file_name=f"loupe-{kind}-{stamp}.jsonl",
                mime="application/jsonl",
                key=f"dataset_{kind}",
                on_click="ignore",
            )


def main() -> None:
    st.title("Insights")
    period = st.segmented_control(
        "Period", list(PERIODS), default="30 days", key="insights_period", required=True
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
