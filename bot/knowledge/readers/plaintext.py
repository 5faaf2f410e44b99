"""Plain text in the seed's layout: numbered headings (`1.`, `2-1.`, `２－１．`), `-`/`・`/`*` bullets."""

from __future__ import annotations

import re

from bot.knowledge.model import Article
from bot.knowledge.readers.blocks import Block, make_article
from bot.knowledge.roles import classify_heading, normalise

# After NFKC, 「２－１．」 is 「2-1.」; the dash family covers the ones people type.
_NUMBERED = re.compile(r"^(?:第)?(\d{1,2})(?:\s*[-‐ー−–]\s*(\d{1,2}))?\s*(?:[.、)]|章)\s*(\S.*)$")
_BRACKETED = re.compile(r"^(?:【([^】]{1,30})】|[■◆◇□▼▶]\s*(\S.{0,40}))\s*$")
_BULLET = re.compile(r"^\s*(?:[-*・•●○◦‣]|[①-⑳]|\(\d+\)|（\d+）)\s*(\S.*)$")
_SENTENCE_END = re.compile(r"[。.!?！？」』）)]$")


def _looks_like_heading(line: str, next_line: str | None) -> bool:
    """An unnumbered heading: short, no sentence end, no `label: detail`, and text follows it."""
    t = normalise(line)
    if len(t) > 40 or _SENTENCE_END.search(t) or re.search(r"[:：]", t) or next_line is None:
        return False
    return bool(next_line.strip())


def tokenise_plaintext(text: str) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    seen_numbered = False
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        number = index + 1
        t = normalise(line)
        if not blocks:
            blocks.append(Block("title", line, number))
            continue
        numbered = _NUMBERED.match(t)
        if numbered and len(t) <= 60 and not t.endswith("。"):
            seen_numbered = True
            kind = "h3" if numbered.group(2) else "h2"
            blocks.append(Block(kind, line, number))  # type: ignore[arg-type]
            continue
        bracketed = _BRACKETED.match(t)
        if bracketed:
            blocks.append(Block("h2", bracketed.group(1) or bracketed.group(2), number))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            blocks.append(Block("bullet", bullet.group(1).strip(), number))
            continue
        next_line = next((x for x in lines[index + 1 :] if x.strip()), None)
        if seen_numbered and _looks_like_heading(line, next_line):
            # Unnumbered headings inside numbered sections (「Aさんのケース」) are sub-headings, unless their
            # meaning is a top-level role on its own (an unnumbered 「まとめ」).
            role = classify_heading(line)
            kind = "h2" if role.value in {"summary", "expert"} and len(t) <= 12 else "h3"
            blocks.append(Block(kind, line, number))  # type: ignore[arg-type]
            continue
        blocks.append(Block("para", line, number))
    return blocks


def read_plaintext(text: str, path: str) -> Article:
    return make_article(path, tokenise_plaintext(text), lead_is_consultation=True)
