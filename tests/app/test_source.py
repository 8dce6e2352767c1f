"""The Source page: `[n]` of an answer opened at the cited place (a PDF page rendered with the
passage highlighted, other formats in context), the original downloadable by whoever may read
the answer, and nobody else."""

from __future__ import annotations

from fpdf import FPDF
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from core.auth import Actor
from core.ingest.pipeline import IngestItem
from core.service import Loupe
from tests.app.support import LEAVE_QUESTION, make_app, run, texts

BIKE = "Where is the secure bicycle room?"
UMA = Actor("uma", "user")


def commuting_pdf() -> IngestItem:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Canteen hours are 8 to 15 on weekdays. " * 3)
    pdf.add_page()
    pdf.multi_cell(
        0,
        8,
        "The secure bicycle room is on the basement level of the north garage. Reception "
        "hands out the key card once you have signed the bike policy.",
    )
    return IngestItem("commuting.pdf", bytes(pdf.output()))


def source_page(signed_in: str | None, answer_id: str, n: int = 1) -> AppTest:
    at = make_app(signed_in=signed_in)
    at._page_hash = calc_hash("source")  # /source?answer=…&n=…, as the [n] link opens it
    at.query_params["answer"] = answer_id
    at.query_params["n"] = str(n)
    return run(at)


def test_a_pdf_citation_opens_at_its_page_with_a_download(documents: Loupe) -> None:
    documents.ingest([commuting_pdf()])
    answer = documents.ask(BIKE, actor=UMA)
    [cited] = [s for s in answer.citations if s.document == "commuting.pdf"]
    assert cited.page == 2
    at = source_page("uma", answer.answer_id or "", cited.n)
    assert at.title[0].value == "Source"
    assert at.number_input(key="page").value == 2
    [image] = at.get("image")
    assert "commuting.pdf, page 2" in str(image.proto)
    assert "could not be located" not in texts(at)
    [download] = at.get("download_button")
    assert download.proto.label == "Download the original"
    assert download.proto.url.endswith(".pdf")


def test_other_formats_show_the_passage_in_context(documents: Loupe) -> None:
    answer = documents.ask(LEAVE_QUESTION, actor=UMA)
    at = source_page("uma", answer.answer_id or "")
    [cited] = answer.citations
    passage = next(b for b in at.main if getattr(b, "type", None) == "flex_container")
    shown = [t.value for t in passage.text]
    # The passage as the document has it, framed, then the text that follows it.
    assert cited.quote in shown
    assert any(t.strip().startswith("## Remote work") for t in shown)


def test_only_readers_of_the_answer_may_open_its_source(documents: Loupe) -> None:
    answer = documents.ask(LEAVE_QUESTION, actor=UMA)
    refused = source_page("ursula", answer.answer_id or "")
    assert refused.error[0].value == "This answer was given to someone else."
    assert not refused.get("download_button")
    # Experts review every answer, so they may.
    assert source_page("erin", answer.answer_id or "").title[0].value == "Source"
    assert "no passage [9]" in source_page("uma", answer.answer_id or "", 9).error[0].value


def test_a_deleted_documents_source_shows_the_quote_only(documents: Loupe) -> None:
    answer = documents.ask(LEAVE_QUESTION, actor=UMA)
    [cited] = answer.citations
    documents.delete_document(cited.document_id)
    at = source_page("uma", answer.answer_id or "")
    assert "The original is no longer kept" in texts(at)
    assert not at.get("download_button")
    assert cited.quote in [t.value for t in at.text]
