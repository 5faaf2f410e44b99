"""Footnote references (`[^key]` in article text) rendered as the article's sources, never shown raw.

Articles cite their references the Markdown way (`…とされています[^roukihou]。`, keys listed in the front matter).
Every channel shows curated text as written, so the markers are turned into words once, when the composer loads the
library: `…とされています（出典：労働基準法）。`. Adjacent markers share one note; a key the article does not list
(the linter refuses those) is dropped rather than shown. The search index keeps the articles as written.
"""

from __future__ import annotations

import re

from bot.knowledge.model import Article, Item, Reference

MARKERS = re.compile(r"(?:\[\^[^\]\s]+\])+")
_KEY = re.compile(r"\[\^([^\]\s]+)\]")
NOTE = "（出典：{names}）"
NAME_JOINER = "、"


def source_name(reference: Reference) -> str:
    """The reference's name without its publisher note: 「労働基準法（e-Gov法令検索）」 -> 「労働基準法」."""
    name = reference.title.split("（", 1)[0].strip()
    return name or reference.title


def render_footnotes(text: str, references: dict[str, Reference]) -> str:
    """`text` with each run of footnote markers replaced by one source note (or removed when none is known)."""
    if "[^" not in text:
        return text

    def note(match: re.Match[str]) -> str:
        names: list[str] = []
        for key in _KEY.findall(match.group(0)):
            reference = references.get(key)
            if reference is not None and source_name(reference) not in names:
                names.append(source_name(reference))
        return NOTE.format(names=NAME_JOINER.join(names)) if names else ""

    return MARKERS.sub(note, text)


def with_sources(article: Article) -> Article:
    """A copy of the article whose shown text carries source notes instead of footnote markers."""
    refs = {r.key: r for r in article.references}

    def fix(text: str) -> str:
        return render_footnotes(text, refs)

    def fix_item(item: Item) -> Item:
        return item.model_copy(update={"title": fix(item.title), "detail": fix(item.detail)})

    sections = []
    for section in article.sections:
        steps = [
            step.model_copy(
                update={
                    "heading": fix(step.heading),
                    "text": fix(step.text),
                    "items": [fix_item(i) for i in step.items],
                }
            )
            for step in section.steps
        ]
        sections.append(
            section.model_copy(
                update={"text": fix(section.text), "items": [fix_item(i) for i in section.items], "steps": steps}
            )
        )
    return article.model_copy(update={"lead": fix(article.lead), "sections": sections})
