"""The fault harness's short run (bench/fault_harness.py --short): PostgreSQL, Redis, `chroma run`, two `bot serve`
workers and the fake LINE API, with a burst, redeliveries, two workers on one web conversation and a delete racing an
answer, a PostgreSQL restart and a kill -9 mid-burst. It fails on any lost, duplicated or failed answer; the numbers
it prints (latencies, takeover time) are reported, not asserted. Needs PostgreSQL and Redis: fails without them in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_the_short_fault_harness_loses_and_duplicates_nothing(pg_admin, redis_url, index_settings) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "BOT_BENCH_POSTGRES_URL": pg_admin.admin_url}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fault_harness.py"), "--short"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "TOTAL                  lost=0 duplicated=0 failed=0" in done.stdout
