"""Simple HTML article pages (`h1/h2/h3/ul/li/p`), with site chrome and ad boxes left out."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from bot.knowledge.model import Article, ArticleFormatError
from bot.knowledge.readers.blocks import Block, make_article

# Containers that hold page chrome or advertising rather than the article.
_CHROME_TAGS = ("script", "style", "noscript", "nav", "footer", "header", "form", "iframe", "aside", "button")
_AD_CLASS = re.compile(
    r"(?:^|[-_\s])(?:pr|ad|ads|advert|promo|promotion|banner|sponsor|sponsored|cta|campaign)(?:$|[-_\s])", re.I
)


def _text(tag: Tag) -> str:
    # Keep `<strong>label</strong>: detail` readable as "**label**: detail" so items split the same way.
    for strong in tag.find_all(["strong", "b"]):
        strong.replace_with(f"**{strong.get_text(strip=True)}**")
    return re.sub(r"\s+", " ", tag.get_text(" ", strip=True)).replace("** :", "**:").strip()


def read_html(text: str, path: str) -> Article:
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup.find_all(_CHROME_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag) or tag.attrs is None:
            continue
        classes = " ".join(tag.get("class") or []) + " " + str(tag.get("id") or "")
        if _AD_CLASS.search(classes):
            tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks: list[Block] = []
    title_tag = soup.find("h1")
    meta_title = title_tag.get_text(" ", strip=True) if isinstance(title_tag, Tag) else None
    if not meta_title and soup.title and soup.title.string:
        meta_title = soup.title.string.strip()
    for el in root.find_all(["h1", "h2", "h3", "h4", "li", "p", "dt", "dd", "blockquote"]):
        if not isinstance(el, Tag):
            continue
        if el.name in ("p", "blockquote") and el.find_parent(["li", "blockquote"]) is not None:
            continue
        if el.name == "p" and el.find_parent("li") is not None:
            continue
        line = el.sourceline or 0
        content = _text(el)
        if not content:
            continue
        if el.name == "h1":
            blocks.append(Block("title", content, line))
        elif el.name == "h2":
            blocks.append(Block("h2", content, line))
        elif el.name in ("h3", "h4"):
            blocks.append(Block("h3", content, line))
        elif el.name == "li":
            blocks.append(Block("bullet", content, line))
        else:
            blocks.append(Block("para", content, line))
    if not blocks:
        raise ArticleFormatError(path, 1, "no article text found in the HTML")
    return make_article(path, blocks, meta={"title": meta_title} if meta_title else None)
