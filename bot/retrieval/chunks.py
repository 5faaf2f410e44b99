"""Split articles into retrieval chunks by section role; each chunk knows its article, topic, role and heading."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.knowledge.model import Article, Item, Role

PHRASING_ROLE = "phrasing"
PHRASING_HEADING = "よくある相談の言い方"


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    topic: str
    title: str
    role: str
    heading: str
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.topic}\n{self.role}\n{self.heading}\n{self.text}".encode()).hexdigest()[:16]

    def metadata(self) -> dict[str, str]:
        return {
            "article_id": self.article_id,
            "topic": self.topic,
            "title": self.title,
            "role": self.role,
            "heading": self.heading,
            "content_hash": self.content_hash,
        }


def _items(items: list[Item]) -> str:
    return "\n".join(f"{i.title}: {i.detail}" if i.title else i.detail for i in items)


def article_chunks(article: Article) -> list[Chunk]:
    """One chunk per meaningful unit: overview, consultation, analysis, each action step, strategy, case, expert,
    and one per phrasing from the front matter.

    The title leads every chunk so a section that only says "上司に相談する" still carries what it is about.
    Summaries are left out: their recap bullets repeat the article and would only add near-duplicate noise.
    """
    topic = article.topic or ""
    chunks: list[Chunk] = []

    def add(role: str, heading: str, body: str, *, with_title: bool = True) -> None:
        body = body.strip()
        if not body:
            return
        n = len(chunks)
        chunks.append(
            Chunk(
                id=f"{article.id}::{n:02d}-{role}",
                article_id=article.id,
                topic=topic,
                title=article.title,
                role=role,
                heading=heading,
                text=f"{article.title}\n{heading}\n{body}" if with_title else body,
            )
        )

    add("overview", "概要", "、".join(article.tags) + "\n" + article.lead)
    for section in article.sections:
        if section.role in (Role.SUMMARY, Role.QA):
            continue
        if section.role == Role.ACTION_PLAN:
            for step in section.steps:
                add(section.role.value, step.heading, f"{step.text}\n{_items(step.items)}")
            continue
        body = section.text
        if section.items:
            body = f"{body}\n{_items(section.items)}"
        add(section.role.value, section.heading, body)
    # Each phrasing alone, as a worker would type it: a short message then meets text of its own kind.
    for phrasing in article.phrasings:
        add(PHRASING_ROLE, PHRASING_HEADING, phrasing, with_title=False)
    return chunks


def library_chunks(articles: list[Article]) -> list[Chunk]:
    return [c for a in articles for c in article_chunks(a)]
