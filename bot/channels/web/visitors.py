"""Unguessable web conversation ids, bound to the browser that holds a visitor token.

The widget makes a random token once (crypto.getRandomValues, kept in the host page's localStorage) and sends it in
the `X-Visitor-Token` header. The server stores only its SHA-256: the token is long and random, so a plain hash is
enough, and a leaked database does not let anyone act as a visitor. A conversation belongs to the token that created
it; any other token gets 404, exactly as for an id that does not exist.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_HEADER = "X-Visitor-Token"
CONVERSATION_PREFIX = "web:"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_CONVERSATION = re.compile(r"^web:[A-Za-z0-9_-]{32}$")


def valid_token(token: str | None) -> bool:
    return bool(token) and _TOKEN.match(token or "") is not None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_conversation_id() -> str:
    return CONVERSATION_PREFIX + secrets.token_urlsafe(24)  # 192 bits, 32 characters


def valid_conversation_id(conversation_id: str) -> bool:
    return _CONVERSATION.match(conversation_id) is not None


def same_owner(stored_hash: str | None, visitor_hash: str) -> bool:
    return stored_hash is not None and secrets.compare_digest(stored_hash, visitor_hash)
