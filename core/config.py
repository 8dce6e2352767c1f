"""Every setting Loupe reads, in one place.

Values come from (first wins): keyword arguments, environment variables, a `.env` file, then
`.streamlit/secrets.toml`. Loupe's own settings take a `LOUPE_` prefix; the conventional names
(`DATABASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `WEAVIATE_URL`, ...) are read as they are,
so a deployment can use the variables its platform already sets.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SECRETS_TOML = Path(".streamlit/secrets.toml")


def _env(name: str, *aliases: str) -> AliasChoices:
    """Accept `LOUPE_NAME`, the plain field name (for TOML files) and conventional aliases."""
    return AliasChoices(f"LOUPE_{name.upper()}", name, *aliases)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, case_sensitive=False
    )

    # Storage
    data_dir: Path = Field(Path("data"), validation_alias=_env("data_dir"))
    database_url: str | None = Field(None, validation_alias=_env("database_url", "DATABASE_URL"))
    vector_store: Literal["lancedb", "weaviate"] = Field(
        "lancedb", validation_alias=_env("vector_store")
    )
    workspace: str = Field("default", validation_alias=_env("workspace"))

    # Embeddings: `minilm` is bundled (English), `e5` is bundled multilingual (Korean too),
    # `openai` uses the OpenAI-compatible endpoint, `sentence-transformers` loads any hub model.
    embeddings: Literal["minilm", "e5", "openai", "sentence-transformers"] = Field(
        "minilm", validation_alias=_env("embeddings")
    )
    embedding_model: str | None = Field(None, validation_alias=_env("embedding_model"))
    embed_batch_size: int = Field(64, ge=1, validation_alias=_env("embed_batch_size"))
    # How the bundled MiniLM runs. onnx-int8 embeds ~1.8x faster than torch on CPU (one question
    # ~6x) with no loss of hybrid retrieval quality on ArguAna (bench/FINDINGS.md); torch is
    # the reference.
    embedding_runtime: Literal["onnx-int8", "onnx-fp32", "torch"] = Field(
        "onnx-int8", validation_alias=_env("embedding_runtime")
    )
    # CPU threads for local embedding models; unset = one per core. On a machine shared with
    # other busy processes, 1 is often faster (threads waiting on each other's cores).
    embed_threads: int | None = Field(None, ge=1, validation_alias=_env("embed_threads"))
    # Where the ONNX export of the bundled model is cached: made once per machine (~15 s),
    # shared by every data directory.
    model_cache_dir: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loupe" / "models",
        validation_alias=_env("model_cache_dir"),
    )

    # Generation: `auto` is OpenAI-compatible when an API key or base URL is set, else extractive.
    llm: Literal["auto", "openai", "extractive"] = Field("auto", validation_alias=_env("llm"))
    llm_model: str = Field("gpt-4o-mini", validation_alias=_env("llm_model", "OPENAI_MODEL"))
    # Longest silence from the server (between bytes, and between content chunks: SSE
    # keep-alive comments do not count as content).
    llm_timeout: float = Field(60.0, gt=0, validation_alias=_env("llm_timeout"))
    # Retries of a call that failed before its first token, only while the budget lasts.
    llm_max_retries: int = Field(1, ge=0, validation_alias=_env("llm_max_retries"))
    # Wall-clock seconds one question may spend on the LLM, condense and answer together;
    # past it the answer is extracted from the passages instead.
    llm_budget: float = Field(20.0, gt=0, validation_alias=_env("llm_budget"))
    # After this many failed questions in a row the LLM is not asked for the cool-down (s).
    llm_breaker_failures: int = Field(3, ge=1, validation_alias=_env("llm_breaker_failures"))
    llm_breaker_cooldown: float = Field(60.0, ge=0, validation_alias=_env("llm_breaker_cooldown"))
    llm_temperature: float = Field(0.0, ge=0, validation_alias=_env("llm_temperature"))
    llm_max_tokens: int = Field(1024, ge=1, validation_alias=_env("llm_max_tokens"))
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=_env("openai_api_key", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=_env("openai_base_url", "OPENAI_BASE_URL")
    )

    # Chunking
    chunk_size: int = Field(1000, ge=100, validation_alias=_env("chunk_size"))
    chunk_overlap: int = Field(150, ge=0, validation_alias=_env("chunk_overlap"))

    # Ingestion limits: a file over these is refused with a message saying which limit and how
    # to change it. Memory stays flat in a file's size (chunks are embedded and written in
    # bounded batches), so the limits bound time and disk, and DOCX/zip inflation, not RAM.
    max_file_mb: float = Field(50.0, gt=0, validation_alias=_env("max_file_mb"))
    max_chunks_per_file: int = Field(50_000, ge=1, validation_alias=_env("max_chunks_per_file"))
    # A DOCX is a zip: its members may inflate to at most this many MB in all, and no member
    # may inflate more than `max_zip_ratio` times its compressed size (zip bombs do ~1000x;
    # Word's own XML stays under ~30x).
    max_unpacked_mb: float = Field(200.0, gt=0, validation_alias=_env("max_unpacked_mb"))
    max_zip_ratio: float = Field(100.0, gt=1, validation_alias=_env("max_zip_ratio"))
    # How long an ingest's claim on a document lasts without a heartbeat (renewed every third
    # of it). After a crash, the document is repaired by the next start once this has passed.
    ingest_lease_seconds: float = Field(60.0, gt=0, validation_alias=_env("ingest_lease_seconds"))

    # Retrieval: alpha is the vector share of the hybrid score (0 = keyword only, 1 = vector only).
    retrieval_k: int = Field(5, ge=1, validation_alias=_env("retrieval_k"))
    hybrid_alpha: float = Field(0.5, ge=0, le=1, validation_alias=_env("hybrid_alpha"))
    # Below this cosine similarity of the best passage, the documents are taken not to cover
    # the question and no answer is generated. Unset: the embedding model's own default.
    min_vector_similarity: float | None = Field(
        None, ge=-1, le=1, validation_alias=_env("min_vector_similarity")
    )
    # Verified answers: a verified question at least this similar (cosine) is a candidate;
    # the precision guard (core/learn/questions.py) then decides. Measured for the bundled
    # MiniLM with `python -m core eval --matching` (bench/RESULTS.md, feedback section).
    verified_similarity: float = Field(
        0.80, ge=-1, le=1, validation_alias=_env("verified_similarity")
    )

    # Sign-in: how long a local user stays signed in (across reloads and new tabs) before they
    # must sign in again. Signing out or a changed password ends it sooner.
    sign_in_hours: float = Field(168.0, gt=0, validation_alias=_env("sign_in_hours"))

    # Weaviate (production store)
    weaviate_url: str | None = Field(None, validation_alias=_env("weaviate_url", "WEAVIATE_URL"))
    weaviate_api_key: SecretStr | None = Field(
        None, validation_alias=_env("weaviate_api_key", "WEAVIATE_API_KEY")
    )
    weaviate_grpc_port: int = Field(
        50051, validation_alias=_env("weaviate_grpc_port", "WEAVIATE_GRPC_PORT")
    )
    weaviate_embedded: bool = Field(
        False, validation_alias=_env("weaviate_embedded", "WEAVIATE_EMBEDDED")
    )
    weaviate_multi_tenancy: bool = Field(
        False, validation_alias=_env("weaviate_multi_tenancy", "WEAVIATE_MULTI_TENANCY")
    )
    weaviate_tokenization: Literal["word", "kagome_kr", "gse", "trigram", "whitespace"] = Field(
        "word", validation_alias=_env("weaviate_tokenization", "WEAVIATE_TOKENIZATION")
    )
    weaviate_collection: str = Field("LoupeChunk", validation_alias=_env("weaviate_collection"))

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                f"({self.chunk_size})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = TomlConfigSettingsSource(settings_cls, toml_file=SECRETS_TOML)
        return init_settings, env_settings, dotenv_settings, secrets

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: `DATABASE_URL`, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'loupe.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        """Originals, named by content hash, so the store can be rebuilt and pages opened."""
        return self.data_dir / "files"

    @property
    def lancedb_dir(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def llm_enabled(self) -> bool:
        if self.llm == "openai":
            return True
        if self.llm == "extractive":
            return False
        return self.openai_api_key is not None or self.openai_base_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
