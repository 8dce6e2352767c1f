"""Command line: `python -m core ingest | ask | feedback | documents | check | delete | reindex`.

Every command takes `--json` for machine-readable output. `ingest` exits 0 when every file
was indexed (or was already), 3 when some failed, 1 when all failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.evaluation.cli import add_eval_parser
from core.vocab import Role, Verdict

EXIT_OK, EXIT_ALL_FAILED, EXIT_PARTIAL = 0, 1, 3


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=str) if args.json else text)


def _loupe() -> Any:
    from core.service import Loupe

    return Loupe()


def cmd_ingest(args: argparse.Namespace) -> int:
    from core.ingest.pipeline import IngestProgress

    loupe = _loupe()
    bar: Any = None
    if sys.stderr.isatty() and not args.json:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", file=sys.stderr)

    def progress(p: IngestProgress) -> None:
        if bar is None:
            return
        bar.total = p.file_count
        bar.set_description(
            f"{p.name[:30]} {p.stage} {p.done}/{p.total}" if p.total else p.name[:30]
        )
        if p.stage == "done":
            bar.update(1)

    results = loupe.ingest_paths(
        [Path(p) for p in args.paths], tags=args.tag or (), uploaded_by=args.user, progress=progress
    )
    if bar is not None:
        bar.close()
    skipped = [r for r in results if r.outcome == "skipped"]
    results = [r for r in results if r.outcome != "skipped"]
    failed = [r for r in results if r.outcome == "failed"]
    lines = [
        f"{r.outcome:9} {r.name}"
        + (f"  ({r.chunks} chunks)" if r.outcome in ("indexed", "updated") else "")
        + (f"  — {r.error}" if r.error else "")
        for r in results + skipped
    ]
    lines.append(
        f"{len(results) - len(failed)} of {len(results)} files indexed or already present"
        + (f"; {len(skipped)} skipped (unsupported type)." if skipped else ".")
    )
    _print(args, [r.__dict__ for r in results + skipped], "\n".join(lines))
    if not results:
        print("No supported files found.", file=sys.stderr)
        return EXIT_ALL_FAILED
    if not failed:
        return EXIT_OK
    return EXIT_ALL_FAILED if len(failed) == len(results) else EXIT_PARTIAL


def cmd_ask(args: argparse.Namespace) -> int:
    from core.stores.base import SearchFilter

    if (args.question is None) == (args.questions_file is None):
        raise ValueError("Give either a QUESTION or --questions-file.")
    loupe = _loupe()
    filters = SearchFilter(document_ids=tuple(args.document or ()), tags=tuple(args.tag or ()))
    scope = None if filters.empty else filters
    if args.questions_file is not None:
        # One question per line; with --json, one JSON object per line (JSON Lines).
        lines = Path(args.questions_file).read_text(encoding="utf-8").splitlines()
        for question in filter(None, (line.strip() for line in lines)):
            result = loupe.ask(question, filters=scope, actor=_actor(args))
            payload = _answer_payload(result)
            print(json.dumps(payload, ensure_ascii=False) if args.json else _answer_text(result))
        return EXIT_OK
    stream = not args.json and sys.stdout.isatty()
    result = None
    for event in loupe.ask_stream(args.question, filters=scope, actor=_actor(args)):
        if event.kind == "token" and stream:
            print(event.text, end="", flush=True)
        elif event.kind == "reset" and stream:
            print("\n[the model failed; falling back to extractive answer]", flush=True)
        elif event.result is not None:
            result = event.result
    assert result is not None
    text = _answer_text(result)
    # When streaming, the answer is already on screen: print only what follows it.
    _print(args, _answer_payload(result), text[len(result.answer) :] if stream else text)
    return EXIT_OK


def _answer_payload(result: Any) -> dict[str, Any]:
    return {
        "answer_id": result.answer_id,
        "question": result.question,
        "standalone_question": result.standalone_question,
        "answer": result.answer,
        "citations": [
            {
                "n": c.n,
                "document": c.document,
                "document_id": c.document_id,
                "page": c.page,
                "chunk_id": c.chunk_id,
                "quote": c.quote,
            }
            for c in result.citations
        ],
        "sources": [s.as_dict() for s in result.sources],
        "confidence": {
            "score": result.confidence.score,
            "label": result.confidence.label,
            "reasons": result.confidence.reasons,
        },
        "generator": result.generator,
        "model": result.model,
        "prompt_version": result.prompt_version,
        "notice": result.notice,
        "timings": result.timings,
        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
        "verified": result.verified.__dict__ if result.verified else None,
    }


def _answer_text(result: Any) -> str:
    cites = "\n".join(
        f"[{c.n}] {c.document}" + (f", page {c.page}" if c.page else "") for c in result.citations
    )
    return (
        result.answer
        + f"\n\n{cites}\n\nConfidence: {result.confidence.label} ({result.confidence.score:.2f})"
        + (f"\nNote: {result.notice}" if result.notice else "")
        + f"\nAnswer id: {result.answer_id}"
    )


def cmd_feedback(args: argparse.Namespace) -> int:
    loupe = _loupe()
    verdicts: dict[str | int, str] = {}
    for verdict in args.verdict or ():
        n, _, value = verdict.partition("=")
        verdicts[n.strip()] = value.strip()
    rating = "up" if args.up else "down" if args.down else None
    feedback_id = loupe.feedback(
        args.answer_id,
        rating=rating,
        comment=args.comment,
        edited_answer=args.edit,
        citation_verdicts=verdicts or None,
        role=args.role,
        actor=_actor(args),
    )
    _print(
        args,
        {"feedback_id": feedback_id, "answer_id": args.answer_id},
        f"Saved feedback {feedback_id}.",
    )
    return EXIT_OK


def cmd_documents(args: argparse.Namespace) -> int:
    docs = _loupe().documents()
    rows = [
        {
            "id": d.id,
            "name": d.name,
            "kind": d.kind,
            "status": str(d.status),
            "pages": d.pages,
            "chunks": d.chunk_count,
            "size_bytes": d.size_bytes,
            "tags": d.tags,
            "error": d.error,
            "uploaded_by": d.uploaded_by,
            "created_at": d.created_at,
        }
        for d in docs
    ]
    text = "\n".join(
        f"{r['id']}  {r['status']:8} {r['chunks']:5} chunks  {r['name']}"
        + (f"  — {r['error']}" if r["error"] else "")
        for r in rows
    )
    _print(args, rows, text or "No documents yet.")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when SQL and the store agree, 3 when they differ (after --repair: when anything
    had to be repaired)."""
    report = _loupe().check(repair=args.repair)
    lines = [
        f"{report.documents} documents ({report.ready} ready, {report.in_progress} being "
        f"indexed now), {report.chunks} chunks in the store."
    ]
    for m in report.mismatches:
        lines.append(
            f"{m.problem:17} {m.document_id or '-'}  {m.name or ''}  — {m.detail}"
            + (f"  → {m.repair}" if m.repair else "")
        )
    lines.append(
        "SQL and the store agree."
        if report.ok
        else f"{len(report.mismatches)} mismatches"
        + (" repaired as shown." if report.repaired else "; run with --repair to fix them.")
    )
    _print(args, report.as_dict(), "\n".join(lines))
    return EXIT_OK if report.ok else EXIT_PARTIAL


def cmd_delete(args: argparse.Namespace) -> int:
    deleted = _loupe().delete_document(args.document_id)
    _print(
        args,
        {"deleted": deleted, "document_id": args.document_id},
        "Deleted." if deleted else f"No document {args.document_id}.",
    )
    return EXIT_OK if deleted else EXIT_ALL_FAILED


def cmd_reindex(args: argparse.Namespace) -> int:
    result = _loupe().reindex(args.document_id)
    _print(
        args,
        result.__dict__,
        f"{result.outcome}: {result.name} ({result.chunks} chunks)"
        + (f" — {result.error}" if result.error else ""),
    )
    return EXIT_OK if result.outcome != "failed" else EXIT_ALL_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    rows = _loupe().export(args.kind)
    lines = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
    if args.out:
        Path(args.out).write_text(lines + ("\n" if lines else ""), encoding="utf-8")
        print(f"Wrote {len(rows)} {args.kind} records to {args.out}.", file=sys.stderr)
    else:
        print(lines)
    return EXIT_OK


def cmd_migrate_store(args: argparse.Namespace) -> int:
    """Copy chunks and vectors from the embedded store to Weaviate, without re-embedding."""
    from core.config import get_settings
    from core.embeddings import dimension, get_embeddings
    from core.stores import make_store
    from core.stores.migrate import migrate_store

    settings = get_settings()
    dim = dimension(get_embeddings(settings))
    source = make_store(settings, dimension=dim, backend="lancedb")
    target = make_store(settings, dimension=dim, backend="weaviate")
    bar: Any = None
    if sys.stderr.isatty() and not args.json:
        from tqdm import tqdm

        bar = tqdm(unit="chunk", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        copied = migrate_store(
            source,
            target,
            batch_size=args.batch_size,
            progress=progress,
            checkpoint=settings.data_dir / "migrate-store.ids",
        )
    finally:
        target.close()
        if bar is not None:
            bar.close()
    _print(
        args,
        {"copied": copied, "total": source.count()},
        f"Copied {copied} chunks; Weaviate now holds {target.count()}.",
    )
    return EXIT_OK


def _actor(args: argparse.Namespace) -> Any:
    """Who the command acts as: the local operator (an admin: whoever runs the CLI can read the
    data directory anyway), under the `--user` name when one is given, so answers and feedback
    are recorded in that name."""
    from core.auth import OPERATOR, Actor

    return Actor(args.user, Role.admin, args.user, "operator") if args.user else OPERATOR


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--user", default=None, help="who is acting (recorded)")
    parser = argparse.ArgumentParser(prog="python -m core", description="Loupe command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="index files or folders")
    p.add_argument("paths", nargs="+")
    p.add_argument("--tag", action="append", help="tag the documents (repeatable)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", parents=[common], help="ask a question")
    p.add_argument("question", nargs="?")
    p.add_argument("--questions-file", help="ask every line of this file (JSON Lines with --json)")
    p.add_argument("--document", action="append", help="only this document id (repeatable)")
    p.add_argument("--tag", action="append", help="only documents with this tag (repeatable)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("feedback", parents=[common], help="rate, comment on or correct an answer")
    p.add_argument("answer_id")
    vote = p.add_mutually_exclusive_group()
    vote.add_argument("--up", action="store_true")
    vote.add_argument("--down", action="store_true")
    p.add_argument("--comment")
    p.add_argument("--edit", help="the corrected answer")
    p.add_argument("--verdict", action="append", metavar=f"N={'|'.join(v.value for v in Verdict)}")
    p.add_argument("--role", default=Role.user, choices=[role.value for role in Role])
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("documents", parents=[common], help="list documents and their status")
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("check", parents=[common], help="compare SQL with the vector store")
    p.add_argument("--repair", action="store_true", help="fix every mismatch found")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("delete", parents=[common], help="delete a document and its chunks")
    p.add_argument("document_id")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("reindex", parents=[common], help="rebuild a document's chunks")
    p.add_argument("document_id")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("export", parents=[common], help="datasets from expert feedback (JSONL)")
    p.add_argument("kind", choices=["finetune", "preferences", "eval"])
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "migrate-store", parents=[common], help="copy the embedded store to Weaviate"
    )
    p.add_argument("--to", choices=["weaviate"], required=True)
    p.add_argument("--batch-size", type=int, default=500)
    p.set_defaults(func=cmd_migrate_store)

    add_eval_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, LookupError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ALL_FAILED


if __name__ == "__main__":
    sys.exit(main())
