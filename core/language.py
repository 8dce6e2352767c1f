"""Which language a text is in, as far as Loupe needs to know, and whether an embedding model
reads it.

Loupe's users read English and Korean. Korean is told apart by its script (Hangul); anything
else is "unknown", and the documents' configured language applies. Questions use this to pick
their calibration; search, the extractive answerer and chunking use it to know whether the
embedding model's vectors mean anything for a text.
"""

from __future__ import annotations

import re

HANGUL = re.compile(r"[\uac00-\ud7a3]")  # a Hangul syllable


def language_of(text: str) -> str | None:
    """ "ko" when at least a third of the letters are Hangul, else None (unknown: the
    documents' configured language applies). Korean is the one language Loupe ships
    calibrations for besides English, and the only one told apart here."""
    letters = [ch for ch in text if ch.isalpha()]
    hangul = sum(1 for ch in letters if HANGUL.match(ch))
    return "ko" if letters and hangul * 3 >= len(letters) else None


def vectors_read(text: str, languages: frozenset[str] | None) -> bool:
    """Whether an embedding model trained on `languages` (None: many) gives `text` vectors with
    meaning. all-MiniLM-L6-v2 is English-only: on Korean its similarities are noise (the gold
    KorQuAD chunk first for 52% of questions in hybrid search, 91% by keywords alone), so a
    Korean question is then searched and answered by its words (bench/KOREAN.md)."""
    language = language_of(text)
    return languages is None or language is None or language in languages
