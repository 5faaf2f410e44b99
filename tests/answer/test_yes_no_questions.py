"""Yes/no and number questions get the cited article's matching Q&A item first, through the real composer: the
answer opens with the item's direct reply (「はい、〜」「いいえ、〜」「目安は〜」), not with the article's general plan.
The messages are written for these tests (not taken from eval/)."""

from __future__ import annotations

import re

import pytest

from bot.answer.grounded import _ask_kinds
from bot.knowledge.model import Role

CASES = [
    # Whether: 「〜していい？」「ダメ？」「非常識？」「〜になる？」
    ("育休明けって残業断ってもいい？", "育休明け、残業を断ってもいい？"),
    ("忙しい時期に退職したいって言うの、非常識ですかね？", "忙しい時期に辞めるのって非常識？"),
    (
        "新人に教える時間って、ちゃんと業務として認めてもらえるものなの？",
        "新人教育の時間って、業務として認めてもらえる？",
    ),
    ("復職してすぐなのに出張も行かないとダメですか？", "復職してすぐ、夜勤や出張もこなすべき？"),
    ("介護してると残業断れるの？", "介護をしていると、残業を断れる？"),
    ("一回怒鳴られただけでもパワハラになる？", "一度怒鳴られただけでも、パワハラになる？"),
    ("再雇用の契約書、その場でサインしないとダメなの？", "再雇用の契約書、その場でサインしないとダメ？"),
    # How many, how long, how often
    ("面接の逆質問って何個くらい準備しとけばいい？", "逆質問はいくつ用意すればいい？"),
    ("職務要約って何行くらいで書けばいい？", "職務要約は何行くらいで書けばいい？"),
    ("副業って週何時間までならOK？", "副業は週に何時間くらいまでならいい？"),
    ("キャリアの棚卸しってどのくらいの頻度でやればいい？", "キャリアの見直しは、どのくらいの頻度ですればいい？"),
]


def direct_reply(detail: str) -> str:
    """The item's first sentence as shown, up to its first footnote or full stop."""
    return re.split(r"\[\^|。", detail, maxsplit=1)[0]


@pytest.mark.parametrize(("message", "title"), CASES)
def test_the_answer_opens_with_the_items_direct_reply(engine, message: str, title: str) -> None:
    answer = engine.answer_once(message)
    direct = answer.direct_answer
    assert direct is not None, f"no direct reply to {message!r}"
    assert direct.question == title
    qa = engine.articles[answer.cited[0]].section(Role.QA)
    assert qa is not None
    item = next(i for i in qa.items if i.title == title)
    blocks = answer.text.split("\n\n")
    assert blocks[1].startswith("■ ご質問への答え"), "the reply is the first block after the opening line"
    shown = blocks[1].split("\nA. ", 1)[1]
    assert shown.startswith(direct_reply(item.detail)), shown[:60]
    assert answer.text.index("■ ご質問への答え") < answer.text.index("■ アクションプラン")


def test_a_question_asking_whether_is_not_answered_with_the_wording() -> None:
    # 「メールで伝えてもいい？」 asks whether, 「どう切り出せばいい？」 asks for words: different questions.
    assert _ask_kinds("退職って、メールで伝えてもいいんですか？") == {"whether"}
    assert _ask_kinds("上司にはどう切り出せばいい？") == {"wording"}
    # 「なんて説明すれば」 asks for the words too: it was answered by an item asking whether to quit (third blind set).
    assert _ask_kinds("親の介護で早退が続いてて、職場になんて説明すればいい？") == {"wording"}
    assert _ask_kinds("退職したいって上司に何て言えばいいの？") == {"wording"}
    assert "whether" not in _ask_kinds("何社くらい受ければいい？")
    assert "whether" not in _ask_kinds("入社前に聞いた条件と実際が違うときは？"), "an elliptic question asks what to do"
    assert "whether" not in _ask_kinds("どうしていいか分からない？")
    # Quoted words are not the question: this asks whether to name a figure, not how much.
    assert _ask_kinds("昇給の相談で「月いくら」って数字を出したほうがいい？") == {"whether"}
    # 「もう遅い？」 is asked whether too, so 「採用されるものですか？」 may be answered by it.
    assert {"late", "whether"} <= _ask_kinds("30代から未経験の職種って、もう遅い？")
    assert "when" not in _ask_kinds("呼び出しはいつも私が行くしかない？"), "いつも is not when"
    # 「何年も」 says many years; the fifth blind set's 「同じ作業で27歳、これってやばい？」 missed the item asking it so.
    assert _ask_kinds("同じ作業を何年も続けて20代後半、このままでやばい？") == {"whether"}
    assert _ask_kinds("何度も同じミスをするのは向いてないから？") == {"whether"}
    assert "amount" in _ask_kinds("有休は何日もらえる？")


def test_a_whether_question_gets_a_whether_item_not_the_how_to_say_it(engine) -> None:
    answer = engine.answer_once("退職って、メールで伝えてもいいんですか？")
    direct = answer.direct_answer
    assert direct is not None
    assert direct.question == "退職の意思って、メールで伝えてもいい？"
    assert direct.answer.startswith("伝えることはできますが")
