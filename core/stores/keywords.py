"""Keyword-search text for the embedded store.

LanceDB's tokenizers split on spaces and punctuation, which suits English but not Korean: a
Korean word carries its particles ("문서에서", "문서를"), so a query for "문서" would miss both.
Two ways to make Korean searchable by keyword, measured on KorQuAD in bench/korean_keywords.py:
every Hangul word indexed together with its character bigrams (as Lucene's CJK analyzer does,
no dictionary), or kiwipiepy's morphological analysis, which keeps a word's content morphemes
(nouns, verb and adjective stems, roots) and drops its particles and endings. Text without
Hangul passes through unchanged either way.
"""

from __future__ import annotations

import re
import threading
from typing import Any

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]{2,}")
# Kiwi's part-of-speech tags (Sejong) that carry content: nouns, numerals, pronouns, verb and
# adjective stems, roots, adverbs, determiners, and foreign words, hanja and numbers written
# inside Korean text. Particles (J*), endings (E*), affixes and punctuation are left out.
_CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "MAG", "MM", "SL", "SH", "SN"}
)
_kiwi: Any = None
_kiwi_lock = threading.Lock()


def _with_bigrams(match: re.Match[str]) -> str:
    word = match.group(0)
    bigrams = " ".join(word[i : i + 2] for i in range(len(word) - 1))
    return f"{word} {bigrams}"


def bigram_text(text: str) -> str:
    """Each Hangul word followed by its character bigrams."""
    return _HANGUL_RUN.sub(_with_bigrams, text)


def morpheme_text(text: str) -> str:
    """The content morphemes of text that has Hangul, in order, one per token."""
    if not _HANGUL.search(text):
        return text
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            _kiwi = Kiwi()  # ~3 s and ~100 MB, once per process
        tokens = _kiwi.tokenize(text)
    return " ".join(t.form for t in tokens if t.tag in _CONTENT_TAGS)


def keyword_text(text: str) -> str:
    """The text to index (or to query with) for keyword search."""
    return bigram_text(text)
