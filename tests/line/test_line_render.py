"""Rendering: real engine answers and adversarial ones become LINE messages that the spec and every limit accept."""

from __future__ import annotations

import json

import pytest
from fake_line_api import graphemes, limit_problems, schemas, utf16
from linebot.v3.messaging import ReplyMessageRequest

from bot.answer.model import ActionGroup, AnalysisPoint, Answer, Escalation, HelpResource, Source, StrategyPoint
from bot.channels.line import postback
from bot.channels.line.limits import (
    MAX_POSTBACK_DATA,
    split_text,
    truncate_graphemes,
    truncate_utf16,
)
from bot.channels.line.render import SOFT_TEXT, RenderOptions, render_answer, render_text, step_label

EMOJI = "🙂"  # two UTF-16 units
FAMILY = "👨‍👩‍👧"  # one grapheme of five code points


def check(messages: list[dict]) -> None:
    """What the fake LINE server checks: the spec (discriminators resolved) plus the limits it does not encode."""
    body = {"replyToken": "t", "messages": messages}
    problems = schemas().errors("ReplyMessageRequest", body) + limit_problems(body)
    assert problems == [], problems
    # The SDK accepts it and serialises it back without dropping anything.
    round_trip = ReplyMessageRequest.from_dict(body).to_dict()
    round_trip.pop("notificationDisabled", None)
    assert json.dumps(round_trip, sort_keys=True) == json.dumps(body, sort_keys=True)


# ----- text limits -------------------------------------------------------------------------------------------------------


def test_split_text_respects_utf16_and_sentences() -> None:
    sentence = f"今日は上司に相談してみます{EMOJI}。"
    text = sentence * 800  # ~12,800 UTF-16 units
    pieces = split_text(text, 5000)
    assert len(pieces) == 3
    assert all(utf16(p) <= 5000 for p in pieces)
    assert all(p.endswith("。") for p in pieces[:-1]), "cut at a sentence end"
    assert "".join(pieces) == text
    # no lone surrogate anywhere: every piece encodes cleanly
    for piece in pieces:
        piece.encode("utf-16-le")


def test_split_text_never_cuts_mid_character() -> None:
    text = (EMOJI + FAMILY + "か\u3099") * 3000  # no break marks at all: a hard cut is needed
    pieces = split_text(text, 5000)
    assert all(utf16(p) <= 5000 for p in pieces)
    assert "".join(pieces) == text
    for piece in pieces[1:]:
        assert not piece.startswith(("\u200d", "\u3099")), "a cut split a grapheme cluster"
    assert sum(graphemes(p) for p in pieces) == graphemes(text), "no grapheme cluster spans a cut"


def test_soft_split_prefers_paragraphs() -> None:
    paragraph = "あ" * 400 + "。"
    text = "\n\n".join([paragraph] * 5)
    pieces = split_text(text, 5000, soft=1000)
    assert all(utf16(p) <= 1000 for p in pieces)
    assert [p.count("。") for p in pieces] == [2, 2, 1]


def test_truncation_helpers() -> None:
    assert truncate_graphemes("もっと詳しく", 20) == "もっと詳しく"
    label = truncate_graphemes("あ" * 30, 20)
    assert graphemes(label) <= 20 and label.endswith("…")
    assert graphemes(truncate_graphemes(FAMILY * 30, 20)) <= 20
    assert utf16(truncate_utf16(EMOJI * 400, 301)) <= 301


def test_postback_data_is_bounded_and_round_trips() -> None:
    for text in ["もっと詳しく", "あ" * 500, EMOJI * 500, '"quotes" and \\ backslashes ' * 40]:
        data = postback.encode_say(text)
        assert utf16(data) <= MAX_POSTBACK_DATA
        decoded = postback.decode(data)
        assert decoded is not None and decoded.action == "say" and text.startswith(decoded.value.rstrip())
    data = postback.encode_done("顧客引き継ぎシート")
    assert postback.decode(data) == postback.Postback("done", "顧客引き継ぎシート")
    # Not ours, or tampered with: ignored.
    for foreign in [
        "storeId=12345",
        "richmenu-changed-to-b",
        "{}",
        '{"v":2,"a":"say","t":"x"}',
        '{"v":1,"a":"rm"}',
        '{"v":1,"a":"say","t":""}',
        "[1]",
        "{" + "x" * 400,
        None,
        "",
    ]:
        assert postback.decode(foreign) is None


# ----- real answers --------------------------------------------------------------------------------------------------------

CONVERSATION = [
    "上司が退職して顧客を引き継いだけど、引き継ぎが2週間しかなくて不安です",
    "もっと詳しく",
    "次のステップは？",
    "成功事例を教えて",
    "専門家に相談したい",
    "別の悩みを相談",
    "仕事がつらい",
    "残業代が払われない",
    "死にたい",
    "ありがとう",
]


def test_every_answer_of_a_conversation_renders_within_limits(engine) -> None:
    kinds = set()
    for text in CONVERSATION:
        answer = engine.handle("line:user:render", text).answer
        kinds.add(answer.kind)
        messages = render_answer(answer, engine.replies)
        assert 1 <= len(messages) <= 5
        check(messages)
        quick = messages[-1].get("quickReply", {}).get("items", [])
        assert len(quick) <= 13
        assert all("quickReply" not in m for m in messages[:-1]), "quick replies only on the last message"
    assert kinds == {"advice", "clarify", "escalation"}


def test_advice_is_a_carousel_of_the_three_parts_with_sources(engine) -> None:
    answer = engine.handle("line:user:advice", CONVERSATION[0]).answer
    assert answer.kind == "advice"
    messages = render_answer(answer, engine.replies)
    assert [m["type"] for m in messages] == ["text", "flex"]
    assert messages[0]["text"] == answer.empathy
    carousel = messages[1]["contents"]
    assert carousel["type"] == "carousel"
    kickers = [b["header"]["contents"][0]["text"] for b in carousel["contents"]]
    assert kickers[0] == "現状分析"
    assert kickers[-2] == "キャリア戦略"
    assert kickers[-1] == "出典"
    assert all(k.startswith("アクションプラン") for k in kickers[1:-2])
    assert len(kickers) - 3 == len(answer.action_plan), "one card per action group"
    assert messages[1]["altText"].startswith("キャリア相談の回答")
    sources = json.dumps(carousel["contents"][-1], ensure_ascii=False)
    assert answer.sources[0].title in sources and "AI" in sources
    # The step checklist: every step has a ✓ button whose postback names the step.
    buttons = [
        c
        for b in carousel["contents"][1:-2]
        for box in b["body"]["contents"]
        for c in box["contents"]
        if c["type"] == "button"
    ]
    assert len(buttons) == sum(len(g.steps) for g in answer.action_plan)
    assert all(postback.decode(b["action"]["data"]).action == "done" for b in buttons)
    # Follow-ups as quick replies (postbacks the engine understands as text).
    items = messages[-1]["quickReply"]["items"]
    assert [postback.decode(i["action"]["data"]).value for i in items] == answer.follow_ups


def test_a_small_phone_reads_it_in_screens_not_a_wall(engine) -> None:
    for text in CONVERSATION[:3]:
        answer = engine.handle("line:user:phone", text).answer
        messages = render_answer(answer, engine.replies)
        for message in messages:
            if message["type"] == "text":
                assert utf16(message["text"]) <= SOFT_TEXT
            else:
                bubbles = message["contents"].get("contents", [message["contents"]])
                for bubble in bubbles:
                    words = "".join(t["text"] for t in _texts(bubble["body"]))
                    assert len(words) <= 1400, "a card is about two phone screens at most"
                    assert bubble["size"] == "mega"
                    assert all(t.get("wrap") for t in _texts(bubble)), "long lines wrap instead of being cut"


def _texts(node):
    if isinstance(node, dict):
        if node.get("type") == "text":
            yield node
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)


def test_crisis_answer_is_plain_text_with_help_lines_to_call(engine) -> None:
    answer = engine.handle("line:user:crisis", "もう死にたい").answer
    assert answer.kind == "escalation"
    messages = render_answer(answer, engine.replies)
    assert [m["type"] for m in messages] == ["text"], "no cards, no advice: the calm message and help lines"
    text = messages[0]["text"]
    assert answer.escalation.message.splitlines()[0] in text
    for resource in answer.escalation.resources:
        assert resource.contact in text
    calls = [i["action"]["uri"] for i in messages[-1]["quickReply"]["items"] if i["action"]["type"] == "uri"]
    assert "tel:0120783556" in calls
    check(messages)


def test_labour_law_escalation_leads_with_help_then_the_article(engine) -> None:
    answer = engine.handle("line:user:labour", "残業代が払われない").answer
    assert answer.kind == "escalation" and answer.situation_analysis
    messages = render_answer(answer, engine.replies)
    assert messages[0]["type"] == "text" and answer.escalation.message.splitlines()[0] in messages[0]["text"]
    assert messages[-1]["type"] == "flex"
    check(messages)


def test_adversarial_answer_still_fits_every_limit() -> None:
    long = ("とても長い説明です" + EMOJI + "。") * 300
    answer = Answer(
        kind="advice",
        topic="handover",
        sources=[Source(article_id=f"a{i}", title="記事" * 60, topic="handover", score=1.0) for i in range(8)],
        empathy=long * 3,
        situation_analysis=[AnalysisPoint(title="要因" * 30, detail=long) for _ in range(6)],
        action_plan=[
            ActionGroup(title=f"グループ{i}" * 10, steps=[f"ステップ{j}：{long}" for j in range(6)]) for i in range(15)
        ],
        career_strategy=[StrategyPoint(title="戦略", detail=long) for _ in range(5)],
        follow_ups=[f"フォローアップの質問その{i}はとても長いラベルです{EMOJI}" for i in range(20)],
        text=long,
    )
    messages = render_answer(
        answer,
        {
            "headings": {
                "analysis": "現状分析",
                "action_plan": "アクションプラン",
                "strategy": "キャリア戦略",
                "sources": "参考にした記事",
            },
            "clarify": {"empty": "?"},
        },
        RenderOptions(quote_token="q"),
    )
    check(messages)
    carousel = next(m for m in messages if m["type"] == "flex")["contents"]
    assert len(carousel["contents"]) <= 12
    assert len(messages[-1]["quickReply"]["items"]) == 13


def test_escalation_resources_without_a_phone_get_a_link_or_nothing() -> None:
    escalation = Escalation(
        kind="labor-law",
        message="まず相談窓口へ。",
        resources=[
            HelpResource(
                name="総合労働相談コーナー", contact="各都道府県労働局", hours="平日", url="https://www.mhlw.go.jp/"
            ),
            HelpResource(name="労働条件相談ほっとライン", contact="0120-811-610", hours="平日夜", url=""),
            HelpResource(name="窓口", contact="窓口で", hours="", url="ftp://example"),
        ],
    )
    messages = render_answer(
        Answer(kind="escalation", escalation=escalation, text="まず相談窓口へ。"),
        {"headings": {}, "clarify": {"empty": "?"}},
    )
    uris = [i["action"]["uri"] for i in messages[-1]["quickReply"]["items"]]
    assert uris == ["https://www.mhlw.go.jp/", "tel:0120811610"]
    check(messages)


@pytest.mark.parametrize("text", ["", "x", "あ" * 12000])
def test_plain_texts(text: str) -> None:
    messages = render_text(text or " ", quick_replies=["次のステップは？"] * 3)
    check(messages)
    assert len(messages[-1]["quickReply"]["items"]) == 1, "duplicate buttons are dropped"


def test_step_labels() -> None:
    assert step_label("顧客引き継ぎシート：得意先ごとに1行で…") == "顧客引き継ぎシート"
    assert (
        step_label("まず深呼吸して、今日やることを三つだけ書き出します。")
        == "まず深呼吸して、今日やることを三つだけ書き出します。"
    )
    assert len(step_label("あ" * 100)) <= 40


def test_a_direct_answer_opens_the_line_reply(engine_for_render=None) -> None:
    from pathlib import Path

    from bot.answer.model import Answer, DirectAnswer
    from bot.answer.prompts import load_replies
    from bot.channels.line.render import render_answer

    replies = load_replies(Path(__file__).resolve().parents[2] / "prompts")
    answer = Answer(
        kind="advice",
        empathy="「退職って何か月前に言えばいい」というご質問ですね。",
        direct_answer=DirectAnswer(
            question="退職って何か月前に言えばいい？", answer="目安は就業規則の申し出期限です。"
        ),
        situation_analysis=[AnalysisPoint(title="申し出の期限", detail="就業規則で決まっていることが多いです。")],
        follow_ups=["もっと詳しく"],
    )
    first = render_answer(answer, replies)[0]
    assert first["type"] == "text" and "Q. 退職って何か月前に言えばいい？" in first["text"]
    assert "A. 目安は就業規則の申し出期限です。" in first["text"]


def test_a_labour_answer_shows_what_the_law_says_in_its_own_bubble(engine) -> None:
    answer = engine.answer_once("固定残業代って、決められた時間を超えた分は出ないんですか？")
    assert answer.legal_points
    messages = render_answer(answer, engine.replies)
    check(messages)
    carousel = next(m for m in messages if m["type"] == "flex")["contents"]
    bubbles = {b["header"]["contents"][0]["text"]: b for b in carousel["contents"]}
    legal = bubbles[engine.replies["headings"]["legal"]]
    shown = json.dumps(legal, ensure_ascii=False)
    assert all(point in shown for point in answer.legal_points)
    assert "総合労働相談コーナー" in shown


def test_a_labour_question_escalated_reads_its_general_rule_first_then_the_note_and_help_lines(engine) -> None:
    # The fifth blind set: 「違法じゃないですか？」 read 「判断できません」 and a list of lines before the rule it asked for.
    message = "みなし残業30時間込みと言われていますが、毎月50時間以上残業して超過分は一度も払われていません。これって違法ですよね？"
    answer = engine.handle("line:user:labour-question", message).answer
    assert answer.kind == "escalation" and answer.escalation is not None
    assert answer.direct_answer is not None, "a question about fixed overtime pay has a general answer in the article"
    assert not answer.empathy, "the escalation's note is the only opening"
    assert "ありがとう" not in answer.escalation.message, "after the reply, the note does not greet them again"
    messages = render_answer(answer, engine.replies)
    texts = "\n".join(m["text"] for m in messages if m["type"] == "text")
    question = answer.direct_answer.question
    assert texts.index(question) < texts.index("一般的な情報") < texts.index("・総合労働相談コーナー")
    assert texts.index(answer.direct_answer.answer[:20]) < texts.index("一般的な情報")
    # The plain text reads in the same order as LINE and the widget: the reply, the note and lines, then the article.
    assert answer.text.index(question) < answer.text.index("一般的な情報") < answer.text.index("■ 現状分析")
    check(messages)


def test_a_labour_complaint_without_a_question_keeps_its_help_lines_first(engine) -> None:
    answer = engine.answer_once("給料が三か月出てない")
    assert answer.kind == "escalation" and answer.escalation is not None
    assert answer.direct_answer is None, "a statement asks nothing"
    assert answer.text.startswith(answer.escalation.message.splitlines()[0])
    assert "ありがとう" in answer.escalation.message
    assert render_answer(answer, engine.replies)[0]["text"].startswith(answer.escalation.message.splitlines()[0])


def test_a_check_in_answered_with_the_worry_leads_with_help_then_its_opening_and_the_plan(engine) -> None:
    advice = engine.answer_once("今月残業90時間こえた。平日ずっと終電で土曜も出てる。寝ても疲れとれん")
    answer = engine.composer.with_check_in(advice.model_copy(update={"escalation": None}), "mental")
    messages = render_answer(answer, engine.replies)
    first = messages[0]["text"]
    assert first.startswith(answer.escalation.message.strip())
    assert answer.empathy and answer.empathy in first, "its own opening follows the help lines"
    assert first.index(answer.escalation.resources[0].name) < first.index(answer.empathy)
    assert messages[-1]["type"] == "flex"
    labels = [i["action"]["label"] for i in messages[-1]["quickReply"]["items"]]
    assert any("もっと" in label for label in labels), labels
    check(messages)
