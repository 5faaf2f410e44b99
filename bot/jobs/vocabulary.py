"""The job search's vocabulary (`vocabulary.yaml`): job types, employment types, prefectures, salary choices, and
reading them out of free text (a posting's title, a user's message)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")


def fold(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII); case is kept for short ASCII words such as SE or PR."""
    return unicodedata.normalize("NFKC", text)


def _matcher(words: list[str]) -> re.Pattern[str]:
    parts = []
    for word in sorted({fold(w) for w in words}, key=len, reverse=True):
        if word.isascii() and len(word) <= 3:
            parts.append(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])")  # SE, PR, IT: whole words, as written
        else:
            parts.append(f"(?i:{re.escape(word)})")
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class Vocabulary:
    job_types: dict[str, str]  # slug -> label, in the order choices are offered
    employment_types: dict[str, str]  # schema.org code -> label
    employment_choices: list[str]
    prefectures: list[str]
    salary_choices: dict[str, list[int]]
    _job_words: dict[str, re.Pattern[str]]
    _employment_words: dict[str, re.Pattern[str]]
    _prefecture_words: dict[str, re.Pattern[str]]
    _remote: re.Pattern[str]

    @classmethod
    def load(cls, path: Path = VOCABULARY_FILE) -> Vocabulary:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            job_types={slug: str(v[0]) for slug, v in data["job_types"].items()},
            employment_types={code: str(v[0]) for code, v in data["employment_types"].items()},
            employment_choices=[str(c) for c in data["employment_choices"]],
            prefectures=list(data["prefectures"]),
            salary_choices={unit: [int(x) for x in values] for unit, values in data["salary_choices"].items()},
            _job_words={slug: _matcher([v[0], *v[1]]) for slug, v in data["job_types"].items()},
            _employment_words={code: _matcher([v[0], *v[1]]) for code, v in data["employment_types"].items()},
            _prefecture_words={name: _matcher([name, *words]) for name, words in data["prefectures"].items()},
            _remote=_matcher(list(data["remote_words"])),
        )

    # ----- reading free text ----------------------------------------------------------------------------------------
    def job_type_in(self, text: str, *, last: bool = False) -> str | None:
        """The job type a text names: the first mention (a title: 「エンジニア（営業支援）」), or with `last` the latest
        (a conversation: 「営業です。…エンジニアに転職したい」 wants engineering)."""
        return _mention(self._job_words, fold(text), last)

    def employment_type_in(self, text: str, *, last: bool = False) -> str | None:
        return _mention(self._employment_words, fold(text), last)

    def prefecture_in(self, text: str, *, last: bool = False) -> str | None:
        return _mention(self._prefecture_words, fold(text), last)

    def mentions_remote(self, text: str) -> bool:
        return self._remote.search(fold(text)) is not None

    def employment_code(self, value: str) -> str | None:
        """A feed's employment type (schema.org code, or a Japanese word) as a schema.org code."""
        code = fold(value).strip().upper().replace("-", "_").replace(" ", "_")
        if code in self.employment_types:
            return code
        return self.employment_type_in(value)

    def job_type_slug(self, value: str) -> str | None:
        """A feed's job type: our slug, our label, or words that name one."""
        value = fold(value).strip()
        if value in self.job_types:
            return value
        for slug, label in self.job_types.items():
            if value == label:
                return slug
        return self.job_type_in(value)


def _mention(patterns: dict[str, re.Pattern[str]], text: str, last: bool) -> str | None:
    """The key whose words occur first (or last); ties go to the vocabulary's order."""
    best: tuple[int, int, str] | None = None
    for order, (key, pattern) in enumerate(patterns.items()):
        starts = [m.start() for m in pattern.finditer(text)]
        if not starts:
            continue
        rank = (-max(starts) if last else min(starts), order)
        if best is None or rank < best[:2]:
            best = (rank[0], rank[1], key)
    return best[2] if best else None


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    return Vocabulary.load()
