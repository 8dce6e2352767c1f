"""Chunking with the real LangChain splitter: sizes, order, metadata, Korean."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.ingest.chunking import ChunkDraft, ChunkPlan, chunk_sections
from core.ingest.loaders import Section

WORDS = "retrieval answers cite pages while experts review feedback and scores".split()


def prose(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    paragraphs, sentence_list = [], []
    for i in range(sentences):
        words = rng.choices(WORDS, k=rng.randint(4, 14))
        sentence_list.append(" ".join(words).capitalize() + rng.choice([".", "?", "!"]))
        if i % 5 == 4:
            paragraphs.append(" ".join(sentence_list))
            sentence_list = []
    paragraphs.append(" ".join(sentence_list))
    return "\n\n".join(p for p in paragraphs if p)


SECTIONS = [
    Section(prose(1, 30), page=1),
    Section(prose(2, 30), page=2, heading="Setup > Linux"),
    Section("   \n\n  ", page=3),
    Section(prose(3, 10), heading="Usage"),
]


def test_positions_are_sequential_and_stable() -> None:
    first = chunk_sections(SECTIONS, ChunkPlan(200, 40))
    again = chunk_sections(SECTIONS, ChunkPlan(200, 40))
    assert first == again
    assert [c.position for c in first] == list(range(len(first)))
    assert len(first) > len(SECTIONS)


@pytest.mark.parametrize(("size", "overlap"), [(40, 0), (120, 30), (500, 100)])
def test_chunks_respect_size_and_cover_the_text(size: int, overlap: int) -> None:
    chunks = chunk_sections(SECTIONS, ChunkPlan(size, overlap))
    assert all(0 < len(c.text) <= size for c in chunks)
    assert all(c.text == c.text.strip() for c in chunks)
    words_in = [w for s in SECTIONS for w in s.text.split()]
    words_out = [w for c in chunks for w in c.text.split()]
    if overlap == 0:
        assert words_out == words_in
    else:
        assert set(words_out) == set(words_in)


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    # LangChain overlaps whole pieces of the level it split at; words here, so it is visible.
    words = [f"w{i}" for i in range(120)]
    chunks = chunk_sections([Section(" ".join(words))], ChunkPlan(60, 20))
    assert len(chunks) > 2
    for previous, current in zip(chunks, chunks[1:], strict=False):
        before, after = previous.text.split(), current.text.split()
        start = before.index(after[0])  # the next chunk starts inside this one...
        assert start > 0 and len(" ".join(before[start:])) <= 20  # ...at most `overlap` back
    assert [w for w in words if not any(w in c.text.split() for c in chunks)] == []


def test_chunks_never_cross_sections_and_keep_their_metadata() -> None:
    chunks = chunk_sections(SECTIONS, ChunkPlan(150, 20))
    by_origin = {(s.page, s.heading): s.text for s in SECTIONS}
    assert {(c.page, c.heading) for c in chunks} == {
        (1, None),
        (2, "Setup > Linux"),
        (None, "Usage"),
    }
    for chunk in chunks:
        assert chunk.text in by_origin[(chunk.page, chunk.heading)]
    # Document order: all of page 1, then page 2, then the Usage section.
    origins = [(c.page, c.heading) for c in chunks]
    assert origins == sorted(origins, key=[(1, None), (2, "Setup > Linux"), (None, "Usage")].index)


def test_paragraphs_are_preferred_over_mid_sentence_cuts() -> None:
    first, second = "A short first paragraph.", "A second paragraph, also short."
    chunks = chunk_sections([Section(f"{first}\n\n{second}")], ChunkPlan(40, 0))
    assert [c.text for c in chunks] == [first, second]


def test_sentences_keep_their_own_full_stop() -> None:
    text = "One sentence here. Another sentence there? A third one now! And a last."
    chunks = chunk_sections([Section(text)], ChunkPlan(25, 0))
    assert [c.text for c in chunks] == [
        "One sentence here.",
        "Another sentence there?",
        "A third one now!",
        "And a last.",
    ]


def test_korean_text_splits_at_sentence_ends() -> None:
    sentence = "이 문서는 검색 증강 생성 시스템의 설치 방법을 설명합니다. "
    section = Section((sentence * 12).strip(), page=7, heading="설치 안내")
    chunks = chunk_sections([section], ChunkPlan(100, 0))
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text) <= 100
        assert chunk.text.endswith("설명합니다.")
        assert (chunk.page, chunk.heading) == (7, "설치 안내")
    assert "".join(c.text.replace(" ", "") for c in chunks) == section.text.replace(" ", "")


def test_nothing_to_chunk() -> None:
    assert chunk_sections([], ChunkPlan(100, 10)) == []
    assert chunk_sections([Section(" \n\t ")], ChunkPlan(100, 10)) == []


def test_short_section_is_one_chunk() -> None:
    assert chunk_sections([Section("  Just this.  ", page=2)], ChunkPlan(100, 10)) == [
        ChunkDraft(text="Just this.", position=0, page=2, heading=None)
    ]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, 150), (100, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_sections([Section("text")], ChunkPlan(size, overlap))


@pytest.mark.parametrize("size", [16, 40, 120])
def test_token_sized_chunks_fit_the_model_window(size: int) -> None:
    """Counted in the bundled MiniLM's own tokens, every Korean and English chunk is at most
    `size` tokens as the model tokenizes it: nothing past the window is cut off unseen."""
    from transformers import AutoTokenizer

    from core.embeddings import bundled_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm_path())

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    korean = Path(__file__).parents[2] / "samples" / "benefits-ko.md"
    sections = [Section(korean.read_text(encoding="utf-8")), *SECTIONS]
    chunks = chunk_sections(sections, ChunkPlan(size, size // 4, tokens))
    assert chunks and all(0 < tokens(c.text) <= size for c in chunks)
    # Korean costs far more tokens than characters here, so by characters chunks would be
    # several times over the window.
    assert max(tokens(c.text) / len(c.text) for c in chunks if "복리후생" in c.text) > 1


def test_chunk_plan_counts_the_active_models_tokens_up_to_its_window() -> None:
    from langchain_core.embeddings import FakeEmbeddings

    from core.config import Settings
    from core.embeddings import get_embeddings
    from core.ingest.chunking import chunk_plan

    minilm = get_embeddings(Settings())
    plan = chunk_plan(Settings(), minilm)
    # all-MiniLM-L6-v2 embeds 256 tokens, [CLS] and [SEP] included.
    assert (plan.size, plan.overlap, plan.unit) == (254, 38, "tokens")
    assert plan.length("복리후생") == minilm.count_tokens("복리후생") > 1
    assert chunk_plan(Settings(chunk_size=100_000), minilm).size == 254
    assert chunk_plan(Settings(chunk_size=64, chunk_overlap=8), minilm).overlap == 8
    # A hosted model without a local tokenizer: characters, as before.
    hosted = chunk_plan(Settings(), FakeEmbeddings(size=8))
    assert (hosted.size, hosted.unit, hosted.length("abc")) == (1000, "characters", 3)


def test_text_the_model_does_not_read_is_sized_in_characters() -> None:
    # The English-only MiniLM's vectors mean nothing for Korean, which is searched by its
    # words: window-sized chunks cost ~4.5 chunks a KorQuAD paragraph to embed for nothing.
    from core.config import Settings
    from core.embeddings import get_embeddings
    from core.ingest.chunking import chunk_plan

    minilm = get_embeddings(Settings())
    plan = chunk_plan(Settings(), minilm)
    korean = (Path(__file__).parents[2] / "samples" / "benefits-ko.md").read_text("utf-8")
    english = SECTIONS[0].text
    assert plan.for_text(english) is plan
    assert (plan.for_text(korean).size, plan.for_text(korean).unit) == (1000, "characters")
    chunks = chunk_sections([Section(korean)], plan)
    assert all(len(c.text) <= 1000 for c in chunks)
    assert max(minilm.count_tokens(c.text) for c in chunks) > plan.size
    # A multilingual model reads Korean: its tokens size every chunk.
    assert chunk_plan(Settings(embeddings="e5"), minilm).unread is None


def test_a_heading_opening_a_long_section_goes_with_its_first_chunk() -> None:
    # Split on its own the heading was a chunk of nothing but "## Paragraph 4", which outranked
    # the passage it heads in XQuAD searches.
    body = prose(4, 12)
    text = "## Paragraph 4\n\n" + body
    chunks = chunk_sections([Section(text, heading="Warsaw > Paragraph 4")], ChunkPlan(120, 20))
    assert len(chunks) > 1 and all(len(c.text) <= 120 for c in chunks)
    assert chunks[0].text.startswith("## Paragraph 4\n\n") and len(chunks[0].text) > 40
    assert not any(c.text.lstrip().startswith("#") for c in chunks[1:])
    assert all(body.find(c.text.removeprefix("## Paragraph 4\n\n")[:30]) >= 0 for c in chunks)
