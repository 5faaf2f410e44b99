"""Searching the postings: hard conditions filter, the conversation's wishes rank.

The catalogue keeps a snapshot of every live posting's filter columns and vector in memory (numpy), reloaded when an
import or removal moves the database's version; a search filters and ranks the snapshot, then reads the postings it
shows from the database, which leaves out anything expired or removed since the snapshot. So a posting past its
validThrough is never shown, whatever the snapshot's age.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bot.jobs.index import JobIndex
from bot.jobs.model import ANY, REMOTE, Conditions, Posting
from bot.jobs.repository import JobRepository
from bot.jobs.vocabulary import Vocabulary

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0  # how often a search checks whether an import changed the catalogue
HOURS_PER_DAY = 8  # a daily wage is compared with an hourly floor as 8 hours of work (never more)


@dataclass(frozen=True)
class SearchResult:
    postings: list[Posting]
    total: int  # postings that meet the hard conditions
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.postings) < self.total


class _Snapshot:
    def __init__(self, rows: list[Any], vocab: Vocabulary, vectors: tuple[list[str], np.ndarray], version: int):
        self.version = version
        n = len(rows)
        self.ids = [r.id for r in rows]
        job_codes = {slug: i + 1 for i, slug in enumerate(vocab.job_types)}
        pref_codes = {name: i + 1 for i, name in enumerate(vocab.prefectures)}
        emp_bits = {code: 1 << i for i, code in enumerate(vocab.employment_types)}
        self.job_codes, self.pref_codes, self.emp_bits = job_codes, pref_codes, emp_bits
        self.job = np.array([job_codes.get(r.job_type or "", 0) for r in rows], dtype=np.int16)
        self.pref = np.array([pref_codes.get(r.prefecture or "", 0) for r in rows], dtype=np.int16)
        self.remote = np.array([bool(r.remote) for r in rows], dtype=bool)
        self.emp = np.array(
            [sum(emp_bits.get(c, 0) for c in (r.employment_types or "").split(",") if c) for r in rows], dtype=np.int64
        )
        self.annual = np.full(n, -1.0)
        self.hourly = np.full(n, -1.0)
        for i, r in enumerate(rows):
            top = r.salary_max if r.salary_max is not None else r.salary_min
            if top is None or r.salary_unit is None:
                continue
            if r.salary_unit == "YEAR":
                self.annual[i] = top
            elif r.salary_unit == "MONTH":
                self.annual[i] = top * 12
            elif r.salary_unit == "HOUR":
                self.hourly[i] = top
            elif r.salary_unit == "DAY":
                self.hourly[i] = top / HOURS_PER_DAY
        self.expires = np.array(
            [r.valid_through.timestamp() if r.valid_through is not None else np.inf for r in rows], dtype=np.float64
        )
        self.counts_by_pref = np.bincount(self.pref, minlength=len(pref_codes) + 1)
        # Vectors in the snapshot's row order; a posting not embedded yet ranks on the other signals only.
        ids, matrix = vectors
        self.vectors: np.ndarray | None = None
        if len(ids) and matrix.size:
            position = {pid: i for i, pid in enumerate(ids)}
            aligned = np.zeros((n, matrix.shape[1]), dtype=np.float32)
            for i, pid in enumerate(self.ids):
                j = position.get(pid)
                if j is not None:
                    aligned[i] = matrix[j]
            self.vectors = aligned

    def mask(self, conditions: Conditions, now: float) -> np.ndarray:
        keep = self.expires > now
        if conditions.job_type and conditions.job_type != ANY:
            keep &= self.job == self.job_codes.get(conditions.job_type, -1)
        if conditions.area == REMOTE:
            keep &= self.remote
        elif conditions.area and conditions.area != ANY:
            keep &= self.pref == self.pref_codes.get(conditions.area, -1)
        if conditions.employment_type and conditions.employment_type != ANY:
            keep &= (self.emp & self.emp_bits.get(conditions.employment_type, 0)) != 0
        if conditions.salary_floor:
            column = self.hourly if conditions.salary_unit == "HOUR" else self.annual
            keep &= column >= conditions.salary_floor
        return keep


class JobCatalog:
    """Thread-safe search over the live postings; see the module docstring."""

    def __init__(
        self,
        repo: JobRepository,
        index: JobIndex | None,
        vocab: Vocabulary,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.repo = repo
        self.index = index
        self.vocab = vocab
        self.refresh_seconds = refresh_seconds
        self._snapshot: _Snapshot | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._query_cache: dict[str, np.ndarray] = {}

    # ----- the snapshot --------------------------------------------------------------------------------------------
    def snapshot(self) -> _Snapshot:
        now = time.monotonic()
        current = self._snapshot
        if current is not None and now - self._checked < self.refresh_seconds:
            return current
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._checked < self.refresh_seconds:
                return self._snapshot
            version = self.repo.version()
            if self._snapshot is None or self._snapshot.version != version:
                start = time.perf_counter()
                vectors = self.index.vectors() if self.index is not None else ([], np.zeros((0, 0), np.float32))
                self._snapshot = _Snapshot(self.repo.snapshot(), self.vocab, vectors, version)
                log.info(
                    "jobs: catalogue loaded, %d live posting(s) in %.2f s",
                    len(self._snapshot.ids),
                    time.perf_counter() - start,
                )
            self._checked = time.monotonic()
            return self._snapshot

    def live_count(self) -> int:
        snap = self.snapshot()
        return int((snap.expires > datetime.now(UTC).timestamp()).sum())

    def top_prefectures(self, limit: int) -> list[str]:
        """The prefectures with the most live postings (the area question offers them)."""
        snap = self.snapshot()
        order = np.argsort(-snap.counts_by_pref[1:], kind="stable")
        names = list(snap.pref_codes)
        return [names[i] for i in order[:limit] if snap.counts_by_pref[i + 1] > 0]

    # ----- search --------------------------------------------------------------------------------------------------
    def embed_wishes(self, text: str) -> np.ndarray | None:
        text = " ".join(text.split())[-600:]
        if not text or self.index is None:
            return None
        # Keyed by a digest, not the words: what a person told us never outlives their conversation in this cache.
        key = hashlib.sha256(text.encode()).hexdigest()
        cached = self._query_cache.get(key)
        if cached is None:
            cached = np.asarray(self.index.embedder.embed_query_array(text), dtype=np.float32)
            if len(self._query_cache) > 256:
                self._query_cache.clear()
            self._query_cache[key] = cached
        return cached

    def search(self, conditions: Conditions, wishes: str = "", *, offset: int = 0, limit: int = 5) -> SearchResult:
        snap = self.snapshot()
        now = datetime.now(UTC)
        matching = np.flatnonzero(snap.mask(conditions, now.timestamp()))
        total = len(matching)
        if total == 0:
            return SearchResult([], 0, offset)
        query = self.embed_wishes(wishes) if snap.vectors is not None else None
        if query is not None and snap.vectors is not None and query.shape[0] == snap.vectors.shape[1]:
            # Broad conditions: one product over the whole matrix (copying most of its rows out cost 150 ms at 100k),
            # then the matching rows' scores; narrow ones: only their rows.
            broad = total > len(snap.ids) // 8
            scores = (snap.vectors @ query)[matching] if broad else snap.vectors[matching] @ query
        else:
            scores = np.zeros(total, dtype=np.float32)
        # Ties (no wishes, no vectors) keep the snapshot's order, which is stable; the best first.
        want = min(total, offset + limit + 10)  # a few spare ones in case some expired since the snapshot
        if want < total:
            top = np.argpartition(-scores, want - 1)[:want]
            top = top[np.argsort(-scores[top], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        ids = [snap.ids[matching[i]] for i in top]
        postings = self.repo.get(ids, now=now)
        return SearchResult(postings[offset : offset + limit], total, offset)
