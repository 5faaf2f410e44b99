"""Readers turn raw articles (canonical Markdown, plain text, HTML) into `Article`s.

Each reader only tokenises its format into `Block`s; `build.assemble` gives every format the same
rules for roles, items, steps and advertising.
"""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.model import Article, ArticleFormatError
from bot.knowledge.readers.html import read_html
from bot.knowledge.readers.markdown import read_markdown
from bot.knowledge.readers.plaintext import read_plaintext

__all__ = ["detect_format", "read_article", "read_article_text"]


def detect_format(path: str, text: str) -> str:
    suffix = Path(path).suffix.lower()
    head = text.lstrip()[:2000].lower()
    if suffix in {".html", ".htm"} or head.startswith(("<!doctype html", "<html")) or "<h2" in head:
        return "html"
    if suffix in {".md", ".markdown"} or text.lstrip().startswith("---") or "\n## " in text or text.startswith("# "):
        return "markdown"
    return "text"


def read_article_text(text: str, path: str = "<input>", topic: str | None = None) -> Article:
    if not text.strip():
        raise ArticleFormatError(path, 1, "the file is empty")
    fmt = detect_format(path, text)
    if fmt == "html":
        article = read_html(text, path)
    elif fmt == "markdown":
        article = read_markdown(text, path)
    else:
        article = read_plaintext(text, path)
    if topic:
        article.topic = topic
    article.source = path
    return article


def read_article(path: Path, topic: str | None = None) -> Article:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArticleFormatError(str(path), 0, f"cannot read the file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ArticleFormatError(str(path), line, "not UTF-8 text") from exc
    return read_article_text(text.replace("\r\n", "\n").replace("\r", "\n"), str(path), topic)
