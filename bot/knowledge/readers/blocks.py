"""The format-neutral token stream readers produce, and the shared assembly into an `Article`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.knowledge.model import Article, ArticleFormatError, Item, Role, Section, Step
from bot.knowledge.roles import (
    classify_heading,
    is_promo_heading,
    is_promo_line,
    normalise,
    promo_score,
    strip_numbering,
)

BlockKind = Literal["title", "h2", "h3", "para", "bullet"]


@dataclass
class Block:
    kind: BlockKind
    text: str
    line: int


# 「**label**: detail」, 「label：detail」, 「label: detail」; a label is short and holds no sentence end.
_BOLD_LABEL = re.compile(r"^\*\*(?P<label>[^*]{1,40})\*\*\s*[:：]?\s*(?P<detail>.*)$", re.S)
_PLAIN_LABEL = re.compile(r"^(?P<label>[^:：。！？!?]{1,40}?)\s*[:：]\s*(?P<detail>\S.*)$", re.S)


def split_item(text: str, line: int = 0) -> Item:
    text = text.strip()
    bold = _BOLD_LABEL.match(text)
    if bold:
        return Item(title=bold.group("label").strip(), detail=bold.group("detail").strip(), line=line)
    plain = _PLAIN_LABEL.match(text)
    # A quoted phrase or a URL before a colon is speech or a link, not a label.
    if plain and not plain.group("label").strip().startswith(("http", "「", "『")):
        return Item(title=plain.group("label").strip(), detail=plain.group("detail").strip(), line=line)
    return Item(title="", detail=text, line=line)


def _clean_inline(text: str) -> str:
    """Drop Markdown emphasis and footnote marks from free text, keep the words."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    return text.strip()


def _drop_promotions(blocks: list[Block]) -> list[Block]:
    """Remove advertising: whole sub-sections whose lines read as ads, and stray ad lines.

    A heading like 「もっとパーソナルなアドバイスが必要なあなたへ」 followed by chatbot copy is one ad block;
    a single 「LINEで相談」 banner inside an otherwise real section is dropped alone.
    """
    kept: list[Block] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind in ("h2", "h3"):
            j = i + 1
            while j < len(blocks) and blocks[j].kind not in ("h2", "h3", "title"):
                j += 1
            body = [b.text for b in blocks[i + 1 : j]]
            all_ads = bool(body) and all(is_promo_line(t) for t in body)
            # A real section with one banner in it keeps its advice; only the banner line goes (below).
            if is_promo_line(block.text) or all_ads or (is_promo_heading(block.text) and promo_score(body) >= 0.3):
                i = j
                continue
        if block.kind in ("para", "bullet") and is_promo_line(block.text):
            i += 1
            continue
        kept.append(block)
        i += 1
    return kept


def _section_text(parts: list[str]) -> str:
    return "\n".join(p for p in parts if p).strip()


def assemble(
    blocks: list[Block],
    path: str,
    *,
    meta_title: str | None = None,
    lead_is_consultation: bool = False,
) -> tuple[str, str, list[Section]]:
    """Blocks -> (title, lead, sections). Shared by every reader so the rules are the same everywhere.

    `lead_is_consultation`: plain-text articles like the seed put the worker's question right after the
    lead paragraph with no heading; later paragraphs before the first heading are then the consultation.
    """
    blocks = _drop_promotions(blocks)
    title = meta_title or ""
    if not title:
        first = next((b for b in blocks if b.kind == "title"), None)
        if first is None:
            first = next((b for b in blocks if b.kind in ("para", "h2")), None)
        if first is None:
            raise ArticleFormatError(path, 1, "no title and no text found")
        title = first.text.strip()
    # Drop title blocks and repeated title lines (the seed repeats its title).
    blocks = [b for b in blocks if not (b.kind == "title" or normalise(b.text) == normalise(title))]

    if not any(b.kind == "h2" for b in blocks):
        raise ArticleFormatError(path, 1, "no section headings found (expected e.g. 現状分析, アクションプラン)")

    preamble: list[Block] = []
    idx = 0
    while idx < len(blocks) and blocks[idx].kind != "h2":
        preamble.append(blocks[idx])
        idx += 1

    sections: list[Section] = []
    lead = ""
    pre_texts = [b for b in preamble if b.kind in ("para", "bullet")]
    if pre_texts:
        lead = _clean_inline(pre_texts[0].text)
        rest = pre_texts[1:]
        if lead_is_consultation and rest:
            sections.append(
                Section(
                    role=Role.CONSULTATION,
                    heading="相談",
                    text=_section_text([_bullet_or_para(b) for b in rest]),
                    line=rest[0].line,
                )
            )
        elif rest:
            lead = _section_text([lead] + [_clean_inline(b.text) for b in rest])

    current: Section | None = None
    step: Step | None = None
    parts: list[str] = []

    def close() -> None:
        nonlocal current, step, parts
        if current is not None:
            current.text = _section_text(parts)
            sections.append(current)
        current, step, parts = None, None, []

    for block in blocks[idx:]:
        if block.kind == "h2":
            close()
            heading = strip_numbering(block.text) or block.text.strip()
            current = Section(role=classify_heading(block.text), heading=heading, line=block.line)
            continue
        assert current is not None
        if block.kind == "h3":
            heading = strip_numbering(block.text) or block.text.strip()
            if current.role == Role.ACTION_PLAN:
                step = Step(heading=heading, line=block.line)
                current.steps.append(step)
            else:
                parts.append(heading)
            continue
        if block.kind == "bullet" and current.role in (Role.ANALYSIS, Role.STRATEGY, Role.ACTION_PLAN, Role.QA):
            item = split_item(block.text, block.line)
            if current.role == Role.ACTION_PLAN:
                if step is None:
                    # An action plan written as a flat list: one step named after the section.
                    step = Step(heading=current.heading, line=block.line)
                    current.steps.append(step)
                step.items.append(item)
            else:
                current.items.append(item)
            continue
        if step is not None and block.kind == "para":
            # A sub-step's own lead-in ("まずは現状を把握する情報収集から…") belongs to that step.
            step.text = _section_text([step.text, _clean_inline(block.text)])
            continue
        # Paragraphs, and bullets of sections that hold no items (summary recaps, case stories).
        parts.append(_bullet_or_para(block))
    close()
    return title, lead, sections


def _bullet_or_para(block: Block) -> str:
    text = _clean_inline(block.text)
    return f"- {text}" if block.kind == "bullet" else text


def make_article(
    path: str,
    blocks: list[Block],
    *,
    meta: dict[str, object] | None = None,
    lead_is_consultation: bool = False,
) -> Article:
    meta = meta or {}
    title, lead, sections = assemble(
        blocks,
        path,
        meta_title=str(meta["title"]) if meta.get("title") else None,
        lead_is_consultation=lead_is_consultation,
    )
    from bot.knowledge.ids import slug_for

    return Article(
        id=str(meta.get("id") or slug_for(path, title)),
        topic=str(meta["topic"]) if meta.get("topic") else None,
        title=title,
        tags=[str(t) for t in meta.get("tags") or []],  # type: ignore[attr-defined]
        reviewed=meta.get("reviewed"),  # type: ignore[arg-type]
        references=meta.get("references") or [],  # type: ignore[arg-type]
        phrasings=meta.get("phrasings") or [],  # type: ignore[arg-type]
        general_words=meta.get("general_words") or [],  # type: ignore[arg-type]
        lead=lead,
        sections=sections,
    )
