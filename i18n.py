"""The UI's words and formats in English and Korean: one gettext catalogue per language, chosen
per browser session.

Every user-visible string of app.py, ui.py and pages/ goes through `_()` (or `ngettext()`);
the English text is the message id, so English needs no catalogue and a missing translation
shows the English. `N_()` marks a string for the catalogue where it is defined (a constant
at import time) and is translated with `_()` where it is shown. Placeholders are named,
`{name}`, filled by `str.format` after translation, so a translation may reorder them.

Catalogues are the `.po` files under locales/ (Babel's format, edited by hand or by
`make messages`), compiled in memory the first time a language is used in a process: no
compiled `.mo` to keep in step, no build step, and a typo in a `.po` fails at the first page
view and in the tests, not silently.

The language of a session: the one picked with the sidebar switch (kept in session state and
in a cookie, so a reload or a new tab keeps it), else the browser's (`st.context.locale`),
Korean if it starts with `ko`, else English. Dates and numbers are formatted with Babel for
that language.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

import streamlit as st
from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from streamlit.runtime.scriptrunner import get_script_run_ctx

DOMAIN = "loupe"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES = {"en": "English", "ko": "한국어"}  # each language's name in itself
DEFAULT = "en"
CHOSEN = "language"  # session state: the language picked with the switch
SWITCH = "language_switch"  # the switch widget's key
COOKIE = "loupe_language"  # the browser remembers the pick (one year)
COOKIE_MAX_AGE = 365 * 24 * 3600
COOKIE_UPDATE = "language_cookie_update"  # session state: a pick the browser has yet to store


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, do not translate"
    """Mark `message` for the catalogue; it is translated where it is shown."""
    return message


@functools.cache
def translations(language: str) -> NullTranslations:
    """The catalogue of `language`, compiled from its .po file (English is the source text)."""
    if language == DEFAULT:
        return NullTranslations()
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they fall back to English
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def from_browser(locale: str | None) -> str:
    """The UI language for a browser locale such as `ko-KR` or `en-US`."""
    code = (locale or "").replace("_", "-").split("-")[0].lower()
    return code if code in LANGUAGES else DEFAULT


_forced: ContextVar[str | None] = ContextVar("forced_language", default=None)


@contextmanager
def using(language: str) -> Iterator[None]:
    """Speak `language` in this block whatever the session says (tests, and text made
    outside a script run)."""
    token = _forced.set(language)
    try:
        yield
    finally:
        _forced.reset(token)


def language() -> str:
    """This session's language (see the module docstring); English outside a script run."""
    if (forced := _forced.get()) is not None:
        return forced
    if get_script_run_ctx() is None:
        return DEFAULT
    chosen = st.session_state.get(CHOSEN)
    if chosen in LANGUAGES:
        return str(chosen)
    remembered = st.context.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return str(remembered)
    return from_browser(st.context.locale)


def _(message: str, /, **values: object) -> str:
    """`message` in this session's language, with its `{placeholders}` filled in."""
    text = translations(language()).gettext(message)
    return text.format(**values) if values else text


def pgettext(context: str, message: str, /, **values: object) -> str:
    """`message` as meant in `context`, where one English word has two meanings in another
    language ("Asked": a count in one table, a date in another)."""
    text = translations(language()).pgettext(context, message)
    return text.format(**values) if values else text


def labels(names: Mapping[Any, str]) -> Callable[[object], str]:
    """A `format_func` showing each option's name (marked with N_) in this session's language,
    fixed when the widget is made: Streamlit and AppTest may call it outside the script run,
    where the session's language is not known."""
    catalogue = translations(language())
    return lambda option: catalogue.gettext(names.get(str(option), str(option)))


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """The singular or plural form for `n` (Korean has one form); `{n}` is the count,
    formatted for the language."""
    text = translations(language()).ngettext(singular, plural, n)
    return text.format(n=number(n), **values)


# Formats -------------------------------------------------------------------------------------


def locale() -> Locale:
    return Locale.parse(language())


def number(value: float, decimals: int = 0) -> str:
    """A number with the language's grouping and decimal marks: 1,234.5."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return numbers.format_decimal(value, format=pattern, locale=locale())


def percent(value: float) -> str:
    """A share as a whole percentage: 0.734 → 73%."""
    return numbers.format_percent(value, format="#,##0%", locale=locale())


def seconds(value: float) -> str:
    """A duration in seconds with one decimal: 1.2 s / 1.2초."""
    return _("{seconds} s", seconds=number(value, 1))


def when(moment: datetime) -> str:
    """A moment in the server's time zone, in the language's medium date and short time:
    `Dec 1, 2026, 8:34 AM` / `2026년 12월 1일 오전 8:34`."""
    local, where = moment.astimezone(), locale()
    day = dates.format_skeleton("yMMMd", local, locale=where)
    time = dates.format_time(local, "short", locale=where)
    return str(where.datetime_formats["short"]).format(time, day)


# Text made in `core` -------------------------------------------------------------------------
#
# Core speaks English (its messages go to logs, the command line and the evaluation too). The
# sentences it shows users are listed here as templates; `core_text` finds the one a message
# was made from and translates it, its parts included. A message not listed stays English.

CORE_MESSAGES = (
    N_("The documents do not say."),
    N_("No passage in the documents is close enough to this question."),
    N_("The documents do not answer this question."),
    N_("No passage matched the question."),
    N_("Best passage similarity {similarity} ({strength} match)."),
    N_("The best passage contains {share} of the question's key terms."),
    N_("{share} of the answer's wording is backed by the passages it cites."),
    N_(
        "{share} of the answer's wording is backed by the passages it cites; "
        "{uncited} of {sentences} sentences cite nothing."
    ),
    N_("{count} passage(s) contain text that tries to instruct the model."),
    N_("The language model failed ({error}). This answer was extracted from the passages instead."),
    N_("Sign in first."),
    N_("This needs the {role} role; {name} is signed in as {actor_role}."),
    N_("This conversation belongs to someone else."),
    N_("Only admins can list everyone's conversations."),
    N_("A conversation needs a title."),
    N_("This answer was given to someone else."),
    N_("The answer has no passage [{n}]."),
    N_("No answer {answer_id}"),
    N_("No conversation {conversation_id}"),
    N_("No document {document_id}"),
    N_("Write the corrected answer to save an edit."),
    N_("Say why the answer is rejected."),
    N_("The question is empty."),
    # core.answer.confidence: the uncalibrated score and the calibrated reasons.
    N_(
        "Uncalibrated: no calibration fits this embedding model, so this is a hand-set score, "
        "not a probability (run `python -m core calibrate`)."
    ),
    N_("Best passage similarity {similarity}."),
    # core.answer.chain: selective answering.
    N_(
        "The documents may not cover this question. The closest passages are listed below as "
        "leads, not as an answer."
    ),
    N_("Withheld: P(right) {score} is below the answer threshold {threshold}."),
    N_(
        "The language model failed ({error}). The answer extracted instead was withheld: "
        "P(right) {score} is below the answer threshold {threshold}."
    ),
    N_("The answer was cut off at the model's length limit."),
    N_("{description} ({value}) raises it."),
    N_("{description} ({value}) lowers it."),
    # core.suggestions: a question drawn from a document's heading ("the commuting guide").
    N_("What does the {document} say about {topic}?"),
)
# Words core puts inside those sentences.
CORE_WORDS = (
    N_("strong"),
    N_("moderate"),
    N_("weak"),
    N_("user"),
    N_("expert"),
    N_("admin"),
    N_("Local admin"),  # core.auth.SINGLE_USER's name
    # core.answer.features.DESCRIPTIONS: what each calibrated reason is about.
    N_("how close in meaning the best passage is"),
    N_("how clearly the best passage beats the others in meaning"),
    N_("how many of the question's words the best keyword match shares"),
    N_("how clearly the best keyword match beats the others"),
    N_("whether keyword and meaning search agree on the best passage"),
    N_("share of the question's key terms in the cited sentences"),
    N_("share of the question's key terms in the cited passage"),
    N_("share of the question's words, in any form, in the cited sentences"),
    N_("the answer's length"),
    N_("how many passages the answer cites"),
    N_("the search rank of the passage the answer cites first"),
    N_("how much of the answer's wording its cited passages back"),
    N_("whether a question asking for a number got an answer without one"),
    N_("whether a question asking when got an answer without a date"),
    N_("whether a question asking who got an answer naming no one new"),
    N_("share of the answer's key terms that the question does not already hold"),
    N_(
        "how much better the quoted sentence covers the question than the cited passage's next best"
    ),
    N_("how many sentences the cited passage has to choose from"),
    N_("how many key terms the question has"),
    N_("how well the quoted sentence matched the question"),
    N_("how clearly the quoted sentence beat the next best"),
    N_("the answer was written by the language model"),
    N_("the language model failed and the answer was extracted instead"),
    N_("how sure the language model was of its words"),
    N_("whether the language model reported how sure it was"),
    N_("passages that try to instruct the model"),
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)
    regex = "".join(
        f"(?P<{part}>.+?)" if odd else re.escape(part) for odd, part in _alternate(parts)
    )
    return re.compile(f"^{regex}$", re.DOTALL)


def _alternate(parts: Iterable[str]) -> Iterable[tuple[bool, str]]:
    return ((n % 2 == 1, part) for n, part in enumerate(parts))


_CORE_PATTERNS = tuple((template, _pattern(template)) for template in CORE_MESSAGES)


def core_text(text: str) -> str:
    """A sentence made in core, in this session's language (unchanged if it is not listed,
    or in English)."""
    if language() == DEFAULT:
        return text
    for template, pattern in _CORE_PATTERNS:
        if match := pattern.match(text):
            return _(template, **{k: word(v) for k, v in match.groupdict().items()})
    return text


def word(text: str) -> str:
    """One of the words core uses inside its sentences (a role, a match strength) or the
    single user's name, translated; anything else (a person's name) as it is."""
    if text in CORE_WORDS:
        return _(text)
    # Calibrated reasons start with their description capitalised.
    lowered = text[:1].lower() + text[1:]
    return _(lowered) if lowered in CORE_WORDS else text


# The switch ----------------------------------------------------------------------------------


def _picked() -> None:
    picked = st.session_state.get(SWITCH)
    if picked in LANGUAGES:
        st.session_state[CHOSEN] = picked
        st.session_state[COOKIE_UPDATE] = picked


def switch() -> None:
    """The language switch (in the sidebar): takes effect at once and is remembered."""
    current = language()
    st.session_state[SWITCH] = current
    st.segmented_control(
        _("Language"),
        list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        key=SWITCH,
        on_change=_picked,
        required=True,
        label_visibility="collapsed",
    )


def pending_cookie() -> str | None:
    """The language the browser should remember from this run on, once."""
    picked = st.session_state.pop(COOKIE_UPDATE, None)
    return str(picked) if picked in LANGUAGES else None
