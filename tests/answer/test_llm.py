"""The optional LLM rewrite: grounded by ids, labour-law untouched, every failure falls back to the grounded answer.

Unit tests use LangChain's fake chat models; the rest drive the real `langchain-openai` client against
`fake_openai.py`, a local OpenAI-compatible server. Answers are built by hand: the rewriter needs no index.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from bot.answer.llm import LLMRewriter
from bot.answer.model import ActionGroup, AnalysisPoint, Answer, Escalation, Source, StrategyPoint
from bot.answer.prompts import load_replies
from bot.answer.render import render_text
from bot.config import Settings
from bot.retrieval.retriever import ArticleHit, RetrievalResult

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
REPLIES = load_replies(PROMPTS)
MESSAGE = "営業です。退職した上司の顧客を2週間の引き継ぎで任されましたが、締切を落としてしまいました"
TIMEOUT = 0.6

HITS = [
    ArticleHit("handover-01", "引き継ぎ不足で顧客対応に悩む", "handover", 0.82),
    ArticleHit("skill-gap-01", "経験不足のまま任された", "skill-gap", 0.71),
    ArticleHit("overwork-01", "残業が続いてつらい", "overwork", 0.64),
]
RETRIEVAL = RetrievalResult(HITS, 0.9)


def grounded(topic: str = "handover", *, cited: int = 1, hits: list[ArticleHit] | None = None) -> Answer:
    hits = hits or HITS
    answer = Answer(
        kind="advice",
        topic=topic,
        sources=[Source(article_id=h.article_id, title=h.title, topic=h.topic, score=h.score) for h in hits],
        empathy="営業として急に顧客を任され、不安な日々ですよね。",
        situation_analysis=[
            AnalysisPoint(title="不十分な引き継ぎ期間", detail="2週間では顧客ごとの経緯まで把握しきれません。"),
            AnalysisPoint(title="上司の不在", detail="判断に迷ったとき相談できる相手がいません。"),
        ],
        action_plan=[
            ActionGroup(
                title="情報収集と整理",
                steps=["顧客リスト：取引履歴と締切を一覧にする", "社内記録：過去のメールや議事録を読み返す"],
            ),
            ActionGroup(title="顧客とのコミュニケーション", steps=["挨拶：担当交代を自分から伝える"]),
        ],
        career_strategy=[StrategyPoint(title="自己分析", detail="今回の経験で伸びた力を書き出す。")],
        follow_ups=["もっと詳しく", "成功事例を教えて", "別の悩みを相談"],
        cited=[h.article_id for h in hits[:cited]],
    )
    answer.text = render_text(answer, REPLIES)
    return answer


def good_reply(**overrides: Any) -> str:
    data: dict[str, Any] = {
        "empathy": "入札の締切を落としてしまって、悔しくて眠れない夜かもしれません。",
        "situation_analysis": [
            {
                "source_ids": ["A1"],
                "title": "引き継ぎが短すぎた",
                "detail": "2週間では顧客ごとの経緯はつかみきれません。",
            },
            {
                "source_ids": ["A2"],
                "title": "頼れる上司がいない",
                "detail": "迷ったときに相談できる人がいない状態です。",
            },
        ],
        "action_plan": [
            {
                "source_ids": ["P1"],
                "title": "まず情報を集めて整理する",
                "steps": [
                    {"source_ids": ["P1.1"], "text": "顧客ごとの取引履歴と締切を一覧にしましょう"},
                    {"source_ids": ["P1.2"], "text": "過去のメールや議事録を読み返しましょう"},
                ],
            },
            {
                "source_ids": ["P2"],
                "title": "顧客と話す",
                "steps": [{"source_ids": ["P2.1"], "text": "担当が代わったことを自分から伝えましょう"}],
            },
        ],
        "career_strategy": [
            {"source_ids": ["S1"], "title": "自己分析", "detail": "この経験で伸びた力を書き出しましょう。"}
        ],
    }
    data.update(overrides)
    return json.dumps(data, ensure_ascii=False)


def rewriter_for(*replies: str) -> LLMRewriter:
    return LLMRewriter(FakeListChatModel(responses=list(replies)), PROMPTS, timeout=TIMEOUT)


def assert_unchanged_contract(new: Answer, old: Answer) -> None:
    assert (new.kind, new.topic, new.sources, new.follow_ups, new.escalation) == (
        old.kind,
        old.topic,
        old.sources,
        old.follow_ups,
        old.escalation,
    )


class CountingModel(BaseChatModel):
    """Answers with `reply` (after `delay` seconds) and counts calls: shows whether the model was asked at all."""

    reply: str = ""
    delay: float = 0.0
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "counting-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        time.sleep(self.delay)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])


class BrokenModel(CountingModel):
    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise ConnectionError("boom")


# ----- unit: grounded rewrite ----------------------------------------------------------------------------------------
def test_good_json_rewrites_the_parts_and_keeps_the_contract() -> None:
    old = grounded()
    new = rewriter_for(good_reply()).rewrite(MESSAGE, old, RETRIEVAL)
    assert_unchanged_contract(new, old)
    assert new.empathy.startswith("入札の締切")
    assert [p.title for p in new.situation_analysis] == ["引き継ぎが短すぎた", "頼れる上司がいない"]
    assert [g.title for g in new.action_plan] == ["まず情報を集めて整理する", "顧客と話す"]
    assert new.action_plan[0].steps[0] == "顧客ごとの取引履歴と締切を一覧にしましょう"
    assert new.career_strategy[0].detail == "この経験で伸びた力を書き出しましょう。"
    # The text is re-rendered from the rewritten parts, with the same headings and the cited article.
    assert new.text == render_text(new, REPLIES, [HITS[0].title])
    assert "頼れる上司がいない" in new.text and "■ アクションプラン" in new.text
    assert old.empathy.startswith("営業として")  # the grounded answer itself is not mutated


def test_the_prompt_lists_every_item_with_its_id() -> None:
    rewriter = rewriter_for(good_reply())
    system, user = rewriter.messages(MESSAGE, grounded())
    assert "source_ids" in str(system.content)
    for line in (
        "[A1] 不十分な引き継ぎ期間：",
        "[P1] 情報収集と整理",
        "[P1.2] 社内記録：",
        "[P2.1] 挨拶：",
        "[S1] 自己分析：",
    ):
        assert line in str(user.content)
    assert MESSAGE in str(user.content)


def test_items_citing_unknown_or_no_ids_are_dropped() -> None:
    reply = good_reply(
        situation_analysis=[
            {"source_ids": ["A2"], "title": "頼れる上司がいない", "detail": "相談できる人がいない状態です。"},
            {"source_ids": ["A9"], "title": "作り話", "detail": "記事にない要因です。"},
            {"title": "出典なし", "detail": "どこにも基づかない要因です。"},
            {"source_ids": ["P1.1"], "title": "別の部の項目", "detail": "アクションの項目を分析に引用しています。"},
        ],
        action_plan=[
            {
                "source_ids": ["P1"],
                "title": "情報を集める",
                "steps": [
                    {"source_ids": ["P1.1"], "text": "取引履歴と締切を一覧にしましょう"},
                    {"source_ids": ["P7.1"], "text": "転職サイトに登録しましょう"},
                ],
            },
            {"source_ids": ["P9"], "title": "記事にないグループ", "steps": [{"source_ids": ["P2.1"], "text": "挨拶"}]},
        ],
    )
    new = rewriter_for(reply).rewrite(MESSAGE, grounded(), RETRIEVAL)
    assert [p.title for p in new.situation_analysis] == ["頼れる上司がいない"]
    assert [(g.title, g.steps) for g in new.action_plan] == [("情報を集める", ["取引履歴と締切を一覧にしましょう"])]
    assert "転職サイト" not in new.text and "作り話" not in new.text and "出典なし" not in new.text


def test_a_part_left_empty_falls_back_to_the_grounded_part() -> None:
    old = grounded()
    reply = good_reply(situation_analysis=[{"source_ids": ["X1"], "title": "?", "detail": "?"}], career_strategy=[])
    new = rewriter_for(reply).rewrite(MESSAGE, old, RETRIEVAL)
    assert new.situation_analysis == old.situation_analysis
    assert new.career_strategy == old.career_strategy
    assert new.action_plan[0].title == "まず情報を集めて整理する"  # the part that was grounded is still rewritten


def test_an_item_much_longer_than_what_it_cites_is_dropped_as_added_content() -> None:
    padded = "顧客リストを作りましょう。" + "さらに、転職エージェントに登録して年収交渉の準備もしておきましょう。" * 4
    reply = good_reply(
        action_plan=[{"source_ids": ["P1"], "title": "整理", "steps": [{"source_ids": ["P1.1"], "text": padded}]}]
    )
    old = grounded()
    new = rewriter_for(reply).rewrite(MESSAGE, old, RETRIEVAL)
    assert new.action_plan == old.action_plan
    assert "転職エージェント" not in new.text


def test_lenient_reply_shapes_are_read() -> None:
    # Code fences around the JSON and a single id given as a string are common and harmless.
    reply = (
        "```json\n"
        + good_reply(career_strategy=[{"source_ids": "S1", "title": "自己分析", "detail": "伸びた力を書く"}])
        + "\n```"
    )
    new = rewriter_for(reply).rewrite(MESSAGE, grounded(), RETRIEVAL)
    assert new.career_strategy[0].detail == "伸びた力を書く"


def test_an_overlong_opening_keeps_the_grounded_one() -> None:
    old = grounded()
    new = rewriter_for(good_reply(empathy="つらいですね。" * 40)).rewrite(MESSAGE, old, RETRIEVAL)
    assert new.empathy == old.empathy
    assert new.situation_analysis[0].title == "引き継ぎが短すぎた"


def test_two_cited_articles_stay_cited_in_the_text() -> None:
    old = grounded(cited=2)
    new = rewriter_for(good_reply()).rewrite(MESSAGE, old, RETRIEVAL)
    assert new.text == render_text(new, REPLIES, [HITS[0].title, HITS[1].title])


# ----- unit: what is never rewritten --------------------------------------------------------------------------------
LABOUR_HITS = [ArticleHit("layoff-01", "解雇を言い渡された", "layoff", 0.8), *HITS[1:]]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (grounded("labor-rights"), MESSAGE),
        (grounded("layoff", hits=LABOUR_HITS), MESSAGE),
        (
            grounded().model_copy(
                update={"kind": "escalation", "escalation": Escalation(kind="labor-law", message="…")}
            ),
            MESSAGE,
        ),
        # A mixed worry whose second cited article is labour law.
        (grounded(cited=2, hits=[HITS[0], ArticleHit("labor-01", "残業代が出ない", "labor-rights", 0.8)]), MESSAGE),
        # The engine attaches a labour-law escalation after the advice is built: the message itself is checked.
        (grounded("overwork"), "残業代が一円も払われていないし、タイムカードを勝手に書き換えられている"),
        (grounded().model_copy(update={"kind": "clarify"}), MESSAGE),
    ],
    ids=["labor-rights", "layoff", "escalation", "mixed-with-labour", "labour-message", "clarify"],
)
def test_labour_law_and_non_advice_answers_are_returned_as_written(answer: Answer, message: str) -> None:
    model = CountingModel(reply=good_reply())
    rewriter = LLMRewriter(model, PROMPTS, timeout=TIMEOUT)
    assert rewriter.rewrite(message, answer, RETRIEVAL) is answer
    assert model.calls == 0


def test_labour_law_answers_stream_as_one_final_answer() -> None:
    answer = grounded("labor-rights")
    rewriter = LLMRewriter(GenericFakeChatModel(messages=iter([good_reply()])), PROMPTS, timeout=TIMEOUT)
    assert list(rewriter.stream_rewrite(MESSAGE, answer, RETRIEVAL)) == [answer]


# ----- unit: failures fall back -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('{"empathy": "つらいですね", "situation_analysis": [{"source_ids": ["A1"], ', "malformed-json"),
        ("申し訳ありませんが、お手伝いできません。", "refusal"),
        ('{"situation_analysis": "A1", "action_plan": 3}', "schema"),
        ("[1, 2, 3]", "schema"),
        ('{"empathy": "", "situation_analysis": [], "action_plan": [], "career_strategy": []}', "empty"),
        ('{"answer": "ここにない形"}', "empty"),
        ('{"empathy": "つらいですね", "situation_analysis": [{"title": "出典なし", "detail": "…"}]}', "empty"),
        ("", "refusal"),
    ],
    ids=["malformed", "refusal", "schema", "not-an-object", "empty", "unknown-keys", "opening-only", "no-content"],
)
def test_bad_replies_fall_back_and_log_the_reason_only(
    reply: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = grounded()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        assert rewriter_for(reply).rewrite(MESSAGE, old, RETRIEVAL) is old
    assert f"reason={reason}" in caplog.text
    assert "営業" not in caplog.text and "つらい" not in caplog.text  # neither the message nor the model's text


def test_a_model_error_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    old = grounded()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        assert LLMRewriter(BrokenModel(), PROMPTS, timeout=TIMEOUT).rewrite(MESSAGE, old, RETRIEVAL) is old
    assert "reason=ConnectionError" in caplog.text and "boom" not in caplog.text


def test_a_hanging_model_is_cut_off_at_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    old = grounded()
    model = CountingModel(reply=good_reply(), delay=5 * TIMEOUT)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        assert LLMRewriter(model, PROMPTS, timeout=TIMEOUT).rewrite(MESSAGE, old, RETRIEVAL) is old
    assert time.monotonic() - started < 3 * TIMEOUT
    assert "reason=timeout" in caplog.text


# ----- unit: streaming -----------------------------------------------------------------------------------------------
def test_stream_yields_the_opening_in_chunks_then_the_answer() -> None:
    old = grounded()
    # GenericFakeChatModel streams its content split on spaces: give the opening a few words.
    reply = good_reply(empathy="入札の 締切を 落としてしまって、 悔しい 夜ですね。")
    rewriter = LLMRewriter(GenericFakeChatModel(messages=iter([reply])), PROMPTS, timeout=TIMEOUT)
    parts = list(rewriter.stream_rewrite(MESSAGE, old, RETRIEVAL))
    chunks, final = [p for p in parts[:-1] if isinstance(p, str)], parts[-1]
    assert len(parts) - 1 == len(chunks) > 1
    assert isinstance(final, Answer)
    assert "".join(chunks) == final.empathy == "入札の 締切を 落としてしまって、 悔しい 夜ですね。"
    assert final.situation_analysis[0].title == "引き継ぎが短すぎた"
    assert_unchanged_contract(final, old)


def test_stream_of_a_bad_reply_ends_with_the_grounded_answer() -> None:
    old = grounded()
    rewriter = LLMRewriter(
        GenericFakeChatModel(messages=iter(['{"empathy": "つらい ですね", "action_plan": [{'])),
        PROMPTS,
        timeout=TIMEOUT,
    )
    parts = list(rewriter.stream_rewrite(MESSAGE, old, RETRIEVAL))
    assert parts[-1] is old
    assert "".join(p for p in parts[:-1] if isinstance(p, str)) == "つらい ですね"  # the preview the client replaces


# ----- the real client against a local OpenAI-compatible server ------------------------------------------------------
# The happy paths stream a whole reply through the fake; they get room so a busy CI machine does not make them flaky.
ROOMY = 10.0


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=good_reply(), slow_seconds=10 * TIMEOUT) as fake:
        yield fake


def client(server: FakeOpenAI, mode: str, *, base_url: str | None = None, timeout: float = TIMEOUT) -> LLMRewriter:
    settings = Settings(
        LLM_BASE_URL=base_url or server.base_url, LLM_MODEL=mode, LLM_TIMEOUT=timeout, PROMPTS_DIR=PROMPTS
    )
    assert settings.llm_enabled
    return LLMRewriter.from_settings(settings)


def test_openai_client_rewrites(server: FakeOpenAI) -> None:
    old = grounded()
    server.requests.clear()
    new = client(server, "normal", timeout=ROOMY).rewrite(MESSAGE, old, RETRIEVAL)
    assert new.empathy.startswith("入札の締切") and new.action_plan[1].title == "顧客と話す"
    assert_unchanged_contract(new, old)
    [request] = server.requests
    assert request["temperature"] == 0.3 and not request.get("stream")
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "[P1.1]" in request["messages"][1]["content"]


def test_openai_client_streams_the_opening(server: FakeOpenAI) -> None:
    server.requests.clear()
    parts = list(client(server, "normal", timeout=ROOMY).stream_rewrite(MESSAGE, grounded(), RETRIEVAL))
    final = parts[-1]
    assert isinstance(final, Answer) and final.action_plan[0].title == "まず情報を集めて整理する"
    chunks = [p for p in parts[:-1] if isinstance(p, str)]
    assert len(chunks) > 3 and "".join(chunks) == final.empathy
    assert server.requests[-1]["stream"] is True


FAILURES = [
    ("slow", "timeout"),
    ("trickle", "timeout"),  # every read arrives in time; only the bound on the whole call stops it
    ("malformed", "malformed-json"),
    ("error", "http-500"),
    ("refusal", "refusal"),
    ("refusal-field", "refusal"),
    ("schema", "schema"),
]


@pytest.mark.parametrize(("mode", "reason"), FAILURES, ids=[m for m, _ in FAILURES])
def test_openai_client_failures_fall_back(
    server: FakeOpenAI, mode: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = grounded()
    server.requests.clear()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        assert client(server, mode).rewrite(MESSAGE, old, RETRIEVAL) is old
    assert time.monotonic() - started < 3 * TIMEOUT
    assert f"reason={reason}" in caplog.text
    assert len(server.requests) == 1  # max_retries=0: a failure is not retried into a longer wait


@pytest.mark.parametrize(("mode", "reason"), FAILURES, ids=[m for m, _ in FAILURES])
def test_openai_client_stream_failures_end_with_the_grounded_answer(
    server: FakeOpenAI, mode: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = grounded()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        parts = list(client(server, mode).stream_rewrite(MESSAGE, old, RETRIEVAL))
    assert parts[-1] is old
    assert time.monotonic() - started < 3 * TIMEOUT
    assert f"reason={reason}" in caplog.text


def test_openai_client_connection_refused_falls_back(server: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and has nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    old = grounded()
    with caplog.at_level(logging.WARNING, logger="bot.answer.llm"):
        rewriter = client(server, "normal", base_url=f"http://127.0.0.1:{port}/v1")
        assert rewriter.rewrite(MESSAGE, old, RETRIEVAL) is old
    assert "reason=connection" in caplog.text


def test_concurrent_rewrites_do_not_mix_up_answers(server: FakeOpenAI) -> None:
    rewriter = client(server, "normal", timeout=ROOMY)
    answers = [grounded(), grounded("skill-gap")]
    results: list[Answer] = []
    threads = [
        threading.Thread(target=lambda a=a: results.append(rewriter.rewrite(MESSAGE, a, RETRIEVAL))) for a in answers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.topic or "" for r in results) == ["handover", "skill-gap"]
    assert all(r.empathy.startswith("入札の締切") for r in results)
