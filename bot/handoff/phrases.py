"""A message that asks for a person, or asks to go back to the bot: the whole message, never a word inside a worry
(「上司と話したいけど怖い」 is a worry, not a request)."""

from __future__ import annotations

import re
import unicodedata

# 「人と話したい」「担当者につないでほしい」「キャリアコンサルタントと話したい」「有人対応で」; short messages only.
_PERSON = (
    r"(?:人間?|ひと|担当者?|担当の方|スタッフ|オペレーター|相談員|カウンセラー|(?:キャリア)?コンサルタント|専門家|プロ)"
    r"(?:さん|の方)?"
)
_ASK = re.compile(
    rf"^(?:できれば|あの|すみません|ちょっと)?{_PERSON}(?:と|に)(?:直接)?"
    r"(?:話(?:し|せ|す)|相談(?:し|でき|する)|つな|繋|代わ|かわ)"
)
_DIRECT = re.compile(r"^(?:有人(?:対応|チャット)?|人につないで|オペレーター|担当者を?呼んで)")
# The follow-up chip 「専門家に相談したい」 shows the article's expert advice, as it always has, and offers a person
# (one more tap confirms): the chip is on every answer, and a tap is not yet a request to wait for a human.
_OFFER = re.compile(r"^(?:専門家|プロ)に相談")
_BACK = re.compile(r"^(?:ai|ＡＩ|ボット|bot|チャットボット)(?:との相談|と話す(?:の)?|の相談)?(?:に|へ)?(?:戻|もど)")
# A negation or a fear turns the phrase into a worry: 「人と話したくない」「人に相談できない」「担当に相談しづらい」.
_NOT_A_REQUEST = re.compile(r"(?<!つ)ない|なく|ません|づら|にく|こわ|怖|無理|いや|嫌")
MAX_REQUEST_CHARS = 30


def _normal(text: str) -> str:
    return re.sub(r"[\s。、！!？?…・「」]+", "", unicodedata.normalize("NFKC", text)).lower()


def offer_person(text: str) -> bool:
    """A message that deserves the offer of a person (not a request yet)."""
    t = _normal(text)
    return 0 < len(t) <= MAX_REQUEST_CHARS and bool(_OFFER.match(t)) and not _NOT_A_REQUEST.search(t)


def asks_for_person(text: str) -> bool:
    t = _normal(text)
    if not 0 < len(t) <= MAX_REQUEST_CHARS or _NOT_A_REQUEST.search(t) or _OFFER.match(t):
        return False
    return bool(_ASK.match(t) or _DIRECT.match(t))


def asks_for_bot(text: str) -> bool:
    t = _normal(text)
    return 0 < len(t) <= MAX_REQUEST_CHARS and bool(_BACK.match(t))
