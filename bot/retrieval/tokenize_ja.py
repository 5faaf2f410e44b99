"""Japanese word tokens for the lexical (BM25) signal: Sudachi, normalised forms, content words only."""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache

_DROP_POS = {"助詞", "助動詞", "記号", "補助記号", "空白"}
_STOP = {"する", "いる", "ある", "なる", "れる", "られる", "こと", "もの", "よう", "ない", "思う", "の", "ん", "さ"}


class JapaneseTokenizer:
    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        # Mode A (shortest units) so 「有給休暇」 also matches 「有給」.
        self._mode = SplitMode.A
        self._tokenizer = Dictionary(dict="core").tokenizer(mode=self._mode)
        self._long_units = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
        self._lock = threading.Lock()  # Sudachi's tokenizer object is not thread-safe

    def tokens(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        out: list[str] = []
        with self._lock:
            morphemes = self._tokenizer.tokenize(text[:20000])
            for m in morphemes:
                pos = m.part_of_speech()[0]
                if pos in _DROP_POS:
                    continue
                form = m.normalized_form()
                if form in _STOP or not form.strip():
                    continue
                out.append(form)
        return out

    def nouns(self, text: str) -> list[str]:
        """Common and proper nouns as whole compounds (mode C: 「入札物件」, 「展示会」), normalised forms."""
        text = unicodedata.normalize("NFKC", text).lower()
        with self._lock:
            morphemes = self._long_units.tokenize(text[:20000])
            return [
                m.normalized_form()
                for m in morphemes
                if m.part_of_speech()[0] == "名詞" and m.part_of_speech()[1] in ("普通名詞", "固有名詞")
            ]

    def reading(self, text: str) -> str:
        """The whole text in hiragana (Sudachi's readings), for matching queries typed without kanji."""
        text = unicodedata.normalize("NFKC", text).lower()
        with self._lock:
            morphemes = self._tokenizer.tokenize(text[:20000])
            parts = [m.reading_form() or m.surface() for m in morphemes if m.part_of_speech()[0] not in _DROP_POS]
        return to_hiragana("".join(parts))


def to_hiragana(text: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in text)


def is_mostly_kana(text: str) -> bool:
    """Kana-only typing (「ざんぎょうだいがでない」): no kanji, so kanji-based signals will not match it."""
    letters = [ch for ch in text if not ch.isspace() and ch.isalnum()]
    if len(letters) < 4:
        return False
    kanji = sum("\u4e00" <= ch <= "\u9fff" for ch in letters)
    kana = sum("ぁ" <= ch <= "ゖ" or "ァ" <= ch <= "ヺ" for ch in letters)
    return kanji == 0 and kana / len(letters) >= 0.6


@lru_cache(maxsize=1)
def get_tokenizer() -> JapaneseTokenizer:
    return JapaneseTokenizer()
