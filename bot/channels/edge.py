"""Input hygiene at the edge of every channel, before anything is parsed deeply, stored or answered.

- JSON nesting is bounded *before* `json.loads` (Python's parser recurses: 5,000 levels raise RecursionError);
- lone UTF-16 surrogates (`"\\ud800"` is valid JSON, but no UTF-8 database or encoder accepts the result) are
  replaced with U+FFFD in every string of a parsed document;
- message text is bounded (LINE's own limit for a text message is 5,000 characters).

Pure functions: no HTTP here, the channels decide what a refusal looks like.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 32  # a LINE webhook nests about 6 deep, the web API 2
LINE_MAX_TEXT_CHARS = 5000

_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string, unrolled so the regex engine never backtracks: quotes, then runs of plain bytes and escapes.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def clean_text(value: str) -> str:
    """The string with every lone surrogate replaced by U+FFFD (pairs never reach here: JSON joins them)."""
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def clean_json(value: Any) -> Any:
    """A parsed JSON document with `clean_text` applied to every string, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    return value


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays and objects in `body` nest deeper than `limit` at any point (balanced or not).

    Strings are blanked out first (a `[` inside text is not nesting), then the running depth is a cumulative sum
    over the brackets, in numpy: a megabyte of brackets takes milliseconds. Malformed JSON that stays shallow is
    left for the parser to refuse.
    """
    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKET)
    if len(brackets) <= limit:  # cannot open more than `limit` levels
        return False
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max()) > limit
