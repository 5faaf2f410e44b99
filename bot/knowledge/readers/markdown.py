"""Markdown with YAML front matter (our canonical format), and other people's Markdown."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from bot.knowledge.model import Article, ArticleFormatError, Reference
from bot.knowledge.readers.blocks import Block, make_article

_BULLET = re.compile(r"^\s*(?:[-*+・•●]|\d+[.)．])\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """(metadata, body, line number where the body starts). Errors name the YAML line in the file."""
    if not text.startswith("---"):
        return {}, text, 1
    lines = text.split("\n")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ArticleFormatError(path, 1, "front matter starts with '---' but is never closed by a '---' line")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        # Name the line where the broken construct starts (an unclosed `[`), not where YAML gave up.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ArticleFormatError(path, line, f"front matter is not valid YAML: {problem}") from exc
    if not isinstance(meta, dict):
        raise ArticleFormatError(path, 2, "front matter must be a mapping of keys to values")
    return meta, "\n".join(lines[end + 1 :]), end + 2


def _meta_line(text: str, key: str) -> int:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def _coerce_meta(meta: dict[str, Any], text: str, path: str) -> dict[str, Any]:
    out = dict(meta)
    tags = out.get("tags")
    if tags is not None and not isinstance(tags, list):
        out["tags"] = [t.strip() for t in str(tags).split(",") if t.strip()]
    reviewed = out.get("reviewed")
    if reviewed is not None and not isinstance(reviewed, dt.date):
        try:
            out["reviewed"] = dt.date.fromisoformat(str(reviewed))
        except ValueError as exc:
            raise ArticleFormatError(
                path, _meta_line(text, "reviewed"), f"reviewed must be a date like 2026-11-28, not {reviewed!r}"
            ) from exc
    for key in ("phrasings", "general_words"):
        values = out.get(key)
        if values is not None:
            if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
                raise ArticleFormatError(path, _meta_line(text, key), f"{key} must be a list of short texts")
            out[key] = [str(v).strip() for v in values if str(v).strip()]
    refs = out.get("references") or []
    if not isinstance(refs, list):
        raise ArticleFormatError(path, _meta_line(text, "references"), "references must be a list")
    parsed: list[Reference] = []
    for n, ref in enumerate(refs, start=1):
        if isinstance(ref, str):
            ref = {"key": f"ref{n}", "title": ref, "url": ref if ref.startswith("http") else ""}
        if not isinstance(ref, dict):
            raise ArticleFormatError(path, _meta_line(text, "references"), f"reference {n} must be a mapping")
        parsed.append(
            Reference(
                key=str(ref.get("key") or f"ref{n}"), title=str(ref.get("title") or ""), url=str(ref.get("url") or "")
            )
        )
    out["references"] = parsed
    return out


def tokenise_markdown(body: str, first_line: int) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []
    para_line = first_line

    def flush() -> None:
        nonlocal para
        if para:
            blocks.append(Block("para", " ".join(p.strip() for p in para), para_line))
            para = []

    # Levels are relative: an article whose top headings are `##` has h1 as title, `##` as sections.
    levels = sorted({len(m.group(1)) for line in body.split("\n") if (m := _HEADING.match(line))})
    section_level = next((lv for lv in levels if lv >= 2), 2) if levels else 2
    if levels and levels[0] >= 2:
        section_level = levels[0]
    for offset, raw in enumerate(body.split("\n")):
        number = first_line + offset
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            text = heading.group(2).strip()
            if level < section_level or (level == 1):
                blocks.append(Block("title", text, number))
            elif level == section_level:
                blocks.append(Block("h2", text, number))
            else:
                blocks.append(Block("h3", text, number))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            blocks.append(Block("bullet", bullet.group(1).strip(), number))
            continue
        if line.startswith("  ") and blocks and blocks[-1].kind == "bullet" and not para:
            blocks[-1].text += " " + line.strip()  # a wrapped bullet continues
            continue
        if line.lstrip().startswith(">"):
            line = line.lstrip()[1:]
        if not para:
            para_line = number
        para.append(line)
    flush()
    return blocks


def read_markdown(text: str, path: str) -> Article:
    meta, body, first_line = split_front_matter(text, path)
    meta = _coerce_meta(meta, text, path)
    blocks = tokenise_markdown(body, first_line)
    return make_article(path, blocks, meta=meta)
