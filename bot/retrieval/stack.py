"""Wire the configured embeddings, Chroma client and searcher together (one place for the defaults)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.retrieval.embeddings import (
    TUNE_CARD,
    FusedEmbeddings,
    SentenceTransformerEmbeddings,
    UniversalSentenceEncoderEmbeddings,
    default_e5_path,
    tuned_e5_path,
)
from bot.retrieval.index import active_collection_name, make_chroma_client
from bot.retrieval.retriever import HybridSearcher, embed_windows
from bot.retrieval.topic_head import (
    ARTICLE_HEAD_DIR_NAME,
    HEAD_DIR_NAME,
    TopicHead,
    build_topic_head,
    load_topic_head,
    mean_vector,
)

log = logging.getLogger(__name__)

# Weight of the primary model in the fused vector, chosen on the dev split (README, "Retrieval"); USE gets
# EMBEDDING_USE_WEIGHT.
E5_WEIGHT = 0.5


class IndexNotReady(RuntimeError):
    """No complete index yet: run `bot index`."""


def primary_model_path(settings: Settings) -> str:
    """EMBEDDING_MODEL when set; else the domain-tuned e5 when built (and EMBEDDING_TUNED is on); else base e5."""
    if settings.embedding_model:
        return settings.embedding_model
    tuned = tuned_e5_path(settings.models_dir)
    if settings.embedding_tuned and (tuned / TUNE_CARD).is_file() and (tuned / "config.json").is_file():
        return str(tuned)
    path = default_e5_path(settings.models_dir)
    if not (path / "config.json").exists():
        raise IndexNotReady(f"embedding model missing at {path}: run `bot models build`")
    return str(path)


@lru_cache(maxsize=4)
def _load_sentence_model(path: str, threads: int) -> SentenceTransformerEmbeddings:
    return SentenceTransformerEmbeddings(path, threads=threads)


@lru_cache(maxsize=2)
def _load_use(threads: int) -> UniversalSentenceEncoderEmbeddings:
    return UniversalSentenceEncoderEmbeddings(threads=threads)


def build_embeddings(settings: Settings) -> FusedEmbeddings:
    """The configured fused embedder: the primary sentence-transformers model plus USE (weight 0 disables it)."""
    primary = _load_sentence_model(primary_model_path(settings), settings.embedding_threads)
    parts: list[tuple[Any, float]] = [(primary, E5_WEIGHT)]
    if settings.embedding_use_weight > 0:
        # One BLAS thread: OpenBLAS workers keep spinning after a call and starve torch's threads for the e5 query
        # that follows (measured: a search took 118 ms with 2 USE threads, 52 ms with 1).
        parts.append((_load_use(1), settings.embedding_use_weight))
    return FusedEmbeddings(parts)


def build_topic_head_for(settings: Settings, *, force: bool = False) -> tuple[TopicHead, dict[str, Any] | None]:
    """Train the topic head for the configured embeddings on the training queries (`bot models build`); a no-op
    returning (head, None) when the head on disk is current."""
    from bot.knowledge.library import load_library
    from bot.retrieval.tune import training_queries

    rows = training_queries(load_library(settings.knowledge_dir), settings.training_dir)
    return _build_head(settings, rows, HEAD_DIR_NAME, force=force)


def build_article_head_for(settings: Settings, *, force: bool = False) -> tuple[TopicHead, dict[str, Any] | None]:
    """Train the article head (which of a topic's articles fits the situation) on each article's own words
    (`bot models build`); a no-op returning (head, None) when the head on disk is current."""
    from bot.knowledge.library import load_library
    from bot.retrieval.tune import article_rows

    rows = article_rows(load_library(settings.knowledge_dir), settings.training_dir)
    return _build_head(settings, rows, ARTICLE_HEAD_DIR_NAME, force=force)


def _build_head(
    settings: Settings, rows: list[tuple[str, str]], name: str, *, force: bool
) -> tuple[TopicHead, dict[str, Any] | None]:
    embeddings = build_embeddings(settings)
    vectorize = lambda text: mean_vector(embed_windows(embeddings, text))  # noqa: E731
    return build_topic_head(settings.models_dir, rows, embeddings.name, vectorize, force=force, name=name)


def open_searcher(settings: Settings, embeddings: Any | None = None) -> HybridSearcher:
    client = make_chroma_client(settings)
    name = active_collection_name(client)
    if not name:
        raise IndexNotReady("no search index yet: run `bot index`")
    embeddings = embeddings or build_embeddings(settings)
    return HybridSearcher(
        client,
        name,
        embeddings,
        lexical_cache=lexical_cache_dir(settings),
        topic_head=load_topic_head(settings.models_dir, embeddings.name) if settings.topic_head else None,
        article_head=(
            load_topic_head(settings.models_dir, embeddings.name, ARTICLE_HEAD_DIR_NAME)
            if settings.article_head
            else None
        ),
    )


def lexical_cache_dir(settings: Settings) -> Path:
    return settings.data_dir / "lexical"
