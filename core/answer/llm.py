"""The chat model factory.

Any OpenAI-compatible server works (OpenAI, Ollama, vLLM, llama.cpp's server) through
`langchain-openai`. Retries are the client's; falling back to the extractive answerer when
the model fails, even mid-answer, is the chain's job, because only the chain knows what has
already been streamed to the user.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from core.config import Settings


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None when Loupe should answer extractively."""
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
        max_retries=settings.llm_max_retries,
        streaming=True,
        stream_usage=True,
        max_tokens=settings.llm_max_tokens,
        # langchain-openai sends the cap as `max_completion_tokens`, which OpenAI-compatible
        # servers such as llama.cpp ignore; they read `max_tokens` from the body.
        extra_body={"max_tokens": settings.llm_max_tokens} if settings.openai_base_url else None,
    )
