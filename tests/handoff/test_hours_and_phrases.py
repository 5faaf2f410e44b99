"""Reception hours and the phrases that ask for a person (plain functions, no store)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.handoff.hours import BusinessHours, HoursError
from bot.handoff.phrases import asks_for_bot, asks_for_person, offer_person

JST = ZoneInfo("Asia/Tokyo")
WEEKDAYS = ["月", "火", "水", "木", "金", "土", "日"]


def test_weekday_hours_open_close_and_say_when_they_open_next() -> None:
    hours = BusinessHours.parse("mon-fri 10:00-19:00", "Asia/Tokyo")
    assert hours.describe(WEEKDAYS) == "月〜金 10:00〜19:00"
    assert hours.is_open(datetime(2026, 12, 7, 10, 0, tzinfo=JST))  # Monday
    assert not hours.is_open(datetime(2026, 12, 7, 19, 0, tzinfo=JST))
    friday_night = datetime(2026, 12, 11, 22, 30, tzinfo=JST)
    nxt = hours.next_open(friday_night)
    assert nxt is not None and hours.when(nxt, WEEKDAYS) == "12月14日（月）10:00"
    # Another time zone's clock reads the same local hours.
    assert hours.is_open(datetime(2026, 12, 7, 1, 30, tzinfo=ZoneInfo("UTC")))  # 10:30 JST


def test_several_rules_and_always_open() -> None:
    hours = BusinessHours.parse("mon,wed 09:00-12:00; sat 13:00-17:00")
    assert hours.describe(WEEKDAYS) == "月・水 09:00〜12:00、土 13:00〜17:00"
    assert not hours.is_open(datetime(2026, 12, 8, 10, 0, tzinfo=JST))  # Tuesday
    assert BusinessHours.parse("").always and BusinessHours.parse("").is_open(datetime(2026, 12, 8, 3, tzinfo=JST))
    with pytest.raises(HoursError):
        BusinessHours.parse("weekdays 9-5")


@pytest.mark.parametrize(
    "text",
    [
        "人と話したい",
        "専門家と話したい",
        "キャリアコンサルタントと話したい",
        "担当者につないでください",
        "人間と話せますか？",
        "有人対応",
    ],
)
def test_asking_for_a_person(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "上司と話したい",  # a worry about the boss
        "人と話したくない",
        "人に相談できない",
        "職場の人と話すのが怖い",
        "担当者に相談したいけれど、上司が怒りそうで言い出せないまま二週間がたちました",  # a worry, not a request
    ],
)
def test_worries_that_mention_people_are_not_requests(text: str) -> None:
    assert not asks_for_person(text)


def test_the_expert_chip_offers_a_person_without_queueing() -> None:
    assert offer_person("専門家に相談したい") and not asks_for_person("専門家に相談したい")
    assert not offer_person("専門家に相談したくない")


def test_going_back_to_the_bot() -> None:
    assert asks_for_bot("AIとの相談に戻る") and asks_for_bot("ＡＩに戻して") and asks_for_bot("ボットに戻る")
    assert not asks_for_bot("AIって信用できる？")
