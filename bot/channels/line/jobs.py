"""The job search's answers on LINE: the opening as text, then one Flex bubble per posting (title, company, place,
pay, employment type, where it was published, and a link button), the choices as quick replies.

Within LINE's limits: at most 5 postings (a carousel holds 12), every text cut to fit, a bubble under 30 KB and the
carousel under 50 KB (fit_container), link buttons only for http(s) addresses of at most 1000 characters, labels of
at most 40 (Flex) and 20 (quick reply) graphemes.
"""

from __future__ import annotations

from typing import Any

from bot.answer.model import Answer, JobPostingView
from bot.channels.line.limits import (
    MAX_ALT_TEXT,
    MAX_BUBBLES,
    MAX_FLEX_LABEL,
    MAX_URI,
    truncate_graphemes,
    truncate_utf16,
)

COLOR = "#1F6F8B"
SAMPLE_COLOR = "#9A6700"
TEXT_COLOR = "#333333"
MUTED = "#8A8F98"
TITLE_MAX = 60
LINE_MAX = 80
ALT_TEXT = 400


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": truncate_utf16(text.strip() or "…", LINE_MAX * 3), "wrap": True, **style}


def _row(label: str, value: str) -> dict[str, Any]:
    return {
        "type": "box",
        "layout": "baseline",
        "spacing": "sm",
        "contents": [
            {"type": "text", "text": label, "size": "xs", "color": MUTED, "flex": 2},
            {
                "type": "text",
                "text": truncate_utf16(value or "…", LINE_MAX),
                "size": "sm",
                "color": TEXT_COLOR,
                "wrap": True,
                "flex": 5,
            },
        ],
    }


def _link(url: str, label: str) -> dict[str, Any] | None:
    if not url.startswith(("https://", "http://")) or len(url) > MAX_URI:
        return None
    return {
        "type": "button",
        "style": "primary",
        "color": COLOR,
        "height": "sm",
        "action": {"type": "uri", "label": truncate_graphemes(label, MAX_FLEX_LABEL), "uri": url},
    }


def posting_bubble(posting: JobPostingView, labels: dict[str, str]) -> dict[str, Any]:
    header: list[dict[str, Any]] = []
    if posting.sample:
        header.append(_text(labels["sample"], size="xs", weight="bold", color=SAMPLE_COLOR))
    header.append(_text(truncate_graphemes(posting.title, TITLE_MAX), size="md", weight="bold", color=TEXT_COLOR))
    header.append(_text(truncate_graphemes(posting.company, TITLE_MAX), size="sm", color=TEXT_COLOR))
    rows = [
        _row(labels["place"], posting.place),
        _row(labels["salary"], posting.salary or labels["salary_unknown"]),
        _row(labels["employment"], posting.employment_type or "…"),
    ]
    if posting.summary:
        rows.append(_text(posting.summary, size="xs", color=MUTED))
    footer_lines = [_text(posting.source, size="xxs", color=SAMPLE_COLOR if posting.sample else MUTED)]
    if posting.valid_through:
        footer_lines.append(_text(posting.valid_through, size="xxs", color=MUTED))
    footer: list[dict[str, Any]] = [*footer_lines]
    button = _link(posting.url, labels["link"])
    if button is not None:
        footer.append(button)
    return {
        "type": "bubble",
        "size": "kilo",
        "body": {
            "type": "box",
            "layout": "vertical",
            "spacing": "md",
            "paddingAll": "14px",
            "contents": [{"type": "box", "layout": "vertical", "spacing": "xs", "contents": header}, *rows],
        },
        "footer": {"type": "box", "layout": "vertical", "spacing": "sm", "paddingAll": "12px", "contents": footer},
    }


def jobs_flex(answer: Answer, labels: dict[str, str]) -> dict[str, Any] | None:
    """The postings as a Flex message (a carousel; one bubble alone when there is one); None without postings."""
    view = answer.jobs
    if view is None or not view.postings:
        return None
    bubbles = [posting_bubble(p, labels) for p in view.postings[:MAX_BUBBLES]]
    container: dict[str, Any] = bubbles[0] if len(bubbles) == 1 else {"type": "carousel", "contents": bubbles}
    alt = labels["alt"] + "：" + "／".join(p.title for p in view.postings)
    return {"type": "flex", "altText": truncate_utf16(alt, min(ALT_TEXT, MAX_ALT_TEXT)), "contents": container}
