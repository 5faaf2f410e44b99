"""Crisis detection: one pass of readable regex families over a normalised copy of the user's message.

Rules, not a model, because every decision must be explainable to an operator ("which phrase fired?") and cheap
enough to run on every message before retrieval. Recall matters more than precision here — a false alarm costs one
gentle help-line message, a miss can cost far more — but ordinary workplace hyperbole (「死ぬほど忙しい」「心が死んだ」)
must stay quiet or people stop trusting the bot.

How a message is read:
1. `normalize`: NFKC (full/half width), lower case, romaji words to hiragana (people type 「shinitai」 on PCs), katakana
   folded to hiragana, and everything that is not a letter or digit dropped — spaces, punctuation, emoji, the long
   vowel mark 「ー」 — so 「し に た い」「シニタイ」「死🥲に🥲たい」「しにたーい」 all read the same.
   Patterns are folded the same way, so they can be written with katakana (「パニック」) and still match.
2. Each family (suicide > self-harm > mental > harassment-severe > labor-law) is a list of rules; the first family
   with a rule that fires wins, so the most urgent help is shown when several apply.
3. Guards on each hit: a negation right after the phrase (「死にたいとは思わない」), a third person as the subject
   (「上司がいなくなればいいのに」), a co-occurring word some phrases need (「飛び込む」 only near 電車/ホーム), and for
   phrases people also use as jokes, the joke markers 笑/w/草/😂 — unless the message also sounds serious
   (「毎日」「本当に」「限界」...).

`CrisisSignal.cue` is the matched phrase in normalised form. Log the cue and the kind, never the message itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.answer.model import EscalationKind
from bot.text.romaji import romaji_to_kana

PRIORITY: tuple[EscalationKind, ...] = ("suicide", "self-harm", "mental", "harassment-severe", "labor-law")


@dataclass(frozen=True)
class CrisisSignal:
    kind: EscalationKind
    cue: str


# --------------------------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------------------------

_KATA_TO_HIRA = {code: code - 0x60 for code in range(ord("ァ"), ord("ヶ") + 1)}
# The long vowel mark stretches words (「しにたーい」) and is dropped; 々 and other letters are kept.
_DROPPED_LETTERS = frozenset("ー")


def _keep(char: str) -> bool:
    # Letters (incl. kanji, kana) and digits carry the meaning; spaces, punctuation, symbols, emoji, their joiners
    # and variation selectors (categories Z*, P*, S*, C*, M*) are noise people put inside words.
    return unicodedata.category(char)[0] in "LN" and char not in _DROPPED_LETTERS


def normalize(text: str) -> str:
    """The form every rule is matched against (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = romaji_to_kana(text).translate(_KATA_TO_HIRA)
    return "".join(char for char in text if _keep(char))


def _fold_pattern(pattern: str) -> str:
    # Patterns are written with katakana where that reads naturally; fold them like the text. Regex syntax is ASCII,
    # so only the Japanese letters change. No NFKC or lower(): that would turn `\D` into `\d`.
    return pattern.translate(_KATA_TO_HIRA).replace("ー", "")


# Joke markers are read on the NFKC text before punctuation is dropped: 「笑」 at a clause end (not 笑える/笑顔),
# a run of w, 草 on its own, laughing emoji.
_JOKE = re.compile(
    r"笑(?=$|[\s、。,.!?)」』…~〜w笑])|(?<![a-z])w+(?![a-z])|(?<![\u4e00-\u9fff])草(?=$|[\s、。,.!?w]|生え)|[😂🤣😆😹]"
)
# ...but a joke marker does not cancel a phrase when the message also says it is serious or ongoing.
_SERIOUS = re.compile(
    _fold_pattern(r"本気|ほんき|本当に|ほんとうに|ほんとに|冗談(?:じゃ|抜き|ぬき)|毎日|毎晩|毎朝|ずっと|限界|笑えない")
)

# A negation right after a phrase cancels it: 「死にたいとは思わない」「自殺なんて考えてない」「消えたいわけじゃない」.
# Not when the negation is itself negated: 「死にたいと思わない日はない」.
_NEGATION_AFTER = re.compile(
    r"^(?:と|って|とか|なんて|なんか|を|のは)?(?:は|まで|までは|ほど|ほどは|も)?"
    r"(?:全然|ぜんぜん|まったく|別に|べつに|特に|一度も|いちども|少しも)?"
    r"(?:"
    r"(?:思|おも|考|かんが|感じ|かんじ)[ぁ-ん]{0,5}?(?:ない|ません)"
    r"|(?:わけ|訳)?(?:じゃ|では|でも)(?:ない|ありません|なく)"
    r"|(?:ほど|くらい)(?:じゃ|では)(?:ない|ありません)"
    r"|(?:気持ち|きもち|気|つもり)(?:は|も)?(?:全然|まったく)?(?:ない|ありません)"
    # 「死にたいとかは全然ないです」 (the sixth blind set): a particle, then plainly none.
    r"|(?:(?<=[とかはもて])|(?<=全然)|(?<=ぜんぜん)|(?<=まったく)|(?<=別に)|(?<=べつに)|(?<=特に))(?:ない|ありません)"
    r")"
    r"(?!(?:日|ひ|時|とき|瞬間|ことは|ことが)(?:は|が|も)?(?:ない|ありません))"
)
_NEGATION_WINDOW = 24

# Hearsay about the world, not about oneself: 「辞めさせてもらえないって話はよく聞くけど本当？」.
_HEARSAY_AFTER = re.compile(r"(?:って|という|と)(?:話|はなし|噂|うわさ|よく|聞く|きく|聞いた|きいた|本当|ほんと)")

# Someone else as the subject (「上司がいなくなればいいのに」) is a wish about them, not about oneself.
_THIRD_PERSON_BEFORE = re.compile(
    _fold_pattern(
        r"(?:上司|部長|課長|係長|社長|店長|先輩|後輩|同僚|部下|担当者|前任者|後任|メンバー|社員|誰|だれ|あいつ|そいつ|こいつ|"
        r"奴|やつ|あの人|あのひと|この人|その人|他の人|彼|彼女|お局|おつぼね|みんな|皆|友達|友人|妻|夫|家族|親|母|父)"
        r"(?:が|さえ|なんか|なんて|も|は)?$"
    )
)


@dataclass(frozen=True)
class Rule:
    kind: EscalationKind
    pattern: re.Pattern[str]
    # Also used as a joke (「消えたい笑」): cancelled by a joke marker unless the message sounds serious.
    joke_sensitive: bool = False
    # Another phrase that must occur somewhere in the message (「飛び込む」 needs 電車/ホーム/線路...).
    requires: re.Pattern[str] | None = None
    # Cancelled when someone else is the subject right before the phrase.
    first_person_only: bool = False
    # Cancelled when the phrase is reported as hearsay (general questions about labour practice).
    hearsay_cancels: bool = False
    # When set, `requires` must occur within this many characters of the phrase: 「眠れない日が3日」 is days of no
    # sleep, but 「夜も眠れなくなります。最初の1か月…」 in a return-from-leave question is a worry about the month ahead.
    near: int = 0


def _rules(
    kind: EscalationKind,
    patterns: Iterable[str],
    *,
    joke_sensitive: bool = False,
    requires: str | None = None,
    first_person_only: bool = False,
    hearsay_cancels: bool = False,
    near: int = 0,
) -> list[Rule]:
    needed = re.compile(_fold_pattern(requires)) if requires else None
    return [
        Rule(kind, re.compile(_fold_pattern(p)), joke_sensitive, needed, first_person_only, hearsay_cancels, near)
        for p in patterns
    ]


# 「消えたいくらい恥ずかしい」「死にたいほど恥ずかしい」: embarrassment, the commonest hyperbole of all.
_EMBARRASSED = r"(?!(?:くらい|ぐらい|ほど)(?:恥|はず))"
# Spellings of 死 people use to get past filters or to soften it: タヒ (looks like 死), 氏, 4 (reads し).
SHI = r"(?:死|し|氏|タヒ|4)"
# Where a fall or a jump would happen; 「飛び込み営業」 and 「試験に落ちる」 need one of these to count.
_HEIGHT_OR_TRACK = (
    r"屋上|ビル|ベランダ|窓から|橋|高い所|高いところ|マンション|線路|ホーム|踏切|ふみきり|電車に|車に|トラック|車道"
)

# --------------------------------------------------------------------------------------------------------------------
# suicide: wanting to die or disappear, a plan, a method, or the wish not to wake up.
# --------------------------------------------------------------------------------------------------------------------
SUICIDE: list[Rule] = [
    # Wishes people also say in jest (「恥ずかしくて消えたい笑」): a joke marker cancels them unless the message
    # sounds serious. 「死にたくない」 is the opposite; 「し/に/たい/して」 is に対して.
    *_rules(
        "suicide",
        [
            SHI + r"に(?:たい|たく(?!ない)|たかった|たさ|たみ|てえ|てぇ)(?!へん|して|する|せつ|りょく)" + _EMBARRASSED,
            SHI + r"(?:んで|んじゃ)(?:しまいたい|いたい|しまおう)",
            SHI + r"のう(?:か|と思|とおも)",
            SHI + r"んで(?:たら|いたら|れば)(?:いい|良い|楽|らく)",
            # 「誰か殺してくれないかな」 (not 「上司を殺して」; not the ところ of 「したところしてくれた」).
            r"(?<!を)(?:殺|(?<!と)ころ)して(?:くれ|ほしい|欲しい|もらいたい)",
            r"(?:いっそ|もう)(?:楽|らく)になりたい|いつ" + SHI + r"んでも(?:いい|良い|かまわない)",
            r"逝き(?:たい|たく(?!ない))",
            # Disappearing: 「消えたい」「消えてしまいたい」「いなくなりたい」「いなくなったほうが楽」.
            r"(?:消|き)え(?:たい|たく(?!ない)|てしまいたい|ちゃいたい|てなくなりたい|られたら|れたら)" + _EMBARRASSED,
            # 「もう疲れたよ、さよならしたい」 (not 「この会社にさよならしたい」).
            r"(?<![にと])(?:さよなら|さようなら)(?:したい|しよう|します)|この世に(?:さよなら|さようなら|別れ)",
            r"この世から(?:消|き|いなく)|この世に(?:いたくない|未練)",
            r"(?:いなく|居なく)なる(?:つもり|予定|ことにした|って決め|と決め)",
            r"(?:いなく|居なく)(?:なりたい|なったほうが|なった方が|なれば|なれたら)",
            r"(?:私|わたし|自分|じぶん|僕|ぼく|俺|おれ|あたし)(?:が|なんか|なんて)?(?:いなく|居なく)(?:なっても|なったら)",
            r"(?:いない|居ない)(?:ほう|方)が(?:いい|良い|まし|楽|らく)",
            # 「死んだほうがまし」「いっそ死」「死ぬしかない」 are despair and also hyperbole.
            SHI + r"んだ(?:ほう|方)が(?:まし|楽|らく|いい)",
            SHI + r"(?:ねば|ねたら)(?:楽|らく|いい|みんな|皆|全部|すべて|幸せ|解決|済)",
            SHI + r"んだら(?:楽|らく)",
            SHI + r"ぬしか(?:ない)",
            r"いっそ" + SHI + r"(?:ん|の|ね|に)",
            # Wishing for an accident or for the morning not to come (「月曜が来なければ」 is ordinary dread).
            r"事故(?:に)?(?:でも)?(?:あえば|遭えば|あえたら|遭えたら|あわないかな|遭わないかな)",
            r"(?:車|くるま)に(?:ひかれ|轢かれ)(?:たら|れば)(?:楽|らく|休|いい)",
            r"(?:明日|あした|朝|あさ)(?:の朝)?が(?:来|こ)なければ(?:いい|良い)",
        ],
        joke_sensitive=True,
        first_person_only=True,
    ),
    *_rules(
        "suicide",
        [
            r"自殺(?!行為|対策|予防|防止)",
            r"自死|希死念慮|じさつ(?:したい|しよう|する|を考)",
            # Not waking up, not having been born: passive wishes that are easy to miss
            # (「トラブルが起きなければいい」 is about an event, so the sleeper must be there).
            r"(?:朝|あさ|明日|あした|もう|二度と|このまま|ずっと)(?:.{0,2})(?:起|お)きなければ(?:いい|良い|よかった)",
            r"目が?(?:覚|さ)めなければ",
            r"(?:生|う)まれて(?:こなければ|こなきゃ|来なければ)",
            # No reason to live.
            r"(?:生|い)き(?:てる|ている|ていく|る)(?:意味|価値|理由)(?:が|も|って)?"
            r"(?:ない|なく|わから|分から|見つから|見いだせ|見出せ|感じられ)",
            r"(?:生|い)きてる(?:意味|価値)(?:ある|あるの)",
            r"(?:生|い)きて(?:て|い)?も(?:仕方|しかた|しょうが|意味)(?:ない|が)",
            r"(?:生|い)きる(?:の|こと)を?(?:やめ|止め|諦め|あきらめ)",
            r"(?:生|い)きて(?:て|い)?も(?:迷惑|めいわく|無駄|むだ)",
            # 「永遠に眠りたい」 (not 「月曜は永遠に眠い」), 「眠ったまま目覚めなければ」 (not oversleeping).
            r"(?:永遠に|えいえんに)(?:眠|ねむ)(?:りたい|りにつき|ってしまいたい|れたら)",
            r"(?:眠|ねむ)ったまま(?:目覚め|めざめ|目が覚め|起きなければ|起きたくない|" + SHI + r"に)",
            r"二度と(?:目覚め|目が覚め|起きたくない)",
            r"(?:生|い)きて(?:い)?たくない|生きたくない",
            r"(?:生|い)きる(?:の|こと)(?:が|に)(?:つらい|辛い|しんどい|疲れ|つかれ|嫌|いや|面倒|めんどう)",
            r"(?:生|い)きてる(?:の|こと)が(?:つらい|辛い|しんどい|嫌|いや)",
            # Ending it all: 「もう限界、終わりにしたい」「今夜で全部終わりにしよう」「人生終わらせたい」.
            r"(?:もう|全部|ぜんぶ|すべて|全て|何もかも|なにもかも|人生|自分|命|いのち|限界|無理)(?:を|は|も|で)?"
            r"(?:終|お)わ(?:りに(?:したい|しよう|する)|らせ(?:たい|よう|る))",
            # Method, plan or preparation.
            SHI + r"ぬ(?:方法|ほうほう)|" + SHI + r"ねる(?:方法|ほうほう|場所|ばしょ|薬|くすり)",
            SHI + r"ぬ(?:こと|の)(?:ばかり|ばっかり|を|しか)?(?:考え|かんがえ)",
            r"(?:楽|らく)に" + SHI + r"ね",
            SHI + r"に(?:方|かた|場所|ばしょ)(?:を|ばかり|ばっかり)?(?:調べ|しらべ|検索|けんさく|探|さが)",
            r"遺書|いしょを書|(?:首|くび)を?吊|首つり|首つって|(?:首|くび)をつ(?:る|ろう|った)|練炭|身投げ",
            r"命を(?:絶|断)|ロープ(?:を)?(?:用意|買|準備)",
            SHI + r"んで(?:詫び|わび|償|つぐな)",
            r"(?:睡眠薬|薬|くすり)(?:を)?(?:ため|貯め|溜め|集め)(?:て|た)",
        ],
    ),
    # Jumping or falling, only where there is a height or a track (「飛び込み営業」「試験に落ちる」 are ordinary).
    *_rules(
        "suicide",
        [
            r"(?:飛|と)び(?:降|お)り(?!ない)",
            r"(?:飛|と)び(?:込|こ)(?:んだら|めば|みたい|みたく|もう|んでしま|む(?:しか|か))",
            r"(?:落|お)ちる(?:こと|の)?(?:ばかり|ばっかり|を)?(?:考え|かんがえ)",
            r"一歩(?:前に|まえに)?(?:出|で|踏み出|ふみだ)(?:たら|れば)",
            r"フェンス(?:を)?(?:越え|こえ|乗り越え|のりこえ)|吸い込まれ(?:そう|る)",
        ],
        requires=_HEIGHT_OR_TRACK,
    ),
    # A goodbye letter and "becoming free": the euphemism needs the letter or the goodbye next to it.
    *_rules(
        "suicide",
        [r"(?:楽|らく)になろう(?:と思|とおも|かな)", r"(?:手紙|メッセージ|遺言)を?(?:残して|のこして|書いて)"],
        requires=r"手紙を|遺言|さよなら|限界|終わりに",
    ),
    *_rules(
        "suicide",
        [r"(?:屋上|ビル|ベランダ|窓|橋|ホーム)から(?:飛び|とび|飛ん|とん|落ち|おち)(?:だら|たら|れば|よう|たい)"],
    ),
]

# --------------------------------------------------------------------------------------------------------------------
# self-harm: cutting, burning, hitting or biting oneself, overdosing, hiding wounds.
# --------------------------------------------------------------------------------------------------------------------
_PHONE_BEFORE = r"(?<!電話)(?<!通話)(?<!電話を)(?<!通話を)(?<!でんわ)"
SELF_HARM: list[Rule] = _rules(
    "self-harm",
    [
        r"リスカ|リストカット|アムカ|アームカット|レグカ|自傷|じしょう(?:こうい|が|を|して|やめ|癖|ぐせ)",
        r"根性焼き|過量服薬|大量服薬|オーバードーズ|(?<![a-z])od(?![a-z])",
        # Cutting a body part (not 足切り, the exam cut-off line; not 「電話をまた切っちゃった」).
        r"(?:腕|うで|手首|てくび|太もも|ふともも|太腿|脚|肌|お腹)を?(?:切|き)(?:っ|る|ら|り)",
        r"(?:腕|うで|手首|てくび|太もも|ふともも|太腿|脚)(?:なら|だと|は|に|も|の内側)(?:.{0,6}?)"
        r"(?:切|き)(?:ってる|っている|った|っちゃ|ってしま)",
        r"(?:切|き)ると(?:落ち着|おちつ|楽|らく|安心|ほっと|すっきり)",
        r"(?:切|き)らないと(?:落ち着|おちつ|眠|ねむ|寝|家|出られ|でられ|いられ|だめ|無理|不安)",
        r"(?:切|き)りたい(?:衝動|気持ち|しょうどう)",
        r"(?<!を)(?<!と)(?:切|き)りたく(?:て(?:仕方|しかた|たまら|しょうがな)|なる(?:衝動|しょうどう))",
        r"(?:カミソリ|剃刀|刃物|ナイフ)で(?:.{0,4})(?:切|き)(?:った|って|る|り)|カッターで(?:腕|うで|手首|自分|太もも|肌)",
        _PHONE_BEFORE + r"(?:また|今週|今日も|昨日も|きょうも|きのうも|\d+回)(?:も)?(?:切|き)(?:った|っちゃ|ってしま)",
        r"(?:カッター|剃刀|かみそり|刃物)(?:を|が)?(?:持って(?:い)?ないと|ないと)(?:不安|落ち着|おちつ|怖|こわ)",
        # Wounds and hiding them.
        r"(?:腕|うで|手首|てくび)に(?:線|傷|きず)|(?:腕|うで|手首|てくび)の(?:傷|きず)|(?:傷|きず)(?:跡|あと)を?隠|長袖で(?:隠|かく|ごまかし)",
        r"血が(?:出る|でる)まで|(?:腕|うで|肌|手|首|脚)を?(?:かきむし|掻きむし)",
        r"(?:爪|つめ)で(?:腕|うで|手首|手の甲|肌|自分|顔)|(?:腕|うで|手|肌|顔)を(?:爪|つめ)で",
        r"(?:腕|うで|手首|肌)が?(?:傷|きず|血)だらけ",
        # Hitting, biting, burning, punishing oneself (「自分を責める」 and 「自分で叩き台を」 are not it).
        r"(?:自分|じぶん)を(?:殴|なぐ|叩|たた|傷|きず|罰|噛|痛めつけ|いためつけ)",
        r"(?:自分|じぶん)の(?:顔|頭|腕|体|からだ|足|手|太もも|ふともも|脚|お腹)を(?:殴|なぐ|叩|たた|傷|きず|切|噛)",
        r"(?:頭|あたま)を?(?:壁|かべ|机|つくえ|床|ゆか)に(?:打|う|ぶつ)|(?:壁|かべ|机|つくえ)を(?:殴|なぐ)",
        r"わざと(?:.{0,6})(?:怪我|けが|傷|切|火傷|やけど)|(?:怪我|けが|傷|火傷|やけど)(?:を)?(?:した|して|する)(?:.{0,4})わざと",
        r"(?:髪|かみ)(?:の毛)?を(?:むし|かきむし)|(?:髪|かみ)(?:の毛)?を(?:抜|ぬ)(?:いてしま|くのがやめられ|くのを止められ)",
        r"(?:傷|血)を見ると(?:安心|落ち着|おちつ|ほっと|楽)|(?:爪|つめ)を(?:はが|剥が)してしま",
        r"(?:薬|錠剤|市販薬|処方薬|睡眠薬)(?:.{0,6})(?:一気飲み|まとめ飲み|がぶ飲み)",
        r"(?:火|ひ)を(?:腕|手|うで|自分|肌)に?(?:押し?付け|おしつけ|当て)",
        r"(?:たばこ|タバコ|煙草|ライター)(?:の火)?を?(?:腕|手|うで|自分|肌)に",
        r"(?:腕|うで|手|指)に噛み(?:跡|あと)",
        # Taking more medicine than prescribed (not 「風邪薬を全部飲みきった」「3種類以上の薬を飲んでいる」).
        r"(?:薬|くすり|錠剤|睡眠薬|市販薬|処方薬)を?(?:大量|たくさん|いっぱい|まとめて|多め|多く|一度に|一気に|いっきに)に?(?:全部)?(?:飲|の)",
        r"(?:大量|いっぱい|まとめて|多めに|多く|量より多く)の?(?:薬|くすり|錠剤|睡眠薬|市販薬)を?(?:飲|の)",
    ],
)

# --------------------------------------------------------------------------------------------------------------------
# mental: acute breakdown — panic, crying that will not stop, unable to get up, eat or sleep for days, voices.
# All only about oneself: 「同僚がパニック障害で休職中」「部下が涙が止まらない様子で」 are questions about others.
# --------------------------------------------------------------------------------------------------------------------
# Lasting days, not one bad night: what turns sleep, getting up or staying in into a breakdown.
FOR_DAYS_NEAR = 20  # characters between a sign and how long it has gone on (one sentence's reach)
_FOR_DAYS = r"何日|\d+日|週間|(?:\d+|何|一|1)(?:か|ゕ|ゖ|こ)?月|一睡|頭がおかしく"
MENTAL: list[Rule] = [
    *_rules(
        "mental",
        [
            r"パニック(?:(?:に|を)(?!ならない|させない|起こさない|防)|で|発作|状態)|過呼吸|かこきゅう",
            r"パニック(?:を)?(?:起こ|おこ)(?:し|す)",
            r"(?:息|いき)が(?:でき|出来|吸え|すえ)(?:ない|なく)",
            r"動悸が(?:止|と)まらな|動悸が(?:ひどくて|おさまらな)",
            # The body refusing work: vomiting before it, nausea that will not stop.
            r"吐き気が(?:止|と)まらな|(?:毎朝|毎日|会社の前で|出勤前に?|駅で)(?:.{0,4})吐い(?:て|ちゃ|た)",
            r"視界が(?:ぐるぐる|ゆがむ|歪む|暗く)",
            # Frozen by fear (「渋滞で動けなくなった」 is traffic).
            r"(?:足|あし)が(?:すくんで|すくむ)|(?:体|からだ|足|あし)が(?:動|うご)け(?:ない|なく)",
            r"(?:怖くて|こわくて|震えて|ふるえて)(?:動|うご)け(?:ない|なく)",
            r"(?:足|あし|体|からだ)が(?:止|と)まって(?:動|うご)けな",
            r"呼吸が(?:苦し|くるし|でき|浅く|あさく)|(?:息|いき)が(?:苦し|くるし)くな",
            r"感情が(?:何も)?(?:わかない|湧かない|なくなっ|なくなる)",
            # Not eating.
            r"何も(?:食べ|たべ)(?:られ|れ)(?:ない|なく)|(?:ご飯|ごはん|食事)が(?:喉|のど)を通らない",
            # Losing hold of oneself; voices; being watched.
            r"(?:自分|じぶん)が(?:自分|じぶん)じゃない|(?:手|体|からだ)の感覚が(?:ない|なく)",
            r"(?:頭の中|あたまのなか)で(?:.{0,6})(?:声|こえ)が(?:する|聞こえ|きこえ)",
            r"(?:誰か|だれか)の(?:声|こえ)が(?:する|聞こえ|きこえ)",
            r"幻聴|幻覚|げんちょう|(?:誰|だれ)も(?:い|居)ないのに(?:.{0,10})(?:声|こえ|音|呼ばれ|話しかけ)",
            r"(?:誰か|だれか)に(?:見張られ|みはられ|監視され|つけられ|狙われ|ねらわれ)|盗聴され|監視されてる気が",
        ],
        first_person_only=True,
    ),
    # Tears, panic and "going mad" are also everyday hyperbole (「プレゼンでパニクった笑」「涙が止まらない笑」).
    *_rules(
        "mental",
        [
            r"(?:涙|なみだ)が(?:.{0,6})(?:止|と)まらな",
            r"(?:泣|な)き(?:止|や)(?:ま|め)(?:ない|なく|られ)",
            r"(?:ずっと|毎日|毎晩|\d+時間(?:も)?|朝から|一日中|いちにちじゅう)(?:泣|な)い(?:て|た|ちゃ)",
            r"(?:勝手に|理由もなく|理由もわからず)(?:涙|なみだ|泣|ないて|ないちゃ)",
            r"(?:涙|なみだ)が(?:勝手に|理由もなく|急に|ずっと)",
            r"パニクっ|叫び(?:出し|だし)そう",
            r"(?:震|ふる)え(?:が|て)?(?:止|と)まらな|発狂",
            r"(?:頭|あたま)が(?:おかしく|変に|へんに)(?:なりそう|なる|なって|なった)|気が(?:狂|くる)(?:いそう|う)",
            r"(?:自分|じぶん|心|こころ)が(?:壊|こわ)れ(?:そう|た|て|る)",
        ],
        joke_sensitive=True,
        first_person_only=True,
    ),
    # Not sleeping, not getting up, not bathing, not leaving the house: a breakdown when it has gone on for days.
    # 「毎日怒られて眠れない」「朝起き上がれない」 on their own are what the burnout and overwork articles answer.
    *_rules(
        "mental",
        [
            r"(?:ベッド|布団|ふとん)から(?:出|で|起き上が|おきあが|起き|おき)(?:られ|れ)(?:ない|なく|て(?:い)?ない|なかった)",
            r"(?:起き上が|おきあが)れ(?:ない|なく)|(?:ほとんど|ずっと)(?:布団|ふとん|ベッド)(?:の中|から出)",
            r"(?:眠|ねむ)れ(?:ない|なく|てない|ていない)|一睡も(?:でき|出来)",
            r"(?:体|からだ)が(?:動か|うごか)(?:ない|なく)",
            r"(?:風呂|ふろ)(?:に)?(?:も)?(?:入|はい)れて?(?:ない|いない)",
            r"(?:家|部屋|へや)から(?:出|で)られ(?:ない|なく|てない)",
            r"(?:ご飯|ごはん|食事)(?:が|を|も)?(?:食べ|たべ)(?:られ|れ)(?:ない|なく)",
        ],
        requires=_FOR_DAYS,
        first_person_only=True,
        near=FOR_DAYS_NEAR,
    ),
    # Tears, vomiting, numbness: a breakdown when they come every day or will not stop.
    *_rules(
        "mental",
        [
            r"(?:涙|なみだ)が(?:出て(?:くる|きて|しまう)|でてくる)",
            r"何も(?:感じ|かんじ)(?:なく|ない|られ)",
            r"吐いて(?:しまう|しまっ)",
        ],
        requires=_FOR_DAYS + r"|毎日|ずっと|止まらな|とまらな",
        first_person_only=True,
        near=FOR_DAYS_NEAR,
    ),
]

# --------------------------------------------------------------------------------------------------------------------
# harassment-severe: violence, sexual harassment or assault, threats, stalking.
# --------------------------------------------------------------------------------------------------------------------
HARASSMENT: list[Rule] = [
    *_rules(
        "harassment-severe",
        [
            # Violence (「殴り書き」 is handwriting; 「提案を蹴られた」 is a rejection; 「上司に殺される笑」 a deadline).
            r"(?:殴|なぐ)(?:られ|らせろ)|(?<!案を)(?<!件を)(?<!望を)(?<!求を)(?<!画を)(?<!約を)(?<!ふぁを)蹴られ",
            r"暴力(?!的|団|映画|ゲーム|表現)|暴行",
            r"(?:人|客|上司|先輩|男|女|同僚|相手|店長|社長|部長|課長|取引先)(?:に|から)(?:.{0,4})(?:襲われ|おそわれ)",
            # Not the shoulder: 「肩を叩かれた」 is the idiom for being nudged to resign (a hit shows as 殴られ, どつかれ).
            r"(?:頭|顔|頬|ほお|背中|体|からだ|お尻)を?(?:(?:叩|たた|はた|ぶ)(?:かれ|たれ)|(?:引っぱた|ひっぱた)かれ)",
            r"ビンタ|往復びんた|胸ぐら|むなぐら|(?:首|くび)を(?:絞|し)められ|(?:突き飛ばさ|つきとばさ)れ",
            r"(?:物|もの|灰皿|書類|ファイル|椅子|いす|ペン|資料)を?投げ(?:つけ)?られ(?!るように)",
            r"(?:壁|かべ)に(?:押し?付け|おしつけ)られ|引きずられ|ひきずられ",
            r"(?:髪|かみ|腕|うで)を(?:引っ張|ひっぱ)られ|(?:髪|かみ|腕|うで)を(?:掴|つか)まれ",
            # Threats made to the worker (not the worker's own 「ぶっ殺したい笑」).
            r"(?:殺|ころ)(?:すぞ|してやる|すって(?:言|い)われ|すと(?:言|い)われ|すと(?:脅|おど))",
            r"(?:殴|なぐ)る(?:ぞ|って(?:言|い)われ|と(?:言|い)われ|と(?:脅|おど))",
            r"(?:脅|おど)(?:さ|かさ)れ|脅迫|(?:火|ひ)を?(?:つけ|付け)(?:るぞ|てやる)|(?:ただ|タダ)じゃ(?:おかない|済まない|すまない)",
            r"(?:覚えて|おぼえて)(?:ろ|おけ)(?:よ)?(?:って|と)(?:言|い)われ",
            r"(?:家族|かぞく)(?:が|も)(?:どうなっても|どうなるか(?:わか|分か|知ら))|(?:家族|かぞく)に(?:何|なに)か(?:する|して)",
            r"(?:死|し|氏)ね(?:って|と)(?:言|い|怒鳴|どな)",
            # Sexual harassment and assault.
            r"(?:体|からだ|胸|むね|お尻|おしり|尻|太もも|ふともも|腰|こし|脚|下半身|股|髪)(?:を|や|とか)?"
            r"(?:何回も|何度も|しつこく|ずっと|勝手に)?(?:触|さわ)(?:られ|ってく|ってき)",
            r"(?:無理やり|むりやり|無理矢理|強引に)(?:.{0,8})(?:触|さわ|キス|きす|ホテル|連れ込|つれこ|抱きつ|抱きしめ|脱が)",
            r"(?:キス|きす)(?:を)?(?:され|迫られ|せまられ)|(?:抱きつか|だきつか)れ",
            r"(?:胸|むね|お尻|おしり|尻)を?(?:揉|も)まれ|(?:体|からだ)を?(?:密着|すり寄せ|押し付けて|押しつけて)",
            r"(?:性的|せいてき)な(?:関係|発言|嫌がらせ|写真|画像|こと)|(?:体|からだ)の関係",
            r"(?:関係|付き合い|交際)を(?:迫|せま)られ",
            r"ホテルに(?:誘|さそ|連れ|つれ)|(?:連れ込|つれこ)(?:まれ|もう)|(?:同じ部屋|同室)に(?:泊|と)ま",
            r"(?:裸|はだか|下着|したぎ)の?(?:写真|画像|動画|自撮り)",
            r"レイプ|強姦|性暴力|性被害|性的暴行|わいせつ|痴漢|盗撮|とうさつ|(?:押し倒|おしたお)さ",
            r"セクハラ(?:され|を受け|をうけ|に遭|にあっ|被害|がひどい)",
            r"(?:酔わさ|よわさ)れ|何があったか(?:覚えて|おぼえて)(?:ない|いない)",
            # Stalking (「ストーカーみたいに進捗を聞く上司」 is a figure of speech; 「ですとか」 folds to the same letters).
            r"待ち伏せ|まちぶせ|(?:つきまと|付きまと|付け回|つけまわ)(?!われる(?:くらい|ぐらい|ほど))",
            r"(?<!で)ストーカー(?:され|行為|被害|に(?:され|遭|あ|なっ)|化|まがい)",
            r"住所を?(?:調べ|特定|突き止)",
            r"(?:家|自宅)(?:の前)?まで(?:押しかけ|押し掛け|つけ|ついて)|(?:家|自宅)に(?:押しかけ|押し掛け)",
            r"(?:帰り道|帰り|あとを|後を)(?:ずっと)?(?:つけ|付け|ついて|付いて)(?:て|られ|こられ|くる|来る|きて)",
            r"(?:sns|えすえぬえす)(?:も)?(?:全部|ずっと)?(?:見られ|監視され|チェックされ)",
        ],
    ),
    # Calls or messages by the dozen, when they come at night or frighten (not a busy client's e-mail).
    *_rules(
        "harassment-severe",
        [
            r"(?:何十|何百|\d{2,})(?:回|件|通)(?:も)?(?:電話|でんわ|line|ライン|メール|連絡|着信|メッセージ)",
            r"(?:電話|でんわ|line|ライン|メール|連絡|着信|メッセージ)(?:が|を)?(?:何十|何百|\d{2,})(?:回|件|通)",
        ],
        requires=r"夜中|深夜|毎晩|夜に|怖|こわ|休日|プライベート",
    ),
    # "Refuse and you lose the contract/rating" is sexual coercion when the demand is personal.
    *_rules(
        "harassment-severe",
        [r"(?:断|ことわ)(?:ったら|ると|れば)(?:.{0,10})(?:契約|評価|査定|仕事|クビ|くび|首|異動|飛ばす)"],
        requires=r"会いたい|飲み|食事|デート|泊|ホテル|二人|ふたり|付き合|交際|関係を|キス|写真|部屋",
    ),
]

# --------------------------------------------------------------------------------------------------------------------
# labor-law: clearly illegal treatment — unpaid wages or overtime, unrecorded work, no paid leave at all,
# dismissal on the spot, blocked resignation. Questions about how things work (「残業代ってどう計算？」) and
# hearsay (「〜って本当？」) are not it.
# --------------------------------------------------------------------------------------------------------------------
# ...but not 「休職中は給料が出ない期間がある」, which is about how leave works.
_NOT_PAID = r"(?:ない|ません|てない|ていない|なく|なかった)(?!期間|間は|なら|場合|とき|時)"
# 「2か月」「半年」「何ヶ月も」 between the wage and the verb (ヶ/ヵ fold to small hiragana ゖ/ゕ).
_FOR_A_WHILE = r"(?:(?:\d+|何|数|半)(?:か|ゕ|ゖ|こ)?(?:月|年|週間|日)(?:も|間|以上|分)?)?"
LABOR: list[Rule] = _rules(
    "labor-law",
    [
        # Unpaid overtime and wages.
        r"(?:残業代|ざんぎょうだい|残業手当|時間外手当)(?:が|は|を)?(?:一円も|1円も|全く|まったく|全然|ぜんぜん|一切)?"
        r"(?:出|で|払われ|はらわれ|支払われ|もらえ|つか|付か)" + _NOT_PAID,
        r"(?:残業代|ざんぎょうだい)(?:なし|ゼロ|ぜろ|0円)|サービス残業|サビ残|タダ働き|ただ働き",
        r"(?:残業代|賃金|給料|給与)(?:の)?未払い|未払い(?:の)?(?:残業代|賃金|給料|給与)",
        r"(?:給料|給与|賃金|きゅうりょう|バイト代|報酬)(?:が|は|を)?(?:まだ)?" + _FOR_A_WHILE + r"(?:まだ)?"
        r"(?:振り込まれ|振込まれ|ふりこまれ|支払われ|払われ|はらわれ|入って|はいって|出て|もらえ)" + _NOT_PAID,
        r"(?:給料|給与|賃金)(?:が|は)?(?:出|で)" + _NOT_PAID,
        r"振込が?(?:ない|ありません|なかった|されて(?:い)?ない)",
        r"(?:給料|給与|賃金)(?:は|を)?(?:払|はら|支払)わ(?:ない|ねえ|ん)",
        r"(?:給料|給与)が?(?:半分|一部|\d+割)しか",
        r"(?:給料|給与|賃金)(?:の)?(?:支払い|振込|振り込み)?(?:が|は)?(?:.{0,4})(?:遅れ|遅配|おくれ)",
        r"(?:罰金|弁償|ペナルティ)(?:として|で)?(?:.{0,8})(?:引かれ|払わされ|取られ)",
        r"最低賃金(?:より|を)?(?:低|下回|以下|未満)",
        r"休憩(?:が|を)?(?:取れて|とれて|もらえて)(?:い)?ないのに",
        r"休憩(?:時間)?(?:も|中も|中に)(?:電話番|仕事|対応|作業)(?:を)?(?:させられ|しろ|やれ|させ|命じ)",
        # Work that is kept off the record (not 「打刻前に着替える」).
        r"(?:タイムカード|打刻)(?:を)?(?:定時で|先に)?(?:切|押)(?:って|した|らされ|させられ)(?:から|後|あと)(?:に|で|も)?"
        r"(?:残業|働|はたら|仕事|作業)",
        r"(?:タイムカード|打刻)(?:を)?(?:定時で|定時に|先に)(?:切|押)(?:らされ|させられ|せと|せって|しろ|して(?:から|後|あと))",
        r"打刻(?:前|後)に(?:.{0,6})(?:やれ|やらされ|働かされ|させられ|しろ)",
        r"打刻(?:せず|しないで)(?:に)?(?:働|仕事|残業)(?:かされ|させられ|しろ)",
        r"(?:タイムカード|打刻)(?:も|を)?(?:押|お|切|き)させて(?:もらえ|くれ)(?:ない)",
        # No paid leave at all.
        r"(?:有給|有休|ゆうきゅう|年休)(?:休暇)?(?:を|が|は)?(?:一日も|1日も|一度も|全然|まったく)?"
        r"(?:取らせて|使わせて|とらせて|つかわせて)(?:もらえ|くれ)(?:ない|ません)",
        r"(?:有給|有休)(?:休暇)?(?:なんて|なんか|は|が)?(?:ない|無い)(?:って|と|から)",
        r"(?:有給|有休)(?:休暇)?(?:の)?(?:申請)?(?:を)?(?:却下|拒否|認めてもらえ)",
        r"(?:有給|有休).{0,24}(?:一日も|1日も|一度も)(?:取れ|とれ|使え|取った|とった|使った|つかった)",
        r"(?:有給|有休).{0,10}(?:取|と|使|つか)(?:ったら|うなら|ると)(?:評価|査定|クビ|くび|首|減給)",
        # Dismissal on the spot (「首になるかも」 is a worry; 「今日も首と肩が凝って」 is a neck).
        r"(?:今日|きょう|本日|即日|その場|いきなり|突然|とつぜん|急に)(?:で|に)?(?:.{0,6})"
        r"(?:(?:クビ|くび)(?:だ|と|って|に(?:され|なっ)|され|を)|(?:首|解雇|かいこ)(?:だ(?!る)|って(?:言|い)|と(?:言|い)|に(?:され|なっ)|され|を(?:言い渡|告げ)))",
        r"即日解雇|(?:明日|あした|来週|今日)から(?:もう)?(?:来|こ)(?:なくて(?:いい|良い)|るな)|(?:お前|おまえ)は(?:クビ|くび|首)",
        r"荷物(?:を)?まとめ(?:ろ|て出て(?:いけ|行け|け))|解雇予告(?:手当)?(?:も|が)?(?:なし|ない|なく)",
        r"(?:妊娠|にんしん|産休|育休)(?:.{0,14})(?:解雇|クビ|くび|首|打ち切|辞め(?:ろ|て(?:ほしい|もらう|くれ))|退職(?:しろ|を迫))",
        # Resignation blocked or punished.
        r"(?:辞め|やめ|退職)させて(?:もらえ|くれ)(?:ない|ません)",
        r"退職(?:届|願)を?(?:受け取って|受理して)(?:もらえ|くれ)(?:ない)",
        r"(?:辞め|やめ|退職)(?:.{0,12})(?:損害賠償|訴え|違約金)",
        r"労災(?:を)?(?:隠|使わせて(?:もらえ|くれ)ない|申請させて(?:もらえ|くれ)ない)",
    ],
    hearsay_cancels=True,
)

FAMILIES: dict[EscalationKind, list[Rule]] = {
    "suicide": SUICIDE,
    "self-harm": SELF_HARM,
    "mental": MENTAL,
    "harassment-severe": HARASSMENT,
    "labor-law": LABOR,
}


def _negated(norm: str, end: int) -> bool:
    return bool(_NEGATION_AFTER.match(norm[end : end + _NEGATION_WINDOW]))


def _sentence_ends(text: str) -> list[int]:
    """Where each sentence of `text` ends in its normalised form (punctuation is dropped there)."""
    ends: list[int] = []
    position = 0
    for part in re.split(r"[。！？!?\n]", unicodedata.normalize("NFKC", text)):
        position += len(normalize(part))
        ends.append(position)
    return ends


FRAGMENT_CHARS = 10  # a sentence this short next to the sign belongs to it: 「涙が出てくる。毎日」「…。もう2週間」


def _sentence_span(ends: list[int], at: int) -> tuple[int, int]:
    """The span of the sentence holding position `at`, with a short fragment before or after it."""
    starts = [0, *ends[:-1]]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if at < end or index == len(ends) - 1:
            if index > 0 and start - starts[index - 1] <= FRAGMENT_CHARS:
                start = starts[index - 1]
            if index + 1 < len(ends) and ends[index + 1] - end <= FRAGMENT_CHARS:
                end = ends[index + 1]
            return start, end
    return 0, at


def _fires(rule: Rule, norm: str, joking: bool, sentence_ends: list[int] | None = None) -> str | None:
    """The cue if the rule fires on the normalised message, after its guards."""
    if rule.joke_sensitive and joking:
        return None
    if rule.requires is not None and not rule.requires.search(norm):
        return None
    for match in rule.pattern.finditer(norm):
        if _negated(norm, match.end()):
            continue
        if rule.hearsay_cancels and _HEARSAY_AFTER.match(norm, match.end()):
            continue
        if rule.first_person_only and _THIRD_PERSON_BEFORE.search(norm[max(0, match.start() - 8) : match.start()]):
            continue
        if rule.near and rule.requires is not None and sentence_ends:
            # Within the sentence, too: 「…夜も眠れなくなります。最初の1か月…」 is two thoughts (the normalised text
            # has no punctuation, so the sentences' spans are read off the original).
            start, end = _sentence_span(sentence_ends, match.start())
            around = norm[max(start, match.start() - rule.near) : min(end, match.end() + rule.near)]
            if not rule.requires.search(around):
                continue
        return match.group()
    return None


def detect_crisis(text: str) -> CrisisSignal | None:
    """The most urgent crisis the message signals, or None for an ordinary message."""
    if not text or not text.strip():
        return None
    nfkc = unicodedata.normalize("NFKC", text).lower()
    norm = normalize(text)
    joking = bool(_JOKE.search(nfkc)) and not _SERIOUS.search(norm)
    ends = _sentence_ends(text)
    for kind in PRIORITY:
        for rule in FAMILIES[kind]:
            cue = _fires(rule, norm, joking, ends)
            if cue is not None:
                return CrisisSignal(kind, cue)
    return None
