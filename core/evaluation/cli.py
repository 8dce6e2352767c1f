"""`python -m core eval`: run an evaluation, print it as a table (or JSON), keep its record.

Only argparse is imported here; the runners and their models load when `eval` actually runs,
so registering the subcommand costs the other commands nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_GATE_FAILED = 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def add_eval_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Register `eval` on the CLI's subparsers, with the shared options (`--json`, ...)."""
    p = subparsers.add_parser(
        "eval",
        parents=[common],
        help="measure retrieval and answers (BEIR, SQuAD, the feedback eval set)",
        description="Each run writes a JSON record under <data dir>/evals/.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--beir", metavar="DIR", help="a BEIR folder (corpus, queries, qrels)")
    what.add_argument("--squad", metavar="FILE", help="a SQuAD v1.1 JSON file")
    what.add_argument(
        "--feedback",
        metavar="FILE",
        nargs="?",
        const="",
        help="replay an exported eval set (default: the one in the current data directory)",
    )
    what.add_argument(
        "--matching",
        metavar="FILE",
        help="verified-answer matching on a SQuAD-format file: false offers, paraphrase recall",
    )
    what.add_argument("--compare", nargs=2, metavar=("A", "B"), help="B − A for two records")
    p.add_argument("--limit-queries", type=_positive, help="BEIR: only the first N queries")
    p.add_argument(
        "--limit-corpus",
        type=_positive,
        help="BEIR: about N documents (every relevant one of the kept queries stays)",
    )
    p.add_argument(
        "--limit-questions",
        type=_positive,
        help="SQuAD: about N questions of each kind (answerable, unanswerable, off-topic)",
    )
    _add_squad_options(p)
    p.add_argument("--alpha", type=_share, help="hybrid alpha for this run (default: configured)")
    p.add_argument(
        "--fail-below",
        type=_share,
        metavar="X",
        help="--feedback: exit 1 when agreement with approved answers is below X (0-1) or "
        "below the last passing run",
    )
    p.add_argument(
        "--simulate-verdicts",
        action="store_true",
        help="--squad/--beir: a simulated expert judges passages on half the questions; "
        "hit@1 before and after",
    )
    p.set_defaults(func=cmd_eval)


def _add_squad_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--off-topic",
        metavar="DIR",
        help="SQuAD: a BEIR folder whose queries serve as off-topic questions (e.g. ArguAna)",
    )
    p.add_argument(
        "--off-topic-limit",
        type=_positive,
        default=400,
        help="SQuAD: how many off-topic questions to sample (default 400)",
    )
    p.add_argument(
        "--folds", type=_positive, default=5, help="SQuAD: held-out-article folds (default 5)"
    )
    p.add_argument(
        "--articles",
        metavar="A-B",
        help="SQuAD: only articles A to B in file order (KorQuAD: 0-69 is the development split)",
    )


def add_calibrate_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Register `calibrate`: fit the confidence on labelled records and install it."""
    p = subparsers.add_parser(
        "calibrate",
        parents=[common],
        help="fit the confidence calibration (benchmark data or expert feedback)",
        description=(
            "Fits P(right) on labelled answers: held-out-article questions of a SQuAD file "
            "(with --squad, written to <data dir>/labelled/ and replayable), an existing store "
            "of labelled records (--from-store), or expert verdicts (--from-feedback, installed "
            "only if no worse than the calibration in use). The fit is kept in SQL and, when "
            "installed, written to <data dir>/calibration.json."
        ),
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--squad", metavar="FILE", help="a SQuAD v1.1 JSON file")
    what.add_argument("--from-store", metavar="FILE", help="a store of labelled records")
    what.add_argument(
        "--replay",
        metavar="FILE",
        help="ask a store's questions again through the current chain, then fit",
    )
    what.add_argument(
        "--from-feedback", action="store_true", help="refit from expert verdicts in SQL"
    )
    _add_squad_options(p)
    p.add_argument("--target-precision", type=_share, help="pick the threshold by precision")
    p.add_argument("--no-install", action="store_true", help="fit and record, do not install")
    p.add_argument(
        "--without",
        metavar="F1,F2",
        help="leave these confidence features out of the fit (e.g. raw keyword scores, whose "
        "scale depends on the corpus)",
    )
    p.add_argument(
        "--bundle",
        metavar="FILE",
        help="also write the calibration to FILE (the copy shipped for an embedding model)",
    )
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.evaluation import labelled
    from core.service import Loupe

    settings = get_settings()
    progress = _progress()
    loupe = Loupe(settings)
    try:
        if args.from_feedback:
            outcome = loupe.refit_from_feedback()
        else:
            if args.squad:
                header, records = labelled.generate(
                    Path(args.squad),
                    settings,
                    folds=args.folds,
                    off_topic=Path(args.off_topic) if args.off_topic else None,
                    off_topic_limit=args.off_topic_limit,
                    articles=args.articles,
                    language=settings.calibration_language,
                    progress=progress,
                )
                store = settings.data_dir / "labelled" / f"{Path(args.squad).stem}.jsonl"
                labelled.write_store(store, header, records)
            elif args.replay:
                header, records = labelled.replay(Path(args.replay), settings, progress=progress)
                store = settings.data_dir / "labelled" / f"replay-{Path(args.replay).name}"
                labelled.write_store(store, header, records)
            else:
                store = Path(args.from_store)
                header, records = labelled.read_store(store)
                records = labelled.refeaturize(records)
            outcome = loupe.calibrate(
                records,
                dataset=f"{Path(header.dataset).name} (sha256 {header.dataset_sha256[:12]}), "
                + (f"articles {header.articles}, " if header.articles else "")
                + f"{header.folds} held-out-article folds, off-topic: "
                f"{Path(header.off_topic).name if header.off_topic else 'none'}",
                language=header.language,
                training_hash=labelled.store_hash(records),
                target_precision=args.target_precision,
                install=not args.no_install,
                without=[n.strip() for n in (args.without or "").split(",") if n.strip()],
            )
        if args.bundle:
            outcome.calibration.save(Path(args.bundle))
    finally:
        loupe.close()
    c, f = outcome.calibration, outcome.figures
    payload = {
        "version": c.version,
        "method": c.method,
        "installed": outcome.installed,
        "decision": outcome.decision,
        "threshold": c.threshold,
        "threshold_rule": c.threshold_rule,
        "cv": c.cv,
        "figures": f,
        "compared": outcome.compared,
    }
    lines = [
        f"calibration {c.version} ({c.method}, {c.samples} labels)",
        f"out of fold: AUROC {_fmt(f['auroc'])}, answerable-only AUROC "
        f"{_fmt(f['auroc_answerable'])}, ECE {_fmt(f['ece'])}",
        f"threshold {c.threshold:.2f} ({c.threshold_rule})",
        outcome.decision,
    ]
    print(json.dumps(payload, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))
    return EXIT_OK


def _progress() -> Any:
    """Progress on stderr: live on a terminal, every 10% otherwise (logs, nohup)."""
    live = sys.stderr.isatty()
    shown: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        if total <= 0:
            return
        if live:
            end = "\n" if done >= total else ""
            print(f"\r{stage}: {done}/{total}", end=end, file=sys.stderr, flush=True)
        elif shown.get(stage) != done * 10 // total:
            shown[stage] = done * 10 // total
            print(f"{stage}: {done}/{total}", file=sys.stderr, flush=True)

    return show


def cmd_eval(args: argparse.Namespace) -> int:
    from core.config import get_settings
    from core.evaluation.beir import run_beir
    from core.evaluation.feedback import run_feedback
    from core.evaluation.squad import run_squad

    if (args.limit_queries or args.limit_corpus) and not args.beir:
        raise ValueError("--limit-queries and --limit-corpus apply to --beir only.")
    if args.limit_questions and not args.squad:
        raise ValueError("--limit-questions applies to --squad only.")
    if args.fail_below is not None and args.feedback is None:
        raise ValueError("--fail-below applies to --feedback only.")
    if args.simulate_verdicts and not (args.squad or args.beir):
        raise ValueError("--simulate-verdicts applies to --squad and --beir.")
    if args.compare:
        return _compare(args, Path(args.compare[0]), Path(args.compare[1]))
    settings = get_settings()
    progress = _progress()
    if args.simulate_verdicts:
        return _simulate(args, settings, progress)
    if args.beir:
        record = run_beir(
            Path(args.beir),
            settings,
            limit_queries=args.limit_queries,
            limit_corpus=args.limit_corpus,
            alpha=args.alpha,
            progress=progress,
        )
        text = _beir_text(record)
    elif args.squad:
        record = run_squad(
            Path(args.squad),
            settings,
            limit_questions=args.limit_questions,
            alpha=args.alpha,
            off_topic=Path(args.off_topic) if args.off_topic else None,
            off_topic_limit=args.off_topic_limit,
            folds=args.folds,
            articles=args.articles,
            progress=progress,
        )
        text = _answers_text(record)
    elif args.matching:
        from core.evaluation.matching import matching_text, run_matching

        record = run_matching(Path(args.matching), settings)
        text = matching_text(record)
    else:
        path = Path(args.feedback) if args.feedback else None
        record = run_feedback(settings, path, alpha=args.alpha, progress=progress)
        text = _answers_text(record)
        if args.fail_below is not None:
            return _gate(args, record, text)
    print(json.dumps(record, indent=2, ensure_ascii=False) if args.json else text)
    return EXIT_OK


def _gate(args: argparse.Namespace, record: dict[str, Any], text: str) -> int:
    from core.evaluation.gate import check

    result = check(record, args.fail_below)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        previous = "none" if result.previous is None else f"{result.previous:.1%}"
        verdict = "PASSED" if result.passed else "FAILED: " + "; ".join(result.reasons)
        print(
            f"{text}\n\nregression gate: agreement {result.agreement:.1%}, floor "
            f"{result.threshold:.1%}, last passing run {previous} -> {verdict}"
        )
    return EXIT_OK if result.passed else EXIT_GATE_FAILED


def _simulate(args: argparse.Namespace, settings: Any, progress: Any) -> int:
    from core.evaluation.simulate import run_simulated_verdicts

    if args.squad:
        options: dict[str, Any] = {"limit_questions": args.limit_questions, "progress": progress}
        record = run_simulated_verdicts("squad", Path(args.squad), settings, **options)
    else:
        options = {
            "limit_queries": args.limit_queries,
            "limit_corpus": args.limit_corpus,
            "progress": progress,
        }
        record = run_simulated_verdicts("beir", Path(args.beir), settings, **options)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return EXIT_OK
    m = record["metrics"]
    lines = [f"simulated verdicts on {record['dataset']['name']}, k {m['k']}", ""]
    for half in ("taught", "untouched"):
        h = m[half]
        lines.append(
            f"{half:<10} {h['questions']:>5} questions  hit@1 {h['hit@1_before']} -> "
            f"{h['hit@1_after']} ({h['delta_points']:+} points)  misses fixed "
            f"{h['misses_fixed']}  hits broken {h['hits_broken']}"
        )
    t = m["taught"]
    lines.append(
        f"taught with gold retrieved but not first: {t['gold_retrieved_not_first']}, "
        f"now first: {t['of_those_now_first']} ({t['share_fixed']})"
    )
    print("\n".join(lines + _footer(record)))
    return EXIT_OK


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _footer(record: dict[str, Any]) -> list[str]:
    return ["", *(f"* {note}" for note in record["notes"]), f"Record: {record['path']}"]


def _beir_text(record: dict[str, Any]) -> str:
    data, config, metrics = record["dataset"], record["config"], record["metrics"]
    lines = [
        f"BEIR {data['name']}: {data['documents']} documents, {data['queries']} queries"
        f" ({data['relevant_missing_from_corpus']} relevant documents missing from the corpus)",
        f"embeddings {config['embedding_model']}, top {config['top_k']}, "
        f"indexed in {metrics['index']['seconds']} s",
        "",
        f"{'mode':<14}{'alpha':>6}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}{'q/s':>8}",
    ]
    rows = [*metrics["modes"].items(), *((f"sweep {a}", m) for a, m in metrics["sweep"].items())]
    for name, m in rows:
        lines.append(
            f"{name:<14}{m['alpha']:>6.2f}{_fmt(m['ndcg@10']):>9}{_fmt(m['recall@10']):>8}"
            f"{_fmt(m['recall@100']):>8}{_fmt(m['mrr@10']):>8}{_fmt(m['qps'], 1):>8}"
        )
    return "\n".join(lines + _footer(record))


def _answers_text(record: dict[str, Any]) -> str:
    data, config, metrics = record["dataset"], record["config"], record["metrics"]
    count = data.get("questions", data.get("items"))
    lines = [
        f"{record['kind']} {data.get('name', data['path'])}: {count} questions",
        f"embeddings {config['embedding_model']}, alpha {config['hybrid_alpha']}, "
        f"k {config['retrieval_k']}, answers by {config['llm_model']}",
        "",
    ]
    for section in ("retrieval", "answers", "confidence", "confidence_contains", "speed"):
        if section in metrics:
            parts = [f"{key} {_fmt(value)}" for key, value in metrics[section].items()]
            lines.append(f"{section:<20}" + "   ".join(parts))
    if "trust" in metrics:
        lines += _trust_text(metrics["trust"], metrics.get("conversational", {}))
    return "\n".join(lines + _footer(record))


def _trust_text(trust: dict[str, Any], conversational: dict[str, Any]) -> list[str]:
    lines = ["", f"trust: {trust['counts']} (right share {_fmt(trust['right_share'])})"]
    for name in ("installed", "out_of_fold"):
        view = trust.get(name)
        if not view:
            lines.append(f"  {name}: none")
            continue
        if "skipped" in view:
            lines.append(f"  {name}: skipped ({view['skipped']})")
            continue
        lines += [
            f"  {name}: AUROC {_fmt(view['auroc'])}  answerable-only AUROC "
            f"{_fmt(view['auroc_answerable'])}  ECE {_fmt(view['ece'])}  at threshold "
            f"{view['threshold']:.2f}: answers {_fmt(view['answer_rate_answerable'])} of "
            f"answerable, abstains on {_fmt(view['abstain_unanswerable'])} of unanswerable "
            f"and {_fmt(view['abstain_off_topic'])} of off-topic",
            "    selective accuracy at coverage "
            + "   ".join(f"{k} {_fmt(v)}" for k, v in view["selective_accuracy"].items()),
            f"    {'bin':<9}{'n':>6}{'conf':>8}{'right':>8}",
        ]
        lines += [
            f"    {row['bin']:<9}{row['count']:>6}{_fmt(row['mean_confidence'], 3):>8}"
            f"{_fmt(row['accuracy'], 3):>8}"
            for row in view["reliability"]
        ]
    if conversational.get("questions"):
        c = conversational
        lines.append(
            f"conversational: {c['questions']} questions, hit@1 alone {_fmt(c['hit@1_alone'])}"
            f", after an unrelated one {_fmt(c['hit@1_after_unrelated'])} "
            f"({c['loss_points']:+.2f} points lost; {'passes' if c['passes'] else 'FAILS'})"
        )
    return lines


def _compare(args: argparse.Namespace, path_a: Path, path_b: Path) -> int:
    from core.evaluation.records import compare_records, load_record

    rows, changed = compare_records(load_record(path_a), load_record(path_b))
    if args.json:
        payload = {
            "a": str(path_a),
            "b": str(path_b),
            "metrics": [row.__dict__ for row in rows],
            "config_changes": [row.__dict__ for row in changed],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return EXIT_OK
    width = max((len(row.key) for row in [*rows, *changed]), default=6)
    lines = [f"A: {path_a}", f"B: {path_b}", ""]
    lines.append(f"{'metric':<{width}}  {'A':>10}  {'B':>10}  {'B − A':>10}")
    for row in rows:
        delta = "—" if row.delta is None else f"{row.delta:+.4f}"
        lines.append(f"{row.key:<{width}}  {_fmt(row.a):>10}  {_fmt(row.b):>10}  {delta:>10}")
    if changed:
        lines += ["", "configuration that differs:"]
        lines += [f"  {row.key}: {row.a} → {row.b}" for row in changed]
    print("\n".join(lines))
    return EXIT_OK
