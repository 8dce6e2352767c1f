"""Flags retrieved text that tries to instruct the model.

Passages are fenced in the prompt and the model is told to treat them as data; this check is
the second line: a flagged passage is shown as such to the user and lowers confidence.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\bignore (all |any |the )?(previous|prior|above|earlier) (instructions|prompts?|rules)",
    r"\bdisregard (all |any |the )?(previous|prior|above) ",
    r"\byou are now\b",
    r"\b(reveal|print|show) (your |the )?(system prompt|instructions)",
    r"\bnew instructions?:",
    r"</?(system|assistant|passage)>",
    r"이전 지시(를|사항을)? 무시",
    r"시스템 프롬프트",
]
_INSTRUCTION = re.compile("|".join(_PATTERNS), re.IGNORECASE)


def looks_like_instructions(text: str) -> bool:
    return _INSTRUCTION.search(text) is not None
