"""Fake chat models for unit tests of chain logic (LangChain requires their signatures).

Real parts everywhere else: these stand in only for the LLM, streaming, failing mid-answer or
metering token usage the way OpenAI-compatible servers do.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult


class BrokenChatModel(BaseChatModel):
    """Streams `tokens`, then fails the way a dropped connection does; counts its calls."""

    tokens: list[str] = []
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "broken"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        raise ConnectionError("connection reset by peer")

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        for token in self.tokens:
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        raise ConnectionError("connection reset by peer")


class MeteredChatModel(BaseChatModel):
    """Streams `answer` word by word, then reports token usage in a last, empty chunk, the way
    ChatOpenAI does with `stream_usage=True`."""

    answer: str
    usage: UsageMetadata

    @property
    def _llm_type(self) -> str:
        return "metered"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("the chain streams answers")

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for word in re.split(r"(?<= )", self.answer):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=self.usage, response_metadata=STOP)
        )


# How an OpenAI-compatible stream ends when the model finished: its last chunk says why.
STOP = {"finish_reason": "stop"}


class FinishingFakeChatModel(GenericFakeChatModel):
    """GenericFakeChatModel, ending its stream with a finish reason as real servers do (the
    chain takes a stream without one for a cut connection)."""

    finish: str | None = "stop"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, stop, run_manager, **kwargs)
        metadata = {"finish_reason": self.finish} if self.finish else {}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=metadata))


class DrippingChatModel(BaseChatModel):
    """Streams a word every `interval` seconds and never finishes, like a server that drips."""

    interval: float = 0.05
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "dripping"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError("the chain streams answers")

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls += 1
        while True:
            await asyncio.sleep(self.interval)
            yield ChatGenerationChunk(message=AIMessageChunk(content="tall "))


def fake_llm(*replies: str | AIMessage, finish: str | None = "stop") -> GenericFakeChatModel:
    """A model that streams `replies` in turn, each ending with `finish` as its finish reason
    (None: the stream ends without one, as when the connection is cut)."""
    return FinishingFakeChatModel(messages=iter(replies), finish=finish)
