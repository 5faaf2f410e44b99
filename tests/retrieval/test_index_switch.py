"""Versioned index switching: a rebuild retires the collection it replaces instead of dropping it."""

from __future__ import annotations

from typing import Any

from chromaserver import copy_collection

from bot.knowledge.library import load_library
from bot.retrieval.chunks import library_chunks
from bot.retrieval.index import build_index, make_chroma_client, read_active, switch_active
from bot.retrieval.stack import build_embeddings, open_searcher


def chunk_collections(client: Any) -> set[str]:
    names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    return {n for n in names if n.startswith("chunks_")}


def test_a_rebuild_keeps_the_previous_collection_readable_until_it_has_been_retired_long_enough(
    minilm_settings,
) -> None:
    client = make_chroma_client(minilm_settings)
    chunks = library_chunks(load_library(minilm_settings.knowledge_dir))
    embeddings = build_embeddings(minilm_settings)
    first = build_index(client, chunks, embeddings).collection
    serving = open_searcher(minilm_settings)  # a worker started before the rebuild
    second = build_index(client, chunks, embeddings, rebuild=True).collection
    assert read_active(client) == second != first
    assert chunk_collections(client) == {first, second}
    assert serving.search("職務経歴書の書き方", k=2).articles  # the running worker's searches still work

    # a later switch drops what was retired long enough ago (0 s here), never the one it just replaced
    third = copy_collection(client, second, client, "chunks_third")
    switch_active(client, third, {}, keep_retired_seconds=0)
    assert chunk_collections(client) == {second, third}
