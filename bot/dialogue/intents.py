"""What kind of turn a message is: commands, small talk, follow-ups on the current article, or a new worry.

Rules over the normalised message; they only decide *how* to answer. What the answer says always comes from the
articles (or the reply templates in prompts/).
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from bot.retrieval.tokenize_ja import get_tokenizer


class Intent(StrEnum):
    RESET = "reset"
    DELETE = "delete"
    GREETING = "greeting"
    THANKS = "thanks"
    BYE = "bye"
    ACK = "ack"
    MORE = "more"
    NEXT = "next"
    CASE = "case"
    EXPERT = "expert"
    OTHER = "other"
    KEEP_TALKING = "keep_talking"
    CONTINUE = "continue"  # after a check-in: go on with the worry that was set aside
    MESSAGE = "message"  # a worry or a question: retrieval decides


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[\s。、！!？?…〜~・ｗw笑]+$", "", text).strip()


# Commands fire only when the whole message is the command, after trimming polite words and punctuation:
# 「データを削除してください」 deletes, 「上司に『記録は全部消しておけ』と言われて…」 is a worry (and goes through the
# safety check first, like every message).
_POLITE_TAIL = re.compile(
    r"(して)?(ください|下さい|くださいませ|ほしい|欲しい|ほしいです|もらえますか|もらえる|くれる|くれますか|お願いします|"
    r"おねがいします|お願い|おねがい|したい|したいです|します|する|して|しといて|しておいて|できますか|できる)$"
)
_POLITE_HEAD = re.compile(r"^(すみません|すいません|あの|えっと|では|じゃあ|じゃ|それでは)[、,\s]*")
_COMMANDS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        Intent.DELETE,
        re.compile(
            r"(/delete|(これまでの|今までの|いままでの|私の|わたしの)?(データ|履歴|記録|会話|会話の記録|会話履歴|相談履歴)"
            r"(を)?(すべて|全部|ぜんぶ)?(削除|消去|消|けし|け)(して)?)"
        ),
    ),
    (
        Intent.RESET,
        re.compile(r"(/reset|リセット|りせっと|reset|最初から|はじめから|やり直し|新しい相談|新しく相談)"),
    ),
]


def command_text(text: str) -> str:
    """The message with greetings, polite endings and punctuation trimmed: what a whole-message command is matched on."""
    t = normalise(text)
    t = re.sub(r"[\s。、！!？?…〜~・「」『』()（）]+", "", t)
    for _ in range(2):
        t = _POLITE_HEAD.sub("", t)
        t = _POLITE_TAIL.sub("", t)
    return t


def parse_command(text: str) -> Intent | None:
    """DELETE or RESET when the whole message is that command; None for anything else (a worry that mentions one)."""
    t = command_text(text)
    for intent, pattern in _COMMANDS:
        if pattern.fullmatch(t):
            return intent
    return None


# Short replies only: a long message that happens to contain "ありがとう" is still a worry.
_SHORT: list[tuple[Intent, re.Pattern[str]]] = [
    (Intent.THANKS, re.compile(r"ありがと|有難|助かり|感謝|thank|サンキュ|さんきゅ")),
    (
        Intent.GREETING,
        re.compile(r"^(こんにちは|こんばんは|おはよう|はじめまして|初めまして|よろしく|hello|hi|hey|やあ|もしもし)"),
    ),
    (Intent.BYE, re.compile(r"^(おやすみ|またね|さようなら|さよなら|バイバイ|ばいばい|じゃあね|失礼します)")),
    (
        Intent.ACK,
        re.compile(
            r"^(はい|うん|了解|りょうかい|わかった|分かった|わかりました|分かりました|ok|オッケー|なるほど|そっか|そうですね|たしかに)$"
        ),
    ),
]
_FOLLOW: list[tuple[Intent, re.Pattern[str]]] = [
    (Intent.KEEP_TALKING, re.compile(r"もう少し話を聞いて|話を聞いてほしい|聞いてほしい")),
    (Intent.CONTINUE, re.compile(r"^(仕事の)?(相談|話)(を|の)?(続け|つづけ)|^続けて(ください|ほしい)?$")),
    (Intent.OTHER, re.compile(r"^(別|他|ほか|違う)の(悩み|相談|話)")),
    (Intent.CASE, re.compile(r"成功事例|事例|体験談|乗り越えた(人|例)|実例")),
    (Intent.EXPERT, re.compile(r"専門家|相談先|相談窓口|どこに相談|プロに相談|相談できる(ところ|場所)")),
    (Intent.NEXT, re.compile(r"^(次|つぎ)(の|に)?(ステップ|一歩|こと|何)?|その次|次は")),
    (Intent.MORE, re.compile(r"^(もっと|もう少し|さらに)?(詳しく|くわしく|詳細)|全部見せて|続きを")),
]

SHORT_LIMIT = 20
FOLLOW_LIMIT = 24


def classify(text: str) -> Intent:
    command = parse_command(text)
    if command is not None:
        return command
    t = normalise(text)
    if len(t) <= SHORT_LIMIT:
        for intent, pattern in _SHORT:
            if pattern.search(t):
                return intent
    if len(t) <= FOLLOW_LIMIT:
        for intent, pattern in _FOLLOW:
            if pattern.search(t):
                return intent
    return Intent.MESSAGE


# Words that say "something is wrong" without saying what: a message made only of these cannot be placed.
_GENERIC = frozenset(
    [
        "仕事",
        "会社",
        "職場",
        "働く",
        "毎日",
        "最近",
        "今日",
        "朝",
        "明日",
        "人生",
        "将来",
        "キャリア",
        "悩み",
        "悩む",
        "相談",
        "話",
        "聞く",
        "助言",
        "アドバイス",
        "困る",
        "辛い",
        "つらい",
        "しんどい",
        "きつい",
        "疲れる",
        "つかれる",
        "嫌",
        "いや",
        "嫌だ",
        "やだ",
        "無理",
        "むり",
        "最悪",
        "憂鬱",
        "ゆううつ",
        "不安",
        "ストレス",
        "もやもや",
        "モヤモヤ",
        "何",
        "なに",
        "どう",
        "どうする",
        "どうすれば",
        "どうしたら",
        "良い",
        "いい",
        "分かる",
        "わかる",
        "ない",
        "行く",
        "行きたい",
        "たい",
        "もう",
        "なんか",
        "なんとか",
        "色々",
        "いろいろ",
        "全部",
        "何もかも",
        "こと",
        "ばかり",
        "うまく",
        "上手く",
        "行く",
        "いく",
        "事",
        "このまま",
        "大丈夫",
        "やる気",
        "出る",
        "気",
        "つまらない",
        "つまんない",
        "ちょっと",
        "本当",
        "ほんと",
        "すごい",
        "凄い",
        "とても",
        "今",
        "はぁ",
        "ため息",
        "ほしい",
        "欲しい",
        "自分",
        "私",
        "僕",
        "俺",
        "うち",
        "感じ",
        "思う",
        "気持ち",
        "心",
        "的",
        "さ",
        "方",
        "ほう",
        "言う",
        "今日も",
        "る",
        "来る",
        "くる",
        "ます",
        "です",
        "みたい",
        "いる",
        "ある",
        "する",
        "なる",
        "できる",
        "出来る",
        "前",
        "後",
        "時",
        "日",
        "中",
        "おる",
        "多い",
        "なんで",
        "何で",
        "なぜ",
        "どうして",
        "続く",
        "向く",
        "進む",
        "行ける",
        "一番",
        "全く",
        "全然",
        "ぜんぜん",
        "まったく",
        "誰",
        "だれ",
        "頑張る",
        "がんばる",
        "気力",
        "元気",
        "だめ",
        "ダメ",
        "駄目",
        "もやる",
        "苦しい",
        "怖い",
        "無い",
        "為る",
        "有る",
        "旨い",
        "遣る気",
        "詰まる",
        "一寸",
        "同士",
        "此の",
        "侭",
        "彼",
        "成る",
        "つく",
        "や",
        "はあ",
        "聞く",
        "欲しい",
        "居る",
        "言う",
        "様",
        "之",
        "其の",
        "何だか",
    ]
)


def is_vague(text: str) -> bool:
    """True when nothing in the message says what kind of trouble it is (「仕事がつらい」「もう疲れた」)."""
    tokens = [t for t in get_tokenizer().tokens(text) if not re.fullmatch(r"[\W\d_]+", t)]
    content = [t for t in tokens if t not in _GENERIC]
    return len(content) == 0


_QUESTION = re.compile(
    r"[?？]|どう(すれば|したら|やって|言えば|伝えれば)|何て|なんて言|教えて|いい(の|です)?か|ですか|ますか|べき"
)
_DEICTIC = re.compile(r"^(それ|その|そこ|あれ|じゃあ|では|で、|なら|ちなみに)|その(ステップ|方法|やり方|こと)|さっきの")


# "How do I do / say it" questions ask about carrying out advice already given, not about a new worry.
_HOW_TO = re.compile(
    r"何て言え|なんて言え|何と言え|どう(言え|伝え|切り出|書け|やって|進め|頼め|聞け|すれば|したら|説明す|謝れ|謝っ|断れ|断っ|返せ|返事す|お願いす)"
    r"|何から|どこから|いつ(言え|伝え)|例文|言い方|伝え方|書き方|謝り方|断り方|説明の仕方"
)


def is_how_to_question(text: str) -> bool:
    t = normalise(text)
    return len(t) <= 40 and bool(_HOW_TO.search(t))


def looks_like_follow_up_question(text: str) -> bool:
    """A short question that reads as being about what was just discussed."""
    t = normalise(text)
    return len(t) <= 60 and bool(_QUESTION.search(t) or _DEICTIC.search(t))
