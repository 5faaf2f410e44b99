"""The postings' semantic index: a Chroma collection of its own (`job_postings` unless JOBS_COLLECTION says
otherwise), beside the article index and built with the project's embedding model (its primary e5 part).

The database is the truth; `sync` brings the collection in line with it (embedding new or changed postings only,
dropping removed ones), so an import interrupted between the two is repaired by the next import or `bot jobs sync`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.jobs.repository import JobRepository
from bot.retrieval.index import get_all

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "job_postings"
EMBED_BATCH = 256
WRITE_BATCH = 2000


def posting_embedder(embeddings: Any) -> Any:
    """The primary model of the configured (fused) embeddings: e5 alone keeps 100,000 postings' vectors small."""
    parts = getattr(embeddings, "parts", None)
    return parts[0][0] if parts else embeddings


TITLE_WEIGHT = 0.4  # a posting's vector: its title's and its description's, weighted, normalised


def posting_vector(title: np.ndarray, body: np.ndarray) -> np.ndarray:
    vector = TITLE_WEIGHT * title + (1 - TITLE_WEIGHT) * body
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm else vector).astype(np.float32)


@dataclass(frozen=True)
class SyncReport:
    embedded: int  # postings whose vector was written
    removed: int
    total: int
    texts: int = 0  # distinct texts the model embedded for them


class JobIndex:
    def __init__(self, client: Any, embedder: Any, name: str = DEFAULT_COLLECTION) -> None:
        self.client = client
        self.embedder = embedder
        self.name = name
        self.embedder_name = str(getattr(embedder, "name", type(embedder).__name__))

    def collection(self) -> Any:
        collection = self.client.get_or_create_collection(
            self.name, metadata={"hnsw:space": "cosine", "embedder": self.embedder_name}, embedding_function=None
        )
        if (collection.metadata or {}).get("embedder") != self.embedder_name:
            # Another model's vectors cannot be compared with this model's queries: start over.
            log.info("jobs index: embedding model changed; re-embedding every posting")
            self.client.delete_collection(self.name)
            collection = self.client.create_collection(
                self.name, metadata={"hnsw:space": "cosine", "embedder": self.embedder_name}, embedding_function=None
            )
        return collection

    def sync(self, repo: JobRepository, progress: Callable[[int], None] | None = None) -> SyncReport:
        collection = self.collection()
        wanted = repo.all_hashes()
        got = get_all(collection, ["metadatas"])
        indexed = {
            cid: str((md or {}).get("content_hash", "")) for cid, md in zip(got["ids"], got["metadatas"], strict=True)
        }
        stale = [cid for cid in indexed if cid not in wanted]
        for begin in range(0, len(stale), WRITE_BATCH):
            collection.delete(ids=stale[begin : begin + WRITE_BATCH])
        todo = [pid for pid, digest in wanted.items() if indexed.get(pid) != digest]
        seen: dict[str, np.ndarray] = {}  # text -> vector, across batches
        for begin in range(0, len(todo), EMBED_BATCH):
            postings = repo.get(todo[begin : begin + EMBED_BATCH], live_only=False)
            if not postings:
                continue
            pairs = [p.search_texts() for p in postings]
            # Feeds repeat titles and descriptions (one employer's many openings): each distinct text once.
            new = list(dict.fromkeys(t for pair in pairs for t in pair if t not in seen))
            if new:
                seen.update(zip(new, self.embedder.embed_documents_array(new), strict=True))
            collection.upsert(
                ids=[p.id for p in postings],
                embeddings=np.vstack([posting_vector(seen[title], seen[body]) for title, body in pairs]),
                metadatas=[{"content_hash": p.content_hash()} for p in postings],
            )
            if progress:
                progress(len(postings))
        return SyncReport(len(todo), len(stale), len(wanted), len(seen))

    def drop_missing(self, repo: JobRepository) -> int:
        """Drop the vectors of postings no longer in the database (no model needed); returns how many."""
        try:
            collection = self.client.get_collection(self.name, embedding_function=None)
        except Exception:
            return 0
        wanted = repo.all_hashes()
        stale = [cid for cid in get_all(collection, [])["ids"] if cid not in wanted]
        for begin in range(0, len(stale), WRITE_BATCH):
            collection.delete(ids=stale[begin : begin + WRITE_BATCH])
        return len(stale)

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """Every posting's vector (ids, matrix); empty when the collection does not exist yet."""
        try:
            collection = self.client.get_collection(self.name, embedding_function=None)
        except Exception:  # chromadb raises NotFoundError (or ValueError in older versions) for a missing collection
            return [], np.zeros((0, 0), dtype=np.float32)
        got = get_all(collection, ["embeddings"])
        if not got["ids"]:
            return [], np.zeros((0, 0), dtype=np.float32)
        return list(got["ids"]), np.asarray(got["embeddings"], dtype=np.float32)

    def drop(self) -> None:
        try:
            self.client.delete_collection(self.name)
        except Exception:
            log.debug("jobs index %s: nothing to drop", self.name)
