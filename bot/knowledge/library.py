"""Load the whole article library from a directory of canonical Markdown files."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.model import Article
from bot.knowledge.readers import read_article


def article_paths(knowledge_dir: Path) -> list[Path]:
    return sorted(p for p in knowledge_dir.glob("*.md") if not p.name.startswith(("_", ".")) and p.name != "README.md")


def load_library(knowledge_dir: Path) -> list[Article]:
    """All articles, in file-name order. Raises ArticleFormatError on the first unreadable file."""
    return [read_article(path) for path in article_paths(knowledge_dir)]
