"""The webhook's synchronous part: signature, body shape, per-event parsing, routing, and the durable inbox.

Order of checks (the route calls them in this order): size (413) -> signature on the raw bytes (400, nothing parsed
or stored) -> JSON nesting (400, before parsing) -> JSON and the webhook shape (400) -> lone surrogates replaced in
every string -> each event validated on its own. An event that is not valid (the SDK cannot parse it: a new event
type, a text message without `quoteToken`, no `deliveryContext`...; a text over LINE's 5,000 characters; ids
beyond what the store keeps) is *rejected*: logged with the request id and the reason, counted, and left out,
while the rest of the delivery goes on. A valid event we do not act on (group chatter, standby mode) is *skipped*.
Events we act on are written to the inbox (deduplicated on `webhookEventId`) before the 200 goes out; the worker
does the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from linebot.v3 import WebhookParser
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    GroupSource,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    PostbackEvent,
    RoomSource,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    UserSource,
)

from bot.channels.edge import LINE_MAX_TEXT_CHARS, MAX_JSON_DEPTH, clean_json, json_too_deep
from bot.channels.line import postback
from bot.store.base import Store
from bot.store.schema import ID_LEN

log = logging.getLogger(__name__)

SOURCE = "line"
MAX_BODY_BYTES = 1024 * 1024  # 1 MB
PAYLOAD_VERSION = 1


class WebhookRejected(Exception):
    """The whole request is refused (the route answers `status` with `code` and `message`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def verify_signature(channel_secret: str, body: bytes, signature: str | None) -> bool:
    """HMAC-SHA256 of the raw body with the channel secret, base64, compared in constant time.

    The same computation as the SDK's SignatureValidator, but on the bytes as received: no decoding first.
    """
    if not signature:
        return False
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode("utf-8", "replace"))


@dataclass
class ParsedEvent:
    index: int
    raw: Any
    event: Event | None
    error: str | None = None

    @property
    def type(self) -> str:
        kind = self.raw.get("type") if isinstance(self.raw, dict) else None
        return kind if isinstance(kind, str) else "?"


class LineWebhookParser(WebhookParser):
    """The SDK's parser, made tolerant per event: one bad event never sinks the batch.

    `WebhookParser.parse` turns an unparseable event into an `UnknownEvent` and crashes on an event without a `type`
    or one that is not an object; here each event is parsed on its own with the SDK's models and the error kept.
    """

    def __init__(self, channel_secret: str) -> None:
        super().__init__(channel_secret)
        self._secret = channel_secret

    def verify(self, body: bytes, signature: str | None) -> bool:
        return verify_signature(self._secret, body, signature)

    def parse_events(self, body: bytes) -> tuple[str, list[ParsedEvent]]:
        """(destination, events) of a verified body; WebhookRejected(400) when it is not the webhook's shape."""
        if json_too_deep(body):
            raise WebhookRejected(400, "invalid_json", f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            document = clean_json(json.loads(body))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise WebhookRejected(400, "invalid_json", "the request body is not JSON") from exc
        if not isinstance(document, dict):
            raise WebhookRejected(400, "invalid_webhook", "the webhook body must be a JSON object")
        events = document.get("events")
        destination = document.get("destination")
        if not isinstance(events, list):
            raise WebhookRejected(400, "invalid_webhook", "the webhook body needs an `events` array")
        if not isinstance(destination, str):
            raise WebhookRejected(400, "invalid_webhook", "the webhook body needs a `destination` string")
        parsed = []
        for index, raw in enumerate(events):
            if not isinstance(raw, dict):
                parsed.append(ParsedEvent(index, raw, None, "not an object"))
                continue
            try:
                event = Event.from_dict(raw)
            except Exception as exc:  # the SDK raises ValueError, KeyError, TypeError... for what it cannot parse
                parsed.append(ParsedEvent(index, raw, None, f"{type(exc).__name__}: {_first_line(exc)}"))
                continue
            problem = invalid_event(event)
            parsed.append(ParsedEvent(index, raw, None if problem else event, problem))
        return destination, parsed


def invalid_event(event: Event) -> str | None:
    """Why an event the SDK parsed is still not one LINE would send (None when it is fine).

    Checked before any work: a 280,000-character "text" would otherwise hold a worker for minutes, and an id longer
    than the store's columns would fail the database write.
    """
    message = getattr(event, "message", None)
    if isinstance(message, TextMessageContent) and len(message.text or "") > LINE_MAX_TEXT_CHARS:
        return f"text over LINE's {LINE_MAX_TEXT_CHARS} characters ({len(message.text)})"
    source = event.source
    for name in ("user_id", "group_id", "room_id"):
        value = getattr(source, name, None)
        if value is not None and (len(value) > ID_LEN // 2 or not value.isprintable()):
            return f"malformed source {name}"
    event_id = event.webhook_event_id
    if not isinstance(event_id, str) or not event_id or len(event_id) > ID_LEN or not event_id.isprintable():
        return "malformed webhookEventId"
    return None


def _first_line(exc: BaseException) -> str:
    """What went wrong, without any value from the event: the SDK's messages may quote the event's JSON (and so a
    user's text), pydantic's name the fields."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in errors()})
        except Exception:  # a message without field names is still a message
            fields = []
        if fields:
            return "invalid or missing " + ", ".join(fields)[:200]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text.split(" from ")[0].split("{")[0][:120]


# ----- routing ---------------------------------------------------------------------------------------------------------

Decision = Literal["accept", "skip"]


@dataclass
class Routed:
    decision: Decision
    reason: str
    conversation_key: str = ""  # the inbox key (see inbox_key)
    event_id: str = ""


def inbox_key(conversation_id: str) -> str:
    """The inbox's ordering key of a conversation.

    Distinct from the conversation id on purpose: when a user asks the engine to delete their data, it deletes the
    inbox rows keyed by the conversation id, and the messages they sent after that request must still be answered.
    Unfollow and leave delete these too (see handlers).
    """
    return f"inbox:{conversation_id}"


def conversation_key(event: Event) -> str | None:
    """The conversation id: one per user (1:1), per group and per room, so a user's 1:1 history never reaches a
    group. Also the engine's conversation id."""
    source = event.source
    if isinstance(source, UserSource) and source.user_id:
        return f"line:user:{source.user_id}"
    if isinstance(source, GroupSource) and source.group_id:
        return f"line:group:{source.group_id}"
    if isinstance(source, RoomSource) and source.room_id:
        return f"line:room:{source.room_id}"
    return None


def push_target(conversation_id: str) -> str | None:
    """The user, group or room to push to for a conversation id made by `conversation_key` (None: not LINE's)."""
    for prefix in ("line:user:", "line:group:", "line:room:"):
        if conversation_id.startswith(prefix) and len(conversation_id) > len(prefix):
            return conversation_id[len(prefix) :]
    return None


def addressed_text(message: TextMessageContent, keyword: str) -> str | None:
    """In a group or room: the text with our mention (or the keyword) removed, or None when not addressed to us."""
    text = message.text or ""
    spans = []
    mention = message.mention
    for mentionee in (mention.mentionees if mention else None) or []:
        if getattr(mentionee, "is_self", None) is True:
            spans.append((mentionee.index, mentionee.length))
    if spans:
        return _remove_spans(text, spans).strip()
    if keyword and keyword in text:
        return text.replace(keyword, " ").strip()
    return None


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Remove mention spans; LINE gives their index and length in UTF-16 code units."""
    units = text.encode("utf-16-le", "surrogatepass")
    for index, length in sorted(spans, reverse=True):
        start, end = 2 * index, 2 * (index + length)
        if 0 <= start <= end <= len(units):
            units = units[:start] + " ".encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le", "replace")


def route(event: Event, keyword: str) -> Routed:
    """Decide at the door what to keep: only what we will act on enters the inbox (group chatter never does)."""
    key = conversation_key(event)
    kind = type(event).__name__
    if key is None:
        return Routed("skip", f"{kind} without a user, group or room source")
    mode = getattr(getattr(event, "mode", None), "value", None)
    if mode == "standby" and not isinstance(event, UnfollowEvent | LeaveEvent):
        return Routed("skip", f"{kind} in standby mode (another channel answers)")
    in_group = not isinstance(event.source, UserSource)
    if isinstance(event, MessageEvent):
        if in_group:
            if not isinstance(event.message, TextMessageContent):
                return Routed("skip", "non-text message in a group")
            if addressed_text(event.message, keyword) is None:
                return Routed("skip", "group message not addressed to the bot")
    elif isinstance(event, FollowEvent | UnfollowEvent):
        if in_group:
            return Routed("skip", f"{kind} from a group")
    elif isinstance(event, PostbackEvent):
        if postback.decode(event.postback.data) is None:
            return Routed("skip", "postback data that is not ours")
    elif isinstance(event, JoinEvent | LeaveEvent):
        if not in_group:
            return Routed("skip", f"{kind} outside a group")
    elif not isinstance(event, UnsendEvent):
        return Routed("skip", f"{kind} is not handled")
    return Routed("accept", kind, inbox_key(key), event.webhook_event_id)


# ----- acceptance --------------------------------------------------------------------------------------------------------


@dataclass
class Intake:
    request_id: str
    accepted: list[str] = field(default_factory=list)  # webhookEventIds newly in the inbox
    duplicates: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # reasons (valid events we do not act on)
    rejected: list[str] = field(default_factory=list)  # reasons (invalid events, left out of the delivery)
    store_ms: float = 0.0  # time spent persisting (the part of the acknowledgement that waits on the database)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "skipped": len(self.skipped),
            "rejected": len(self.rejected),
        }


def accept(
    store: Store, events: list[ParsedEvent], *, request_id: str, keyword: str, received_at: float | None = None
) -> Intake:
    """Persist every event we will act on (sync: run it in a thread). Duplicates of a webhookEventId are dropped."""
    outcome, to_store = prepare(events, request_id=request_id, keyword=keyword, received_at=received_at)
    # One transaction for the whole request: it is acknowledged only when every event of it is stored.
    record(outcome, to_store, store.inbox_accept_many(SOURCE, to_store) if to_store else [])
    return outcome


Stored = tuple[str, str, str]  # (event_id, conversation_key, payload): one inbox row


def prepare(
    events: list[ParsedEvent], *, request_id: str, keyword: str, received_at: float | None = None
) -> tuple[Intake, list[Stored]]:
    """Route the events: the rows to store, and an Intake with what was skipped or rejected."""
    received_at = time.time() if received_at is None else received_at
    outcome = Intake(request_id)
    to_store: list[Stored] = []
    for parsed in events:
        if parsed.event is None:
            _reject(outcome, parsed, parsed.error or "invalid event")
            continue
        try:
            routed = route(parsed.event, keyword)
        except Exception as exc:  # a shape the SDK let through but our routing cannot read: this event only
            _reject(outcome, parsed, f"unroutable ({type(exc).__name__})")
            continue
        if routed.decision == "skip":
            log.info(
                "line webhook %s: skipped event #%d (%s): %s", request_id, parsed.index, parsed.type, routed.reason
            )
            outcome.skipped.append(routed.reason)
            continue
        try:
            payload = json.dumps(
                {"v": PAYLOAD_VERSION, "request_id": request_id, "received_at": received_at, "event": parsed.raw},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            payload.encode("utf-8")  # what the database will do with it; clean_json makes this hold
        except (TypeError, ValueError) as exc:
            _reject(outcome, parsed, f"unstorable payload ({type(exc).__name__})")
            continue
        to_store.append((routed.event_id, routed.conversation_key, payload))
    return outcome, to_store


def record(outcome: Intake, to_store: list[Stored], stored: list[bool]) -> None:
    """What inbox_accept_many said for each row: accepted now, or a redelivery of an accepted event."""
    for (event_id, _, _), new in zip(to_store, stored, strict=True):
        if new:
            outcome.accepted.append(event_id)
        else:
            log.info("line webhook %s: event %s already accepted (redelivery)", outcome.request_id, event_id)
            outcome.duplicates.append(event_id)


def _reject(outcome: Intake, parsed: ParsedEvent, reason: str) -> None:
    # The reason names fields and types, never values: they may be a user's words.
    log.warning(
        "line webhook %s: rejected event #%d (type %s): %s", outcome.request_id, parsed.index, parsed.type, reason
    )
    outcome.rejected.append(reason)
