"""The streaming endpoint (Server-Sent Events): sections without an LLM, tokens with one, heartbeats, errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from webhelpers import Visitor, parse_sse

from bot.answer.llm import LLMRewriter
from bot.api.main import create_app
from bot.channels.web.streaming import event_stream

HANDOVER = "営業です。退職した上司の得意先を2週間の引き継ぎで任されたが、顧客に不信感を持たれている"


def test_the_stream_sends_the_answer_section_by_section(make_client):
    client = make_client(web_heartbeat_seconds=0.01)
    visitor = Visitor(client)
    cid = visitor.start()
    response = visitor.stream(cid, HANDOVER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["cache-control"] == "no-store, no-transform"
    events = parse_sse(response.text)
    assert events[0] == ("accepted", {"conversation_id": cid})
    assert ("comment", "heartbeat") in events  # the engine took longer than 10 ms: proxies see traffic
    sections = [data["name"] for event, data in events if event == "section"]
    assert sections == ["empathy", "situation_analysis", "action_plan", "career_strategy", "sources", "follow_ups"]
    assert events[-1][0] == "done"
    done = events[-1][1]
    assert done["conversation_id"] == cid and done["turn_id"] > 0 and done["conversation_deleted"] is False
    by_name = {data["name"]: data["data"] for event, data in events if event == "section"}
    for name, value in by_name.items():
        assert done["answer"][name] == value  # the sections are the answer, in pieces
    assert done["answer"]["topic"] == "handover"
    # The streamed turn is stored like any other.
    history = visitor.history(cid).json()["messages"]
    assert history[-1]["id"] == done["turn_id"] and history[-1]["answer"] == done["answer"]


def test_help_lines_come_first_in_a_crisis_stream(visitor):
    cid = visitor.start()
    events = parse_sse(visitor.stream(cid, "もう消えてしまいたい。死にたい").text)
    sections = [data["name"] for event, data in events if event == "section"]
    assert sections[0] == "escalation"
    assert events[-1][1]["answer"]["kind"] == "escalation"


def test_heartbeats_are_comments_and_only_while_waiting(make_client):
    client = make_client(web_heartbeat_seconds=30)
    visitor = Visitor(client)
    events = parse_sse(visitor.stream(visitor.start(), "転職するか迷っている").text)
    assert not [e for e in events if e[0] == "comment"]
    assert [e[0] for e in events if e[0] != "section"] == ["accepted", "done"]


async def test_a_failed_turn_ends_the_stream_with_an_error_event():
    async def failing_turn(on_token) -> dict:
        await asyncio.sleep(0.05)
        raise RuntimeError("store went away")

    chunks = [
        chunk
        async for chunk in event_stream(
            conversation_id="web:x", run_turn=failing_turn, heartbeat=0.01, background=set()
        )
    ]
    events = parse_sse("".join(chunks))
    assert events[0][0] == "accepted" and ("comment", "heartbeat") in events
    assert events[-1][0] == "error"
    assert events[-1][1]["error"] == "internal_error" and "もう一度" in events[-1][1]["message"]
    assert "store went away" not in "".join(chunks)  # no internals leak to the visitor


LLM_EMPATHY = "急な 引き継ぎで 得意先を 任され、 本当に 大変な 毎日ですね。 一緒に 整理しましょう。"


def llm_reply() -> str:
    return json.dumps(
        {
            "empathy": LLM_EMPATHY,
            "situation_analysis": [
                {"title": "前任者の不在", "detail": "聞ける人がいない状態です。", "source_ids": ["A1"]}
            ],
            "action_plan": [
                {
                    "title": "情報を集める",
                    "source_ids": ["P1"],
                    "steps": [{"text": "期限を一つにまとめる", "source_ids": ["P1.1"]}],
                }
            ],
            "career_strategy": [{"title": "自己分析", "detail": "できたことを書き出します。", "source_ids": ["S1"]}],
        },
        ensure_ascii=False,
    )


@pytest.fixture
def llm_services(app_settings, searcher):
    from bot.dialogue.factory import build_engine

    model = GenericFakeChatModel(messages=iter([AIMessage(content=llm_reply())]))
    rewriter = LLMRewriter(model, app_settings.prompts_dir, timeout=10)
    built = build_engine(app_settings, searcher=searcher, rewriter=rewriter)
    yield built
    built.store.close()


def test_with_an_llm_the_stream_sends_its_tokens_and_stores_the_rewrite(app_settings, llm_services):
    with TestClient(create_app(app_settings, services=llm_services)) as client:
        visitor = Visitor(client)
        cid = visitor.start()
        events = parse_sse(visitor.stream(cid, HANDOVER).text)
        tokens = [data["text"] for event, data in events if event == "token"]
        assert len(tokens) > 3  # the opening arrived piece by piece
        done = events[-1]
        assert done[0] == "done"
        answer = done[1]["answer"]
        assert "".join(tokens) == answer["empathy"] == LLM_EMPATHY.strip()
        assert answer["situation_analysis"][0]["detail"] == "聞ける人がいない状態です。"
        first_token = next(i for i, e in enumerate(events) if e[0] == "token")
        first_section = next(i for i, e in enumerate(events) if e[0] == "section")
        assert first_token < first_section
        stored = visitor.history(cid).json()["messages"][-1]["answer"]
        assert stored["empathy"] == LLM_EMPATHY.strip()  # the engine stored what was streamed


def test_without_a_stream_listening_the_answer_is_the_same_rewrite(app_settings, llm_services):
    # LINE and the CLI call the engine without a token callback: the same rewritten answer, just not previewed.
    with TestClient(create_app(app_settings, services=llm_services)):
        reply = llm_services.engine.handle("line:U1", HANDOVER)
    assert reply.answer.empathy == LLM_EMPATHY.strip()
