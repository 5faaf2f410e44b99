"""A serving worker follows the index pointer: after `bot index` switches it, the worker reopens the new collection.

Checked every `FOLLOW_INTERVAL_SECONDS`. The new searcher is built off the event loop (its lexical indexes come from
the shared cache directory when another worker or the indexer saved them, else they are rebuilt from the collection's
documents, deterministically), then swapped in; a turn already running keeps the searcher it started with, whose
collection the indexer keeps for an hour (bot/retrieval/index.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.config import Settings
from bot.retrieval.index import make_chroma_client, read_active
from bot.retrieval.stack import open_searcher

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_SECONDS = 5.0


class IndexFollower:
    def __init__(self, settings: Settings, services: Any, *, interval: float = FOLLOW_INTERVAL_SECONDS) -> None:
        self.settings = settings
        self.services = services  # bot.dialogue.factory.Services: its searcher and its engine's are swapped
        self.interval = interval
        self._client: Any = None
        self._failing = False

    def check(self) -> bool:
        """Switch to the active collection if it changed; True when it did. Blocking: run it in a thread."""
        if self._client is None:
            self._client = make_chroma_client(self.settings)
        active = read_active(self._client)
        current = self.services.searcher
        if not active or active == current.collection_name:
            return False
        searcher = open_searcher(self.settings, embeddings=current.embeddings)
        self.services.searcher = searcher
        self.services.engine.searcher = searcher
        log.info("search index: switched from %s to %s", current.collection_name, searcher.collection_name)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.check)
            except Exception as exc:  # Chroma down: readiness reports it; keep the current searcher and try again
                self._client = None
                if not self._failing:
                    log.warning("search index: cannot read the index pointer (%s)", type(exc).__name__)
                self._failing = True
            else:
                self._failing = False
