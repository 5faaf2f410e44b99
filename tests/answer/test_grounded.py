"""Pieces of the grounded composer that a reader would notice: sentences kept whole, signals read right."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    # A quoted notion is not example phrasing: the first sentence is enough.
    assert (
        first_sentence("経緯を確かめられません。「聞けば分かる人」がいないことになります。")
        == "経緯を確かめられません。"
    )


def test_signals_read_role_situation_and_feeling() -> None:
    lexicon = load_lexicon(PROMPTS)
    signals = read_signals(
        "営業です。前任者が入院して連絡が取れず、入札の書類が間に合わなかった。毎日怒られてます", lexicon
    )
    assert signals.role == "営業"
    assert len(signals.situations) == 2
    assert signals.situations[0] == "前任の方が体調を崩して頼れない"  # the most telling situation first
    assert "きつい言葉を向けられる" in signals.feeling
    words = dict(signals.boosts)
    assert words["不在"] == 2 and words["締切"] == 1.5


@pytest.mark.parametrize(
    ("message", "phrase"),
    [
        # The fourth blind set's reviewers: openings that told people what they never said.
        (
            "係長になりました。会議で意見をまとめたり、メンバーの残業を調整したり、任せるのが下手です",
            "長い時間働き続けている",
        ),
        ("同業から誘われていて、年収は上がるけど残業は今より多いらしく迷っています", "長い時間働き続けている"),
        ("中途で入ったけど、会議でも略語や過去の経緯が前提で話についていけないことがあります", "自分の力を超える量"),
        ("子どもがほしいけど、今の会社で両立できる形を先に作っておくべき？", "家庭の事情と仕事の両立"),
        # The fifth set's: what they said never happened, and what they did rather than suffered.
        ("週2日は定時で帰っていますが、担当業務の期限を落としたこともありません", "締切に間に合わず"),
        ("係長になって、若い子が同じミスを繰り返すので、つい昔の癖で怒鳴りそうになりました", "尊重されない"),
        # The sixth set's: 「怒鳴られたりはしないけど」 says it does not happen.
        ("課長は怒鳴られたりはしないけど、相談しても「自分で考えて」しか言わない", "尊重されない"),
    ],
)
def test_a_situation_is_named_only_when_it_is_the_workers_own_and_current(message: str, phrase: str) -> None:
    signals = read_signals(message, load_lexicon(PROMPTS))
    assert not any(phrase in s for s in signals.situations), signals.situations


@pytest.mark.parametrize(
    ("message", "phrase"),
    [
        ("毎日終電で土日も出勤。いつまで続くんだろ", "長い時間働き続けている"),
        ("今月も残業80時間こえた", "長い時間働き続けている"),
        ("仕事量が多すぎて、もうついていけない", "自分の力を超える量"),
        ("介護と仕事の両立がきつい。休みも取りにくい", "家庭の事情と仕事の両立"),
        ("提出書類の締切に間に合わなくて、取引先に迷惑をかけた", "締切に間に合わず"),
        ("工場の班長に毎日みんなの前で『給料泥棒』って言われる", "尊重されない"),
        ("上司に毎日怒鳴られています", "尊重されない"),
        ("客に怒鳴られても我慢しないといけないの？", "尊重されない"),
    ],
)
def test_the_workers_own_situation_is_still_named(message: str, phrase: str) -> None:
    signals = read_signals(message, load_lexicon(PROMPTS))
    assert any(phrase in s for s in signals.situations), signals.situations


def test_someone_elses_illness_is_not_the_workers_body_speaking() -> None:
    lexicon = load_lexicon(PROMPTS)
    assert not read_signals("隣のエリアの担当者が体調を崩してそのまま辞めてしまい、全部持つことに", lexicon).body
    assert not read_signals("先輩のサ責が体調を崩して突然来なくなりました", lexicon).body
    assert not read_signals("今月もう残業80時間こえた。土日も出勤で休みゼロ", lexicon).body
    assert read_signals("最近、出勤前に胃が痛くなります", lexicon).body


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
    # Two factors; one when a direct reply comes first (the reply is what a short question came for).
    assert len(short.situation_analysis) == (1 if short.direct_answer is not None else 2)
    assert 1 <= len(short.action_plan) <= 3 and all(len(g.steps) == 1 for g in short.action_plan)
    # The strategy point stays unless a direct reply took its room; 「もっと詳しく」 shows it either way.
    assert len(short.career_strategy) == (0 if short.direct_answer is not None else 1)
    assert len(short.text) < 1000
    more = engine.handle("web:brief", "もっと詳しく").answer
    assert sum(len(g.steps) for g in more.action_plan) > sum(len(g.steps) for g in short.action_plan)
    assert len(more.career_strategy) >= 2


def test_a_short_question_answered_directly_opens_with_the_reply_not_a_promise(engine) -> None:
    answer = engine.answer_once("履歴書の写真ってスマホで撮ったやつでもいい？")
    assert answer.direct_answer is not None and "写真" in answer.direct_answer.question
    assert "すぐに使えること" not in answer.empathy, "the opening promises nothing the reply does not give"
    assert answer.text.index("■ ご質問への答え") < answer.text.index("■ 現状分析")
    assert not answer.career_strategy and len(answer.situation_analysis) == 1
    worry = engine.answer_once("上司と合わなくて毎日しんどい")  # no question: the whole short shape
    assert worry.direct_answer is None and len(worry.career_strategy) == 1


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


def test_no_direct_answer_without_a_question(engine) -> None:
    assert engine.answer_once("上司が相談に乗ってくれない").direct_answer is None


def test_a_how_question_no_item_answers_gets_the_plans_first_steps_as_its_short_answer(engine) -> None:
    message = "32歳で係長になったのですが、部下に55歳のベテランの方がいます。指示を出すたびに「前はこうやってた」と言われ、どう接すればいいのか分かりません。"
    answer = engine.answer_once(message)
    direct = answer.direct_answer
    assert direct is not None and direct.question == "どう接すればいいのか分かりません", (
        "their how-question, not the background"
    )
    article = engine.articles[answer.cited[0]]
    plan = article.section(Role.ACTION_PLAN)
    assert plan is not None
    first = plan.steps[0].items[0]
    assert direct.answer.startswith(f"まずは『{first.title}』"), "it says plainly what to do first"
    assert first_sentence(first.detail).rstrip("。") in direct.answer, "and how, in the article's words"
    positions = [direct.answer.index(step.heading) for step in plan.steps[1:3]]
    assert positions == sorted(positions), "then the next steps in the plan's order"
    assert answer.text.index("■ ご質問への答え") < answer.text.index("■ 現状分析")
    assert answer.text.count(f"{first.title}：") == 0, "the plan does not repeat the step the reply gave"
    # A bare 「どうしたらいい？」 gets the same short answer, under a question of the bot's own words.
    bare = engine.answer_once("上司とうまくいかない。どうしたらいい？").direct_answer
    assert bare is not None and bare.question == "どうしたらいいか" and "→" in bare.answer


def test_a_question_in_other_words_gets_the_item_that_answers_it(engine) -> None:
    # No Q&A question shares its wording, but the reskilling article's 「30代・40代からの学び直しは遅すぎますか？」
    # answers it: read for meaning against the item's question and answer, and both ask whether it is too late.
    answer = engine.answer_once("42歳の事務職です。今から社労士の勉強を始めるのは遅すぎますか？")
    direct = answer.direct_answer
    assert direct is not None and "遅すぎ" in direct.question
    qa = engine.articles[answer.cited[0]].section(Role.QA)
    assert qa is not None and direct.question in [i.title for i in qa.items]
    # An amount asked for is never answered by an item that gives none (「何ヶ月くらい？」 vs 「もう遅い？」).
    amount = engine.answer_once("35歳の営業ですが、宅建の勉強は働きながらだと何ヶ月くらい見ておけばいいですか？")
    assert amount.direct_answer is None or "遅" not in amount.direct_answer.question


def test_the_answer_text_helps_choose_the_question(engine) -> None:
    # 「何日」 is in no Q&A question of the caregiving article, only in the answer about how long one can take off.
    answer = engine.answer_once("介護休業って何日取れる？")
    assert answer.direct_answer is not None and "どのくらい休める" in answer.direct_answer.question


def test_someone_elses_bodily_sign_is_not_the_workers() -> None:
    lexicon = load_lexicon(PROMPTS)
    assert read_signals("残業が月100時間を超えていて頭痛が続く", lexicon).body
    assert read_signals("最近眠れなくて、朝も起きるのがつらい", lexicon).body
    # The predecessor's illness or a parent's sleeplessness gets no suggestion to see a doctor.
    assert not read_signals("前任の方が体調を崩して急にお休みに入り、連絡もつかない状態です。", lexicon).body
    assert not read_signals("母が眠れないと言っていて、介護と仕事の両立が心配です", lexicon).body


def test_less_overtime_is_not_long_hours() -> None:
    lexicon = load_lexicon(PROMPTS)
    assert "長い時間働き続けている" in read_signals("毎日残業で終電です", lexicon).situations
    assert not read_signals("夫の工場も残業が減って、手取りが下がりました", lexicon).situations
