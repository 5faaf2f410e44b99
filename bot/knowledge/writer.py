"""Render an `Article` as canonical Markdown (the format `knowledge/` holds)."""

from __future__ import annotations

import datetime as dt

import yaml

from bot.knowledge.model import CANONICAL_HEADINGS, Article, Item, Role


def _item_line(item: Item) -> str:
    return f"- **{item.title}**: {item.detail}" if item.title else f"- {item.detail}"


def to_markdown(article: Article) -> str:
    meta = {
        "id": article.id,
        "topic": article.topic or "",
        "title": article.title,
        "tags": list(article.tags),
        "reviewed": article.reviewed or dt.date.today(),
        "references": [r.model_dump() for r in article.references],
    }
    if article.phrasings:
        meta["phrasings"] = list(article.phrasings)
    if article.general_words:
        meta["general_words"] = list(article.general_words)
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, default_flow_style=None, width=1000).strip()
    out: list[str] = ["---", front, "---", "", f"# {article.title}", ""]
    if article.lead:
        out += [article.lead, ""]
    for section in article.sections:
        # Known roles get the canonical heading so the library reads uniformly; the rest keep theirs.
        heading = section.heading if section.role == Role.OTHER else CANONICAL_HEADINGS[section.role]
        out += [f"## {heading}", ""]
        if section.text:
            out += [section.text, ""]
        if section.items:
            out += [_item_line(i) for i in section.items] + [""]
        for number, step in enumerate(section.steps, start=1):
            out += [f"### {number}. {step.heading}", ""]
            if step.text:
                out += [step.text, ""]
            out += [_item_line(i) for i in step.items] + [""]
    return "\n".join(out).rstrip() + "\n"
