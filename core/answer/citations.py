"""Parses `[n]` citation markers in generated text.

Markers are checked against the passages actually given to the model: one that points nowhere
is removed from the text, never shown, so every visible marker opens a real source. That holds
while streaming too: `MarkerStream` holds back a marker until it is complete and checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBERS = r"\d+(?:\s*[,;]\s*\d+)*"
_MARKER = re.compile(rf"[ \t]?\[({_NUMBERS})\]")
# A run of markers at the start of a text ("[1][2] Next sentence").
LEADING_MARKERS = re.compile(rf"^(?:\[{_NUMBERS}\]\s*)+")
# What may still become part of a marker at the end of streamed text: trailing spaces (a
# dropped marker takes its leading space with it) and an unclosed "[12, 3".
_OPEN_MARKER = re.compile(r"[ \t]*(?:\[[\d,; \t]*)?$")


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.split(r"\s*[,;]\s*", group)]


@dataclass
class ParsedCitations:
    text: str
    cited: list[int] = field(default_factory=list)  # passage numbers in order of first use
    dropped: list[int] = field(default_factory=list)  # numbers that pointed nowhere


def _check(text: str, passage_count: int, parsed: ParsedCitations) -> str:
    """Rewrite the markers in `text`, recording them in `parsed`."""

    def replace(match: re.Match[str]) -> str:
        numbers = _numbers(match.group(1))
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= passage_count]
        for n in numbers:
            if n in valid and n not in parsed.cited:
                parsed.cited.append(n)
            elif n not in valid and n not in parsed.dropped:
                parsed.dropped.append(n)
        if not valid:
            return ""
        lead = match.group(0)[0] if match.group(0)[0] in " \t" else ""
        return lead + "".join(f"[{n}]" for n in valid)

    return _MARKER.sub(replace, text)


def parse_citations(text: str, passage_count: int) -> ParsedCitations:
    parsed = ParsedCitations(text="")
    parsed.text = _check(text, passage_count, parsed).strip()
    return parsed


class MarkerStream:
    """Filters streamed text so that an invalid marker is never shown, not even briefly."""

    def __init__(self, passage_count: int) -> None:
        self.passage_count = passage_count
        self.parsed = ParsedCitations(text="")
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        held = _OPEN_MARKER.search(self._pending)
        cut = held.start() if held else len(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return _check(ready, self.passage_count, self.parsed)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return _check(rest, self.passage_count, self.parsed)


def citations_in(sentence: str) -> list[int]:
    """Numbers cited in one sentence of already-parsed text."""
    return [n for m in _MARKER.finditer(sentence) for n in _numbers(m.group(1))]


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()


def neutralize_markers(text: str) -> str:
    """`[2]` → `(2)`: a bracketed reference inside a document must not read as a citation."""
    return re.sub(rf"\[({_NUMBERS})\]", r"(\1)", text)
