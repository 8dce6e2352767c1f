"""Whether two questions ask for the same thing: the precision guard behind verified answers.

A verified answer is served as *the* answer, under an expert's name, so offering it for a
different question is the worst mistake the feedback loop can make. Sentence embeddings are
good at finding candidates and bad at this last step: "When did the last glacial end?" and
"... start?" are 0.93 apart on MiniLM, "Who wrote the paper ...?" and "When was the paper
published ...?" 0.97. So a candidate found by similarity must also pass this check, which
compares what each question asks for, term by term:

- the kind of answer wanted (a time, a person, a place, a count, a reason, yes or no ...);
- negation (one says "not", the other does not);
- numbers ("in 1978", "five years");
- named entities: a capitalised name or acronym of one must appear in the other ("AFC" never
  matches "NFC", "Oslo" never "Singapore"), whatever the case the user typed;
- the remaining content words, after stemming and a small table of interchangeable question
  words (`EQUIVALENT`): any word left over on either side refuses the match.

The rules are deliberately strict: a refused paraphrase costs one ordinary answer, a wrongly
accepted one serves a wrong answer as expert-verified. Recall and false offers are measured by
`python -m core eval --matching` (core/evaluation/matching.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from core.answer.text import stem_words

# Word-for-word equivalents in how people phrase a question about a document. Each group maps
# to its first word. General English only, no domain terms: a domain synonym (a "hire" is an
# "employee") is exactly where two questions can start to differ.
EQUIVALENT: tuple[tuple[str, ...], ...] = (
    ("allowed", "permitted", "may", "can", "able", "permission"),
    ("required", "mandatory", "must", "need", "needed", "obligatory", "necessary", "have"),
    ("begin", "start", "commence", "began", "started", "begun"),
    ("big", "large", "much"),
    ("annual", "yearly", "year", "per-year"),
    ("daily", "day", "per-day"),
    ("weekly", "week"),
    ("monthly", "month"),
    ("buy", "purchase", "bought"),
    ("kind", "type", "sort"),
    ("email", "e-mail", "mail"),
    ("sick", "ill"),
    ("remote", "remotely", "home"),
    ("lose", "lost"),
    ("long", "length"),
    ("limit", "maximum", "cap"),
    ("many", "number"),
)

# Words that frame a question without saying what it asks for ("Could you tell me ...",
# "What should I do ..."), pronouns, articles and auxiliaries.
STOPWORDS = frozenset(
    """
    a an the this that these those of in on at to for from by with within about as into onto over
    under per and or but if then than so such i me my mine we us our you your yours he him his
    she her it its they them their one ones someone anyone somebody anybody is are was were be
    been being am do does did done doing has had will would shall should could might there
    here please
    tell know let like want wonder say says explain also just exactly actually really still
    some any all each every what which who whom whose when where why how whatever whichever
    """.split()
)
NEGATIONS = frozenset("not no never none nobody nothing nowhere neither nor without cannot".split())
NUMBER_WORDS = frozenset(
    """
    two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
    hundred thousand million billion trillion dozen half quarter
    """.split()
)
# Verbs of coming to have ("do new employees get / receive ...", "if I get an e-mail", "get
# compensated"), as stems: they say how a question is phrased, not what it asks for.
LIGHT_VERBS = frozenset(("get", "got", "receiv", "obtain"))
_AUXILIARIES = frozenset(
    "am is are was were do does did can could may might must shall should will would "
    "has have had".split()
)
_CONTRACTIONS = (
    (re.compile(r"\bcan't\b", re.I), "can not"),
    (re.compile(r"\bwon't\b", re.I), "will not"),
    (re.compile(r"n't\b", re.I), " not"),
    (re.compile(r"'(s|re|ve|ll|d|m)\b", re.I), ""),
)
_TOKEN = re.compile(r"[^\W_](?:[\w.,'’-]*[^\W_])?")
_NUMBER = re.compile(r"^\d[\d.,]*$")
_ASKS = (  # (pattern on the lower-cased question, kind of answer); the first match wins
    (re.compile(r"\bhow (old|young)\b"), "age"),
    (re.compile(r"\bhow (long|much time)\b|\bwhat is the (length|duration) of\b"), "duration"),
    (re.compile(r"\bhow many\b|\bwhat is the number of\b"), "count"),
    (
        re.compile(
            r"\bwhen\b|\b(what|which|in what|in which) (year|date|day|month|time|century)\b"
        ),
        "time",
    ),
    (
        re.compile(r"\bwhere\b|\b(what|which|in what|in which) (place|city|country|location)\b"),
        "place",
    ),
    (re.compile(r"\b(who|whom|whose)\b"), "person"),
    (re.compile(r"\bwhy\b|\bfor what reason\b"), "reason"),
    # An amount or a size is what a "what is the ..." question asks for too.
    (re.compile(r"\bhow (much|big|large)\b"), "thing"),
    (re.compile(r"\bhow\b"), "manner"),
    (re.compile(r"\b(what|which)\b"), "thing"),
)


@lru_cache(maxsize=1)
def _equivalents() -> dict[str, str]:
    return {word: group[0] for group in EQUIVALENT for word in group}


@dataclass(frozen=True)
class Question:
    """What a question asks for, reduced to the parts the guard compares."""

    asks: str  # time, person, place, count, age, duration, reason, manner, thing, yes/no, none
    negated: bool
    numbers: frozenset[str]
    entities: frozenset[str]  # lower-cased names and acronyms
    words: frozenset[str]  # every lower-cased token, to find an entity typed in lower case
    terms: frozenset[str]  # content terms: stemmed, equivalents folded


def _expand(text: str) -> str:
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text.replace("’", "'")


def _asks(lowered: str, tokens: list[str]) -> tuple[str, str]:
    """The kind of answer wanted, and the question without the words that said so ("what
    year", "how long"): those are compared as the kind, not as content terms."""
    for pattern, kind in _ASKS:
        found = pattern.search(lowered)
        if found:
            rest = lowered[: found.start()] + " " + lowered[found.end() :]
            if kind == "duration":  # "how long does it last / take"
                rest = re.sub(r"\b(last|lasts|take|takes)\b", " ", rest)
            return kind, rest
    if tokens and tokens[0] in _AUXILIARIES:
        return "yes/no", lowered
    return "none", lowered


def analyse(question: str) -> Question:
    """Split a question into the parts `refusal` compares."""
    text = _expand(question)
    raw = [t.strip(".,'-") for t in _TOKEN.findall(text)]
    raw = [t for t in raw if t]
    tokens = [t.lower() for t in raw]
    entities = {
        t.lower()
        for i, t in enumerate(raw)
        # A capital after the first word, or an acronym anywhere ("AFC"), is a name.
        if (t[0].isupper() and i > 0) or (len(t) > 1 and t.isupper() and t.isalpha())
    }
    entities -= STOPWORDS
    numbers = {t.replace(",", "") for t in tokens if _NUMBER.match(t)}
    numbers |= {t for t in tokens if t in NUMBER_WORDS}
    asks, rest = _asks(" ".join(tokens), tokens)
    equivalents = _equivalents()
    kept = [
        equivalents.get(t, t).replace("-", "")
        for t in rest.split()
        if t not in STOPWORDS and t not in NEGATIONS and t not in numbers
    ]
    terms = set(stem_words(kept)) - LIGHT_VERBS
    return Question(
        asks=asks,
        negated=any(t in NEGATIONS for t in tokens),
        numbers=frozenset(numbers),
        entities=frozenset(entities),
        words=frozenset(tokens),
        terms=frozenset(terms),
    )


def _compatible(a: str, b: str) -> bool:
    """A keyword query ("Oslo hotel limit?") asks for whatever a "what" question asks for."""
    return a == b or {a, b} <= {"thing", "none"}


def refusal(asked: str, verified: str) -> str | None:
    """Why `asked` must not get the answer verified for `verified`, or None when both ask for
    the same thing. The reason is shown in the evaluation and logs, so it names the difference."""
    a, v = analyse(asked), analyse(verified)
    if not _compatible(a.asks, v.asks):
        return f"asks for a {a.asks}, not a {v.asks}"
    if a.negated != v.negated:
        return "one is negated"
    if a.numbers != v.numbers:
        return f"numbers differ: {sorted(a.numbers ^ v.numbers)}"
    missing = sorted((a.entities - v.words) | (v.entities - a.words))
    if missing:
        return f"names differ: {missing}"
    extra = sorted(a.terms ^ v.terms)
    if extra:
        return f"terms differ: {extra}"
    return None
