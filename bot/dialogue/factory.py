"""Build the engine from settings: library, topics, searcher, composer, store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.answer.composer import AnswerComposer, LLMAnswerComposer
from bot.answer.grounded import GroundedComposer
from bot.config import Settings
from bot.dialogue.engine import DialogueEngine
from bot.handoff.desk import HandoffDesk, HandoffPolicy, load_texts
from bot.jobs.dialogue import JobSearch
from bot.jobs.index import JobIndex, posting_embedder
from bot.jobs.repository import JobRepository
from bot.jobs.search import JobCatalog
from bot.jobs.vocabulary import vocabulary
from bot.knowledge.library import load_library
from bot.knowledge.taxonomy import load_topics
from bot.retrieval.index import make_chroma_client
from bot.retrieval.retriever import HybridSearcher
from bot.retrieval.stack import open_searcher
from bot.safety.triage import SafetyCheck, load_safety_check
from bot.store.base import Store
from bot.store.factory import open_store


@dataclass
class Services:
    engine: DialogueEngine
    store: Store
    searcher: HybridSearcher


def build_grounded(settings: Settings, searcher: HybridSearcher | None = None) -> GroundedComposer:
    """`searcher`: its query embedding tells the composer when a message asks what a Q&A item answers."""
    articles = {a.id: a for a in load_library(settings.knowledge_dir)}
    topics = load_topics(settings.knowledge_dir / "topics.tsv")
    embed = (lambda text: searcher.embed_query(text)[0]) if searcher is not None else None
    embed_passages = (
        (lambda texts: np.asarray(searcher.embeddings.embed_documents_array(texts), dtype=np.float32))
        if searcher is not None
        else None
    )
    return GroundedComposer(
        articles,
        {slug: t.name_ja for slug, t in topics.items()},
        settings.prompts_dir,
        embed=embed,
        embed_passages=embed_passages,
    )


def build_composer(
    settings: Settings, *, rewriter: Any = None, searcher: HybridSearcher | None = None
) -> AnswerComposer:
    """The grounded composer, or its LLM variant when a rewriter is given or LLM mode is configured."""
    grounded = build_grounded(settings, searcher)
    paths = {"knowledge_dir": settings.knowledge_dir, "prompts_dir": settings.prompts_dir}
    if rewriter is None and settings.llm_enabled:
        from bot.answer.llm import LLMRewriter

        rewriter = LLMRewriter.from_settings(settings)
    if rewriter is not None:
        return LLMAnswerComposer(grounded, rewriter, **paths)
    return AnswerComposer(grounded, **paths)


def own_phrases(composer: AnswerComposer) -> list[str]:
    """The labels of the bot's own chips and buttons (follow-ups, the check-in's, the topic names it offers)."""
    replies = composer.replies
    jobs = composer.job_replies
    job_chips = [jobs["offer"], *jobs["choices"].values(), *jobs["change"].values()]
    return [
        *replies["follow_ups"].values(),
        replies["check_in"]["continue"],
        *composer.topic_names.values(),
        *(chip for chip in job_chips if "{" not in chip),
    ]


def build_job_search(settings: Settings, store: Store, embeddings: Any, composer: AnswerComposer) -> JobSearch:
    """The job search over the postings `bot jobs import` put in the store, ranked with the project's model."""
    vocab = vocabulary()
    index = JobIndex(make_chroma_client(settings), posting_embedder(embeddings), settings.jobs_collection)
    return JobSearch(JobCatalog(JobRepository(store), index, vocab), vocab, composer.job_replies)


def build_handoffs(settings: Settings, store: Store, composer: AnswerComposer) -> HandoffDesk:
    """The handoff desk (queue, reception hours, what the bot says); configured by HANDOFF_*."""
    return HandoffDesk(store, composer, HandoffPolicy.from_settings(settings), load_texts(settings.prompts_dir))


def build_engine(
    settings: Settings,
    *,
    store: Store | None = None,
    searcher: HybridSearcher | None = None,
    rewriter: Any = None,
    safety: SafetyCheck | None = None,
    metrics: Any = None,
) -> Services:
    store = store or open_store(settings.resolved_database_url)
    searcher = searcher or open_searcher(settings)
    composer = build_composer(settings, rewriter=rewriter, searcher=searcher)
    handoffs = build_handoffs(settings, store, composer)
    engine = DialogueEngine(
        store=store,
        searcher=searcher,
        composer=composer,
        safety=safety or load_safety_check(settings.models_dir, [*own_phrases(composer), *handoffs.chips]),
        metrics=metrics,
        handoffs=handoffs,
        jobs=build_job_search(settings, store, searcher.embeddings, composer),
    )
    return Services(engine, store, searcher)
