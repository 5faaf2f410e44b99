"""The crisis detector: each family, hyperbole and ordinary questions, normalisation, negation, jokes, priority."""

from __future__ import annotations

import pytest

from bot.safety.detector import CrisisSignal, detect_crisis, normalize


def kind_of(text: str) -> str | None:
    signal = detect_crisis(text)
    return signal.kind if signal else None


@pytest.mark.parametrize(
    "text",
    [
        # Direct and indirect, as in the brief.
        "死にたい",
        "消えたい",
        "朝起きなければいいのにって思う",
        "いなくなったほうが楽なんじゃないかな",
        "もう限界、終わりにしたい",
        "もう全部終わりにしたい",
        "生きる意味がわからなくなった",
        "生きてるのがつらい",
        "自分なんかいないほうがいい",
        "自分がいなくなっても誰も困らない",
        "このまま眠って目覚めなければいいのに",
        "明日の朝が来なければいいのに",
        "死ぬことばかり考えてる",
        "死ぬ方法を調べてしまう",
        "死んだら楽になれるのかな",
        "死ねたら楽なのに",
        "自殺しようと思ってる",
        "首をつるロープを買った",
        "遺書を書き始めた",
        "会社のビルの窓から飛び降りたら楽になれるかな",
        "駅のホームで立ってたら、ふと飛び込もうかと思った",
        "睡眠薬をためてる",
        "いっそ事故にでもあえばいいのに",
        # Double negation is not a negation.
        "死にたいと思わない日はない",
        # Only a particle then none cancels: a bare 「ない」 is not a denial, and what follows still counts.
        "死にたいない",
        "死にたいとかはないけど、もう消えたい",
        # A joke marker does not cancel a message that says it is ongoing.
        "毎日死にたい笑",
        "ずっと消えたいって思ってる笑",
    ],
)
def test_suicide(text: str) -> None:
    assert kind_of(text) == "suicide"


@pytest.mark.parametrize(
    "text",
    [
        "リスカやめられない",
        "リストカットがやめられません",
        "腕を切ってしまった",
        "また切っちゃった",
        "カッターで腕を切った",
        "手首を切りたい衝動がおさまらない",
        "切ると落ち着く",
        "薬をまとめて飲んだ",
        "ODしちゃった",
        "ＯＤして会社休んだ",
        "自分を傷つけたい",
        "自分の腕を爪で引っかいて傷だらけ",
        "頭を壁に打ちつけてしまう",
        "たばこの火を腕に押し付けた",
        "手首の傷を長袖で隠してる",
    ],
)
def test_self_harm(text: str) -> None:
    assert kind_of(text) == "self-harm"


@pytest.mark.parametrize(
    "text",
    [
        "涙が止まらない",
        "涙が勝手に出てくる",
        "パニック発作が出て電車に乗れない",
        "パニックになって動けない",
        "過呼吸になって会社のトイレから出られない",
        "何日も起き上がれない",
        "布団から起き上がれない日が一週間続いてる",
        "眠れない日が続いて頭がおかしくなりそう",
        "一睡もできないまま朝になった。もう3日目",
        "幻聴が聞こえる",
        "誰もいないのに声が聞こえる",
        "心が壊れそう",
        "仕事のことを考えると吐き気が止まらなくて、毎朝吐いてる",
        "何も食べられない",
    ],
)
def test_mental(text: str) -> None:
    assert kind_of(text) == "mental"


@pytest.mark.parametrize(
    "text",
    [
        "上司に殴られた",
        "客に暴力をふるわれた",
        "社長に髪をつかまれて引きずられた",
        "課長に胸を触られた",
        "「殺すぞ」と脅された",
        "上司に「死ね」と言われた",
        "性的な関係を迫られた",
        "部長にセクハラされてる",
        "元カレがストーカーになって職場に来る",
        "先輩にしつこくつきまとわれている",
        "同僚に後をつけられている気がする",
        "上司にホテルに誘われて断ったら評価を下げられた",
    ],
)
def test_harassment_severe(text: str) -> None:
    assert kind_of(text) == "harassment-severe"


@pytest.mark.parametrize(
    "text",
    [
        "残業代が出ない",
        "残業代が払われない",
        "残業代が出ません",
        "給料が振り込まれない",
        "給料が2か月払われていない",
        "給料未払いが3か月続いている",
        "タイムカードを切ってから働かされる",
        "サービス残業を強要されている",
        "有給を取らせてもらえない",
        "有給休暇を一日も取らせてもらえない",
        "今日でクビと言われた",
        "即日解雇された",
        "明日から来なくていいと言われた",
        "辞めさせてもらえない",
        "退職届を受け取ってもらえない",
    ],
)
def test_labor_law(text: str) -> None:
    assert kind_of(text) == "labor-law"


@pytest.mark.parametrize(
    "text",
    [
        # Hyperbole from the brief and its relatives.
        "死ぬほど忙しい",
        "上司に殺される笑",
        "マジ死んだ、プレゼン失敗",
        "会議で心が死んだ",
        "来週の締め切りで死ぬ",
        "仕事終わらなくて死ぬ〜",
        "このタスク量、死ねる笑",
        "殺人的なスケジュール",
        "人生終わったかと思ったけど何とかなった",
        "いっそ転職したほうがましかな",
        "月曜が来なければいいのに笑",
        # Jokes marked with 笑 / w / 草.
        "恥ずかしすぎて消えたいw",
        "昨日の飲み会で黒歴史作った、消えたい笑",
        "客先で恥かいて死にたくなったw",
        "今日のミーティング地獄すぎて草",
        "プレゼンでパニクったけどなんとかなった笑",
        "もう何もかも嫌になった笑",
        # Ordinary questions from the brief.
        "会社を辞めたい",
        "転職したい",
        "パワハラってどこから？",
        "有給の取り方",
        "36協定って何？",
        "首になるかも",
        # Ordinary questions that share words with a crisis.
        "残業代の計算方法を知りたい",
        "有給ってどれくらい取れるの？",
        "休職中は給料が出ない期間があるって本当？",
        "給料が振り込まれたら旅行に行く",
        "辞めさせてもらえないって話はよく聞くけど本当？",
        "タイムカードの打刻を忘れた",
        "過労死ラインって何時間？",
        "セクハラ対策の研修資料を作りたい",
        "ストーカー規制法について調べてる",
        "暴力的なゲームが好きな同僚",
        "同僚がパニック障害で休職中、どう接すればいい？",
        "パニックにならないように準備したい",
        "飛び込み営業がつらい",
        "試験に落ちることばかり考えてしまう",
        "足切りラインに届かなかった",
        "カッターで指を切っちゃった、痛い",
        "予算を切られた",
        "電話切ったあと、また同じクレームが来た",
        "自分を責めてしまう癖がある",
        "家まで送ってもらった",
        "無理やり仕事を押し付けられた",
        "最近よく眠れない",
        "体が動かないくらい疲れた",
        "即日で内定もらえた",
        "今日で退職、お世話になりました",
        # Someone else as the subject.
        "部長がいなくなればいいのに",
        "課長なんかいなくなればいい",
        # Negation.
        "死にたいとは思わないけど、仕事がしんどい",
        "自殺なんて考えてない。ただ疲れた",
        "消えたいわけじゃないけど休みたい",
        # The sixth blind set: an exhausted foreman who said so plainly was shown the suicide lines alone.
        "死にたいとかは全然ないです。ただずっと疲れてる感じが抜けない",
        "死にたいとかはないけど、朝がしんどい",
        "",
        "   ",
    ],
)
def test_ordinary_messages_do_not_trigger(text: str) -> None:
    assert detect_crisis(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "しにたい",
        "シニタイ",
        "ｼﾆﾀｲ",
        "死 に た い",
        "死　に　た　い",
        "し🥲に🥲た🥲い",
        "しにたーい、ほんとに",
        "タヒにたい",
        "shinitai",
        "ＳＨＩＮＩＴＡＩ",
        "mou ikiteitakunai",
        "しにたい しにたい しにたい",
        "じさつしたい",
    ],
)
def test_normalisation_variants(text: str) -> None:
    assert kind_of(text) == "suicide"


def test_normalize_folds_width_kana_spacing_and_emoji() -> None:
    assert normalize("ｼﾆﾀｲ") == normalize("シニタイ") == normalize("し に た い") == "しにたい"
    assert normalize("死🥲に‼️たい。") == "死にたい"
    assert normalize("ＯＤ") == "od"
    assert normalize("panikku de ugokenai") == "ぱにっくでうごけない"
    # English words that are not romaji stay as they are.
    assert normalize("Excel") == "excel"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("上司に殴られた。もう死にたい", "suicide"),
        ("リスカした。死にたい", "suicide"),
        ("リスカがやめられない、パニックになる", "self-harm"),
        ("涙が止まらない。給料も振り込まれない", "mental"),
        ("殴られたうえに残業代も出ない", "harassment-severe"),
        ("残業代が出ないし、上司に胸を触られた", "harassment-severe"),
    ],
)
def test_priority(text: str, kind: str) -> None:
    assert kind_of(text) == kind


def test_signal_carries_the_matched_phrase_not_the_message() -> None:
    signal = detect_crisis("昨日も遅くまで残業して、正直もう消えたい。明日も早い")
    assert signal == CrisisSignal("suicide", "消えたい")
    with pytest.raises(AttributeError):
        signal.kind = "mental"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # How long it has gone on belongs to the sign when it is said in the same breath (or a fragment beside it)...
        ("ここ1ヶ月、ほとんど眠れていない。", "mental"),
        ("何もしてないのに涙が出てくる。毎日", "mental"),
        # ...not when it is another thought of a long consultation: a worry about the first month back at work.
        (
            "うつ病で半年休職していて、来月から復職予定です。また体調を崩したらどうしようと考えると夜も眠れなくなります。"
            "復帰してから最初の1か月くらい、どんなことに気をつければいいでしょうか。",
            None,
        ),
    ],
)
def test_how_long_a_sign_has_lasted_is_read_in_its_own_sentence(text: str, kind: str | None) -> None:
    signal = detect_crisis(text)
    assert (signal.kind if signal else None) == kind
