"""The scale-out path: CHROMA_HOST pointing at a real `chroma run` server process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.knowledge.library import load_library
from bot.retrieval.chunks import library_chunks
from bot.retrieval.index import build_index, make_chroma_client
from bot.retrieval.stack import build_embeddings, open_searcher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("chroma server did not start within 60 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_index_and_search_through_a_chroma_server(minilm_settings, chroma_server: int) -> None:
    settings = minilm_settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": chroma_server})
    client = make_chroma_client(settings)
    chunks = library_chunks(load_library(settings.knowledge_dir))
    report = build_index(client, chunks, build_embeddings(settings))
    assert report.changed and report.chunks == len(chunks)
    assert not (settings.data_dir / "chroma").exists()  # nothing on local disk: the server holds the index
    searcher = open_searcher(settings)
    result = searcher.search("resume career history document how to write 職務経歴書", k=4)
    assert len(result.articles) == 4
    assert len({h.article_id for h in result.articles}) == 4
    again = build_index(make_chroma_client(settings), chunks, build_embeddings(settings))
    assert not again.changed
