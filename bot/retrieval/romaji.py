"""Romaji to hiragana for queries typed without a Japanese IME ("mainichi shuuden de kaette").

Embeddings and BM25 both read kana far better than romaji; we convert only messages that are mostly Latin letters
and read like Hepburn/kunrei romaji, and keep the original for everything else.
"""

from __future__ import annotations

import re

_TABLE: dict[str, str] = {}


def _add(row: str, kana: str) -> None:
    for romaji, char in zip(row.split(), kana.split(), strict=True):
        _TABLE[romaji] = char


_add("a i u e o", "あ い う え お")
_add("ka ki ku ke ko ga gi gu ge go", "か き く け こ が ぎ ぐ げ ご")
_add("sa shi si su se so za ji zi zu ze zo", "さ し し す せ そ ざ じ じ ず ぜ ぞ")
_add("ta chi ti tsu tu te to da di du de do", "た ち ち つ つ て と だ ぢ づ で ど")
_add(
    "na ni nu ne no ha hi fu hu he ho ba bi bu be bo pa pi pu pe po",
    "な に ぬ ね の は ひ ふ ふ へ ほ ば び ぶ べ ぼ ぱ ぴ ぷ ぺ ぽ",
)
_add("ma mi mu me mo ya yu yo ra ri ru re ro wa wo", "ま み む め も や ゆ よ ら り る れ ろ わ を")
_add(
    "kya kyu kyo sha shu sho sya syu syo cha chu cho tya tyu tyo nya nyu nyo hya hyu hyo mya myu myo rya ryu ryo",
    "きゃ きゅ きょ しゃ しゅ しょ しゃ しゅ しょ ちゃ ちゅ ちょ ちゃ ちゅ ちょ にゃ にゅ にょ ひゃ ひゅ ひょ みゃ みゅ みょ りゃ りゅ りょ",
)
_add(
    "gya gyu gyo ja ju jo jya jyu jyo bya byu byo pya pyu pyo",
    "ぎゃ ぎゅ ぎょ じゃ じゅ じょ じゃ じゅ じょ びゃ びゅ びょ ぴゃ ぴゅ ぴょ",
)
_add("fa fi fe fo ti di va vi vu ve vo", "ふぁ ふぃ ふぇ ふぉ てぃ でぃ ゔぁ ゔぃ ゔ ゔぇ ゔぉ")
_KEYS = sorted(_TABLE, key=len, reverse=True)
_WORD = re.compile(r"[A-Za-z']+")


def looks_like_romaji(text: str) -> bool:
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    others = sum(not ch.isascii() for ch in text)
    if letters < 8 or others > letters * 0.2:
        return False
    words = _WORD.findall(text.lower())
    convertible = sum(1 for w in words if _convert_word(w) is not None)
    return convertible >= max(2, int(len(words) * 0.7))


def _convert_word(word: str) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(word):
        if word[i] == "'":
            i += 1
            continue
        # Doubled consonant: small tsu (「kitte」 → きって).
        if i + 1 < len(word) and word[i] == word[i + 1] and word[i] not in "aeioun":
            out.append("っ")
            i += 1
            continue
        if word[i] == "n" and (i + 1 == len(word) or word[i + 1] not in "aeiouy"):
            out.append("ん")
            i += 1
            continue
        for key in _KEYS:
            if word.startswith(key, i):
                out.append(_TABLE[key])
                i += len(key)
                break
        else:
            return None
    return "".join(out)


def romaji_to_hiragana(text: str) -> str:
    """Convert romaji words to hiragana; words that are not romaji (IT, CEO) stay as typed."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        converted = _convert_word(word.lower())
        return converted if converted is not None and len(word) > 1 else word

    return _WORD.sub(replace, text).replace(" ", "")
