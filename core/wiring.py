"""Build Loupe's components from `Settings`, in one place.

The CLI, the app, the API, `bench/` and the tests all get their database, embedding model,
vector store, ingestor and chain from here, so a component is configured the same way wherever
it runs and a new option is wired once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from core.answer.calibration import (
    Calibration,
    bundled_for_languages,
    find_calibration,
    installed_calibration,
)
from core.answer.chain import RagChain
from core.answer.extractive import ExtractiveAnswerer
from core.answer.llm import make_chat_model, make_guard
from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.db.session import Database
from core.embeddings import (
    dimension,
    get_embeddings,
    model_name,
    similarity_scale,
    vector_languages,
)
from core.ingest.chunking import chunk_plan
from core.ingest.loaders import ZipLimits
from core.ingest.pipeline import IngestLimits, Ingestor
from core.ingest.serving import ReadyVersions
from core.stores import make_store
from core.stores.base import VectorStore

# "Use the chat model the settings describe": distinct from None, which means no LLM at all.
FROM_SETTINGS: Any = object()


@dataclass
class Components:
    settings: Settings
    db: Database
    embeddings: Embeddings
    store: VectorStore
    ingestor: Ingestor
    chain: RagChain

    def close(self) -> None:
        self.store.close()
        self.db.engine.dispose()


def make_ingestor(
    settings: Settings, db: Database, store: VectorStore, embeddings: Embeddings
) -> Ingestor:
    return Ingestor(
        db=db,
        store=store,
        embeddings=embeddings,
        files_dir=settings.files_dir,
        workspace=settings.workspace,
        chunking=chunk_plan(settings, embeddings),
        embed_batch_size=settings.embed_batch_size,
        limits=IngestLimits(
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            max_chunks=settings.max_chunks_per_file,
            zip=ZipLimits(
                max_unpacked_bytes=int(settings.max_unpacked_mb * 1024 * 1024),
                max_ratio=settings.max_zip_ratio,
            ),
        ),
        lease_seconds=settings.ingest_lease_seconds,
    )


def make_chain(
    settings: Settings,
    store: VectorStore,
    embeddings: Embeddings,
    chat_model: BaseChatModel | None = FROM_SETTINGS,
) -> RagChain:
    """The answer chain over `store`; `chat_model=None` answers extractively."""
    model = make_chat_model(settings) if chat_model is FROM_SETTINGS else chat_model
    calibration = load_calibration(settings, embeddings)
    languages = vector_languages(settings)
    return RagChain(
        retriever=StoreRetriever(
            store=store,
            embeddings=embeddings,
            k=settings.retrieval_k,
            alpha=settings.hybrid_alpha,
            vector_languages=languages,
        ),
        extractive=ExtractiveAnswerer(embeddings, vector_languages=languages),
        chat_model=model,
        model_name=settings.llm_model,
        scale=similarity_scale(settings),
        guard=make_guard(settings),
        calibration=calibration,
        threshold=answer_threshold(settings, calibration),
        by_language={
            language: (fit, answer_threshold(settings, fit))
            for language, fit in language_calibrations(settings, embeddings).items()
        },
    )


def load_calibration(settings: Settings, embeddings: Embeddings) -> Calibration | None:
    """The calibration installed in the data directory for this embedding model, else the one
    shipped for it and the documents' language, else None (uncalibrated)."""
    languages = dict.fromkeys([settings.calibration_language, "en"])
    return find_calibration(settings.data_dir, model_name(embeddings), tuple(languages))


def language_calibrations(settings: Settings, embeddings: Embeddings) -> dict[str, Calibration]:
    """The calibrations shipped for this model for questions in another language (Korean),
    unless this data directory has its own: a fit on the organisation's data scores every
    question."""
    model = model_name(embeddings)
    if installed_calibration(settings.data_dir, model) is not None:
        return {}
    found = bundled_for_languages(model, ["ko"])
    return {k: v for k, v in found.items() if k != settings.calibration_language}


def answer_threshold(settings: Settings, calibration: Calibration | None) -> float | None:
    """An explicit LOUPE_ANSWER_THRESHOLD, else the one a target precision picks from the
    calibration data, else the calibration's recommended one."""
    if settings.answer_threshold is not None:
        return settings.answer_threshold
    if calibration is None:
        return None
    if settings.answer_target_precision is not None:
        return calibration.threshold_for_precision(settings.answer_target_precision)
    return calibration.threshold


def build(settings: Settings, *, chat_model: BaseChatModel | None = FROM_SETTINGS) -> Components:
    """Every component for `settings`. Opening a database runs its migrations. Questions
    search through `ReadyVersions`: only the document versions SQL marks ready are served,
    never a version an ingest is still writing or a crashed one left behind."""
    db = Database.from_settings(settings)
    embeddings = get_embeddings(settings)
    store = make_store(settings, dimension=dimension(embeddings))
    served = ReadyVersions(store, db, settings.workspace)
    return Components(
        settings=settings,
        db=db,
        embeddings=embeddings,
        store=store,
        ingestor=make_ingestor(settings, db, store, embeddings),
        chain=make_chain(settings, served, embeddings, chat_model),
    )
