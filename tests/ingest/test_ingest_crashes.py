"""Ingests in real processes that are killed (SIGKILL) at each step of the pipeline, paused
while other processes start, or run two at once, on SQLite and Postgres with the bundled
embedding model and LanceDB. What must hold: search serves the old version or the new one
(or nothing, for a new document), never both and never half of one; a start-up repairs only
ingests whose lease ran out; afterwards `check` finds SQL and the store in agreement."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import Settings
from core.db.models import Document, DocumentStatus
from core.ingest.consistency import check
from core.ingest.serving import ReadyVersions
from core.service import Loupe

WORKER = Path(__file__).with_name("ingest_worker.py")
LEASE_SECONDS = 3.0
QUERY = "What does the policy say about energy storage and hydrogen?"


def policy(topic: str) -> str:
    return "\n\n".join(
        f"Policy on {topic}, part {i}: the {topic} rules say " + f"{topic} matters. " * 40
        for i in range(5)
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        llm="extractive",
        ingest_lease_seconds=LEASE_SECONDS,
    )


@pytest.fixture
def loupe(settings: Settings) -> Iterator[Loupe]:
    engine = Loupe(settings)
    yield engine
    engine.close()


def worker(
    settings: Settings,
    paths: list[Path],
    signal_dir: Path,
    *,
    stage: str | None = None,
    action: str | None = None,
) -> subprocess.Popen[str]:
    signal_dir.mkdir(parents=True, exist_ok=True)
    args = {
        "data_dir": str(settings.data_dir),
        "db_url": settings.db_url,
        "paths": [str(p) for p in paths],
        "lease_seconds": LEASE_SECONDS,
        "stage": stage,
        "action": action,
        "signal_dir": str(signal_dir),
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> list[dict[str, object]]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return list(json.loads(out.strip().splitlines()[-1]))


def served_versions(loupe: Loupe, document_id: str) -> set[str]:
    """The content hashes of this document's chunks that search returns."""
    ready = ReadyVersions(loupe.store, loupe.db, loupe.settings.workspace)
    vector = loupe.embeddings.embed_query(QUERY)
    hits = ready.search(QUERY, vector, k=20, alpha=0.5)
    return {h.chunk.content_hash for h in hits if h.chunk.document_id == document_id}


def lease_owner(loupe: Loupe) -> str | None:
    """Who holds the (only) document's lease, read from SQL."""
    with loupe.db.session() as s:
        [owner] = s.scalars(select(Document.lease_owner)).all()
        return owner


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


UPDATE_STAGES = ["claimed", "writing", "written", "published", "retired"]


@pytest.mark.parametrize("stage", UPDATE_STAGES)
def test_update_killed_at_any_step_serves_one_version(
    loupe: Loupe, settings: Settings, tmp_path: Path, stage: str
) -> None:
    first = loupe.ingest_paths([write(tmp_path / "v1" / "policy.txt", policy("storage"))])[0]
    assert first.outcome == "indexed"
    v1 = loupe.documents()[0].content_hash
    new = write(tmp_path / "v2" / "policy.txt", policy("hydrogen"))

    process = worker(settings, [new], tmp_path / "signals", stage=stage, action="kill")
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL

    doc = loupe.documents()[0]
    expected = v1 if stage in ("claimed", "writing", "written") else doc.content_hash
    assert doc.status == DocumentStatus.ready and doc.content_hash == expected
    assert served_versions(loupe, doc.id) == {expected}

    # A start-up while the dead ingest's lease still runs leaves the document alone...
    restarted = Loupe(settings)
    assert lease_owner(restarted) is not None
    assert served_versions(restarted, doc.id) == {expected}
    restarted.close()
    # ...and once it has run out, repairs it: one version left, SQL and store agree.
    time.sleep(LEASE_SECONDS + 0.5)
    recovered = Loupe(settings)
    doc = recovered.documents()[0]
    assert lease_owner(recovered) is None and doc.status == DocumentStatus.ready
    assert doc.content_hash == expected
    assert recovered.store.version_counts() == {(doc.id, expected): doc.chunk_count}
    report = check(recovered.ingestor)
    assert report.ok, report.as_dict()
    recovered.close()


@pytest.mark.parametrize("stage", ["writing", "written", "published"])
def test_new_document_killed_at_any_step_is_served_whole_or_not_at_all(
    loupe: Loupe, settings: Settings, tmp_path: Path, stage: str
) -> None:
    new = write(tmp_path / "in" / "policy.txt", policy("storage"))
    process = worker(settings, [new], tmp_path / "signals", stage=stage, action="kill")
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL

    doc = loupe.documents()[0]
    published = stage == "published"
    assert served_versions(loupe, doc.id) == ({doc.content_hash} if published else set())

    time.sleep(LEASE_SECONDS + 0.5)
    recovered = Loupe(settings)
    doc = recovered.documents()[0]
    assert doc.status == (DocumentStatus.ready if published else DocumentStatus.failed)
    assert recovered.store.count(doc.id) == (doc.chunk_count if published else 0)
    assert check(recovered.ingestor).ok
    recovered.close()


def test_start_up_leaves_a_running_ingest_alone(
    loupe: Loupe, settings: Settings, tmp_path: Path
) -> None:
    """Issue 9, failure 1: a start-up marked another process's document failed and deleted its
    chunks; that ingest then called it ready with N chunks while the store held none."""
    new = write(tmp_path / "in" / "policy.txt", policy("storage"))
    signals = tmp_path / "signals"
    process = worker(settings, [new], signals, stage="writing", action="pause")
    deadline = time.monotonic() + 300
    while not (signals / "reached").exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The paused ingest holds its lease (its heartbeat goes on) past the lease time.
    time.sleep(LEASE_SECONDS + 0.5)
    other = Loupe(settings)  # recovery runs here
    doc = other.documents()[0]
    assert doc.status == DocumentStatus.indexing and lease_owner(other) is not None
    other.close()
    (signals / "go").write_text("")
    [result] = finish(process)
    assert result["outcome"] == "indexed"
    doc = loupe.documents()[0]
    assert doc.status == DocumentStatus.ready and doc.chunk_count == result["chunks"]
    assert loupe.store.count(doc.id) == doc.chunk_count
    assert check(loupe.ingestor).ok


def folder(root: Path, prefix: str, n: int) -> Path:
    for i in range(n):
        write(root / f"{prefix}-{i:02d}.txt", f"{prefix} document {i}. " + policy(f"{prefix}{i}"))
    return root


def test_two_ingest_processes_at_once_lose_nothing(
    loupe: Loupe, settings: Settings, tmp_path: Path
) -> None:
    """Issue 9, failure 3: two ingests at once failed ~10% of files on LanceDB commit conflicts
    (after the data was written), with a Rust source path in the message."""
    a = folder(tmp_path / "a", "alpha", 10)
    b = folder(tmp_path / "b", "beta", 10)
    shared = folder(tmp_path / "shared", "gamma", 4)
    first = worker(settings, [a, shared], tmp_path / "sa")
    second = worker(settings, [b, shared], tmp_path / "sb")
    results = finish(first) + finish(second)
    failed = [r for r in results if r["outcome"] == "failed"]
    assert not failed, failed
    docs = loupe.documents()
    assert len(docs) == 24 and all(d.status == DocumentStatus.ready for d in docs)
    report = check(loupe.ingestor)
    assert report.ok, report.as_dict()
    assert report.chunks == sum(d.chunk_count for d in docs)


@pytest.fixture(autouse=True)
def _one_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers and the test share two cores: one embedding thread each keeps them from
    starving one another."""
    monkeypatch.setenv("LOUPE_EMBED_THREADS", os.environ.get("LOUPE_EMBED_THREADS", "1"))
