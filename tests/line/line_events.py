"""Realistic LINE webhook events for the tests and the benchmark, checked against LINE's webhook.yml.

Shapes follow the reference's examples (`tests/fixtures/line/line-developers-docs/webhook-examples/`): ids in LINE's
formats, `webhookEventId` ULID-like, `deliveryContext`, `quoteToken` on text messages, `mode: active`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from pathlib import Path
from typing import Any

from line_openapi import OpenAPISchemas

HERE = Path(__file__).resolve().parent
WEBHOOK_SPEC = HERE.parent / "fixtures" / "line" / "line-openapi" / "webhook.yml"
BOT_ID = "U" + "b0" * 16
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_counter = itertools.count(1)
_webhook_schemas: OpenAPISchemas | None = None


def webhook_schemas() -> OpenAPISchemas:
    global _webhook_schemas
    if _webhook_schemas is None:
        _webhook_schemas = OpenAPISchemas(WEBHOOK_SPEC)
    return _webhook_schemas


def user_id() -> str:
    return "U" + secrets.token_hex(16)


def group_id() -> str:
    return "C" + secrets.token_hex(16)


def room_id() -> str:
    return "R" + secrets.token_hex(16)


def event_id() -> str:
    return "01" + "".join(secrets.choice(CROCKFORD) for _ in range(24))


def message_id() -> str:
    return str(500000000000000000 + next(_counter))


def _source(user: str | None, group: str | None = None, room: str | None = None) -> dict[str, Any]:
    if group:
        return {"type": "group", "groupId": group, **({"userId": user} if user else {})}
    if room:
        return {"type": "room", "roomId": room, **({"userId": user} if user else {})}
    return {"type": "user", "userId": user}


def _base(
    kind: str,
    source: dict[str, Any],
    *,
    reply_token: str | None = None,
    timestamp: float | None = None,
    redelivery: bool = False,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": int((time.time() if timestamp is None else timestamp) * 1000),
        "source": source,
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if reply_token is not None:
        event["replyToken"] = reply_token
    return event


def text(
    user: str,
    body: str,
    *,
    reply_token: str,
    group: str | None = None,
    room: str | None = None,
    mention_self_at: tuple[int, int] | None = None,
    msg_id: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    event = _base("message", _source(user, group, room), reply_token=reply_token, timestamp=timestamp)
    message: dict[str, Any] = {
        "id": msg_id or message_id(),
        "type": "text",
        "quoteToken": secrets.token_hex(8),
        "text": body,
    }
    if mention_self_at is not None:
        index, length = mention_self_at
        message["mention"] = {
            "mentionees": [{"index": index, "length": length, "type": "user", "userId": BOT_ID, "isSelf": True}]
        }
    event["message"] = message
    return event


def sticker(user: str, *, reply_token: str) -> dict[str, Any]:
    event = _base("message", _source(user), reply_token=reply_token)
    event["message"] = {
        "id": message_id(),
        "type": "sticker",
        "quoteToken": secrets.token_hex(8),
        "packageId": "446",
        "stickerId": "1988",
        "stickerResourceType": "STATIC",
        "keywords": ["OK"],
    }
    return event


def image(user: str, *, reply_token: str) -> dict[str, Any]:
    event = _base("message", _source(user), reply_token=reply_token)
    event["message"] = {
        "id": message_id(),
        "type": "image",
        "quoteToken": secrets.token_hex(8),
        "contentProvider": {"type": "line"},
    }
    return event


def follow(user: str, *, reply_token: str, unblocked: bool = False) -> dict[str, Any]:
    event = _base("follow", _source(user), reply_token=reply_token)
    event["follow"] = {"isUnblocked": unblocked}
    return event


def unfollow(user: str) -> dict[str, Any]:
    return _base("unfollow", _source(user))


def postback(user: str, data: str, *, reply_token: str, group: str | None = None) -> dict[str, Any]:
    event = _base("postback", _source(user, group), reply_token=reply_token)
    event["postback"] = {"data": data}
    return event


def unsend(user: str, msg_id: str, *, group: str | None = None) -> dict[str, Any]:
    event = _base("unsend", _source(user, group))
    event["unsend"] = {"messageId": msg_id}
    return event


def join(group: str, *, reply_token: str) -> dict[str, Any]:
    return _base("join", {"type": "group", "groupId": group}, reply_token=reply_token)


def leave(group: str) -> dict[str, Any]:
    return _base("leave", {"type": "group", "groupId": group})


def body(*events: dict[str, Any], destination: str = BOT_ID, validate: bool = True) -> bytes:
    document = {"destination": destination, "events": list(events)}
    if validate:
        errors = webhook_schemas().errors("CallbackRequest", document)
        assert not errors, errors
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def sign(raw: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).digest()).decode("ascii")
