"""Build the engine from settings: library, topics, searcher, composer, store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.answer.grounded import GroundedComposer
from bot.config import Settings
from bot.dialogue.engine import DialogueEngine
from bot.knowledge.library import load_library
from bot.knowledge.taxonomy import load_topics
from bot.retrieval.retriever import HybridSearcher
from bot.retrieval.stack import open_searcher
from bot.store.base import Store
from bot.store.factory import open_store


@dataclass
class Services:
    engine: DialogueEngine
    store: Store
    searcher: HybridSearcher


def build_composer(settings: Settings) -> GroundedComposer:
    articles = {a.id: a for a in load_library(settings.knowledge_dir)}
    topics = load_topics(settings.knowledge_dir / "topics.tsv")
    return GroundedComposer(articles, {slug: t.name_ja for slug, t in topics.items()}, settings.prompts_dir)


def build_engine(
    settings: Settings, *, store: Store | None = None, searcher: HybridSearcher | None = None, rewriter: Any = None
) -> Services:
    store = store or open_store(settings.resolved_database_url)
    searcher = searcher or open_searcher(settings)
    if rewriter is None and settings.llm_enabled:
        from bot.answer.llm import LLMRewriter

        rewriter = LLMRewriter.from_settings(settings)
    engine = DialogueEngine(
        store=store,
        searcher=searcher,
        composer=build_composer(settings),
        knowledge_dir=settings.knowledge_dir,
        prompts_dir=settings.prompts_dir,
        rewriter=rewriter,
    )
    return Services(engine, store, searcher)
