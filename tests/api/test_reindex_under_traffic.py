"""`bot index --rebuild` while a worker serves: the worker follows the index pointer and no answer fails meanwhile.

A real `chroma run` server holds the index (a copy of the repo's built one), as in the compose topology.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chromaserver import chroma_server, copy_active_index, copy_collection, http_client
from fastapi.testclient import TestClient
from webhelpers import Visitor

from bot.api.main import create_app
from bot.retrieval.index import make_chroma_client, read_active, switch_active


@pytest.fixture
def index_server(index_settings: Any, tmp_path: Any) -> Iterator[int]:
    with chroma_server(tmp_path / "chroma-server") as port:
        copy_active_index(make_chroma_client(index_settings), http_client(port))
        yield port


def test_re_indexing_under_traffic_fails_no_answer(app_settings: Any, index_server: int) -> None:
    unlimited = {"web_rate_limit_visitor": 10_000, "web_rate_limit_ip": 10_000, "web_rate_limit_ip_messages": 10_000}
    settings = app_settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": index_server, **unlimited})
    server = http_client(index_server)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        app = client.app
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            visitor = Visitor(client)
            conversation = visitor.start()
            while not stop.is_set():
                statuses.append(visitor.send(conversation, "引き継ぎの期間が短すぎて困っています").status_code)

        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            for generation in ("chunks_gen2", "chunks_gen3"):
                # what `bot index --rebuild` does at its end: a complete new collection, then the switch (the
                # second switch also drops the first collection, retired "long enough" ago)
                copy_collection(server, str(read_active(server)), server, generation)
                switch_active(server, generation, {}, keep_retired_seconds=0)
                deadline = time.monotonic() + 60
                while app.state.services.searcher.collection_name != generation:  # type: ignore[attr-defined]
                    assert time.monotonic() < deadline, "the worker did not follow the index pointer"
                    time.sleep(0.2)
                time.sleep(1)  # traffic on the new collection
        finally:
            stop.set()
            sender.join(60)
        assert statuses and set(statuses) == {200}, statuses
        assert client.get("/readyz").status_code == 200
