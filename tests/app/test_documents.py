"""The documents page (admins): upload several files at once, one of them corrupt, and see each
file's outcome; the table of documents; delete and re-index behind a confirmation; tags."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fpdf import FPDF
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.testing.v1 import AppTest

import ui as _shared
from core.db.models import DocumentStatus
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from core.stores.base import SearchFilter
from tests.app.support import HANDBOOK, LEAVE_QUESTION, make_app, on_page, run, texts

CORRUPT_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage"


def documents_page(signed_in: str = "ada") -> AppTest:
    return on_page(make_app(signed_in=signed_in), "pages/documents.py")


def table_key(at: AppTest) -> str:
    """The documents table's current key (it changes whenever its rows change)."""
    [key] = [df.key for df in at.dataframe if df.key and df.key.startswith("documents_table")]
    return key


def documents_table(at: AppTest) -> pd.DataFrame:
    return at.dataframe(key=table_key(at)).value


def select_rows(at: AppTest, *rows: int) -> AppTest:
    at.session_state[table_key(at)] = {"selection": {"rows": list(rows)}}
    return run(at)


def selected_rows(at: AppTest) -> list[int]:
    """The rows ticked in the table as the browser holds them (AppTest keeps widget state
    from run to run as the browser does)."""
    state = at.session_state[table_key(at)] if table_key(at) in at.session_state else None
    return list(state["selection"]["rows"]) if state else []


def outcomes_table(at: AppTest) -> pd.DataFrame:
    return next(df.value for df in at.dataframe if "Outcome" in df.value.columns)


def click(at: AppTest, label: str) -> AppTest:
    return run(next(b for b in at.button if b.label == label).click())


def test_upload_reports_each_file_and_lists_the_documents(engine: Loupe) -> None:
    at = documents_page()
    assert "Nothing here yet" in texts(at)
    uploader = at.file_uploader[0]
    assert uploader.accept_multiple_files
    assert {".pdf", ".docx", ".md", ".html", ".csv", ".txt"} <= set(uploader.allowed_type)

    uploader.set_value(
        [
            ("handbook.md", HANDBOOK.data, "text/markdown"),
            ("broken.pdf", CORRUPT_PDF, "application/pdf"),
            ("copy-of-handbook.md", HANDBOOK.data, "text/markdown"),
        ]
    )
    at.text_input(key="upload_tags").input("hr, policies")
    run(at)
    click(at, "Index 3 files")

    bars = {bar.text: bar.value for bar in at.progress}
    assert bars == {
        "handbook.md: indexed": 100,
        "copy-of-handbook.md: skipped: duplicate": 100,
    }
    # A failed file does not end on a full progress bar (which reads as done): its error
    # takes the bar's place.
    assert "broken.pdf: failed" in [e.value for e in at.error]
    assert "2 of 3 files indexed or already present. 1 failed" in at.warning[0].value
    outcomes = outcomes_table(at)
    assert list(outcomes["Outcome"]) == ["Indexed", "Failed", "Skipped: duplicate"]
    assert "damaged or not a PDF" in outcomes["Details"][1]
    assert "Same content as 'handbook.md'" in outcomes["Details"][2]
    # No file here has pages (none is a readable PDF): no column of "None".
    assert "Pages" not in outcomes.columns

    table = documents_table(at)
    assert set(table["Name"]) == {"handbook.md", "broken.pdf"}
    assert "Pages" not in table.columns
    row = table[table["Name"] == "handbook.md"].iloc[0]
    assert row["Status"] == "✅ ready" and row["Chunks"] == 2 and row["Uploaded by"] == "ada"
    assert list(row["Tags"]) == ["hr", "policies"]
    broken = table[table["Name"] == "broken.pdf"].iloc[0]
    assert broken["Status"] == "❌ failed" and "damaged" in broken["Error"]

    # The next run offers an empty file picker; the outcomes stay until the next upload.
    run(at)
    assert not at.file_uploader[0].value
    assert outcomes_table(at).shape[0] == 3
    statuses = {d.name: d.status for d in engine.documents()}
    assert statuses == {"handbook.md": DocumentStatus.ready, "broken.pdf": DocumentStatus.failed}


def test_delete_asks_first_and_removes_the_passages(documents: Loupe) -> None:
    at = documents_page()
    names = list(documents_table(at)["Name"])
    handbook = next(d for d in documents.documents() if d.name == "handbook.md")
    select_rows(at, names.index("handbook.md"))

    click(at, "Delete…")
    assert "Delete handbook.md?" in at.warning[0].value
    click(at, "Cancel")
    assert documents.store.count(handbook.id) == 2

    select_rows(at, names.index("handbook.md"))
    click(at, "Delete…")
    click(at, "Yes, delete")
    assert [d.name for d in documents.documents()] == ["travel.md"]
    assert documents.store.count(handbook.id) == 0
    assert list(documents_table(at)["Name"]) == ["travel.md"]


def test_only_pdfs_show_pages(documents: Loupe) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ("Page one of the guide.", "Page two of the guide."):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    documents.ingest([IngestItem("guide.pdf", bytes(pdf.output()))])
    table = documents_table(documents_page())
    pages = dict(zip(table["Name"], table["Pages"], strict=True))
    assert pages == {"guide.pdf": "2", "handbook.md": "—", "travel.md": "—"}


def test_after_deleting_the_grid_has_no_ticked_rows(documents: Loupe) -> None:
    more = [
        IngestItem(f"note-{n}.md", f"# Note {n}\n\nNote number {n}.\n".encode()) for n in range(3)
    ]
    documents.ingest(more)
    at = documents_page()
    names = list(documents_table(at)["Name"])
    assert len(names) == 5
    select_rows(at, 0, 1, 2)
    ticked_table = table_key(at)
    click(at, "Delete…")
    click(at, "Yes, delete")
    # Three documents went; the two left are not ticked, and the caption agrees.
    assert list(documents_table(at)["Name"]) == names[3:]
    # The browser keeps a table's ticks by the table's key whatever the server forgets, so
    # rows 0-2 would stay ticked (on other documents) unless the table is a new widget.
    assert table_key(at) != ticked_table
    assert selected_rows(at) == []
    assert "Select documents in the table to delete, re-index or tag them." in texts(at)
    assert not [c for c in at.caption if c.value.endswith(" selected")]


def test_an_interrupted_reindex_leaves_no_stale_confirmation(
    documents: Loupe, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = documents_page()
    select_rows(at, 0)
    click(at, "Re-index…")
    real = documents.reindex

    def reindex_then_clicked_elsewhere(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        # The admin clicked while the re-index ran: Streamlit stops this run and starts anew.
        raise RerunException(RerunData())

    monkeypatch.setattr(documents, "reindex", reindex_then_clicked_elsewhere)
    click(at, "Yes, reindex")
    run(at)  # the run the click started
    assert not [i for i in at.info if "Re-index" in i.value]
    assert not [b for b in at.button if b.label in ("Yes, reindex", "Cancel")]
    assert set(documents_table(at)["Status"]) == {"✅ ready"}
    assert selected_rows(at) == []


def test_reindex_rebuilds_from_the_stored_original(documents: Loupe) -> None:
    at = documents_page()
    select_rows(at, 0, 1)
    click(at, "Re-index…")
    assert "Re-index" in at.info[0].value
    click(at, "Yes, reindex")
    assert [t.value for t in at.toast][-1].startswith("Reindex done")
    assert {(d.status, d.chunk_count) for d in documents.documents()} == {
        (DocumentStatus.ready, 2),
        (DocumentStatus.ready, 1),
    }


def test_tags_are_saved_and_used_by_searches(documents: Loupe) -> None:
    at = documents_page()
    names = list(documents_table(at)["Name"])
    select_rows(at, names.index("handbook.md"))
    handbook = next(d for d in documents.documents() if d.name == "handbook.md")
    tags = at.text_input(key=f"tags_input_{handbook.id}")
    assert tags.label == "Tags of " + _shared.inert("handbook.md") and tags.value == "policies"
    tags.input("hr, leave")
    click(at, "Save tags")

    assert [d.tags for d in documents.documents() if d.id == handbook.id] == [["hr", "leave"]]
    scoped = documents.ask(LEAVE_QUESTION, filters=SearchFilter(tags=("leave",)))
    assert {s.document for s in scoped.sources} == {"handbook.md"}
    old_tag = documents.ask(LEAVE_QUESTION, filters=SearchFilter(tags=("policies",)))
    assert {s.document for s in old_tag.sources} <= {"travel.md"}


def test_samples_load_from_an_empty_documents_page(engine: Loupe) -> None:
    at = documents_page()
    click(at, "Load the sample documents")
    assert len(engine.documents()) == 4
    assert documents_table(at).shape[0] == 4
