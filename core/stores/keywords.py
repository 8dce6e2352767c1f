"""Keyword-search text for the embedded store.

LanceDB's tokenizers split on spaces and punctuation, which suits English but not Korean: a
Korean word carries its particles ("문서에서", "문서를"), so a query for "문서" would miss both.
Indexing every Hangul word together with its character bigrams (as Lucene's CJK analyzer does)
makes Korean searchable by keyword without a dictionary; English text passes through unchanged.
Measured against kiwipiepy's morphological analysis on KorQuAD (bench/korean_keywords.py,
bench/KOREAN.md): bigrams rank the gold paragraph first more often in hybrid search, the one
Loupe runs, and cost ~1/100 of the analysis time.
"""

from __future__ import annotations

import re

_HANGUL_RUN = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]{2,}")


def _with_bigrams(match: re.Match[str]) -> str:
    word = match.group(0)
    bigrams = " ".join(word[i : i + 2] for i in range(len(word) - 1))
    return f"{word} {bigrams}"


def keyword_text(text: str) -> str:
    """The text to index (or to query with) for keyword search."""
    return _HANGUL_RUN.sub(_with_bigrams, text)
