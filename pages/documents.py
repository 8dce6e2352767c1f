"""Documents (admins): upload files with a progress bar and an outcome each, see every document's
status, and delete, re-index or tag documents, with a confirmation before anything is lost."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

import i18n
import ui as shared
from core.ingest.loaders import SUPPORTED_EXTENSIONS
from core.ingest.pipeline import IngestItem, IngestProgress, IngestResult
from core.records import DocumentInfo
from core.vocab import DocumentStatus
from i18n import N_, _

UPLOADER = "uploader_generation"  # bumped after an upload, which empties the file picker
RESULTS = "upload_results"  # the last upload's outcomes, shown until the next one
PENDING_ACTION = "document_action"  # ("delete" | "reindex", [document ids]) awaiting confirmation
# Bumped whenever the rows change under a selection (upload, delete, re-index): the table
# becomes a new widget, so the browser's ticks on the old rows cannot land on other documents.
TABLE = "documents_table_generation"
OUTCOME_TEXT = {
    "indexed": N_("Indexed"),
    "updated": N_("Updated (new version)"),
    "duplicate": N_("Skipped: duplicate"),
    "failed": N_("Failed"),
    "skipped": N_("Skipped: unsupported type"),
}
STATUS_TEXT = {
    DocumentStatus.ready: ("✅", N_("ready")),
    DocumentStatus.indexing: ("⏳", N_("indexing")),
    DocumentStatus.pending: ("⏳", N_("pending")),
    DocumentStatus.failed: ("❌", N_("failed")),
}
STAGE_TEXT = {
    "parse": N_("reading"),
    "embed": N_("embedding"),
    "index": N_("indexing"),
    "done": N_("done"),
}
# How far along a file is at each ingestion stage, for its progress bar.
STAGE_SPAN = {"parse": (0.0, 0.1), "embed": (0.1, 0.85), "index": (0.85, 1.0), "done": (1.0, 1.0)}

actor = shared.require_role("admin")
engine = shared.engine()


def status_text(status: DocumentStatus) -> str:
    if status not in STATUS_TEXT:
        return str(status)
    mark, word = STATUS_TEXT[status]
    return f"{mark} {_(word)}"


def parse_tags(text: str) -> list[str]:
    return sorted({tag.strip() for tag in text.split(",") if tag.strip()})


def index_uploads(files: Sequence[UploadedFile], tags: list[str]) -> list[IngestResult]:
    """Ingest the uploaded files, with a progress bar per file that ends in its outcome (a
    failed file's bar gives way to its error: a full bar would read as success)."""
    slots = [st.empty() for _ in files]
    bars = [
        slot.progress(0.0, text=_("{name}: waiting", name=shared.inert(file.name)))
        for slot, file in zip(slots, files, strict=True)
    ]

    def report(progress: IngestProgress) -> None:
        start, end = STAGE_SPAN[progress.stage]
        share = progress.done / progress.total if progress.total else 0.0
        detail = f" {progress.done}/{progress.total}" if progress.total else ""
        stage = _(STAGE_TEXT[progress.stage]) if progress.stage in STAGE_TEXT else progress.stage
        bars[progress.file_index].progress(
            start + (end - start) * share,
            text=f"{shared.inert(progress.name)}: {stage}{detail}",
        )

    results = engine.ingest(
        [IngestItem(file.name, file.getvalue()) for file in files],
        tags=tags,
        uploaded_by=actor.name,
        progress=report,
        actor=actor,
    )
    for slot, result in zip(slots, results, strict=True):
        name = shared.inert(result.name)
        if result.outcome == "failed":
            slot.error(_("{name}: failed", name=name), icon=":material/error:")
        else:
            outcome = _(OUTCOME_TEXT[result.outcome]).lower()
            slot.progress(1.0, text=f"{name}: {outcome}")
    return results


def upload_section() -> None:
    st.subheader(_("Add documents"))
    generation = st.session_state.setdefault(UPLOADER, 0)
    files = st.file_uploader(
        _("Files (PDF, Word, text, Markdown, HTML, CSV)"),
        type=[ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS],
        accept_multiple_files=True,
        key=f"uploader_{generation}",
    )
    tags = st.text_input(
        _("Tags for these files"),
        key="upload_tags",
        placeholder=_("e.g. hr, policies (comma-separated)"),
    )
    count = len(files or [])
    label = i18n.ngettext("Index {n} file", "Index {n} files", count)
    if st.button(label, type="primary", disabled=not files, icon=":material/upload:"):
        st.session_state[RESULTS] = index_uploads(files or [], parse_tags(tags))
        # New documents come first in the table: an old row selection would point elsewhere.
        reset_table()
        # The bars stay on screen with each file's outcome; from the next run on, a new
        # (empty) file picker replaces this one, so the same files are not indexed twice.
        st.session_state[UPLOADER] = generation + 1
    if results := st.session_state.get(RESULTS):
        upload_outcomes(results)


# Only PDFs have pages: other formats show a dash, not "None" (and the column is left out when
# no document in the table has pages at all).
NO_PAGES = "—"


def pages_column() -> object:
    return st.column_config.TextColumn(
        _("Pages"), help=_("Pages of a PDF; other formats have none.")
    )


def pages_text(pages: int | None) -> str:
    return NO_PAGES if pages is None else str(pages)


def reset_table() -> None:
    st.session_state[TABLE] = st.session_state.get(TABLE, 0) + 1


def upload_outcomes(results: list[IngestResult]) -> None:
    failed = sum(r.outcome == "failed" for r in results)
    done = len(results) - failed
    summary = _(
        "{done} of {total} files indexed or already present.",
        done=i18n.number(done),
        total=i18n.number(len(results)),
    )
    if failed:
        reasons = _("{failed} failed; the reasons are in the table.", failed=i18n.number(failed))
        st.warning(f"{summary} {reasons}")
    else:
        st.success(summary)
    paged = any(r.pages is not None for r in results)
    st.dataframe(
        [
            {
                _("File"): r.name,
                _("Outcome"): _(OUTCOME_TEXT[r.outcome]),
                _("Chunks"): r.chunks if r.outcome != "failed" else None,
                **({_("Pages"): pages_text(r.pages)} if paged else {}),
                _("Details"): r.error or "",
            }
            for r in results
        ],
        hide_index=True,
        height=shared.table_height(len(results)),
        column_config={_("Pages"): pages_column()},
    )


def documents_table(documents: list[DocumentInfo]) -> list[DocumentInfo]:
    """The documents, newest first; returns the rows the admin selected."""
    paged = any(doc.pages is not None for doc in documents)
    event = st.dataframe(
        [
            {
                _("Name"): doc.name,
                _("Status"): status_text(doc.status),
                **({_("Pages"): pages_text(doc.pages)} if paged else {}),
                _("Chunks"): doc.chunk_count,
                _("Size (KB)"): round(doc.size_bytes / 1024, 1),
                _("Tags"): list(doc.tags or []),
                _("Uploaded by"): doc.uploaded_by or "",
                _("Uploaded"): doc.created_at.astimezone(),
                _("Error"): doc.error or "",
            }
            for doc in documents
        ],
        hide_index=True,
        key=f"documents_table_{st.session_state.get(TABLE, 0)}",
        on_select="rerun",
        selection_mode="multi-row",
        height=shared.table_height(len(documents), max_rows=15),
        column_config={
            _("Pages"): pages_column(),
            _("Tags"): st.column_config.ListColumn(_("Tags")),
            _("Uploaded"): st.column_config.DatetimeColumn(
                _("Uploaded"), format="YYYY-MM-DD HH:mm"
            ),
        },
    )
    return [documents[i] for i in event.selection.rows if i < len(documents)]


def ask_confirmation(action: str, selected: list[DocumentInfo]) -> None:
    st.session_state[PENDING_ACTION] = (action, [doc.id for doc in selected])


def confirm_pending(documents: list[DocumentInfo]) -> None:
    """The confirmation step of a delete or re-index, and then the action itself."""
    action, ids = st.session_state[PENDING_ACTION]
    chosen = [doc for doc in documents if doc.id in ids]
    names = shared.inert(", ".join(doc.name for doc in chosen))
    deleting = action == "delete"
    if deleting:
        st.warning(
            _(
                "Delete {names}? Their passages leave search at once. Answers that cited them "
                "keep their quotes.",
                names=names,
            ),
            icon=":material/delete:",
        )
    else:
        st.info(
            _("Re-index {names} from the stored originals?", names=names),
            icon=":material/refresh:",
        )
    yes, no = st.columns(2)
    confirm = _("Yes, delete") if deleting else _("Yes, reindex")
    if yes.button(confirm, type="primary", key="confirm_action"):
        # Settled before the work starts: a click while it runs starts a new run that must
        # find neither this confirmation nor ticks on rows that are about to change.
        st.session_state.pop(PENDING_ACTION)
        reset_table()
        with st.status(_("Delete…") if deleting else _("Reindex…")) as status:
            for doc in chosen:
                if deleting:
                    engine.delete_document(doc.id, actor=actor)
                    shared.show_text(_("Deleted {name}.", name=doc.name))
                else:
                    result = engine.reindex(doc.id, actor=actor)
                    outcome = _(OUTCOME_TEXT[result.outcome]).lower()
                    chunks = i18n.ngettext("{n} chunk", "{n} chunks", result.chunks)
                    shared.show_text(f"{doc.name}: {outcome} ({chunks})")
            status.update(
                label=_("Delete done.") if deleting else _("Reindex done."), state="complete"
            )
        done = (
            _("Delete done: {names}.", names=names)
            if deleting
            else _("Reindex done: {names}.", names=names)
        )
        st.toast(done, icon=":material/check_circle:")
        st.rerun()
    if no.button(_("Cancel"), key="cancel_action"):
        st.session_state.pop(PENDING_ACTION)
        st.rerun()


def actions(selected: list[DocumentInfo]) -> None:
    st.caption(_("{n} selected", n=i18n.number(len(selected))))
    delete, reindex = st.columns(2)
    delete.button(
        _("Delete…"), icon=":material/delete:", on_click=ask_confirmation, args=("delete", selected)
    )
    reindex.button(
        _("Re-index…"),
        icon=":material/refresh:",
        on_click=ask_confirmation,
        args=("reindex", selected),
    )
    if len(selected) != 1:
        st.caption(_("Select one document to edit its tags."))
        return
    doc = selected[0]
    with st.form(f"tags_{doc.id}", border=False):
        text = st.text_input(
            _("Tags of {name}", name=shared.inert(doc.name)),
            value=", ".join(doc.tags or []),
            key=f"tags_input_{doc.id}",
        )
        if st.form_submit_button(_("Save tags")):
            with st.spinner(_("Saving tags and re-indexing…")):
                engine.set_document_tags(doc.id, parse_tags(text), actor=actor)
            reset_table()
            st.toast(
                _("Tags of {name} saved.", name=shared.inert(doc.name)),
                icon=":material/check_circle:",
            )
            st.rerun()


def main() -> None:
    st.title(_("Documents"))
    upload_section()
    documents = engine.documents()
    st.subheader(i18n.ngettext("{n} document", "{n} documents", len(documents)))
    if not documents:
        st.info(_("Nothing here yet. Upload files above, or load the sample documents."))
        if st.button(_("Load the sample documents"), icon=":material/library_add:"):
            shared.load_samples(engine, actor)
            st.rerun()
        return
    stale = engine.stale_documents()
    if stale and PENDING_ACTION not in st.session_state:
        st.warning(
            i18n.ngettext(
                "{n} document was indexed with another embedding model than {model} and is "
                "not searched until re-indexed.",
                "{n} documents were indexed with another embedding model than {model} and are "
                "not searched until re-indexed.",
                len(stale),
                model=shared.inert(engine.embedding_model),
            ),
            icon=":material/sync_problem:",
        )
        st.button(
            i18n.ngettext("Re-index {n} document…", "Re-index {n} documents…", len(stale)),
            icon=":material/refresh:",
            on_click=ask_confirmation,
            args=("reindex", stale),
            key="reindex_stale",
        )
    selected = documents_table(documents)
    if PENDING_ACTION in st.session_state:
        confirm_pending(documents)
    elif selected:
        actions(selected)
    else:
        st.caption(_("Select documents in the table to delete, re-index or tag them."))


main()
