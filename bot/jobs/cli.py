"""`bot jobs import|remove|sync|stats`: the operators' commands for job postings (docs/jobs.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from bot.config import Settings, get_settings


def _open(settings: Settings, *, index: bool) -> tuple[Any, Any, Any]:
    from bot.jobs.index import JobIndex, posting_embedder
    from bot.jobs.repository import JobRepository
    from bot.store.factory import open_store

    store = open_store(settings.resolved_database_url)
    repo = JobRepository(store)
    job_index = None
    if index:
        from bot.retrieval.index import make_chroma_client
        from bot.retrieval.stack import build_embeddings

        embeddings = build_embeddings(settings.model_copy(update={"embedding_use_weight": 0.0}))
        job_index = JobIndex(make_chroma_client(settings), posting_embedder(embeddings), settings.jobs_collection)
    return store, repo, job_index


def _sync(job_index: Any, repo: Any, quiet: bool) -> str:
    start = time.perf_counter()
    report = job_index.sync(repo)
    seconds = time.perf_counter() - start
    return (
        f"search index: {report.embedded} embedded, {report.removed} removed, {report.total} in all ({seconds:.1f} s)"
    )


def _import(args: argparse.Namespace) -> int:
    from bot.jobs.feed import read_feed
    from bot.retrieval.stack import IndexNotReady

    settings = get_settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    sample = True if args.sample else None
    feed = read_feed(path, source=args.source, label=args.label, sample=sample)
    if feed.errors:
        for error in feed.errors:
            print(f"{path}: {error}", file=sys.stderr)
        print(f"nothing imported: {len(feed.errors)} problem(s) in {path}", file=sys.stderr)
        return 1
    assert feed.options is not None
    try:
        store, repo, job_index = _open(settings, index=not args.no_index)
    except IndexNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        result = repo.import_feed(feed.postings, source=feed.options.source, replace=args.replace)
        seconds = time.perf_counter() - start
        print(f"{result.summary(feed.options.source)} in {seconds:.2f} s", file=sys.stderr)
        if job_index is not None:
            print(_sync(job_index, repo, args.quiet), file=sys.stderr)
        if args.json:
            print(json.dumps({"source": feed.options.source, **result.__dict__}, ensure_ascii=False))
    finally:
        store.close()
    return 0


def _remove(args: argparse.Namespace) -> int:
    if not (args.ids or args.source or args.expired):
        print("error: name posting ids, --source NAME or --expired", file=sys.stderr)
        return 2
    settings = get_settings()
    store, repo, _job_index = _open(settings, index=False)
    try:
        removed = repo.remove(args.ids, source=args.source, expired=args.expired)
        print(f"removed {removed} posting(s)", file=sys.stderr)
        if not args.no_index:
            from bot.jobs.index import JobIndex
            from bot.retrieval.index import make_chroma_client

            # Removal needs no model: the removed postings' vectors are dropped by id.
            index = JobIndex(make_chroma_client(settings), None, settings.jobs_collection)
            index.drop_missing(repo)
    finally:
        store.close()
    return 0


def _sync_command(args: argparse.Namespace) -> int:
    store, repo, job_index = _open(get_settings(), index=True)
    with closing(store):
        print(_sync(job_index, repo, False), file=sys.stderr)
    return 0


def _stats(args: argparse.Namespace) -> int:
    store, repo, _ = _open(get_settings(), index=False)
    with closing(store):
        live, stored = repo.count(), repo.count(live_only=False)
        print(json.dumps({"live": live, "expired": stored - live, "version": repo.version()}))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser("jobs", help="job postings the bot can search for users (docs/jobs.md)")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    imp = jsub.add_parser("import", help="import postings: schema.org JobPosting JSON-LD (.jsonld/.json) or CSV")
    imp.add_argument("file")
    imp.add_argument("--source", help="the feed's name (default: the file's x-source, else its name)")
    imp.add_argument("--label", help="where the postings come from, shown with each result (default: the source)")
    imp.add_argument("--sample", action="store_true", help="invented postings: every result says サンプル求人（架空）")
    imp.add_argument(
        "--replace", action="store_true", help="the file is the whole feed: the source's other postings go"
    )
    imp.add_argument("--no-index", action="store_true", help="database only; `bot jobs sync` embeds later")
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")
    imp.add_argument("--quiet", action="store_true")
    imp.set_defaults(handler=_import)
    rm = jsub.add_parser("remove", help="remove postings by id, by source, or every expired one")
    rm.add_argument("ids", nargs="*")
    rm.add_argument("--source")
    rm.add_argument("--expired", action="store_true", help="every posting past its validThrough")
    rm.add_argument("--no-index", action="store_true")
    rm.set_defaults(handler=_remove)
    sy = jsub.add_parser("sync", help="bring the postings' search index in line with the database")
    sy.set_defaults(handler=_sync_command)
    st = jsub.add_parser("stats", help="live and expired postings (JSON)")
    st.set_defaults(handler=_stats)
