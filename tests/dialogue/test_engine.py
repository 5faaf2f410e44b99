"""The conversation engine's turn types, on the real library, index and store."""

from __future__ import annotations

from pathlib import Path

import pytest

SEED = (Path(__file__).resolve().parents[1] / "fixtures" / "seed_consultation.txt").read_text(encoding="utf-8")
SEED_ONE_LINE = SEED.replace("\n", "")


def titles(answer):
    return [p.title for p in answer.situation_analysis]


def test_seed_consultation_gets_the_three_part_answer(engine) -> None:
    answer = engine.handle("web:seed", SEED_ONE_LINE).answer
    assert answer.kind == "advice"
    assert answer.topic == "handover"
    assert set(titles(answer)) == {"不十分な引き継ぎ期間", "専門知識・経験の不足", "上司（前任者）の不在"}
    # The predecessor is in hospital and unreachable: that factor leads for this worker.
    assert titles(answer)[0] == "上司（前任者）の不在"
    assert [g.title for g in answer.action_plan][:4] == [
        "情報収集と整理",
        "顧客とのコミュニケーション",
        "社内リソースの活用",
        "スキルアップ",
    ]
    assert all(1 <= len(g.steps) <= 2 for g in answer.action_plan)
    # They missed a tender's paperwork: the deadline lesson is among the first things to do.
    assert any("締切" in step for step in answer.action_plan[0].steps)
    assert [s.title for s in answer.career_strategy] == ["自己分析", "目標設定", "キャリアプラン"]
    assert answer.sources[0].topic == "handover" and len(answer.sources) >= 3
    assert "営業" in answer.empathy
    assert 2 <= len(answer.follow_ups) <= 4
    assert "■ 現状分析" in answer.text and "■ アクションプラン" in answer.text and "■ キャリア戦略" in answer.text


def test_answer_is_personalised_not_pasted(engine) -> None:
    tender = engine.handle(
        "web:a", "営業です。前任が辞めて引き継ぎ2週間。入札の申請書類の締切に間に合わず大口を落としました"
    ).answer
    quiet = engine.handle(
        "web:b", "前の担当が急に辞めて客先の事情が何もわからない。担当の人は入院していて連絡がとれない"
    ).answer
    assert tender.topic == quiet.topic == "handover"
    assert tender.empathy != quiet.empathy
    assert titles(quiet)[0] == "上司（前任者）の不在"
    # The deadline item is chosen for this worker; steps are shown in the article's order.
    assert any("締切" in step for step in tender.action_plan[0].steps)


def test_vague_message_gets_one_clarifying_question_with_choices(engine) -> None:
    answer = engine.handle("web:vague", "仕事がつらい").answer
    assert answer.kind == "clarify"
    assert 3 <= len(answer.follow_ups) <= 5
    assert answer.situation_analysis == [] and answer.action_plan == []
    assert len(answer.sources) >= 3
    # Picking a choice answers that topic.
    picked = engine.handle("web:vague", answer.follow_ups[1]).answer
    assert picked.kind == "advice"
    assert picked.topic is not None and picked.action_plan


def test_follow_ups_stay_on_the_topic(engine) -> None:
    first = engine.handle("web:f", SEED_ONE_LINE).answer
    assert first.topic == "handover"
    more = engine.handle("web:f", "もっと詳しく").answer
    assert more.topic == "handover" and sum(len(g.steps) for g in more.action_plan) > sum(
        len(g.steps) for g in first.action_plan
    )
    step = engine.handle("web:f", "顧客には何て言えばいい？").answer
    assert step.topic == "handover" and step.sources[0].topic == "handover"
    assert any("「" in s for g in step.action_plan for s in g.steps)  # example phrasing for the client
    nxt = engine.handle("web:f", "次のステップは？").answer
    assert nxt.topic == "handover" and len(nxt.action_plan) == 1
    case = engine.handle("web:f", "成功事例を教えて").answer
    assert case.topic == "handover" and "例" in case.text
    expert = engine.handle("web:f", "専門家に相談したい").answer
    assert expert.topic == "handover" and expert.text


def test_a_new_worry_switches_topic(engine) -> None:
    assert engine.handle("web:s", SEED_ONE_LINE).answer.topic == "handover"
    switched = engine.handle(
        "web:s", "それとは別に、毎月の残業が80時間を超えていて休日も出勤しています。体がもちません"
    ).answer
    assert switched.topic == "overwork"


@pytest.mark.parametrize("message", ["ありがとう！", "こんにちは", "おやすみなさい"])
def test_small_talk_gets_a_short_human_reply(engine, message: str) -> None:
    answer = engine.handle("web:talk", message).answer
    assert answer.situation_analysis == [] and answer.action_plan == []
    assert 0 < len(answer.text) < 120


def test_reset_and_delete(engine, services) -> None:
    engine.handle("web:r", SEED_ONE_LINE)
    reset = engine.handle("web:r", "リセット").answer
    assert "リセット" in reset.text
    assert services.store.get_state("web:r").article_id is None
    engine.handle("web:r", SEED_ONE_LINE)
    deleted = engine.handle("web:r", "データを削除").answer
    assert "削除" in deleted.text
    assert services.store.recent_turns("web:r", 50) == []
    assert services.store.get_state("web:r") is None


def test_two_users_never_see_each_others_state(engine, services) -> None:
    engine.handle("web:u1", SEED_ONE_LINE)
    engine.handle("web:u2", "毎日終電で土日も出勤。残業が多すぎて体がもたない")
    assert services.store.get_state("web:u1").topic == "handover"
    assert services.store.get_state("web:u2").topic == "overwork"
    assert engine.handle("web:u2", "もっと詳しく").answer.topic == "overwork"
    assert all("残業" not in t.text for t in services.store.recent_turns("web:u1", 50) if t.role == "user")


def test_history_is_bounded(engine, services) -> None:
    for _ in range(14):
        engine.handle("web:h", "ありがとう")
    assert len(services.store.recent_turns("web:h", 100)) <= 20


def test_concurrent_messages_of_one_user_are_processed_in_order(engine, services) -> None:
    from concurrent.futures import ThreadPoolExecutor

    messages = [f"ありがとう {n}" for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda m: engine.handle("web:order", m), messages))
    turns = services.store.recent_turns("web:order", 100)
    roles = [t.role for t in turns]
    assert roles == ["user", "bot"] * 6  # never two user turns before their answers


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("もう消えたい。朝起きなければいいのにって毎日思う", "suicide"),
        ("上司に胸を触られた。怖くて会社に行けない", "harassment-severe"),
        ("残業代が一円も払われない。タイムカードを切ってから働けと言われる", "labor-law"),
        # Exhaustion without a word of harming themselves: help lines first, then how to rest and whom to see.
        ("朝になると体が動かなくて、電車で涙が出てくる。休んだ方がいいんでしょうか", "mental"),
    ],
)
def test_crisis_comes_before_anything_else(engine, message: str, kind: str) -> None:
    answer = engine.handle("web:crisis", message).answer
    assert answer.kind == "escalation"
    assert answer.escalation is not None and answer.escalation.kind == kind
    assert answer.escalation.resources
    assert len(answer.sources) >= 3
    if kind == "suicide":
        assert answer.action_plan == [] and answer.situation_analysis == []
    else:
        assert answer.action_plan  # safety first, then the curated advice
    if kind == "mental":
        assert answer.topic == "burnout"
    if kind == "labor-law":
        assert answer.topic == "labor-rights"
        assert any("総合労働相談コーナー" in r.name for r in answer.escalation.resources)


# A close call today (eval dev split q178): the retriever ranks handover first, mid-career onboarding (the writer's
# topic) second, too close to answer without offering it.
MAYBE = "前の会社ではリーダーだったのに、新しい職場では一番下っ端扱い。誰が何の担当かもまだわからない"


def test_a_close_call_answers_and_offers_the_runners_up_one_tap_away(engine) -> None:
    from bot.retrieval.policy import decide

    retrieval = engine.searcher.search(MAYBE)
    decision = decide(retrieval)
    assert decision.action == "answer_with_alternatives", retrieval.confidence
    reply = engine.handle("web:maybe", MAYBE).answer
    assert reply.kind == "advice" and reply.situation_analysis  # the best guess is answered in full
    names = [engine.topic_names[t] for t in decision.alternatives]
    assert reply.alternatives == names
    assert "もしかして" in reply.text and all(name in reply.text for name in names)
    # One tap on a runner-up answers about that topic instead.
    switched = engine.handle("web:maybe", names[0]).answer
    assert switched.kind == "advice" and switched.topic == decision.alternatives[0]
    assert switched.alternatives == []
