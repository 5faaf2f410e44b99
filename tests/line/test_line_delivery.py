"""Delivery when LINE misbehaves: expired tokens, 429, 500, slow answers, outages, crashes and restarts.

In every case the user gets the answer exactly once (the fake counts what LINE accepted).
"""

from __future__ import annotations

import time
import uuid

import line_events as ev
from conftest import LineApp, line_overrides
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.api.main import create_app
from bot.channels.line.webhook import LineWebhookParser, accept
from bot.store.schema import inbox

WORRY = "上司とうまくいかず、毎日職場に行くのがつらいです"


def endpoints(fake) -> list[tuple[str, int]]:
    return [(c.endpoint, c.status) for c in fake.calls if c.endpoint != "loading"]


def settle(line_app: LineApp, user: str, count: int = 1) -> list:
    deliveries = line_app.wait_for(user, count)
    line_app.wait_idle()
    time.sleep(0.3)  # anything that would come late (a duplicate) has had its chance
    assert len(line_app.fake.delivered_to(user)) == count
    return deliveries


def test_invalid_reply_token_falls_back_to_push_with_a_retry_key(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("reply", 400)  # "Invalid reply token"
    line_app.say(user, WORRY)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "push" and delivery.to == user
    assert uuid.UUID(delivery.retry_key)
    assert endpoints(line_app.fake) == [("reply", 400), ("push", 200)]


def test_expired_token_is_never_used_twice(line_app: LineApp) -> None:
    user = ev.user_id()
    event = ev.text(user, WORRY, reply_token=line_app.fake.issue_reply_token(user, ttl=0.0))
    line_app.post(event)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "push"


def test_429_and_500_are_retried_with_backoff(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("reply", 429, times=2)
    line_app.fake.fail("reply", 500)
    line_app.say(user, WORRY)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "reply", "LINE sent nothing on an error response, so the token was still good"
    assert endpoints(line_app.fake) == [("reply", 429), ("reply", 429), ("reply", 500), ("reply", 200)]


def test_push_is_retried_and_a_409_counts_as_delivered(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("reply", 400)
    line_app.fake.fail("push", 500)
    line_app.fake.fail("push", None, respond_after=3.0)  # LINE accepts it but answers after our 2 s timeout
    line_app.say(user, WORRY)
    deliveries = line_app.wait_for(user, 1)
    assert line_app.fake.wait_for(lambda: ("push", 409) in endpoints(line_app.fake), 20)
    line_app.wait_idle()
    assert len(line_app.fake.delivered_to(user)) == 1
    pushes = [c for c in line_app.fake.calls if c.endpoint == "push"]
    assert len({c.headers["x-line-retry-key"] for c in pushes}) == 1, "every retry reuses the retry key"
    assert deliveries[0].method == "push"


def test_a_reply_that_timed_out_but_arrived_is_not_pushed_again(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("reply", None, respond_after=3.0)  # LINE delivers it, but answers after our 2 s timeout
    line_app.say(user, WORRY)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "reply"
    assert ("reply", 400) in endpoints(line_app.fake), "the retry found the token used"
    assert "push" not in [e for e, _ in endpoints(line_app.fake)]


def test_slow_answers_are_pushed(line_settings, services, fake_line) -> None:
    # Past the reply window (the answer took too long to risk the token), straight to push.
    settings = line_settings.model_copy(update={"line_reply_window_seconds": 0.0})
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        user = ev.user_id()
        app.say(user, WORRY)
        (delivery,) = settle(app, user)
        assert delivery.method == "push"
        assert endpoints(fake_line) == [("push", 200)]
        assert fake_line.loadings == [], "no animation when the answer will be pushed late anyway"


def test_an_event_older_than_twenty_minutes_is_pushed(line_app: LineApp) -> None:
    user = ev.user_id()
    event = ev.text(user, WORRY, reply_token=line_app.fake.issue_reply_token(user), timestamp=time.time() - 1500)
    event["deliveryContext"] = {"isRedelivery": True}
    line_app.post(event)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "push"


def test_a_rejected_rich_answer_is_sent_as_plain_text(line_app: LineApp) -> None:
    user = ev.user_id()
    line_app.fake.fail("reply", 400, message="The request body has 1 error(s)")
    line_app.say(user, WORRY)
    (delivery,) = settle(line_app, user)
    assert delivery.method == "reply"
    assert all(m["type"] == "text" for m in delivery.messages)


def test_a_line_outage_is_retried_later_without_asking_the_engine_twice(line_app: LineApp) -> None:
    user = ev.user_id()
    attempts = line_app.settings.line_send_attempts
    line_app.fake.fail("reply", 500, times=attempts)  # the first round: every reply attempt fails
    line_app.fake.fail("push", 503, times=attempts)  # ... and so does every push
    line_app.say(user, WORRY)
    (delivery,) = settle(line_app, user)
    # LINE refused every earlier reply for certain, so the token was never used: the retry replies (free, unlike a
    # push) while the token lasts.
    assert delivery.method == "reply"
    turns = line_app.store.recent_turns(f"line:user:{user}", 10)
    assert [t.role for t in turns] == ["user", "bot"], "the stored answer was reused, not recomputed"


def test_events_accepted_before_a_crash_are_processed_on_start(line_settings, services, fake_line) -> None:
    # What the webhook persisted before the process died (the 200 went out, nothing else happened) ...
    users = [ev.user_id() for _ in range(3)]
    events = [ev.text(u, WORRY, reply_token=fake_line.issue_reply_token(u)) for u in users]
    _, parsed = LineWebhookParser("secret").parse_events(ev.body(*events))
    outcome = accept(services.store, parsed, request_id="before-crash", keyword="#相談")
    assert len(outcome.accepted) == 3
    # ... and one event a crashed worker had claimed (its claim goes stale).
    late = ev.user_id()
    _, parsed = LineWebhookParser("secret").parse_events(
        ev.body(ev.text(late, WORRY, reply_token=fake_line.issue_reply_token(late)))
    )
    accept(services.store, parsed, request_id="claimed-before-crash", keyword="#相談")
    (claimed,) = [e for e in services.store.inbox_claim("line", "dead-worker", limit=10) if late in e.conversation_key]
    settings = line_settings.model_copy(update={"line_inbox_stale_seconds": 1.0})
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        for user in [*users, late]:
            app.wait_for(user, 1)
        app.wait_idle()
    with services.store.engine.connect() as conn:
        statuses = conn.execute(select(inbox.c.status)).scalars().all()
    assert statuses and set(statuses) == {"done"}
    assert claimed.event_id


def test_a_crash_in_the_middle_of_a_reply_does_not_duplicate_it(line_app: LineApp) -> None:
    """The ledger says a reply went out but not how it ended: with the token used, nothing more is sent."""
    user = ev.user_id()
    token = line_app.fake.issue_reply_token(user)
    event = ev.text(user, WORRY, reply_token=token)
    line_app.store.mark_sent(f"line:reply-try:{event['webhookEventId']}")
    line_app.fake.tokens[token].used = True  # that reply did reach the user
    line_app.post(event)
    line_app.wait_idle()
    time.sleep(0.3)
    assert line_app.fake.delivered_to(user) == []
    assert endpoints(line_app.fake) == [("reply", 400)]
    assert line_app.store.was_sent(f"line:sent:{event['webhookEventId']}")

    # Same situation but the reply never got out: the token is still good and the retry delivers it.
    other = ev.user_id()
    event = ev.text(other, WORRY, reply_token=line_app.fake.issue_reply_token(other))
    line_app.store.mark_sent(f"line:reply-try:{event['webhookEventId']}")
    line_app.post(event)
    (delivery,) = settle(line_app, other)
    assert delivery.method == "reply"


def test_a_worker_lost_while_backing_off_after_a_500_leaves_the_answer_to_the_next(
    line_settings, services, fake_line
) -> None:
    """Item 6b: LINE answered the reply with 500 and the worker backs off. Were it killed now, the ledger must not
    say "a reply may be out" (that made the next worker drop the event once the reply window had passed): the mark
    is taken back after a certain refusal (a takeover then replies while the token lasts and pushes after it, as
    test_expired_token_is_never_used_twice shows), and the live worker's retry replies once."""
    settings = line_settings.model_copy(update=line_overrides(fake_line, line_retry_base_seconds=3.0))
    user = ev.user_id()
    event = ev.text(user, WORRY, reply_token=fake_line.issue_reply_token(user))
    try_key = f"line:reply-try:{event['webhookEventId']}"
    fake_line.fail("reply", 500)
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        app.post(event)
        deadline = time.monotonic() + 60
        while ("reply", 500) not in endpoints(fake_line):
            assert time.monotonic() < deadline, "the reply was never tried"
            time.sleep(0.05)
        time.sleep(0.2)  # the refusal is recorded before the backoff starts
        assert not services.store.was_sent(try_key), "a certainly refused reply still counts as possibly delivered"
        (delivery,) = app.wait_for(user, 1)
        assert delivery.method == "reply", "the token was still good: the retry after the backoff replies"
    assert services.store.was_sent(f"line:sent:{event['webhookEventId']}")


def test_shutdown_releases_queued_events_for_the_next_start(line_settings, services, fake_line) -> None:
    user = ev.user_id()
    settings = line_settings.model_copy(update=line_overrides(fake_line, line_worker_concurrency=1))
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        fake_line.fail("reply", None, delay=1.5)
        for text in ["上司とうまくいきません", "もっと詳しく", "次のステップは？"]:
            app.say(user, text)
        app.wait_for(user, 0)
    # Stopped mid-way: nothing lost, nothing sent twice; the next start finishes the rest in order.
    with TestClient(create_app(settings, services)) as client:
        app = LineApp(client, settings, services, fake_line)
        deliveries = app.wait_for(user, 3)
        app.wait_idle()
    time.sleep(0.3)
    assert len(fake_line.delivered_to(user)) == 3
    turns = [t.text for t in services.store.recent_turns(f"line:user:{user}", 20) if t.role == "user"]
    assert turns == ["上司とうまくいきません", "もっと詳しく", "次のステップは？"]
    assert deliveries[2].messages[0]["text"].startswith("次に取り組む")
