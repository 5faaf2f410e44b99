"""The one answer pipeline, on the real library: what a reader notices in legal answers, clarifying questions,
questions the article cannot answer, topic choices, and the LLM variant's stream."""

from __future__ import annotations

import json
import re

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from bot.answer.composer import AnswerComposer, LLMAnswerComposer
from bot.answer.grounded import read_signals
from bot.answer.llm import LLMRewriter
from bot.answer.prompts import load_lexicon
from bot.knowledge.model import Role

SOURCE_NOTE = re.compile(r"（出典：[^）]+）")


def test_a_first_labour_answer_is_short_but_what_the_law_says_is_shown_whole(engine) -> None:
    answer = engine.answer_once("固定残業代って、決められた時間を超えた分は出ないんですか？")
    assert answer.topic == "labor-rights"
    article = engine.articles[answer.cited[0]]
    assert answer.legal_points, "the legal section is missing"
    everything = " ".join(i.detail for s in article.sections for i in s.items) + " ".join(
        i.detail for s in article.sections for st in s.steps for i in st.items
    )
    for point in answer.legal_points:
        assert SOURCE_NOTE.search(point), point  # each statement carries its source
        assert point in everything  # the curated sentence, word for word
    shown_items = [p.detail for p in answer.situation_analysis] + [s for g in answer.action_plan for s in g.steps]
    for text in shown_items:
        assert not any(point in text for point in answer.legal_points)  # said once, in its own section
    assert "法律のポイント" in answer.text and "総合労働相談コーナー" in answer.text
    # 「もっと詳しく」 shows every item whole, the legal sentences in place.
    more = engine.composer.more(article, "", engine.searcher.search(article.title))
    assert not more.legal_points
    assert any(SOURCE_NOTE.search(p.detail) for p in more.situation_analysis)


def test_answers_whose_items_cite_no_law_have_no_legal_section(engine) -> None:
    answer = engine.answer_once("前任者が急に辞めて、引き継ぎもないまま顧客を任されました")
    assert answer.kind == "advice" and answer.legal_points == []
    assert "法律のポイント" not in answer.text


def test_a_clarifying_question_acknowledges_the_message_and_offers_close_topics(engine) -> None:
    composer: AnswerComposer = engine.composer
    message = "仕事がしんどい"
    retrieval = engine.searcher.search(message)
    topics = composer.clarify_topics(message, retrieval)
    answer = composer.clarify(message, retrieval, topics)
    assert answer.kind == "clarify"
    assert answer.empathy.startswith("「仕事がしんどい」とのこと")
    assert 2 <= len(answer.follow_ups) <= 4
    assert answer.follow_ups == [engine.topic_names[t] for t in topics]
    best = retrieval.best
    assert best is not None and topics[0] == best.topic  # the likeliest topic is offered first


def test_a_question_the_article_does_not_cover_is_answered_honestly(engine) -> None:
    composer: AnswerComposer = engine.composer
    article = next(a for a in engine.articles.values() if a.topic == "handover")
    answer = composer.step_question("株価はどうなる？", article, engine.searcher.search("株価はどうなる？"))
    assert answer.topic == "handover" and answer.cited == [article.id]
    assert "答えられる内容は" in answer.empathy and answer.action_plan == []
    assert answer.follow_ups  # what it can do instead


def test_a_question_on_the_current_topic_gets_its_qa_item(engine) -> None:
    article = engine.articles["labor-rights-unpaid-overtime"]  # the topic has a second article, for part-time rights
    qa = article.section(Role.QA)
    assert qa is not None
    message = "未払いの残業代って今からでも間に合う？"
    answer = engine.composer.step_question(message, article, engine.searcher.search(message))
    assert answer.direct_answer is not None
    assert answer.direct_answer.question in [i.title for i in qa.items]
    assert "間に合う" in answer.direct_answer.question


def test_a_tapped_topic_gets_the_article_that_fits_what_they_said(engine) -> None:
    # Caregiving has two articles; the one about small children fits a message about nursery pick-ups.
    conversation = "web:tap-caregiving"
    engine.handle(conversation, "保育園のお迎えに間に合わなくて毎日綱渡り")
    state = engine.store.get_state(conversation)
    assert state is not None
    state.pending_choices = ["caregiving-balance", "overwork"]
    engine.store.save_state(conversation, state)
    reply = engine.handle(conversation, engine.topic_names["caregiving-balance"])
    assert reply.answer.cited[0] == "caregiving-balance-childcare-dual-income"


def test_situations_need_the_worker_living_them() -> None:
    lexicon = load_lexicon(engine_prompts())
    assert read_signals("残業代が出ないんだけど", lexicon).situations == ()
    assert read_signals("退職勧奨されてる", lexicon).situations == ()
    assert read_signals("部下との面談のコツは？", lexicon).situations == ()
    assert "長い時間働き続けている" in read_signals("毎日終電まで残業してます", lexicon).situations
    assert "今の職場を続けるかどうか考えている" in read_signals("正直もう辞めたい", lexicon).situations
    # Someone who already said it has decided; they are being held back, not weighing it.
    told = read_signals("3か月前に辞めたいと伝えたのに、後任が決まるまで待てと言われています", lexicon)
    assert "今の職場を続けるかどうか考えている" not in told.situations


def test_a_question_is_quoted_back_by_its_asking_clause() -> None:
    lexicon = load_lexicon(engine_prompts())
    signals = read_signals("毎日残業してるんですが、残業って月何時間を超えたら多すぎなんですか？", lexicon)
    assert signals.echo == "残業って月何時間を超えたら多すぎなんですか"


def test_the_llm_composer_streams_the_opening_and_keeps_curated_answers_as_written(engine) -> None:
    opening = "締切 に 追われて 大変 でしたね。"
    reply = json.dumps(
        {
            "empathy": opening,
            "situation_analysis": [{"title": "引き継ぎ", "detail": "聞ける人がいない状態です。", "source_ids": ["A1"]}],
        },
        ensure_ascii=False,
    )
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    rewriter = LLMRewriter(model, engine.composer.prompts_dir, timeout=10)
    composer = LLMAnswerComposer(
        engine.composer.grounded,
        rewriter,
        knowledge_dir=engine.composer.knowledge_dir,
        prompts_dir=engine.composer.prompts_dir,
    )
    message = "前任者が急に辞めて、引き継ぎもないまま顧客を任されました"
    retrieval = engine.searcher.search(message)
    tokens: list[str] = []
    answer = composer.advice(message, retrieval, on_token=tokens.append)
    assert len(tokens) > 1 and "".join(tokens) == answer.empathy == opening
    curated = composer.advice(message, retrieval, curated=True, on_token=tokens.append)
    assert curated.empathy != opening  # escalations show the curated text; the model is not asked
    assert model.messages is not None and next(model.messages, None) is None  # one call in all


def engine_prompts():  # the repository's prompts directory
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "prompts"


def test_a_marked_example_is_shown_only_to_someone_who_shares_its_case(engine) -> None:
    article = engine.articles["handover-sudden-retirement"]
    examples = [i for s in article.sections for st in s.steps for i in st.items if "例：" in i.detail]
    assert examples, "the handover article carries marked examples"
    theirs = "前任が入院して連絡がとれないうえ、毎年の入札の締切も近いのに何も分かりません"
    other = "前任者が急に辞めて、引き継ぎもないまま顧客を任されました"
    # Everyday words the example also uses (毎年, 時期, 電話) do not make its case theirs.
    common = "前任者が急に辞めて、毎年この時期は電話が多いのに、引き継ぎもないまま顧客を任されました"
    for message, shown in ((theirs, True), (other, False), (common, False)):
        first = engine.answer_once(message)
        assert first.cited[0] == article.id
        more = engine.composer.more(article, message, engine.searcher.search(message))
        for answer in (first, more):
            assert ("例：" in answer.text) is shown, (message, answer.text)
    more = engine.composer.more(article, theirs, engine.searcher.search(theirs))
    assert "入札" in more.text and "集金" not in more.text  # only the examples whose case they share


def test_a_question_gets_the_qa_item_that_asks_the_same_thing_and_no_lookalike(engine) -> None:
    paraphrase = engine.answer_once("退職の意思って、何か月くらい前に伝えるものですか？")
    assert paraphrase.direct_answer is not None
    assert "何か月前" in paraphrase.direct_answer.question
    assert paraphrase.text.index(paraphrase.direct_answer.question) < paraphrase.text.index("■ 現状分析")
    # Shares 「任せ」「仕事」 with 「任せた仕事、つい自分で直してしまいます。どうすれば？」 but asks something else.
    lookalike = engine.answer_once("仕事を人に振るの、何割くらい任せていいものですか？")
    assert lookalike.direct_answer is None or "自分で直して" not in lookalike.direct_answer.question


def test_a_short_question_is_read_with_the_sentence_it_leans_on(engine) -> None:
    # 「何から手をつければ？」 alone is far from 「引き継ぎがほぼない。何から手をつければいい？」; with the sentence
    # before it, it is the same question, and the item's reply opens the answer instead of the plan's headings.
    answer = engine.answer_once("引き継ぎ資料ゼロで前任が辞めた。何から手をつければ？")
    assert answer.topic == "handover" and answer.direct_answer is not None
    assert "何から" in answer.direct_answer.question and "引き継ぎ" in answer.direct_answer.question
    # Context never picks among items that merely ask whether: the topic words would decide, not the question.
    back = engine.answer_once("休職明けで来週から復帰。みんなにどんな顔して会えばいい？")
    assert back.direct_answer is None or "戻れなかったら" not in back.direct_answer.question


def test_an_opening_suggests_a_doctor_when_the_body_speaks_and_not_otherwise(engine) -> None:
    line = "医療機関"
    tired = engine.answer_once("残業が月100時間を超えていて頭痛が続く。仕事の量をどうにかしたい")
    assert tired.kind == "advice" and line in tired.empathy and "産業医" in tired.empathy
    plain = engine.answer_once("部下との面談ってどう進めればいい？")
    assert line not in plain.empathy


def test_a_question_another_article_of_the_topic_asks_is_answered_from_it_and_cited(engine) -> None:
    # The held-back article fits someone told 「後任が決まるまで」; its sibling holds the notice-period item.
    message = "退職って何か月前に言えばいいんですか？"
    retrieval = engine.searcher.search(message)
    answer = engine.composer.grounded.advice(message, retrieval, article_id="resignation-held-back")
    assert answer.direct_answer is not None and "何か月前" in answer.direct_answer.question
    assert answer.cited == ["resignation-held-back", "resignation-telling-boss"]
    assert "「辞めます」が言い出せない" in answer.text  # the source of the reply is named
