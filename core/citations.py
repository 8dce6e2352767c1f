"""Parses `[n]` citation markers in generated text.

Markers are checked against the passages actually given to the model: one that points nowhere
is removed from the text, never shown, so every visible marker opens a real source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass(frozen=True)
class ParsedCitations:
    text: str
    cited: list[int]  # passage numbers in order of first use
    dropped: list[int]  # numbers that pointed nowhere


def parse_citations(text: str, passage_count: int) -> ParsedCitations:
    cited: list[int] = []
    dropped: list[int] = []

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= passage_count]
        dropped.extend(n for n in numbers if n not in valid)
        for n in valid:
            if n not in cited:
                cited.append(n)
        if not valid:
            return ""
        lead = " " if match.group(0).startswith(" ") else ""
        return lead + "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned = _MARKER.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return ParsedCitations(text=cleaned.strip(), cited=cited, dropped=dropped)


def citations_in(sentence: str) -> list[int]:
    """Numbers cited in one sentence of already-parsed text."""
    return [int(n) for m in _MARKER.finditer(sentence) for n in re.split(r"\s*[,;]\s*", m.group(1))]


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()
