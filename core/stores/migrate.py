"""Copy every chunk, vector included, from one vector store to another.

Used to move from the embedded LanceDB store to Weaviate (`python -m core migrate-store`)
without re-embedding. A large corpus takes a while, so the copy is resumable: the ids already
written to the target are appended to a checkpoint file after each batch, and a rerun with the
same checkpoint skips them. Chunk ids are content-derived and upserts replace by id, so a batch
that was written but not yet checkpointed when a run died is simply written again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from core.stores.base import VectorStore


def migrate_store(
    source: VectorStore,
    target: VectorStore,
    *,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Path | None = None,
) -> int:
    """Copy all of `source` into `target`; return how many chunks this call copied.

    `progress(done, total)` is called after each batch, counting chunks copied by earlier runs
    as done. The checkpoint file is removed once the copy completes, so a later migration
    (to a fresh target, say) starts from scratch rather than skipping everything.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    done_ids = _read_checkpoint(checkpoint)
    total = source.count()
    done = len(done_ids)
    copied = 0
    for batch in source.iter_chunks(batch_size):
        pending = [chunk for chunk in batch if chunk.id not in done_ids]
        if not pending:
            continue
        missing = [chunk.id for chunk in pending if chunk.vector is None]
        if missing:
            raise ValueError(f"{source.name} returned chunks without vectors, e.g. {missing[0]}")
        target.upsert(pending)
        _append_checkpoint(checkpoint, [chunk.id for chunk in pending])
        copied += len(pending)
        done += len(pending)
        if progress is not None:
            progress(done, total)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return copied


def _read_checkpoint(checkpoint: Path | None) -> set[str]:
    if checkpoint is None or not checkpoint.exists():
        return set()
    return {line.strip() for line in checkpoint.read_text().splitlines() if line.strip()}


def _append_checkpoint(checkpoint: Path | None, ids: list[str]) -> None:
    """Record ids only after the target accepted them, and make sure they reach the disk."""
    if checkpoint is None:
        return
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with checkpoint.open("a") as handle:
        handle.write("".join(f"{chunk_id}\n" for chunk_id in ids))
        handle.flush()
        os.fsync(handle.fileno())
