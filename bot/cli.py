"""The `bot` command line (also `python -m bot`). Sub-commands are a public contract; see README."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bot.config import get_settings

Handler = Callable[[argparse.Namespace], int]


def _knowledge_check(args: argparse.Namespace) -> int:
    from bot.knowledge.check import check_library

    settings = get_settings()
    directory = Path(args.dir) if args.dir else settings.knowledge_dir
    problems, count = check_library(directory)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem, file=sys.stdout if problem.severity == "error" else sys.stderr)
    status = "ok" if not errors else f"{len(errors)} problem(s)"
    print(f"checked {count} articles in {directory}: {status}", file=sys.stderr)
    return 1 if errors else 0


def _knowledge_import(args: argparse.Namespace) -> int:
    from bot.knowledge.model import ArticleFormatError
    from bot.knowledge.readers import read_article
    from bot.knowledge.topic_guess import guess_topic
    from bot.knowledge.writer import to_markdown

    settings = get_settings()
    path = Path(args.file)
    try:
        article = read_article(path, topic=args.topic)
    except ArticleFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.topic:
        from bot.knowledge.taxonomy import load_topics

        topics = load_topics(settings.knowledge_dir / "topics.tsv")
        if args.topic not in topics:
            print(f"error: unknown topic {args.topic!r}; see knowledge/topics.tsv", file=sys.stderr)
            return 2
    elif not article.topic:
        guess = guess_topic(article, settings.knowledge_dir)
        if guess:
            article.topic = guess
            print(f"note: topic guessed as {guess!r}; pass --topic to set it", file=sys.stderr)
    if args.json:
        print(json.dumps(article.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(to_markdown(article))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    # Our own loggers at LOG_LEVEL (message text is never logged at INFO; see the privacy rule in README).
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = max(1, args.workers or int(os.environ.get("WEB_CONCURRENCY") or 1))
    if workers > 1:
        _prepare_multiprocess_metrics()
    uvicorn.run(
        "bot.api.main:create_app",
        server_header=False,  # no `Server: uvicorn`: SecurityHeadersMiddleware sends a neutral one
        access_log=False,  # uvicorn's names every conversation id; bot.api.access_log logs without them
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        workers=workers,
        # Longer than the LINE channel's drain (10 s) and the web chat's wait for streams still running (30 s).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


GRACEFUL_SHUTDOWN_SECONDS = 40


def _prepare_multiprocess_metrics() -> None:
    """Several worker processes: prometheus-client keeps each one's values in files under PROMETHEUS_MULTIPROC_DIR
    (a fresh temporary directory unless set), and /metrics sums them. Files of an earlier run are removed first, or
    their counts would be added to this run's."""
    import tempfile
    from pathlib import Path

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="bot-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the worker processes
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot", description="Career-advice partner for LINE and web chat.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web chat, widget and LINE webhook")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers", type=int, help="worker processes (default: WEB_CONCURRENCY or 1); metrics are summed over them"
    )
    serve.set_defaults(handler=_serve)

    knowledge = sub.add_parser("knowledge", help="work with the article library")
    ksub = knowledge.add_subparsers(dest="knowledge_command", required=True)
    check = ksub.add_parser("check", help="lint every article in knowledge/")
    check.add_argument("--dir", help="library directory (default: KNOWLEDGE_DIR or ./knowledge)")
    check.set_defaults(handler=_knowledge_check)
    imp = ksub.add_parser("import", help="read a raw article (Markdown, plain text or HTML)")
    imp.add_argument("file")
    imp.add_argument("--topic", help="topic slug from knowledge/topics.tsv")
    imp.add_argument("--json", action="store_true", help="print the parsed article as JSON")
    imp.set_defaults(handler=_knowledge_import)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later modules add their sub-commands here (index, ask, chat, eval, models) without touching the parser.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> None:
    from bot import commands  # noqa: F401  (registers the retrieval/answer sub-commands)

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
