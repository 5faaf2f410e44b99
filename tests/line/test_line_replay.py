"""Replay every real webhook body we have (LINE's docs, the Java and Python SDKs' test bodies), signed.

Each is acknowledged with 200; every event is either accepted and handled, a duplicate of an event in the same body
(the SDK test bodies reuse one webhookEventId), or skipped with a logged reason. Nothing accepted is left unfinished,
and everything sent to the fake LINE server passes its spec and limit checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import line_events as ev
import pytest
from conftest import SECRET, LineApp
from sqlalchemy import delete, select

from bot.store.schema import inbox, sent_keys

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "line"
BODIES = sorted(
    [
        *FIXTURES.glob("line-developers-docs/webhook-examples/*.json"),
        *FIXTURES.glob("line-bot-sdk-java/callback/*.json"),
        *FIXTURES.glob("line-bot-sdk-python/*.json"),
    ]
)

# What must come of some of them (file -> (accepted, duplicates, left out: skipped or rejected)), beyond the
# general rules.
EXPECTED = {
    "01_request-body.json": (1, 0, 2),  # abbreviated docs example: text without quoteToken, follow without `follow`
    "02_message-event-text.json": (0, 0, 1),  # a group message mentioning someone else, not us
    "03_message-event-image.json": (1, 0, 0),
    "11_edit-event.json": (0, 0, 1),  # messageEdited: not handled
    "12_unsend-event.json": (1, 0, 0),
    "13_follow-event.json": (1, 0, 0),
    "14_follow-event.json": (1, 0, 0),
    "15_unfollow-event.json": (1, 0, 0),
    "16_join-event.json": (1, 0, 0),
    "17_leave-event.json": (1, 0, 0),
    "20_postback-event.json": (0, 0, 1),  # someone else's postback data (a rich menu's)
    "23_beacon-event.json": (0, 0, 1),
    "unknown.json": (0, 0, 2),
    "text-user.json": (0, 0, 1),  # no quoteToken, no webhookEventId: the SDK cannot parse it
}


def forget_events(store) -> None:
    """As if the event ids had never been seen: the inbox rows and the sent-answer ledger."""
    with store.engine.begin() as conn:
        conn.execute(delete(inbox))
        conn.execute(delete(sent_keys))


def test_every_fixture_body_is_present() -> None:
    assert len(BODIES) == 25 + 27 + 2
    assert all(json.loads(p.read_text())["events"] is not None for p in BODIES)


def test_replay_every_real_webhook_body(line_app: LineApp) -> None:
    seen: dict[str, tuple[int, int, int]] = {}
    for path in BODIES:
        raw = path.read_bytes()  # as LINE sent them: the exact bytes are signed
        response = line_app.post(raw=raw, signature=ev.sign(raw, SECRET))
        assert response.status_code == 200, (path.name, response.text)
        body = response.json()
        events = json.loads(raw)["events"]
        left_out = body["skipped"] + body["rejected"]
        assert body["accepted"] + body["duplicates"] + left_out == len(events), path.name
        seen[path.name] = (body["accepted"], body["duplicates"], left_out)
        line_app.wait_idle()
        with line_app.store.engine.connect() as conn:
            statuses = conn.execute(select(inbox.c.status, inbox.c.last_error)).all()
        assert all(status == "done" for status, _ in statuses), (path.name, statuses)
        # Forget the finished ids: the docs' examples share one webhookEventId, and each body must count as new.
        forget_events(line_app.store)
        line_app.fake.retry_keys.clear()  # and LINE forgot the retry keys derived from them
    for name, expected in EXPECTED.items():
        assert seen[name] == expected, (name, seen[name])
    # The Python SDK's v3 body: 28 events under one webhookEventId; the first is handled, the rest are duplicates
    # or skipped (one is of an undefined type).
    accepted, duplicates, skipped = seen["tests_v3_text_webhook.json"]
    assert accepted == 1 and accepted + duplicates + skipped == 28
    # 14 docs examples (the rest are group chatter, others' postbacks, or event types we do not handle), none of the
    # Java bodies (they predate webhookEventId and deliveryContext: the SDK cannot parse them), one per Python body.
    assert sum(a for a, _, _ in seen.values()) == 16
    # Their reply tokens are not ours to use: answers were pushed, each with a retry key.
    pushes = [d for d in line_app.fake.snapshot() if d.method == "push"]
    assert pushes and all(d.retry_key for d in pushes)
    assert any("おかえりなさい" in d.messages[0].get("text", "") for d in pushes)  # 14: follow.isUnblocked
    assert any("メンション" in d.messages[0].get("text", "") for d in pushes)  # 16: join


@pytest.mark.parametrize("name", ["02_message-event-text.json", "13_follow-event.json"])
def test_a_tampered_fixture_is_refused(line_app: LineApp, name: str) -> None:
    raw = (FIXTURES / "line-developers-docs" / "webhook-examples" / name).read_bytes()
    signature = ev.sign(raw, SECRET)
    assert line_app.post(raw=raw.replace(b"active", b"standby"), signature=signature).status_code == 400
