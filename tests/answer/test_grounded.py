"""Pieces of the grounded composer that a reader would notice: sentences kept whole, signals read right."""

from __future__ import annotations

from pathlib import Path

from bot.answer.grounded import first_sentence, read_signals, sentences
from bot.answer.prompts import load_lexicon
from bot.knowledge.model import Role

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


def test_sentences_never_split_inside_quotes() -> None:
    text = "まず電話します。「お世話になります。担当の〇〇です。」と名乗ります。最後に確認します。"
    assert sentences(text) == [
        "まず電話します。",
        "「お世話になります。担当の〇〇です。」と名乗ります。",
        "最後に確認します。",
    ]


def test_first_sentence_keeps_the_example_phrasing() -> None:
    assert first_sentence("こちらから先に連絡します。「担当の〇〇です」と伝えます。結果を記録します。") == (
        "こちらから先に連絡します。「担当の〇〇です」と伝えます。"
    )
    assert first_sentence("一行だけの説明") == "一行だけの説明"
    assert first_sentence("最初の文。次の文。") == "最初の文。"


def test_signals_read_role_situation_and_feeling() -> None:
    lexicon = load_lexicon(PROMPTS)
    signals = read_signals(
        "営業です。前任者が入院して連絡が取れず、入札の書類が間に合わなかった。毎日怒られてます", lexicon
    )
    assert signals.role == "営業"
    assert len(signals.situations) == 2
    assert signals.situations[0] == "前任の方が体調を崩して頼れない"  # the most telling situation first
    assert "責められる" in signals.feeling
    words = dict(signals.boosts)
    assert words["不在"] == 2 and words["締切"] == 1.5


def test_no_signals_falls_back_to_a_warm_default() -> None:
    lexicon = load_lexicon(PROMPTS)
    signals = read_signals("職場について考えています", lexicon)
    assert signals.role is None and signals.situations == ()
    assert signals.feeling == lexicon.default_feeling


def test_steps_keep_the_articles_order_and_answers_name_their_articles_as_data(engine) -> None:
    answer = engine.answer_once(
        "営業です。前任が辞めて引き継ぎ2週間。入札の申請書類の締切に間に合わず大口を落としました"
    )
    assert answer.cited == [answer.sources[0].article_id]
    article = engine.articles[answer.cited[0]]
    plan = article.section(Role.ACTION_PLAN)
    assert plan is not None
    for group in answer.action_plan:
        step = next(s for s in plan.steps if s.heading == group.title)
        order = [next(i for i, item in enumerate(step.items) if shown.startswith(item.title)) for shown in group.steps]
        assert order == sorted(order), f"{group.title}: shown out of the article's order"


def test_a_second_topic_joins_only_when_the_message_names_it(engine) -> None:
    plain = engine.answer_once("上司と合わない。もう退職しようかな")
    assert not any("あわせて" in g.title for g in plain.action_plan)
    assert len(plain.cited) == 1


def test_a_short_message_gets_a_phone_sized_first_answer_and_the_rest_behind_more(engine) -> None:
    short = engine.handle("web:brief", "上司に毎日怒鳴られてつらい。どうしたらいい？").answer
    assert short.kind == "advice"
    assert len(short.situation_analysis) == 2
    assert 1 <= len(short.action_plan) <= 3 and all(len(g.steps) == 1 for g in short.action_plan)
    assert len(short.career_strategy) == 1, "the three parts stay"
    assert len(short.text) < 1000
    more = engine.handle("web:brief", "もっと詳しく").answer
    assert sum(len(g.steps) for g in more.action_plan) > sum(len(g.steps) for g in short.action_plan)


def test_a_role_only_from_how_people_describe_themselves() -> None:
    lexicon = load_lexicon(PROMPTS)
    assert read_signals("親の介護で仕事を休みがちです", lexicon).role is None
    assert read_signals("人事に相談したら評価が下がりそうで怖い", lexicon).role is None
    assert read_signals("介護職として働いています。夜勤がきつい", lexicon).role == "介護"
    assert read_signals("会社：中小メーカー 職種：営業 上司が辞めた", lexicon).role == "営業"


def test_someone_elses_situation_is_not_the_workers() -> None:
    lexicon = load_lexicon(PROMPTS)
    mine = read_signals("前任者が急病で倒れて連絡がとれない", lexicon)
    fathers = read_signals("父が入院して、仕事を休むことが増えました", lexicon)
    assert "前任の方が体調を崩して頼れない" in mine.situations
    assert "前任の方が体調を崩して頼れない" not in fathers.situations


def test_the_opening_reads_the_message_not_the_topic_label(engine) -> None:
    names = set(engine.topic_names.values())
    question = engine.answer_once("退職を伝えるタイミングはいつがいい？")
    assert "「退職を伝えるタイミングはいつがいい」" in question.empathy and "ご質問" in question.empathy
    worry = engine.answer_once("同僚からの無視がつらくて職場で孤立しています")
    assert "同僚からの無視がつらくて" in worry.empathy
    for answer in (question, worry, engine.answer_once("何社くらい受ければいい？")):
        assert not any(name in answer.empathy for name in names), answer.empathy
        assert "ひとりで抱えるには重い" not in answer.empathy


def test_a_question_gets_the_articles_direct_answer_first(engine) -> None:
    answer = engine.answer_once("退職って何か月前に言えばいい？")
    assert answer.direct_answer is not None
    assert "退職" in answer.direct_answer.question and answer.direct_answer.answer
    article = engine.articles[answer.cited[0]]
    qa = article.section(Role.QA)
    assert qa is not None and answer.direct_answer.question in [i.title for i in qa.items], "cited from the article"
    text = answer.text
    assert text.index("■ ご質問への答え") < text.index("■ 現状分析"), "the reply comes before the plan"


def test_no_direct_answer_without_a_question_or_a_matching_item(engine) -> None:
    assert engine.answer_once("上司が相談に乗ってくれない").direct_answer is None
    assert engine.answer_once("上司とうまくいかない。どうしたらいい？").direct_answer is None  # a bare question


def test_the_answer_text_helps_choose_the_question(engine) -> None:
    # 「何日」 is in no Q&A question of the caregiving article, only in the answer about how long one can take off.
    answer = engine.answer_once("介護休業って何日取れる？")
    assert answer.direct_answer is not None and "どのくらい休める" in answer.direct_answer.question
