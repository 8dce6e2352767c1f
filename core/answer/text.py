"""Sentence splitting and content terms, shared by the extractive answerer and confidence.

Both need the same notion of "which words matter": lower-cased words without English stop
words, and for Korean the character bigrams of each word (particles attach to words, so whole
words rarely match across sentences).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

import snowballstemmer

from core.answer.citations import LEADING_MARKERS
from core.language import HANGUL

# A full stop ends a sentence unless it ends an initial ("Nicholas E. Golovin", "U.S. Army")
# or a title ("Dr. Smith"): cut there, the answer was "...headed by Nicholas E."
_SENTENCE_END = re.compile(
    r"(?<=[.!?。！？])(?<!\s[A-Z]\.)(?<!\.[A-Z]\.)(?<!\s(?:Mr|Dr|St|Ms|Jr|Sr|Mt|Lt|vs)\.)"
    r"(?<!\s(?:Mrs|Gen|Col|Rev|Sgt|Fig|Gov|Sen)\.)\s+|\n{2,}|\n(?=[-*•]\s)"
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # words; an underscore separates ("hotel_per_night")
_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours""".split()
)


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping the citation markers written after its full stop
    ("Fact. [1] Next fact.")."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        markers = LEADING_MARKERS.match(piece)
        if markers and sentences:
            sentences[-1] += " " + markers.group(0).strip()
            piece = piece[markers.end() :].strip()
        if piece:
            sentences.append(piece)
    return sentences


def content_terms(text: str) -> set[str]:
    terms: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if HANGUL.search(word) and len(word) > 1:
            terms.update(word[i : i + 2] for i in range(len(word) - 1))
        elif word not in _STOP_WORDS and (len(word) > 1 or word.isdigit()):
            terms.add(word)
    return terms


_STEMMER = snowballstemmer.stemmer("english")
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer keeps its word in itself while it works


def stem_words(words: Iterable[str]) -> list[str]:
    """English Snowball stems ("manages", "manager" -> "manag"); other scripts pass through."""
    with _STEMMER_LOCK:
        return list(_STEMMER.stemWords(list(words)))


def stemmed_terms(text: str) -> set[str]:
    """Content terms reduced to their stems, so a column "manager" matches a question that
    asks who "manages"."""
    return set(stem_words(content_terms(text)))


def coverage(needles: set[str], haystack: set[str]) -> float:
    """Share of `needles` found in `haystack` (1.0 when there is nothing to find)."""
    if not needles:
        return 1.0
    return len(needles & haystack) / len(needles)
