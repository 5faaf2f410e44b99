"""An `Answer` as LINE messages (plain JSON dicts in the Messaging API's shape), with every LINE limit enforced.

Layout, for a worker reading on a small phone:
- advice: one short text (the empathetic opening), then a Flex carousel the reader swipes through one card at a time:
  現状分析 · one card per アクションプラン group (each step with a ✓ button: the step checklist) · キャリア戦略 ·
  参考にした記事 (the sources and the "AI, not a professional" note); the follow-ups as quick replies.
- clarify and small talk: one text with the choices as quick replies.
- escalation: plain text first (the calm message and the help lines, phone numbers as tel: quick replies); when
  the engine adds curated article content (labour law, severe harassment), the cards follow.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.answer.model import ActionGroup, Answer, HelpResource, Source
from bot.answer.render import alternatives_line, direct_reply_lines
from bot.channels.line import texts
from bot.channels.line.jobs import jobs_flex
from bot.channels.line.limits import (
    MAX_ALT_TEXT,
    MAX_BUBBLE_BYTES,
    MAX_BUBBLES,
    MAX_CAROUSEL_BYTES,
    MAX_DISPLAY_TEXT,
    MAX_FLEX_LABEL,
    MAX_MESSAGES,
    MAX_QUICK_REPLY_ITEMS,
    MAX_QUICK_REPLY_LABEL,
    MAX_TEXT_UTF16,
    MAX_URI,
    json_size,
    split_text,
    truncate_graphemes,
    truncate_utf16,
)
from bot.channels.line.postback import encode_done, encode_say

log = logging.getLogger(__name__)

Message = dict[str, Any]

SOFT_TEXT = 1000  # UTF-16 units per text message when a long plain answer has to be split (about a phone screen)
ALT_TEXT = 400  # notifications show the start of it; shorter than LINE's 1500 on purpose
STEP_TITLE_MAX = 40  # "顧客引き継ぎシート：得意先ごとに…" -> the part before "：" names the step
COLORS = {"analysis": "#2F6690", "action": "#2E7D5B", "strategy": "#7A4E9E", "legal": "#8A5A00", "sources": "#5F6B7A"}
TEXT_COLOR = "#333333"
MUTED = "#8A8F98"


@dataclass(frozen=True)
class RenderOptions:
    quote_token: str | None = None  # quote the user's message (groups: shows whom we answer)
    done_steps: frozenset[str] = field(default_factory=frozenset)


# ----- public entry points -------------------------------------------------------------------------------------------


def render_answer(answer: Answer, replies: dict[str, Any], options: RenderOptions | None = None) -> list[Message]:
    """The messages for one engine answer: at most 5, each within LINE's limits."""
    options = options or RenderOptions()
    if answer.jobs is not None:  # the job search: postings as cards, or its question with choices
        messages = _jobs(answer, replies, options)
    elif answer.escalation is not None:  # an escalation, or a check-in: help lines first, as plain text
        messages = _escalation(answer, replies, options)
    elif _has_parts(answer):
        messages = _advice(answer, replies, options)
    else:
        text = answer.text or answer.empathy or replies["clarify"]["empty"]
        messages = _texts(text, options.quote_token)
        _attach_quick_reply(messages, follow_up_items(answer.follow_ups))
    return finish(messages)


def render_text(text: str, *, quick_replies: Sequence[str] = (), quote_token: str | None = None) -> list[Message]:
    """A plain text reply (welcome, checklist, non-text messages) with optional follow-up quick replies."""
    messages = _texts(text, quote_token)
    _attach_quick_reply(messages, follow_up_items(quick_replies))
    return finish(messages)


def plain_fallback(answer: Answer, replies: dict[str, Any]) -> list[Message]:
    """The answer as plain text only: used if LINE ever rejects the rich rendering."""
    text = answer.text or answer.empathy or replies["clarify"]["empty"]
    return finish(_texts(text, None))


def step_label(step: str) -> str:
    """A step's short name for the checklist: the part before "：" when there is one, else its start."""
    head, sep, _ = step.partition("：")
    if sep and 0 < len(head.strip()) <= STEP_TITLE_MAX:
        return head.strip()
    return truncate_graphemes(step.strip(), STEP_TITLE_MAX)


# ----- message kinds -------------------------------------------------------------------------------------------------


def _has_parts(answer: Answer) -> bool:
    return bool(answer.situation_analysis or answer.action_plan or answer.career_strategy)


def _advice(answer: Answer, replies: dict[str, Any], options: RenderOptions) -> list[Message]:
    messages: list[Message] = []
    opening = answer.empathy
    if answer.direct_answer is not None:
        qa = "\n".join(direct_reply_lines(answer, replies))
        opening = f"{opening}\n\n{qa}" if opening else qa
    maybe = alternatives_line(answer, replies)
    if maybe:
        opening = f"{opening}\n\n{maybe}" if opening else maybe
    if opening:
        messages += _texts(opening, options.quote_token)
    messages.append(_flex(answer, replies, options))
    # The 「もしかして」 topics first: one tap answers about that topic instead.
    _attach_quick_reply(messages, follow_up_items([*answer.alternatives, *answer.follow_ups]))
    return messages


def _escalation(answer: Answer, replies: dict[str, Any], options: RenderOptions) -> list[Message]:
    escalation = answer.escalation
    assert escalation is not None
    qa = direct_reply_lines(answer, replies)
    # A labour-law question's general rule first, then the 「一般的な情報だけ」 note and the lines (reply_before_help).
    reply_first = answer.reply_before_help()
    lines = [*qa, ""] if reply_first else []
    lines += [escalation.message.strip(), ""]
    lines += [f"・{r.name}　{r.contact}（{r.hours}）" for r in escalation.resources]
    if answer.empathy:  # a check-in answered with the worry: its own opening follows the help lines
        lines += ["", answer.empathy]
    if qa and not reply_first:
        lines += ["", *qa]
    maybe = alternatives_line(answer, replies)
    if maybe:
        lines += ["", maybe]
    messages = _texts("\n".join(lines).strip(), options.quote_token, budget=MAX_MESSAGES - 1)
    if _has_parts(answer):
        messages.append(_flex(answer, replies, options))
    items = help_line_items(escalation.resources) + follow_up_items([*answer.alternatives, *answer.follow_ups])
    _attach_quick_reply(messages, items)
    return messages


def _jobs(answer: Answer, replies: dict[str, Any], options: RenderOptions) -> list[Message]:
    """The opening as text, the postings as a carousel; the choices (or 「もっと見る」「条件を変える」) as quick replies,
    and when nothing fits, a link to the public job search."""
    view = answer.jobs
    assert view is not None
    card = jobs_flex(answer, texts.JOB_LABELS)
    opening = answer.empathy
    if card is not None and view.notes:  # where the postings come from; that a sample one is invented
        opening = "\n".join([opening, *view.notes])
    messages = _texts(opening, options.quote_token, budget=MAX_MESSAGES - 1)
    if card is not None:
        messages.append(fit_container_message(card))
    items = help_line_items([view.fallback]) if view.fallback is not None else []
    _attach_quick_reply(messages, items + follow_up_items(answer.follow_ups))
    return messages


def fit_container_message(message: Message) -> Message:
    message["contents"] = fit_container(message["contents"])
    return message


def _texts(text: str, quote_token: str | None, *, budget: int = MAX_MESSAGES - 1) -> list[Message]:
    """Text messages: one per phone-screen-sized piece, split at sentence boundaries, at most `budget` of them."""
    pieces = split_text(text, MAX_TEXT_UTF16, soft=SOFT_TEXT)
    if len(pieces) > budget:
        pieces = split_text(text, MAX_TEXT_UTF16)  # fewer, longer pieces rather than losing the end
    if len(pieces) > budget:
        pieces = [*pieces[: budget - 1], truncate_utf16("\n".join(pieces[budget - 1 :]), MAX_TEXT_UTF16)]
        log.warning("line: a text answer was cut to fit %d messages", budget)
    messages: list[Message] = [{"type": "text", "text": piece} for piece in pieces if piece]
    if not messages:
        messages = [{"type": "text", "text": "…"}]
    if quote_token:
        messages[0]["quoteToken"] = quote_token
    return messages


# ----- quick replies -------------------------------------------------------------------------------------------------


def follow_up_items(follow_ups: Sequence[str]) -> list[dict[str, Any]]:
    items = []
    for text in follow_ups:
        text = text.strip()
        if not text:
            continue
        items.append(
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": truncate_graphemes(text, MAX_QUICK_REPLY_LABEL),
                    "data": encode_say(text),
                    "displayText": truncate_graphemes(text, MAX_DISPLAY_TEXT),
                },
            }
        )
    return items


_PHONE = re.compile(r"^[0-9０-９\-－ー ()（）]{6,20}$")


def help_line_items(resources: Sequence[HelpResource]) -> list[dict[str, Any]]:
    """A tap-to-call button for each help line with a phone number; a link for those reached on the web."""
    items = []
    for resource in resources:
        contact = resource.contact.strip()
        if _PHONE.match(contact):
            digits = re.sub(r"\D", "", contact.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
            action = {
                "type": "uri",
                "label": truncate_graphemes(f"📞 {resource.name}", MAX_QUICK_REPLY_LABEL),
                "uri": f"tel:{digits}",
            }
        elif resource.url.startswith("https://") and len(resource.url) <= MAX_URI:
            action = {
                "type": "uri",
                "label": truncate_graphemes(f"🌐 {resource.name}", MAX_QUICK_REPLY_LABEL),
                "uri": resource.url,
            }
        else:
            continue
        items.append({"type": "action", "action": action})
    return items


def _attach_quick_reply(messages: list[Message], items: list[dict[str, Any]]) -> None:
    """Quick replies go on the last message (LINE shows only that one's)."""
    unique: list[dict[str, Any]] = []
    labels: set[str] = set()
    for item in items:
        label = item["action"]["label"]
        if label not in labels:
            labels.add(label)
            unique.append(item)
    if unique and messages:
        messages[-1]["quickReply"] = {"items": unique[:MAX_QUICK_REPLY_ITEMS]}


# ----- Flex ----------------------------------------------------------------------------------------------------------


def _flex(answer: Answer, replies: dict[str, Any], options: RenderOptions) -> Message:
    headings = replies["headings"]
    bubbles: list[dict[str, Any]] = []
    if answer.situation_analysis:
        points = [(p.title, p.detail) for p in answer.situation_analysis]
        # Factors are what often lies behind such a worry: the card says so rather than asserting them.
        bubbles.append(
            _points_bubble(headings["analysis"], "よくある原因（当てはまるものは？）", points, COLORS["analysis"])
        )
    groups = answer.action_plan
    if groups:
        room = MAX_BUBBLES - len(bubbles) - (1 if answer.career_strategy else 0) - (1 if answer.legal_points else 0) - 1
        per_bubble = max(1, math.ceil(len(groups) / max(1, room)))
        chunks = [groups[i : i + per_bubble] for i in range(0, len(groups), per_bubble)]
        for n, chunk in enumerate(chunks, start=1):
            counter = f"{headings['action_plan']} {n}/{len(chunks)}" if len(chunks) > 1 else headings["action_plan"]
            bubbles.append(_action_bubble(counter, chunk, options.done_steps))
    if answer.career_strategy:
        points = [(p.title, p.detail) for p in answer.career_strategy]
        bubbles.append(_points_bubble(headings["strategy"], "これからのキャリアを考える", points, COLORS["strategy"]))
    if answer.legal_points:
        points = [("", p) for p in answer.legal_points] + [("", replies["phrases"]["legal_note"])]
        bubbles.append(_points_bubble(headings["legal"], "一般的な情報です", points, COLORS["legal"]))
    bubbles.append(_sources_bubble(answer, replies))
    if len(bubbles) > 1:
        first = bubbles[0]
        first["footer"] = _box([_text(texts.SWIPE_HINT, size="xs", color=MUTED, align="end")], padding="10px")
    container: dict[str, Any] = bubbles[0] if len(bubbles) == 1 else {"type": "carousel", "contents": bubbles}
    return {"type": "flex", "altText": _alt_text(answer), "contents": fit_container(container)}


def _alt_text(answer: Answer) -> str:
    lead = answer.empathy or (answer.escalation.message if answer.escalation else "")
    alt = texts.HEADINGS_ALT + (f"：{' '.join(lead.split())}" if lead else "")
    return truncate_utf16(alt, min(ALT_TEXT, MAX_ALT_TEXT))


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": text.strip() or "…", "wrap": True, **style}


def _box(
    contents: list[dict[str, Any]],
    *,
    layout: str = "vertical",
    spacing: str | None = None,
    padding: str | None = None,
    **style: Any,
) -> dict[str, Any]:
    box: dict[str, Any] = {"type": "box", "layout": layout, "contents": contents, **style}
    if spacing:
        box["spacing"] = spacing
    if padding:
        box["paddingAll"] = padding
    return box


def _bubble(kicker: str, title: str, color: str, body: list[dict[str, Any]]) -> dict[str, Any]:
    header = _box(
        [_text(kicker, size="xs", color="#FFFFFFCC"), _text(title, size="md", weight="bold", color="#FFFFFF")],
        padding="14px",
        backgroundColor=color,
        spacing="xs",
    )
    return {"type": "bubble", "size": "mega", "header": header, "body": _box(body, spacing="lg", padding="16px")}


def _points_bubble(kicker: str, title: str, points: list[tuple[str, str]], color: str) -> dict[str, Any]:
    body = []
    for heading, detail in points:
        parts = []
        if heading:
            parts.append(_text(heading, size="sm", weight="bold", color=color))
        parts.append(_text(detail, size="sm", color=TEXT_COLOR))
        body.append(_box(parts, spacing="xs"))
    return _bubble(kicker, title, color, body)


def _action_bubble(kicker: str, groups: list[ActionGroup], done: frozenset[str]) -> dict[str, Any]:
    color = COLORS["action"]
    body: list[dict[str, Any]] = []
    for group in groups:
        if len(groups) > 1:
            body.append(_text(group.title, size="sm", weight="bold", color=color))
        for step in group.steps:
            label = step_label(step)
            head, sep, detail = step.partition("：")
            parts = (
                [_text(head, size="sm", weight="bold", color=TEXT_COLOR), _text(detail, size="sm", color=TEXT_COLOR)]
                if (sep and head.strip() == label)
                else [_text(step, size="sm", color=TEXT_COLOR)]
            )
            if label in done:
                parts.append(_text(texts.DONE_MARK, size="xs", color=color, align="end"))
            else:
                parts.append(
                    {
                        "type": "button",
                        "style": "link",
                        "height": "sm",
                        "color": color,
                        "action": {
                            "type": "postback",
                            "label": truncate_graphemes(texts.DONE_BUTTON, MAX_FLEX_LABEL),
                            "data": encode_done(label),
                            "displayText": truncate_graphemes(f"「{label}」ができた", MAX_DISPLAY_TEXT),
                        },
                    }
                )
            body.append(_box(parts, spacing="xs"))
    title = groups[0].title if len(groups) == 1 else "・".join(g.title for g in groups)
    return _bubble(kicker, title, color, body)


def _sources_bubble(answer: Answer, replies: dict[str, Any]) -> dict[str, Any]:
    color = COLORS["sources"]
    cited = cited_titles(answer, replies)
    related = [s.title for s in answer.sources if s.title not in cited][: max(0, 3 - len(cited))]
    body: list[dict[str, Any]] = []
    if cited:
        body.append(
            _box(
                [_text("この回答のもとにした記事", size="xxs", color=MUTED)]
                + [_text(f"「{t}」", size="sm", weight="bold", color=TEXT_COLOR) for t in cited],
                spacing="xs",
            )
        )
    if related:
        body.append(
            _box(
                [_text("関連する記事", size="xxs", color=MUTED)]
                + [_text(f"「{t}」", size="sm", color=TEXT_COLOR) for t in related],
                spacing="xs",
            )
        )
    body.append({"type": "separator"})
    body.append(_text(texts.DISCLAIMER, size="xxs", color=MUTED))
    return _bubble("出典", replies["headings"]["sources"], color, body)


def cited_titles(answer: Answer, replies: dict[str, Any]) -> list[str]:
    """The articles the answer was built from (`answer.cited`; for answers stored before it, the text's sources
    line), else the best source of its topic."""
    if answer.cited:
        by_id = {s.article_id: s.title for s in answer.sources}
        return [by_id[c] for c in answer.cited if c in by_id]
    marker = f"{replies['headings']['sources']}："
    for line in reversed(answer.text.splitlines()):
        if line.startswith(marker):
            titles = re.findall(r"「(.+?)」(?=／|$)", line[len(marker) :])
            if titles:
                return titles
    best: Source | None = next((s for s in answer.sources if answer.topic and s.topic == answer.topic), None)
    best = best or (answer.sources[0] if answer.sources else None)
    return [best.title] if best else []


# ----- size limits ---------------------------------------------------------------------------------------------------


def _texts_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            yield node
        for value in node.values():
            yield from _texts_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts_in(value)


def _shrink_longest(node: Any) -> bool:
    """Cut the longest text component by a fifth; False when nothing is left worth cutting."""
    longest = max(_texts_in(node), key=lambda t: len(t["text"]), default=None)
    if longest is None or len(longest["text"]) < 24:
        return False
    text = longest["text"]
    longest["text"] = truncate_utf16(text, max(20, int(len(text) * 0.8)))
    return True


def fit_container(container: dict[str, Any]) -> dict[str, Any]:
    """Keep a bubble within 30 KB and a carousel within 12 bubbles and 50 KB (cutting the longest texts if needed)."""
    bubbles = container["contents"] if container["type"] == "carousel" else [container]
    if len(bubbles) > MAX_BUBBLES:
        del bubbles[MAX_BUBBLES:]
        log.warning("line: carousel cut to %d bubbles", MAX_BUBBLES)
    cut = False
    for bubble in bubbles:
        while json_size(bubble) > MAX_BUBBLE_BYTES and _shrink_longest(bubble):
            cut = True
    if container["type"] == "carousel":
        while json_size(container) > MAX_CAROUSEL_BYTES:
            if not _shrink_longest(container):
                if len(bubbles) <= 1:
                    break
                bubbles.pop(-2 if len(bubbles) > 2 else -1)  # keep the first card and the sources card
            cut = True
    if cut:
        log.warning("line: flex content cut to fit LINE's size limits")
    return container


def finish(messages: list[Message]) -> list[Message]:
    """The last guard: at most 5 messages (quick replies moved to the last one kept)."""
    if len(messages) > MAX_MESSAGES:
        quick = next((m.get("quickReply") for m in reversed(messages) if m.get("quickReply")), None)
        messages = messages[:MAX_MESSAGES]
        for m in messages:
            m.pop("quickReply", None)
        if quick:
            messages[-1]["quickReply"] = quick
        log.warning("line: reply cut to %d messages", MAX_MESSAGES)
    return messages
