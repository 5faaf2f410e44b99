"""Which messages ask for jobs, and how conditions are read from what people type (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.jobs.dialogue import JobSearch, read_salary
from bot.jobs.vocabulary import vocabulary

ROOT = Path(__file__).resolve().parents[2]
REPLIES = yaml.safe_load((ROOT / "prompts" / "jobs.yaml").read_text(encoding="utf-8"))
SEARCH = JobSearch(None, vocabulary(), REPLIES)  # type: ignore[arg-type]  (the catalogue is not used here)


@pytest.mark.parametrize(
    "text",
    ["求人を探す", "求人を探したい", "求人", "営業の求人", "求人を見せて", "東京で営業の仕事ある？", "大阪で介護の仕事ある？",
     "転職先を紹介して", "パートの仕事を探しています", "在宅でできるバイトありますか"],
)
def test_requests_for_jobs(text: str) -> None:
    assert SEARCH.asks_for_jobs(text)


@pytest.mark.parametrize(
    "text",
    [
        "転職先を探すコツは？",  # how to: the advice answers it
        "仕事を探すべきか迷う",
        "新人に仕事を教えるとき、最初に何から教えるべきですか",
        "50過ぎて求人なんてある",
        "求人票と条件違うやん",
        "求人多すぎて選べん",
        "仕事がない",
        "上司に毎日怒鳴られて、もう会社に行きたくない。転職先を探したほうがいいのかな、でも不安で眠れない",
    ],
)
def test_worries_that_mention_jobs_are_not_requests(text: str) -> None:
    assert not SEARCH.asks_for_jobs(text)


@pytest.mark.parametrize(
    ("text", "number_alone", "unit", "expected"),
    [
        ("年収400万円以上", False, "YEAR", ("YEAR", 4_000_000)),
        ("年収450万くらいほしい", False, "YEAR", ("YEAR", 4_500_000)),
        ("月給25万", False, "YEAR", ("YEAR", 3_000_000)),  # twelve months, bonuses unknown
        ("時給1,200円以上", False, "HOUR", ("HOUR", 1200)),
        ("400", True, "YEAR", ("YEAR", 4_000_000)),
        ("1300", True, "HOUR", ("HOUR", 1300)),
        ("400", False, "YEAR", None),  # a bare number means pay only as the answer to the salary question
        ("営業がしたい", True, "YEAR", None),
    ],
)
def test_salary_floors_as_people_type_them(text: str, number_alone: bool, unit: str, expected: object) -> None:
    assert read_salary(text, number_alone=number_alone, unit=unit) == expected


def test_conditions_in_free_text() -> None:
    vocab = vocabulary()
    assert vocab.job_type_in("営業です。でもITエンジニアに転職したい", last=True) == "engineer"
    assert vocab.job_type_in("エンジニア（営業支援システム）") == "engineer"
    assert vocab.prefecture_in("横浜で働きたい") == "神奈川県" and vocab.prefecture_in("大阪市北区") == "大阪府"
    assert vocab.mentions_remote("在宅でできる仕事") and not vocab.mentions_remote("営業の仕事")
    assert vocab.employment_type_in("正社員で") == "FULL_TIME" and vocab.employment_type_in("バイトで") == "PART_TIME"
    assert vocab.job_type_in("SEとして働きたい") == "engineer" and vocab.job_type_in("ASEANに赴任") is None
