"""LINE's message limits, and the counting and cutting they need.

The SDK checks only a few of these (it rejects a sixth message, nothing else), so our renderer enforces all of them.
LINE counts most text in UTF-16 code units; action labels and `displayText` in grapheme clusters. Cutting by code
points never splits a surrogate pair, and we also never cut between a character and what modifies it (combining
marks, variation selectors, skin tones, zero-width joiners), so a cut never lands mid-character.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

MAX_MESSAGES = 5  # per reply or push request
MAX_TEXT_UTF16 = 5000  # a text message
MAX_QUICK_REPLY_ITEMS = 13
MAX_QUICK_REPLY_LABEL = 20  # graphemes
MAX_FLEX_LABEL = 40  # graphemes (Flex buttons and other Flex actions)
MAX_DISPLAY_TEXT = 300  # graphemes
MAX_POSTBACK_DATA = 300  # UTF-16 code units
MAX_ALT_TEXT = 1500
MAX_URI = 1000
MAX_BUBBLES = 12
# "30 KB" and "50 KB" of JSON. We measure the JSON with every non-ASCII character escaped (the largest way anyone
# could count it) and in decimal kilobytes, so whatever LINE measures, we are under it.
MAX_BUBBLE_BYTES = 30_000
MAX_CAROUSEL_BYTES = 50_000
URI_SCHEMES = ("http:", "https:", "line:", "tel:")

ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    """Length as LINE counts text: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def json_size(value: Any) -> int:
    """Bytes of compact JSON with non-ASCII escaped: an upper bound of any JSON byte count of `value`."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


def _joins_previous(char: str) -> bool:
    """True when `char` belongs to the character before it (cutting in front of it would split a grapheme)."""
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == 0x200D  # zero-width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (flag sequences)
        or 0x3099 <= code <= 0x309A  # combining kana voiced marks
    )


def safe_cut(text: str, index: int) -> int:
    """The largest cut position <= index that does not split a grapheme cluster."""
    index = max(0, min(index, len(text)))
    while 0 < index < len(text) and (_joins_previous(text[index]) or text[index - 1] == "\u200d"):
        index -= 1
    return index


def prefix_within_utf16(text: str, limit: int) -> int:
    """Number of code points of the longest prefix of `text` whose UTF-16 length is <= limit (grapheme safe)."""
    used = 0
    for i, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return safe_cut(text, i)
    return len(text)


def truncate_graphemes(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """At most `limit` grapheme clusters. Code points bound graphemes from above, so counting them is safe."""
    text = " ".join(text.split()) if "\n" in text else text
    if len(text) <= limit:
        return text
    cut = safe_cut(text, limit - len(ellipsis))
    return text[:cut].rstrip() + ellipsis


def truncate_utf16(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """At most `limit` UTF-16 code units, ending with `ellipsis` when cut."""
    if utf16_len(text) <= limit:
        return text
    cut = prefix_within_utf16(text, limit - utf16_len(ellipsis))
    return text[:cut].rstrip() + ellipsis


# Where a long text may be split, best first: paragraph, line, sentence end, clause, space.
_BREAKS: tuple[tuple[str, ...], ...] = (
    ("\n\n",),
    ("\n",),
    ("。", "！", "？", "!", "?", "」", "）"),
    ("、", "，", ",", "　", " "),
)


def split_text(text: str, limit: int = MAX_TEXT_UTF16, *, soft: int | None = None) -> list[str]:
    """Split `text` into pieces of at most `limit` UTF-16 units, at the best boundary LINE readers would expect.

    With `soft`, pieces aim at `soft` units (readability on a small phone) and only use up to `limit` when no
    boundary is found before `soft`. Never cuts mid-character; whitespace at the cut is dropped.
    """
    target = min(soft or limit, limit)
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= target:
            pieces.append(rest)
            break
        window = prefix_within_utf16(rest, target)
        cut = _best_break(rest, window)
        if cut is None and target < limit:
            cut = _best_break(rest, prefix_within_utf16(rest, limit))
        if cut is None or cut <= 0:
            cut = prefix_within_utf16(rest, target) or 1  # no boundary at all: a hard, grapheme-safe cut
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    return pieces


def _best_break(text: str, window: int) -> int | None:
    """A cut position within text[:window] after a break mark, preferring strong breaks in the later half."""
    head = text[:window]
    floor = window // 3  # a cut too early would make a tiny piece
    for marks in _BREAKS:
        best = max((head.rfind(m) + len(m) for m in marks if head.rfind(m) >= 0), default=-1)
        if best > floor:
            return safe_cut(text, best)
    return None
