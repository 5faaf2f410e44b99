"""Romaji to hiragana, for messages typed without a Japanese IME ("mainichi shuuden", "shinitai").

Shared by the crisis detector (which reads every romaji word) and retrieval (which converts a message only when it
is mostly romaji, so English words like "IT" or "excel" in a Japanese message stay as typed).
"""

from __future__ import annotations

import re

# Hepburn and Kunrei syllables, enough to read a worker typing Japanese in romaji on a PC keyboard.
_ROMAJI: dict[str, str] = {
    "a": "あ", "i": "い", "u": "う", "e": "え", "o": "お",
    "ka": "か", "ki": "き", "ku": "く", "ke": "け", "ko": "こ",
    "ga": "が", "gi": "ぎ", "gu": "ぐ", "ge": "げ", "go": "ご",
    "sa": "さ", "shi": "し", "si": "し", "su": "す", "se": "せ", "so": "そ",
    "za": "ざ", "ji": "じ", "zi": "じ", "zu": "ず", "ze": "ぜ", "zo": "ぞ",
    "ta": "た", "chi": "ち", "ti": "ち", "tsu": "つ", "tu": "つ", "te": "て", "to": "と",
    "da": "だ", "di": "ぢ", "du": "づ", "de": "で", "do": "ど",
    "na": "な", "ni": "に", "nu": "ぬ", "ne": "ね", "no": "の",
    "ha": "は", "hi": "ひ", "fu": "ふ", "hu": "ふ", "he": "へ", "ho": "ほ",
    "ba": "ば", "bi": "び", "bu": "ぶ", "be": "べ", "bo": "ぼ",
    "pa": "ぱ", "pi": "ぴ", "pu": "ぷ", "pe": "ぺ", "po": "ぽ",
    "ma": "ま", "mi": "み", "mu": "む", "me": "め", "mo": "も",
    "ya": "や", "yu": "ゆ", "yo": "よ",
    "ra": "ら", "ri": "り", "ru": "る", "re": "れ", "ro": "ろ",
    "wa": "わ", "wo": "を",
    "kya": "きゃ", "kyu": "きゅ", "kyo": "きょ", "gya": "ぎゃ", "gyu": "ぎゅ", "gyo": "ぎょ",
    "sha": "しゃ", "shu": "しゅ", "sho": "しょ", "she": "しぇ", "sya": "しゃ", "syu": "しゅ", "syo": "しょ",
    "ja": "じゃ", "ju": "じゅ", "jo": "じょ", "je": "じぇ", "jya": "じゃ", "jyu": "じゅ", "jyo": "じょ",
    "zya": "じゃ", "zyu": "じゅ", "zyo": "じょ",
    "cha": "ちゃ", "chu": "ちゅ", "cho": "ちょ", "che": "ちぇ", "tya": "ちゃ", "tyu": "ちゅ", "tyo": "ちょ",
    "nya": "にゃ", "nyu": "にゅ", "nyo": "にょ", "hya": "ひゃ", "hyu": "ひゅ", "hyo": "ひょ",
    "bya": "びゃ", "byu": "びゅ", "byo": "びょ", "pya": "ぴゃ", "pyu": "ぴゅ", "pyo": "ぴょ",
    "mya": "みゃ", "myu": "みゅ", "myo": "みょ", "rya": "りゃ", "ryu": "りゅ", "ryo": "りょ",
    "fa": "ふぁ", "fi": "ふぃ", "fe": "ふぇ", "fo": "ふぉ",
}  # fmt: skip
_GEMINATE = frozenset("bcdfghjkmprstwz")


def romaji_word(word: str) -> str | None:
    """Hiragana for a word that is entirely romaji, else None (English words like 'od' or 'excel' stay as they are)."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == word[i + 1] and word[i] in _GEMINATE:
            out.append("っ")  # a doubled consonant is the small tsu: kitta → きった
            i += 1
            continue
        if word.startswith("tch", i):
            out.append("っ")
            i += 1
            continue
        for size in (3, 2, 1):
            kana = _ROMAJI.get(word[i : i + size])
            if kana:
                out.append(kana)
                i += size
                break
        else:
            if word[i] != "n":
                return None
            out.append("ん")  # n before a consonant or at the end of a word
            i += 1
    return "".join(out)


def romaji_to_kana(text: str) -> str:
    return re.sub(r"[a-z]+", lambda m: romaji_word(m.group()) or m.group(), text)


_WORD = re.compile(r"[A-Za-z']+")


def looks_like_romaji(text: str) -> bool:
    """Mostly Latin letters, and most words read as romaji."""
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    others = sum(not ch.isascii() for ch in text)
    if letters < 8 or others > letters * 0.2:
        return False
    words = [w.lower().replace("'", "") for w in _WORD.findall(text)]
    convertible = sum(1 for w in words if w and romaji_word(w) is not None)
    return convertible >= max(2, int(len(words) * 0.7))


def romaji_message_to_hiragana(text: str) -> str:
    """A whole romaji message as hiragana, words joined as Japanese is written (no spaces)."""
    return romaji_to_kana(text.lower().replace("'", "")).replace(" ", "")
