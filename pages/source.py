"""Source: the original behind a citation, at the cited place. `[n]` in an answer links here
(`/source?answer=ID&n=N`, in a new tab): a PDF opens at the cited page, rendered, with the
quoted passage highlighted; other formats show the passage inside the text around it. Whoever
may read the answer may download the original."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import i18n
import ui as shared
from core.ingest.viewer import PageView, TextView, passage_in_context, render_pdf_page
from core.records import CitedOriginal
from i18n import _

actor = shared.require_role("user")
engine = shared.engine()


@st.cache_data(max_entries=64, show_spinner=False)
def _page_image(path: str, page: int, passage: str) -> PageView:
    return render_pdf_page(Path(path), page, passage)


def page_image(path: str, page: int, passage: str) -> PageView:
    """A rendered page (cached), with a spinner in the visitor's language meanwhile."""
    with st.spinner(_("Rendering the page…")):
        return _page_image(path, page, passage)


@st.cache_data(max_entries=64, show_spinner=False)
def text_context(name: str, path: str, passage: str) -> TextView:
    return passage_in_context(name, Path(path).read_bytes(), passage)


def requested() -> tuple[str, int]:
    answer_id = st.query_params.get("answer", "")
    try:
        n = int(st.query_params.get("n", ""))
    except ValueError:
        n = 0
    if not answer_id or n < 1:
        shared.stop_with_error(
            _("Open a source from an answer: each [n] in an answer links to its passage here.")
        )
    return answer_id, n


def show_pdf(original: CitedOriginal, path: Path) -> None:
    cited = original.source.page or 1
    view = page_image(str(path), cited, original.source.quote)
    page = st.number_input(
        _("Page (of {pages})", pages=i18n.number(view.pages)),
        min_value=1,
        max_value=view.pages,
        value=cited,
        key="page",
    )
    if page != cited:
        view = page_image(str(path), int(page), original.source.quote)
        st.caption(_("The passage is on page {page}.", page=cited))
    elif not view.highlighted:
        st.caption(
            _(
                "The passage could not be located exactly on this page (the PDF's text layer "
                "differs from what was indexed); it is quoted on the right."
            )
        )
    with st.container(border=True):  # the page's edge: a white page on a white app
        # PNG, not the default JPEG: text and the highlight stay sharp.
        st.image(
            view.png,
            caption=_("{name}, page {page}", name=shared.inert(original.name), page=view.page),
            width="stretch",
            output_format="PNG",
        )


def show_text(original: CitedOriginal, path: Path) -> None:
    view = text_context(original.name, str(path), original.source.quote)
    if not view.found:
        st.caption(
            _(
                "The passage is no longer in this document as it is kept now; it is quoted "
                "on the right as it was cited."
            )
        )
        return
    with st.container(border=True):
        if view.before:
            shared.show_text(view.before)
        with st.container(border=True, key="cited_passage"):
            st.caption(":material/format_quote: " + _("Cited passage [{n}]", n=original.source.n))
            shared.show_text(view.passage)
        if view.after:
            shared.show_text(view.after)


def main() -> None:
    answer_id, n = requested()
    try:
        original = engine.cited_original(answer_id, n, actor=actor)
    except (LookupError, PermissionError) as exc:
        shared.stop_with_error(str(exc))
    st.title(_("Source"))
    st.markdown(f"**{shared.source_title(original.source)}**")
    st.caption(_("Cited in the answer to this question:"))
    shared.show_text(original.question)
    view, side = st.columns([5, 2], gap="large")
    with side:
        st.markdown(_("**Quoted passage**"))
        shared.show_text(original.source.quote)
        if original.path is not None:
            st.download_button(
                _("Download the original"),
                original.path.read_bytes(),
                file_name=original.name,
                mime=original.mime,
                icon=":material/download:",
                on_click="ignore",
            )
    with view:
        if original.path is None:
            st.info(
                _(
                    "The original is no longer kept (the document was deleted or replaced); "
                    "the passage is shown as it was cited."
                ),
                icon=":material/info:",
            )
        elif original.kind == "pdf":
            show_pdf(original, original.path)
        else:
            show_text(original, original.path)


main()
