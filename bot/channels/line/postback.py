"""Postback data of our buttons: small versioned JSON, at most 300 UTF-16 code units, parsed defensively.

Two actions:
- `say`: the user chose a follow-up or a clarify choice; `t` is the text the dialogue engine understands.
- `done`: the user ticked a step of the action plan; `s` is the step's short label.

Postback data comes back from the client, so it is untrusted input: anything that is not ours (a rich menu's data,
an older format, an oversized or malformed value) decodes to None and is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from bot.channels.line.limits import MAX_POSTBACK_DATA, truncate_utf16, utf16_len

VERSION = 1
Action = Literal["say", "done"]
TEXT_MAX = 200  # the longest `say` text or step label we put in (well under the 300-unit limit with the envelope)


class PostbackTooLong(ValueError):
    """Encoded data over LINE's 300-unit limit (a bug: callers pass bounded values)."""


@dataclass(frozen=True)
class Postback:
    action: Action
    value: str


def _encode(action: Action, key: str, value: str) -> str:
    data = json.dumps({"v": VERSION, "a": action, key: value}, ensure_ascii=False, separators=(",", ":"))
    if utf16_len(data) > MAX_POSTBACK_DATA:
        raise PostbackTooLong(f"postback data of {utf16_len(data)} UTF-16 units")
    return data


def encode_say(text: str) -> str:
    return _encode("say", "t", truncate_utf16(text.strip(), TEXT_MAX, ellipsis=""))


def encode_done(step_label: str) -> str:
    return _encode("done", "s", truncate_utf16(step_label.strip(), TEXT_MAX, ellipsis=""))


def decode(data: str | None) -> Postback | None:
    if not data or utf16_len(data) > MAX_POSTBACK_DATA or not data.startswith("{"):
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("v") != VERSION:
        return None
    action = value.get("a")
    field = {"say": "t", "done": "s"}.get(action) if isinstance(action, str) else None
    text = value.get(field) if field else None
    if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
        return None
    return Postback(action, text.strip())  # type: ignore[arg-type]
