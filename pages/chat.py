"""Chat: ask the documents, see each answer with its citations and confidence, and give feedback
on it. The conversation id lives in session state and in the URL, so a reload shows the same
conversation, with the feedback read back from SQL. The sidebar lists past conversations to
resume, search, rename and delete; each answer can be copied, regenerated, or its question
edited and sent again; `[n]` opens the cited passage in its original."""

from __future__ import annotations

from functools import partial

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import i18n
import ui as shared
from core.answer.types import AnswerResult, Source, VerifiedAnswer
from core.auth import allows
from core.ingest.samples import SAMPLE_QUESTIONS, SAMPLE_TAG
from core.records import ConversationSummary, DocumentInfo, FeedbackState
from core.stores.base import SearchFilter
from core.vocab import DocumentStatus
from i18n import _

CONVERSATION = "conversation_id"  # session state and URL query parameter
PENDING = "pending_question"  # a question to ask on this run (suggested, regenerated, edited)
SEARCH = "conversation_search"
EVERYONE = "conversation_everyone"  # admins: list everyone's conversations
VERIFIED = "verified_answers"  # answer id → the verified answer offered with it
THUMBS = ("down", "up")  # st.feedback("thumbs") gives 0 for down, 1 for up

actor = shared.require_role("user")
engine = shared.engine()


# Saving feedback (widget callbacks: they run before the page is drawn again) ---------------


def _save(
    answer_id: str,
    confirmation: str,
    *,
    rating: str | None = None,
    comment: str | None = None,
    edited_answer: str | None = None,
    citation_verdicts: dict[str | int, str] | None = None,
) -> bool:
    try:
        engine.feedback(
            answer_id,
            rating=rating,
            comment=comment,
            edited_answer=edited_answer,
            citation_verdicts=citation_verdicts,
            role=actor.role,
            source="chat",
            actor=actor,
        )
    except (ValueError, LookupError, PermissionError) as exc:
        st.toast(
            _("Not saved: {error}", error=shared.inert(i18n.core_text(str(exc)))),
            icon=":material/error:",
        )
        return False
    st.toast(confirmation, icon=":material/check_circle:")
    return True


def save_rating(answer_id: str) -> None:
    value = st.session_state[f"thumbs_{answer_id}"]
    if value is None:
        # Feedback is append-only: a cleared thumb has nothing to record.
        st.toast(_("Rating cleared here; the rating you gave before stays on record."))
        return
    _save(answer_id, _("Rating saved. Thank you!"), rating=THUMBS[value])


def save_verdict(answer_id: str, n: int) -> None:
    verdict = st.session_state[f"verdict_{answer_id}_{n}"]
    if verdict is not None:
        _save(answer_id, _("Verdict on source [{n}] saved.", n=n), citation_verdicts={n: verdict})


def save_comment_and_edit(answer_id: str, shown_answer: str) -> None:
    comment = st.session_state[f"comment_{answer_id}"].strip()
    edited = st.session_state[f"edit_{answer_id}"].strip()
    edit = edited if edited and edited != shown_answer.strip() else None
    if not comment and edit is None:
        st.toast(_("Nothing to save: write a comment or change the answer text."))
        return
    saved = _save(
        answer_id,
        _("Correction saved.") if edit else _("Comment saved."),
        comment=comment or None,
        edited_answer=edit,
    )
    if saved:
        st.session_state[f"comment_{answer_id}"] = ""


def start_new_conversation() -> None:
    st.session_state.pop(CONVERSATION, None)
    st.query_params.pop(CONVERSATION, None)


def open_conversation(conversation_id: str) -> None:
    st.session_state[CONVERSATION] = conversation_id
    st.query_params[CONVERSATION] = conversation_id


def ask_suggested(question: str) -> None:
    st.session_state[PENDING] = question


def resend_edited(answer_id: str) -> None:
    question = st.session_state.get(f"edit_question_{answer_id}", "").strip()
    if question:
        st.session_state[PENDING] = question


def rename(conversation_id: str) -> None:
    title = st.session_state.get(f"rename_{conversation_id}", "")
    try:
        engine.rename_conversation(conversation_id, title, actor=actor)
    except (ValueError, LookupError, PermissionError) as exc:
        st.toast(
            _("Not renamed: {error}", error=shared.inert(i18n.core_text(str(exc)))),
            icon=":material/error:",
        )
        return
    st.toast(_("Conversation renamed."), icon=":material/check_circle:")


def delete(conversation_id: str) -> None:
    try:
        engine.delete_conversation(conversation_id, actor=actor)
    except (LookupError, PermissionError) as exc:
        st.toast(
            _("Not deleted: {error}", error=shared.inert(i18n.core_text(str(exc)))),
            icon=":material/error:",
        )
        return
    if st.session_state.get(CONVERSATION) == conversation_id:
        start_new_conversation()
    st.toast(_("Conversation deleted."), icon=":material/delete:")


# Drawing -----------------------------------------------------------------------------------


def verdict_control(answer_id: str, state: FeedbackState, source: Source) -> None:
    st.segmented_control(
        _("Does this passage support the answer?"),
        options=list(shared.VERDICT_LABELS),
        format_func=shared.verdict_labels(),
        default=state.verdicts.get(str(source.n)),
        key=f"verdict_{answer_id}_{source.n}",
        on_change=save_verdict,
        args=(answer_id, source.n),
    )


def show_verified(verified: VerifiedAnswer) -> None:
    with st.container(border=True):
        st.markdown(":material/verified: " + _("**An expert verified an answer to this question**"))
        shared.show_text(verified.answer)
        expert = verified.expert or _("an expert")
        st.caption(
            _(
                "Verified by {expert} on {date} for “{question}” (similarity {similarity}).",
                expert=shared.inert(expert),
                date=shared.when(verified.verified_at),
                question=shared.inert(verified.question),
                similarity=i18n.percent(verified.similarity),
            )
        )


def feedback_controls(result: AnswerResult, state: FeedbackState) -> None:
    answer_id = result.answer_id or ""
    st.feedback(
        "thumbs",
        key=f"thumbs_{answer_id}",
        default=None if state.rating is None else THUMBS.index(state.rating.value),
        on_change=save_rating,
        args=(answer_id,),
    )
    shown = state.edited_answer or result.answer
    with st.expander(_("Comment or correct this answer"), icon=":material/edit_note:"):
        if state.comment:
            st.caption(_("Your last comment: {comment}", comment=shared.inert(state.comment)))
        with st.form(f"feedback_form_{answer_id}", border=False):
            st.text_area(
                _("Comment"), key=f"comment_{answer_id}", placeholder=_("What is wrong or missing?")
            )
            st.text_area(
                _("Corrected answer"),
                value=shown,
                key=f"edit_{answer_id}",
                help=_("Keep the [n] markers of the passages that support each sentence."),
            )
            st.form_submit_button(
                _("Save feedback"), on_click=save_comment_and_edit, args=(answer_id, shown)
            )


def render_answer(result: AnswerResult, state: FeedbackState) -> None:
    """One answer; a low-confidence one shows its passages before the text."""
    answer_id = result.answer_id or ""
    verified = result.verified or st.session_state.get(VERIFIED, {}).get(answer_id)
    if result.generator == "verified":
        st.markdown(":material/verified: " + _("**Expert-verified answer**"))
    elif verified is not None:
        show_verified(verified)
    shared.answer_notices(result)
    low = result.confidence.label == "low"
    verdicts = partial(verdict_control, answer_id, state)
    if low:
        shared.sources(result, verdicts)
    shared.answer_text(result)
    if state.edited_answer:
        st.info(
            _("Your correction: {answer}", answer=shared.inert(state.edited_answer)),
            icon=":material/edit:",
        )
    shared.confidence_badge(result)
    st.caption(shared.generator_caption(result))
    if not low:
        shared.sources(result, verdicts)
    feedback_controls(result, state)
    answer_actions(result)


def answer_actions(result: AnswerResult) -> None:
    """Copy the answer, ask the same question again, or edit the question and send it."""
    answer_id = result.answer_id or ""
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        shared.copy_button(shared.shown_answer(result), key=f"copy_{answer_id}")
        st.button(
            _("Regenerate"),
            icon=":material/refresh:",
            key=f"regenerate_{answer_id}",
            type="tertiary",
            on_click=ask_suggested,
            args=(result.question,),
            help=_("Ask the same question again in this conversation."),
        )
        with st.popover(_("Edit question"), icon=":material/edit:", type="tertiary"):
            st.text_area(_("Question"), value=result.question, key=f"edit_question_{answer_id}")
            st.button(
                _("Send"),
                key=f"resend_{answer_id}",
                type="primary",
                on_click=resend_edited,
                args=(answer_id,),
            )


def ask(question: str, scope: SearchFilter | None) -> None:
    conversation_id = st.session_state.get(CONVERSATION) or engine.new_conversation(
        question, actor=actor
    )
    st.session_state[CONVERSATION] = conversation_id
    st.query_params[CONVERSATION] = conversation_id
    with st.chat_message("user"):
        shared.show_text(question)
    with st.chat_message("assistant"):
        result = shared.stream_answer(
            engine.ask_stream(question, conversation_id=conversation_id, filters=scope, actor=actor)
        )
        if result.verified is not None and result.answer_id:
            st.session_state.setdefault(VERIFIED, {})[result.answer_id] = result.verified
        render_answer(result, FeedbackState())


def scope_controls(ready: list[DocumentInfo]) -> tuple[SearchFilter | None, DeltaGenerator]:
    """The sidebar: a new-conversation button, a place for the conversation list (filled at
    the end of the run, so a conversation started in this run is already in it), and the
    search scope."""
    names = {doc.id: doc.name for doc in ready}
    tags = sorted({tag for doc in ready for tag in doc.tags or ()})
    # Drop choices whose document was deleted since they were made.
    for key, options in (("scope_documents", names), ("scope_tags", tags)):
        if key in st.session_state:
            st.session_state[key] = [v for v in st.session_state[key] if v in options]
    with st.sidebar:
        st.button(
            _("New conversation"),
            icon=":material/add_comment:",
            on_click=start_new_conversation,
            width="stretch",
        )
        conversations_slot = st.container()
        st.markdown(_("**Search in**"))
        documents = st.multiselect(
            _("Documents"),
            options=list(names),
            format_func=names.__getitem__,
            key="scope_documents",
            placeholder=_("All documents"),
        )
        chosen_tags = st.multiselect(_("Tags"), tags, key="scope_tags", placeholder=_("Any tag"))
        if documents and chosen_tags:
            st.caption(_("Only passages in the chosen documents that carry a chosen tag are used."))
    scope = SearchFilter(tuple(documents), tuple(chosen_tags))
    return None if scope.empty else scope, conversations_slot


def conversation_list() -> None:
    """The signed-in person's conversations (an admin may list everyone's), newest first."""
    st.markdown(_("**Conversations**"))
    search = st.text_input(
        _("Search conversations"),
        key=SEARCH,
        placeholder=_("Search conversations"),
        label_visibility="collapsed",
    )
    everyone = allows(actor, "admin") and st.toggle(_("Everyone's"), key=EVERYONE)
    listed = engine.conversations(actor, search=search, everyone=everyone)
    if not listed:
        st.caption(_("No conversations match.") if search else _("No conversations yet."))
    current = st.session_state.get(CONVERSATION) or st.query_params.get(CONVERSATION)
    with st.container(height=300 if len(listed) > 7 else "content", border=False):
        for item in listed:
            conversation_row(item, current)
    st.divider()


def conversation_row(item: ConversationSummary, current: str | None) -> None:
    title, menu = st.columns([5, 1], vertical_alignment="center", gap="small")
    owner = f" · {shared.inert(item.user)}" if item.user != actor.name else ""
    title.button(
        shared.inert(item.title),
        key=f"conversation_{item.id}",
        type="secondary" if item.id == current else "tertiary",
        width="stretch",
        on_click=open_conversation,
        args=(item.id,),
        help=f"{shared.when(item.last_active)} · "
        + i18n.ngettext("{n} question", "{n} questions", item.questions)
        + owner,
    )
    with menu.popover("", icon=":material/more_vert:", type="tertiary"):
        st.text_input(_("Title"), value=item.title, key=f"rename_{item.id}")
        st.button(_("Rename"), key=f"do_rename_{item.id}", on_click=rename, args=(item.id,))
        st.button(
            _("Delete conversation"),
            key=f"delete_{item.id}",
            icon=":material/delete:",
            on_click=delete,
            args=(item.id,),
        )


def conversation_turns() -> list[AnswerResult]:
    """The current conversation from SQL: from session state, or from the URL after a reload."""
    conversation_id = st.session_state.get(CONVERSATION) or st.query_params.get(CONVERSATION)
    if not conversation_id:
        return []
    try:
        turns = engine.conversation(conversation_id, actor=actor)
    except (LookupError, PermissionError):
        start_new_conversation()
        return []
    st.session_state[CONVERSATION] = conversation_id
    return turns


def empty_state() -> None:
    st.subheader(_("No documents yet"))
    if not allows(actor, "admin"):
        st.info(_("No documents have been added yet. Ask an admin to upload some."))
        return
    st.markdown(
        _(
            "Upload your own files on the **Documents** page, or start with the sample set: a "
            "fictional company handbook, a table of travel limits, an IT security FAQ and "
            "Korean benefits notes."
        )
    )
    left, right = st.columns(2)
    with left:
        if st.button(_("Load the sample documents"), type="primary", icon=":material/library_add:"):
            shared.load_samples(engine, actor)
            st.rerun()
    with right:
        st.page_link("pages/documents.py", label=_("Upload documents"), icon=":material/upload:")


def suggestions(ready: list[DocumentInfo]) -> None:
    """A new conversation offers questions: the sample set's own, or ones drawn from the
    headings of the documents that are indexed."""
    samples_only = all(SAMPLE_TAG in (doc.tags or ()) for doc in ready)
    offered = (
        list(SAMPLE_QUESTIONS)
        if samples_only
        # Drawn from headings: asked in the visitor's language, the heading's words kept.
        else [i18n.core_text(q) for q in engine.suggested_questions()]
    )
    if not offered:
        st.caption(_("Ask anything the documents might answer."))
        return
    st.caption(_("Try one of these:"))
    for n, suggestion in enumerate(offered):
        st.button(
            shared.inert(suggestion),  # drawn from the documents' headings
            key=f"suggestion_{n}",
            on_click=ask_suggested,
            args=(suggestion,),
        )


def main() -> None:
    documents = engine.documents()
    ready = [doc for doc in documents if doc.status == DocumentStatus.ready]
    scope, conversations_slot = scope_controls(ready)
    # The input is pinned to the bottom wherever it is called; reading it first lets this run
    # know whether a question is on its way before drawing the rest.
    typed = st.chat_input(_("Ask a question about your documents"), disabled=not ready)
    question = (typed or st.session_state.pop(PENDING, None) or "").strip()
    st.title(_("Ask your documents"))
    if not ready:
        empty_state()
    turns = conversation_turns()
    states = engine.feedback_state([t.answer_id or "" for t in turns], actor=actor)
    for turn in turns:
        with st.chat_message("user"):
            shared.show_text(turn.question)
        with st.chat_message("assistant"):
            render_answer(turn, states[turn.answer_id or ""])
    if ready and not turns and not question:
        suggestions(ready)
    if question:
        ask(question, scope)
    with conversations_slot:
        conversation_list()


main()
