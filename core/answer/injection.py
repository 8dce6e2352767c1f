"""Flags retrieved text that tries to instruct the model.

Passages are fenced in the prompt and the model is told to treat them as data; this check is
the second line: a flagged passage is shown as such to the user and lowers confidence.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(ignore|disregard|forget) (all |any )?(of )?(the |your )?(previous|prior|above|earlier)"
    r"( instructions?| prompts?| rules| messages?)?\b",
    r"\byou are now (an? |the |my )?(\w+ )?(ai|assistant|chatbot|language model|llm|dan)\b",
    r"\b(reveal|print|show|repeat) (me )?(your |the )?"
    r"(system prompt|hidden instructions|instructions you were given)",
    r"\bnew instructions?:",
    r"</?(system|assistant|passage)>",
    r"(이전|위의?) (지시|명령)(를|사항을|을)? 무시",
    r"시스템 프롬프트(를|을)? ?(보여|출력|공개|알려)",
]
_INSTRUCTION = re.compile("|".join(_PATTERNS), re.IGNORECASE)


def looks_like_instructions(text: str) -> bool:
    return _INSTRUCTION.search(text) is not None
