"""Guess the topic of an imported article by comparing it with the library (no models needed)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from bot.knowledge.library import load_library
from bot.knowledge.model import Article, ArticleFormatError


def _bigrams(text: str) -> Counter[str]:
    text = "".join(ch for ch in text if not ch.isspace())
    return Counter(text[i : i + 2] for i in range(len(text) - 1))


def _article_text(article: Article) -> str:
    parts = [article.title, " ".join(article.tags)]
    for section in article.sections:
        parts.append(section.heading)
        parts.append(section.text)
        parts += [f"{i.title} {i.detail}" for i in section.items]
        parts += [f"{s.heading} " + " ".join(f"{i.title} {i.detail}" for i in s.items) for s in section.steps]
    return "\n".join(parts)


def guess_topic(article: Article, knowledge_dir: Path) -> str | None:
    """The topic of the most similar library article (tf-idf over character bigrams), if any."""
    try:
        library = [a for a in load_library(knowledge_dir) if a.topic]
    except ArticleFormatError:
        return None
    if not library:
        return None
    docs = [_bigrams(_article_text(a)) for a in library]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    n = len(docs)

    def vector(counts: Counter[str]) -> dict[str, float]:
        vec = {t: (1 + math.log(c)) * math.log((n + 1) / (df.get(t, 0) + 1)) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    query = vector(_bigrams(_article_text(article)))
    best = max(range(n), key=lambda i: sum(query.get(t, 0.0) * w for t, w in vector(docs[i]).items()))
    return library[best].topic
