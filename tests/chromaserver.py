"""A real `chroma run` server for tests and the fault harness, holding a copy of the repo's built index.

Copying the vectors (not re-embedding the library) takes seconds; the copy is what `bot index` would have written
into the server: the same chunk collection under the same name, and the pointer naming it active.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bot.retrieval.index import POINTER_COLLECTION, active_collection_name, get_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chroma_server(path: Path, port: int | None = None) -> Iterator[int]:
    """`chroma run` on `path`; yields its port, stops it at the end."""
    port = port or free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_up(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"chroma server did not start within {timeout:.0f} s")


def http_client(port: int) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False))


def copy_collection(source: Any, name: str, target: Any, new_name: str | None = None) -> str:
    """Copy the chunk collection `name` of `source` into `target` (as `new_name`); returns the copy's name."""
    collection = source.get_collection(name, embedding_function=None)
    got = get_all(collection, ["metadatas", "embeddings", "documents"])
    new_name = new_name or name
    metadata = {k: v for k, v in (collection.metadata or {}).items() if k != "retired_at"}
    copy = target.create_collection(new_name, metadata=metadata, embedding_function=None)
    for begin in range(0, len(got["ids"]), 512):
        end = begin + 512
        copy.add(
            ids=got["ids"][begin:end],
            embeddings=got["embeddings"][begin:end],
            documents=got["documents"][begin:end],
            metadatas=got["metadatas"][begin:end],
        )
    return new_name


def copy_active_index(source: Any, target: Any) -> str:
    """Copy the active chunk collection of `source` into `target` and make it active there; returns its name."""
    name = active_collection_name(source)
    if not name:
        raise RuntimeError("the source has no active index: run `bot index`")
    copy_collection(source, name, target)
    pointer_meta = dict(source.get_collection(POINTER_COLLECTION, embedding_function=None).metadata or {})
    target.get_or_create_collection(POINTER_COLLECTION, metadata={"active": ""}, embedding_function=None).modify(
        metadata=pointer_meta
    )
    return name
