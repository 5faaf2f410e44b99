"""The sender alone, through the real SDK against the fake LINE server: what each failure means."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from conftest import ACCESS_TOKEN
from fake_line_api import FakeLine
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

from bot.channels.line.sender import InFlight, LineSender, Outcome

TEXT = [{"type": "text", "text": "こんにちは"}]


@pytest.fixture
async def sender(fake_line: FakeLine) -> AsyncIterator[LineSender]:
    client = AsyncApiClient(Configuration(host=fake_line.url, access_token=ACCESS_TOKEN))
    try:
        yield LineSender(AsyncMessagingApi(client), timeout=1.0, attempts=3, base_delay=0.01)
    finally:
        await client.close()


async def test_reply_outcomes(sender: LineSender, fake_line: FakeLine) -> None:
    token = fake_line.issue_reply_token("U1")
    assert (await sender.reply(token, TEXT)).outcome == Outcome.SENT
    assert (await sender.reply(token, TEXT)).outcome == Outcome.TOKEN_INVALID, "single use"
    fake_line.fail("reply", 500, times=3)
    assert (await sender.reply(fake_line.issue_reply_token("U1"), TEXT)).outcome == Outcome.UNAVAILABLE
    fake_line.fail("reply", None, respond_after=1.5)  # delivered, but the answer comes after our timeout
    assert (await sender.reply(fake_line.issue_reply_token("U1"), TEXT)).outcome == Outcome.PROBABLY_SENT
    bad = [{"type": "text", "text": ""}]  # LINE rejects an empty text: no retry
    result = await sender.reply(fake_line.issue_reply_token("U1"), bad)
    assert result.outcome == Outcome.REJECTED and result.status == 400 and result.attempts == 1
    fake_line.problems.clear()  # that rejection was the point of this test
    assert (await sender.reply("t", TEXT * 6)).outcome == Outcome.REJECTED, "the SDK's own check, never sent"
    assert len(fake_line.deliveries) == 2


async def test_push_outcomes(sender: LineSender, fake_line: FakeLine) -> None:
    key = str(uuid.uuid4())
    fake_line.fail("push", 429)
    result = await sender.push("U1", TEXT, key)
    assert result.outcome == Outcome.SENT and result.attempts == 2
    assert (await sender.push("U1", TEXT, key)).outcome == Outcome.DUPLICATE, "409: the key was accepted before"
    assert len(fake_line.deliveries) == 1
    fake_line.fail("push", None, respond_after=1.5)
    assert (await sender.push("U2", TEXT, str(uuid.uuid4()))).outcome == Outcome.DUPLICATE
    assert len(fake_line.deliveries) == 2


async def test_loading_animation_is_best_effort(sender: LineSender, fake_line: FakeLine) -> None:
    assert await sender.show_loading("U1", 17) is True
    assert fake_line.loadings == [{"chatId": "U1", "loadingSeconds": 15}]
    fake_line.fail("loading", 500)
    assert await sender.show_loading("U1") is False


async def test_unreachable_line_is_unavailable_not_unknown() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = AsyncApiClient(Configuration(host=f"http://127.0.0.1:{port}", access_token=ACCESS_TOKEN))
    try:
        sender = LineSender(AsyncMessagingApi(client), timeout=1.0, attempts=2, base_delay=0.01)
        assert (await sender.reply("t", TEXT)).outcome == Outcome.UNAVAILABLE
    finally:
        await client.close()


class Marks:
    """What a handler's InFlight would write to the ledger, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def in_flight(self) -> InFlight:
        async def starting() -> None:
            self.log.append("mark")

        async def refused() -> None:
            self.log.append("unmark")

        return InFlight(starting, refused)


async def test_in_flight_mark_is_taken_back_after_each_certain_refusal(sender: LineSender, fake_line: FakeLine) -> None:
    """LINE's 500 means nothing was sent: while the sender backs off, no "a reply may be out" mark is left for a
    worker that takes the event over, so it still answers (item 6b: killed during the backoff, nothing was lost)."""
    marks = Marks()
    fake_line.fail("reply", 500, times=2)
    result = await sender.reply(fake_line.issue_reply_token("U1"), TEXT, in_flight=marks.in_flight())
    assert result.outcome == Outcome.SENT
    assert marks.log == ["mark", "unmark", "mark", "unmark", "mark"]


async def test_in_flight_mark_stays_once_a_reply_may_have_gone_out(sender: LineSender, fake_line: FakeLine) -> None:
    marks = Marks()
    fake_line.fail("reply", None, respond_after=1.5)  # delivered, but our timeout fires first
    fake_line.fail("reply", 500)
    result = await sender.reply(fake_line.issue_reply_token("U1"), TEXT, in_flight=marks.in_flight())
    assert result.outcome == Outcome.PROBABLY_SENT
    assert marks.log == ["mark"], "after an unseen outcome the mark must stay, or a takeover would push a copy"
    assert len(fake_line.deliveries) == 1
