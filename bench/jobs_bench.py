"""Job search benchmark: import rate and search latency with 100,000 generated postings.

    .venv/bin/python bench/jobs_bench.py [--postings 100000] [--searches 400] [--postgres] [--import-only]

What it does, on a temporary SQLite file (or, with --postgres, a throw-away PostgreSQL database) and a temporary
Chroma directory:
1. generates the postings as a CSV feed (the documented header), from a pool of distinct descriptions (real feeds
   repeat an employer's text across openings), about 5 % already expired;
2. import: reading and validating the CSV (`read_feed`), the one-transaction upsert (`JobRepository.import_feed`),
   a re-import of the unchanged feed, and the semantic index (`JobIndex.sync`: distinct texts embedded with the
   project's e5 model, then every posting's vector written to Chroma);
3. search: the catalogue's first load (cold), then searches with random conditions (each of job type, area,
   employment type and salary floor set or 「こだわらない」) ranked by a consultation text: "warm" repeats the
   conversation's text (its vector is cached, as across the turns of one conversation), "new text" embeds a text
   never seen (the first search of a conversation). The target is p95 <= 50 ms warm.
Nothing is asserted; the numbers are printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import percentile, rss_mb, temporary_postgres_database

from bot.config import Settings
from bot.jobs.feed import CSV_COLUMNS, read_feed
from bot.jobs.index import JobIndex, posting_embedder
from bot.jobs.model import ANY, REMOTE, Conditions
from bot.jobs.repository import JobRepository
from bot.jobs.search import JobCatalog
from bot.jobs.vocabulary import vocabulary
from bot.retrieval.stack import build_embeddings
from bot.store import open_store

ADMIN_URL = os.environ.get("BOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATA = Path(__file__).resolve().parent.parent / "data"

POINTS = [
    "残業は月10時間程度です。", "未経験から研修で学べます。", "フルリモートで働けます。", "土日祝休み、年間休日125日。",
    "子育て中の社員が多く、急な休みにもチームで対応します。", "資格取得の費用を会社が負担します。",
    "先輩が3か月同行して引き継ぎます。", "成果に応じたインセンティブがあります。", "転勤はありません。",
    "夜勤はありません。", "60歳以上の方も活躍しています。", "副業が認められています。",
]
TITLE_TAILS = ["スタッフ", "（未経験歓迎）", "リーダー候補"]
WORRIES = [
    "営業です。残業が多くて家族との時間がとれないので転職を考えています",
    "未経験の職種に挑戦したいけれど、研修がある会社がいいです",
    "子育てと両立できる働き方を探しています",
    "上司との関係がつらく、人間関係のよい職場に移りたい",
    "定年後も経験を活かして働き続けたい",
    "今の給料が低く、成果が評価される会社で働きたい",
    "転勤のない会社で腰を据えて働きたい",
    "夜勤がつらいので日勤だけの仕事を探しています",
]


def generate(path: Path, n: int, distinct: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    vocab = vocabulary()
    slugs, prefectures = list(vocab.job_types), vocab.prefectures
    labels = list(vocab.job_types.values())
    texts = [f"{'、'.join(rng.sample(POINTS, 3))}（説明文{k}）" for k in range(distinct)]
    now = datetime.now(UTC)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for i in range(n):
            slug = rng.randrange(len(slugs))
            remote = rng.random() < 0.1
            part = rng.random() < 0.25
            if part:
                kind, unit, low = "PART_TIME", "HOUR", rng.randrange(1000, 2000, 50)
                high = low + rng.randrange(0, 400, 50)
            else:
                kind = rng.choice(["FULL_TIME", "FULL_TIME", "FULL_TIME", "CONTRACTOR", "TEMPORARY"])
                unit, low = "YEAR", rng.randrange(2_800_000, 7_000_000, 100_000)
                high = low + rng.randrange(0, 2_000_000, 100_000)
            expired = rng.random() < 0.05
            until = now + (timedelta(days=-rng.randrange(1, 60)) if expired else timedelta(days=rng.randrange(5, 90)))
            writer.writerow([
                f"bench-{i:06d}", f"{labels[slug]}{rng.choice(TITLE_TAILS)}", f"ベンチ商事{i % 3000}（架空）",
                texts[rng.randrange(distinct)], slugs[slug], "" if remote else rng.choice(prefectures), "",
                "true" if remote else "false", kind, low, high, unit, f"https://jobs.example.com/bench/{i}",
                "2026-11-01", until.isoformat(),
            ])


def random_conditions(rng: random.Random) -> Conditions:
    vocab = vocabulary()
    area = rng.choice([ANY, REMOTE, *rng.sample(vocab.prefectures, 3)])
    employment = rng.choice([ANY, "FULL_TIME", "PART_TIME", "CONTRACTOR"])
    floor = 0
    unit = "HOUR" if employment == "PART_TIME" else "YEAR"
    if rng.random() < 0.6:
        floor = rng.choice(vocab.salary_choices[unit]) * (1 if unit == "HOUR" else 10_000)
    return Conditions(
        job_type=rng.choice([ANY, *vocab.job_types]),
        area=area,
        employment_type=employment,
        salary_unit=unit,  # type: ignore[arg-type]
        salary_floor=floor,
        salary_asked=True,
    )


def report(name: str, values: list[float]) -> None:
    print(
        f"  {name}: n={len(values)} p50={statistics.median(values):.1f} ms p95={percentile(values, 0.95):.1f} ms "
        f"p99={percentile(values, 0.99):.1f} ms max={max(values):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postings", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=400, help="distinct descriptions (embedded once each)")
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--import-only", action="store_true", help="stop after the database import (no model)")
    args = parser.parse_args()

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jobs-bench-")))
        url = (
            stack.enter_context(temporary_postgres_database(ADMIN_URL, "bot_jobs_bench"))
            if args.postgres
            else f"sqlite:///{tmp / 'bench.sqlite3'}"
        )
        settings = Settings(DATA_DIR=DATA, CHROMA_PATH=tmp / "chroma", EMBEDDING_USE_WEIGHT=0)
        print(f"jobs bench: {args.postings:,} postings, {'PostgreSQL' if args.postgres else 'SQLite'}")
        feed_path = tmp / "feed.csv"
        start = time.perf_counter()
        generate(feed_path, args.postings, args.distinct)
        print(f"  generated the CSV feed ({feed_path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        feed = read_feed(feed_path, source="bench")
        read_s = time.perf_counter() - start
        assert not feed.errors, feed.errors[:3]
        store = open_store(url)
        stack.callback(store.close)
        repo = JobRepository(store)
        start = time.perf_counter()
        result = repo.import_feed(feed.postings, source="bench")
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        again = repo.import_feed(feed.postings, source="bench")
        reimport_s = time.perf_counter() - start
        n = len(feed.postings)
        print(f"  read + validate CSV: {read_s:.1f} s ({n / read_s:,.0f} postings/s)")
        print(f"  import (one transaction): {import_s:.1f} s ({n / import_s:,.0f} postings/s); {result.expired} expired")
        print(f"  re-import, nothing changed: {reimport_s:.1f} s ({n / reimport_s:,.0f} postings/s, {again.unchanged} unchanged)")

        if args.import_only:
            return
        from bot.retrieval.index import make_chroma_client

        embedder = posting_embedder(build_embeddings(settings))
        index = JobIndex(make_chroma_client(settings), embedder, "job_postings_bench")
        start = time.perf_counter()
        synced = index.sync(repo)
        sync_s = time.perf_counter() - start
        print(
            f"  semantic index: {synced.embedded:,} postings ({synced.texts} distinct titles and descriptions embedded) in "
            f"{sync_s:.1f} s ({synced.embedded / sync_s:,.0f} postings/s)"
        )
        texts = [f"テスト用の説明文その{k}。残業少なめで未経験歓迎、資格取得を支援します。" for k in range(32)]
        start = time.perf_counter()
        embedder.embed_documents_array(texts)
        per_text = (time.perf_counter() - start) / len(texts)
        print(f"  embedding alone: {per_text * 1000:.0f} ms per distinct description ({1 / per_text:.1f}/s)")

        catalog = JobCatalog(repo, index, vocabulary(), refresh_seconds=3600)
        start = time.perf_counter()
        catalog.snapshot()
        print(f"  catalogue first load (cold): {time.perf_counter() - start:.1f} s; process RSS {rss_mb():.0f} MB")
        rng = random.Random(11)
        for worry in WORRIES:  # warm-up: each conversation's text embedded once
            catalog.search(random_conditions(rng), worry)
        warm, fresh, totals = [], [], []
        for k in range(args.searches):
            conditions = random_conditions(rng)
            start = time.perf_counter()
            found = catalog.search(conditions, rng.choice(WORRIES))
            warm.append((time.perf_counter() - start) * 1000)
            totals.append(found.total)
            if k % 4 == 0:
                text = f"{rng.choice(WORRIES)}（{k}回目の相談）"
                start = time.perf_counter()
                catalog.search(conditions, text)
                fresh.append((time.perf_counter() - start) * 1000)
        print(f"  postings meeting the conditions: median {statistics.median(totals):,.0f}, max {max(totals):,}")
        report("search, warm (the conversation's text embedded before)", warm)
        report("search, a new text (embedding included)", fresh)
        broad = Conditions(job_type=ANY, area=ANY, employment_type=ANY, salary_asked=True)
        timings = []
        for _ in range(50):
            start = time.perf_counter()
            catalog.search(broad, WORRIES[0])
            timings.append((time.perf_counter() - start) * 1000)
        report("search, every condition こだわらない (ranks all live postings)", timings)


if __name__ == "__main__":
    main()
