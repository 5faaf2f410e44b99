"""The vector index in Chroma: incremental builds into a fresh collection, then an atomic switch.

A build never edits the collection the server reads. It writes a new collection (copying the vectors of unchanged
chunks, embedding only new or changed ones), then moves the pointer. So a server never sees a half-built index, and
an interrupted `bot index` leaves the previous index in place.

Versioned switching, for workers that keep serving while `bot index --rebuild` runs: the collection that was
active is marked retired (with the time) and stays readable; workers follow the pointer (`bot.retrieval.follow`,
every few seconds) and reopen, and a turn already searching the old collection finishes on it. A retired
collection is dropped by a later build once it has been retired for `RETIRED_KEEP_SECONDS`, far longer than any
worker needs to follow the pointer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.config import Settings
from bot.retrieval.chunks import Chunk

log = logging.getLogger(__name__)

POINTER_COLLECTION = "bot_index_pointer"
CHUNK_PREFIX = "chunks_"
BATCH = 64
# How long a collection that was switched away from stays readable (workers follow the pointer within seconds).
RETIRED_KEEP_SECONDS = 3600.0


def make_chroma_client(settings: Settings) -> Any:
    """HttpClient when CHROMA_HOST is set, else a PersistentClient under data/ (or CHROMA_PATH)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    path = settings.resolved_chroma_path
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def get_all(collection: Any, include: list[str], page: int = 5000) -> dict[str, list[Any]]:
    """Every record of a collection, fetched in pages (one big `get` exceeds SQLite's variable limit at 100k)."""
    out: dict[str, list[Any]] = {"ids": [], **{key: [] for key in include}}
    offset = 0
    while True:
        got = collection.get(include=include, limit=page, offset=offset)
        out["ids"] += list(got["ids"])
        for key in include:
            values = got[key]
            out[key] += list(values) if values is not None else []
        if len(got["ids"]) < page:
            return out
        offset += page


def _pointer(client: Any) -> Any:
    # The pointer is a tiny collection whose metadata names the active chunk collection; it lives in the same
    # Chroma (disk or server) so every process sharing the index agrees on it.
    return client.get_or_create_collection(POINTER_COLLECTION, metadata={"active": ""}, embedding_function=None)


def active_collection_name(client: Any) -> str | None:
    try:
        return read_active(client)
    except Exception:
        log.exception("cannot read the index pointer")
        return None


def read_active(client: Any) -> str | None:
    """The active collection's name (None before the first build); raises when Chroma cannot be read."""
    name = (_pointer(client).metadata or {}).get("active") or None
    return str(name) if name else None


def _set_active(client: Any, name: str, info: dict[str, Any]) -> None:
    _pointer(client).modify(metadata={"active": name, **info})


@dataclass
class IndexReport:
    articles: int
    chunks: int
    embedded: int
    reused: int
    removed: int
    seconds: float
    collection: str
    changed: bool

    def summary(self) -> str:
        if not self.changed:
            return f"index up to date: {self.articles} articles, {self.chunks} chunks ({self.seconds:.1f} s)"
        return (
            f"indexed {self.articles} articles, {self.chunks} chunks "
            f"({self.embedded} embedded, {self.reused} reused, {self.removed} removed) in {self.seconds:.1f} s"
        )


def build_index(
    client: Any,
    chunks: list[Chunk],
    embeddings: Any,
    *,
    rebuild: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Bring the active collection in line with `chunks`; embeds only what changed unless `rebuild`."""
    start = time.perf_counter()
    embedder_name = str(getattr(embeddings, "name", type(embeddings).__name__))
    old_name = active_collection_name(client)
    old: dict[str, tuple[str, np.ndarray]] = {}
    old_ok = False
    if old_name and not rebuild:
        try:
            collection = client.get_collection(old_name, embedding_function=None)
            meta = collection.metadata or {}
            old_ok = meta.get("embedder") == embedder_name
            if old_ok:
                got = get_all(collection, ["metadatas", "embeddings"])
                for cid, md, vec in zip(got["ids"], got["metadatas"], got["embeddings"], strict=True):
                    old[cid] = (str((md or {}).get("content_hash", "")), np.asarray(vec, dtype=np.float32))
        except Exception:
            log.warning("previous index collection %s unreadable; building from scratch", old_name)
            old, old_ok = {}, False

    wanted = {c.id: c for c in chunks}
    unchanged = [c for c in chunks if c.id in old and old[c.id][0] == c.content_hash]
    to_embed = [c for c in chunks if not (c.id in old and old[c.id][0] == c.content_hash)]
    removed = [cid for cid in old if cid not in wanted]
    articles = len({c.article_id for c in chunks})
    if old_ok and not to_embed and not removed:
        return IndexReport(
            articles, len(chunks), 0, len(unchanged), 0, time.perf_counter() - start, old_name or "", False
        )

    name = f"{CHUNK_PREFIX}{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
    collection = client.create_collection(
        name,
        metadata={"hnsw:space": "cosine", "embedder": embedder_name, "state": "building"},
        embedding_function=None,
    )
    try:
        for begin in range(0, len(unchanged), 512):
            batch = unchanged[begin : begin + 512]
            collection.add(
                ids=[c.id for c in batch],
                embeddings=np.vstack([old[c.id][1] for c in batch]),
                documents=[c.text for c in batch],
                metadatas=[c.metadata() for c in batch],
            )
            if progress:
                progress(len(batch))
        for begin in range(0, len(to_embed), BATCH):
            batch = to_embed[begin : begin + BATCH]
            vectors = embeddings.embed_documents_array([c.text for c in batch])
            collection.add(
                ids=[c.id for c in batch],
                embeddings=vectors,
                documents=[c.text for c in batch],
                metadatas=[c.metadata() for c in batch],
            )
            if progress:
                progress(len(batch))
        # The distance function is fixed at creation (cosine); only our own keys change here.
        collection.modify(metadata={"embedder": embedder_name, "state": "complete"})
    except BaseException:
        client.delete_collection(name)
        raise
    switch_active(client, name, {"embedder": embedder_name, "chunks": len(chunks), "articles": articles})
    return IndexReport(
        articles, len(chunks), len(to_embed), len(unchanged), len(removed), time.perf_counter() - start, name, True
    )


def switch_active(
    client: Any, name: str, info: dict[str, Any], *, keep_retired_seconds: float = RETIRED_KEEP_SECONDS
) -> None:
    """Make `name` the active collection; the one it replaces is retired (still readable), and collections
    retired more than `keep_retired_seconds` ago are dropped."""
    previous = active_collection_name(client)
    _set_active(client, name, info)
    now = time.time()
    if previous and previous != name:
        try:
            old = client.get_collection(previous, embedding_function=None)
            old.modify(metadata={**_own_metadata(old.metadata), "retired_at": now})
        except Exception:
            log.warning("could not mark %s retired; it is dropped by a later build", previous)
    _drop_retired_collections(client, keep={name, previous or ""}, older_than=now - keep_retired_seconds)


def _own_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    # The distance function is fixed at creation and may not be passed to modify().
    return {k: v for k, v in (metadata or {}).items() if not k.startswith("hnsw:")}


def _drop_retired_collections(client: Any, keep: set[str], older_than: float) -> None:
    """Drop chunk collections retired before `older_than`, and ones never marked retired (left by a build from
    before versioned switching, or one that crashed without cleaning up) unless they are being built now."""
    for entry in client.list_collections():
        name = entry if isinstance(entry, str) else entry.name
        if not name.startswith(CHUNK_PREFIX) or name in keep:
            continue
        try:
            meta = client.get_collection(name, embedding_function=None).metadata or {}
            retired_at = meta.get("retired_at")
            if retired_at is None and meta.get("state") == "building":
                continue  # another `bot index` is writing it right now
            if retired_at is not None and float(retired_at) > older_than:
                continue  # a worker may still be reading it
            client.delete_collection(name)
            log.info("dropped the retired index collection %s", name)
        except Exception:
            log.debug("could not drop %s", name)
