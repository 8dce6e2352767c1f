"""The chat model factory, and the guard that bounds every call Loupe makes to it.

Any OpenAI-compatible server works (OpenAI, Ollama, vLLM, llama.cpp's server) through
`langchain-openai`. Falling back to the extractive answerer when the model fails, even
mid-answer, is the chain's job, because only the chain knows what has already been streamed to
the user; this module decides *when* the model has failed:

- a wall-clock budget per question (`LOUPE_LLM_BUDGET`), one deadline shared by the condense
  and the answer calls, enforced around the stream whatever the server sends;
- retries only while the budget lasts, honouring `Retry-After` only if it fits;
- a circuit breaker, so that after repeated failures questions are answered extractively at
  once, for a cool-down, instead of each waiting out the budget again;
- a stream that ends without a finish reason is a failure, not an answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from core.config import Settings

# How long the consumer waits past the deadline for the event loop to report it, before it
# stops waiting anyway. The loop reports within milliseconds; this only covers a stalled loop.
_REPORT_GRACE = 1.0
# Backoff when the server gives no Retry-After: the openai client's own schedule.
_INITIAL_RETRY_DELAY = 0.5
_MAX_RETRY_DELAY = 8.0
# Statuses worth retrying (as the openai client decides): timeout, lock, rate limit, server.
_RETRY_STATUSES = frozenset({408, 409, 429})


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None when Loupe should answer extractively.

    The client does not retry (`max_retries=0`): `LLMGuard` does, within the question's budget.
    `stream_chunk_timeout` is langchain-openai's limit on silence between *content* chunks:
    unlike the HTTP read timeout it is not reset by SSE keep-alive comments."""
    if not settings.llm_enabled:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.llm_model,
        # Local OpenAI-compatible servers need some key; they ignore its value.
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout,
        max_retries=0,
        stream_chunk_timeout=settings.llm_timeout,
        streaming=True,
        stream_usage=True,
        max_tokens=settings.llm_max_tokens,
        # langchain-openai sends the cap as `max_completion_tokens`, which OpenAI-compatible
        # servers such as llama.cpp ignore; they read `max_tokens` from the body.
        extra_body={"max_tokens": settings.llm_max_tokens} if settings.openai_base_url else None,
    )


def make_guard(settings: Settings) -> LLMGuard:
    """The guard for the configured budget, retries and circuit breaker."""
    return LLMGuard(
        budget=settings.llm_budget,
        retries=settings.llm_max_retries,
        breaker=CircuitBreaker(
            failures=settings.llm_breaker_failures, cooldown=settings.llm_breaker_cooldown
        ),
    )


# Failures ----------------------------------------------------------------------------------


class LLMFailure(Exception):
    """The model gave no usable answer; the message says why, in plain words."""


class BudgetExceeded(LLMFailure, TimeoutError):
    """The question's time budget ran out before the model finished."""

    def __init__(self, budget: float) -> None:
        super().__init__(
            f"no complete answer within the {budget:g} s time budget (LOUPE_LLM_BUDGET)"
        )


class RetryAfterTooLong(LLMFailure):
    """The server asked to be called again later than the budget allows."""

    def __init__(self, wait: float, left: float, cause: Exception) -> None:
        super().__init__(
            f"the server asked to retry in {wait:g} s, more than the {max(left, 0):.1f} s left "
            f"of the time budget ({describe(cause)})"
        )


class IncompleteStream(LLMFailure):
    """The stream ended without the model saying it had finished: the connection was cut."""


def describe(exc: BaseException) -> str:
    """An exception in a notice: our own failures speak for themselves, others give their type."""
    if isinstance(exc, LLMFailure):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc)[:200]}"


# The deadline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which the model must have finished."""

    at: float
    budget: float

    @classmethod
    def after(cls, budget: float) -> Deadline:
        return cls(time.monotonic() + budget, budget)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def sooner(self, seconds: float) -> Deadline:
        """This deadline, or `seconds` from now if that comes first (same budget named)."""
        return Deadline(min(self.at, time.monotonic() + seconds), self.budget)


def retry_wait(exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before retrying after `exc`, or None when it is not worth retrying.

    The same rules as the openai client (retryable statuses, `retry-after-ms`, `retry-after`
    as seconds or an HTTP date, else exponential backoff), which cannot be reused: its retry
    loop waits for up to two minutes whatever deadline the caller has."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return min(_INITIAL_RETRY_DELAY * 2**attempt, _MAX_RETRY_DELAY)
    if not isinstance(exc, openai.APIStatusError):
        return None
    status = exc.response.status_code
    if status not in _RETRY_STATUSES and status < 500:
        return None
    headers = exc.response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / divisor, 0.0)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)
    return min(_INITIAL_RETRY_DELAY * 2**attempt, _MAX_RETRY_DELAY)


# The circuit breaker -----------------------------------------------------------------------


@dataclass
class CircuitBreaker:
    """After `failures` failed questions in a row, the model is not asked for `cooldown`
    seconds; then one question tries it again (success closes the breaker, failure re-opens
    it at once).

    Written here rather than taken from pybreaker or circuitbreaker: those wrap a function call
    and judge it by whether it raises, while a Loupe answer is judged after its stream ends
    (cut off, over budget) and the notice needs the cool-down left. State is per process, shared
    by every session of the app (the chain is one per process)."""

    failures: int = 3
    cooldown: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failed: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def open_for(self) -> float:
        """Seconds of cool-down left; 0 when the model may be asked."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(self._opened_at + self.cooldown - self.clock(), 0.0)

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failed, self._opened_at = 0, None
                return
            self._failed += 1
            if self._failed >= self.failures:
                self._opened_at = self.clock()

    @property
    def consecutive_failures(self) -> int:
        return self._failed


# Running a call under the deadline ---------------------------------------------------------


class _End:
    """Marks the end of a stream in the queue."""


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class _EventLoop:
    """One asyncio loop on a daemon thread, shared by every call in the process.

    Calls run on asyncio because cancelling a task is the one way to stop an httpx request
    that is blocked in a read: `asyncio.timeout` then closes the connection at the deadline,
    whether the server is silent, pinging or dripping. The HTTP client's connection pool
    belongs to this loop, so it must be one loop for the life of the process."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="loupe-llm", daemon=True).start()
                self._loop = loop
            return self._loop


_LOOP = _EventLoop()


@dataclass
class LLMGuard:
    """Runs chat-model calls within a per-question deadline, with bounded retries, behind a
    circuit breaker. `stream` is synchronous (the chain and Streamlit are) and runs the model's
    async stream on a background loop."""

    budget: float = 20.0
    retries: int = 1
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    def deadline(self) -> Deadline:
        return Deadline.after(self.budget)

    def stream(
        self, runnable: Runnable[Any, Any], inputs: Any, deadline: Deadline
    ) -> Iterator[Any]:
        """The runnable's chunks as they come; raises `BudgetExceeded` at the deadline, or
        the model's own error. Leaving the loop early cancels the call."""
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = asyncio.run_coroutine_threadsafe(
            self._pump(runnable, inputs, deadline, items), _LOOP.get()
        )
        try:
            while True:
                try:
                    item = items.get(timeout=max(deadline.remaining(), 0.0) + _REPORT_GRACE)
                except queue.Empty:
                    raise BudgetExceeded(deadline.budget) from None
                if isinstance(item, _End):
                    return
                if isinstance(item, _Raised):
                    raise item.error
                yield item
        finally:
            future.cancel()

    async def _pump(
        self,
        runnable: Runnable[Any, Any],
        inputs: Any,
        deadline: Deadline,
        items: queue.SimpleQueue[Any],
    ) -> None:
        scope: asyncio.Timeout | None = None
        try:
            async with asyncio.timeout(max(deadline.remaining(), 0.0)) as scope:
                await self._attempts(runnable, inputs, deadline, items)
        except TimeoutError as exc:
            # Our scope expiring is the budget running out; any other timeout (the HTTP
            # client's, langchain-openai's silence limit) is the model's own failure.
            expired = scope is not None and scope.expired()
            items.put(_Raised(BudgetExceeded(deadline.budget) if expired else exc))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, who decides
            items.put(_Raised(exc))
        else:
            items.put(_End())

    async def _attempts(
        self,
        runnable: Runnable[Any, Any],
        inputs: Any,
        deadline: Deadline,
        items: queue.SimpleQueue[Any],
    ) -> None:
        """The call, retried before its first chunk while retries and the budget last."""
        attempt = 0
        while True:
            started = False
            try:
                async for chunk in runnable.astream(inputs):
                    started = True
                    items.put(chunk)
                return
            except Exception as exc:
                wait = None if started or attempt >= self.retries else retry_wait(exc, attempt)
                if wait is None:
                    raise
                if wait >= deadline.remaining():
                    raise RetryAfterTooLong(wait, deadline.remaining(), exc) from exc
                attempt += 1
                await asyncio.sleep(wait)


def finish_reason(response_metadata: dict[str, Any]) -> str | None:
    """Why the model stopped, as providers report it in LangChain's response metadata
    (OpenAI-compatible servers: `finish_reason`; others: `stop_reason`, `done_reason`)."""
    for key in ("finish_reason", "stop_reason", "done_reason"):
        if value := response_metadata.get(key):
            return str(value)
    return None
