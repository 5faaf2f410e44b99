"""From a worry to postings, as a user goes through it: real engine, real model, the sample feed imported."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.jobs.feed import read_feed

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "jobs" / "sample-postings.jsonld"

FEED = {p.id: p for p in read_feed(SAMPLE).postings}
WORRY = "営業です。今の会社を辞めて転職すべきか迷っています。残業が多くて家族との時間がとれない"


def say(engine, text: str, cid: str = "jobs-1"):
    return engine.handle(cid, text).answer


def shown_ids(answer) -> list[str]:
    return [p.id for p in answer.jobs.postings] if answer.jobs else []


def assert_nothing_invented(answer) -> None:
    """Every shown field is the imported posting's own; every result says it is an invented sample."""
    for view in answer.jobs.postings:
        posting = FEED[view.id]
        assert (view.title, view.company, view.url) == (posting.title, posting.company, posting.url)
        assert posting.prefecture is None or view.place.startswith(posting.prefecture)
        assert view.sample and view.source == "掲載元：サンプル求人（架空）"
        assert view.title in answer.text and view.company in answer.text and view.url in answer.text
    assert "架空の求人" in answer.text


def test_a_job_change_worry_offers_the_search(jobs_engine) -> None:
    answer = say(jobs_engine, WORRY)
    assert answer.kind == "advice" and answer.topic == "job-change-decision"
    assert "求人を探す" in answer.follow_ups and len(answer.follow_ups) <= 4
    assert answer.jobs is None


def test_conditions_are_asked_one_at_a_time_taking_what_was_said(jobs_engine) -> None:
    say(jobs_engine, WORRY)
    first = say(jobs_engine, "求人を探す")
    # 「営業です」 was said: the job type is not asked again, and the answer says what it took.
    assert first.kind == "clarify" and first.jobs.asking == "area"
    assert "これまでのお話から「営業」で探します。" in first.text
    assert first.follow_ups[0] == "リモートワーク" and first.follow_ups[-1] == "こだわらない"
    assert "東京都" in first.follow_ups and len(first.follow_ups) <= 13
    second = say(jobs_engine, "東京")
    assert second.jobs.asking == "employment_type" and "正社員・フルタイム" in second.follow_ups
    third = say(jobs_engine, "正社員・フルタイム")
    assert third.jobs.asking == "salary" and "年収400万円以上" in third.follow_ups
    results = say(jobs_engine, "年収400万円以上")
    assert results.kind == "advice" and results.jobs.asking is None
    assert [(c.name, c.value) for c in results.jobs.conditions] == [
        ("job_type", "営業"),
        ("area", "東京都"),
        ("employment_type", "正社員・フルタイム"),
        ("salary", "年収400万円以上"),
    ]
    # Hard conditions: Tokyo sales jobs, full time, paying 4 million yen a year or more (the expired one never).
    assert set(shown_ids(results)) == {"sample-001", "sample-002"}
    assert results.jobs.total == 2 and not results.jobs.has_more
    assert_nothing_invented(results)
    assert "条件を変える" in results.follow_ups and "もっと見る" not in results.follow_ups


def test_a_request_with_conditions_in_it_asks_only_for_the_rest(jobs_engine) -> None:
    answer = say(jobs_engine, "大阪で介護の仕事ある？")
    assert answer.jobs.asking == "employment_type"
    assert [(c.name, c.value) for c in answer.jobs.conditions] == [("job_type", "介護・福祉"), ("area", "大阪府")]
    answer = say(jobs_engine, "こだわらない")
    assert answer.jobs.asking == "salary"
    answer = say(jobs_engine, "こだわらない")
    # No care job in Osaka in the feed: said so honestly, with the public job search to try.
    assert answer.jobs.postings == [] and answer.jobs.total == 0
    assert "見つかりませんでした" in answer.text and "ハローワークインターネットサービス" in answer.text
    assert answer.jobs.fallback.url == "https://www.hellowork.mhlw.go.jp/"
    assert "条件を変える" in answer.follow_ups


def test_conditions_can_be_changed_and_more_can_be_seen(jobs_engine) -> None:
    for text in ("求人を探したい", "こだわらない", "こだわらない", "こだわらない", "こだわらない"):
        answer = say(jobs_engine, text)
    live = [p for p in FEED.values() if p.valid_through is None or p.valid_through > datetime.now(UTC)]
    assert answer.jobs.total == len(live) and len(answer.jobs.postings) == 5 and answer.jobs.has_more
    seen = shown_ids(answer)
    more = say(jobs_engine, "もっと見る")
    assert more.jobs.offset == 5 and not set(shown_ids(more)) & set(seen)
    assert "6〜10件目" in more.text
    change = say(jobs_engine, "条件を変える")
    assert change.jobs.asking == "change" and "勤務地を変える" in change.follow_ups
    asked = say(jobs_engine, "勤務地を変える")
    assert asked.jobs.asking == "area"
    remote = say(jobs_engine, "リモートワーク")
    assert remote.jobs.postings and all(FEED[i].remote for i in shown_ids(remote))
    # After results, a short message naming a condition changes it at once.
    part_time = say(jobs_engine, "パートで")
    assert all("PART_TIME" in FEED[i].employment_types for i in shown_ids(part_time))
    assert ("employment_type", "パート・アルバイト") in [(c.name, c.value) for c in part_time.jobs.conditions]


def test_an_unreadable_answer_is_asked_again_and_a_new_worry_leaves_the_search(jobs_engine) -> None:
    say(jobs_engine, "求人を探したい")
    again = say(jobs_engine, "うーん")
    assert again.jobs.asking == "job_type" and "うまく読み取れませんでした" in again.text
    worry = say(jobs_engine, "上司に毎日のように怒鳴られていて、職場に行くのがつらいです。どうしたらいいでしょうか")
    assert worry.jobs is None and worry.kind in ("advice", "escalation", "clarify")


def test_a_choice_can_be_picked_by_its_number(jobs_engine) -> None:
    first = say(jobs_engine, "求人を探したい")
    picked = say(jobs_engine, str(first.follow_ups.index("ITエンジニア") + 1))
    assert ("job_type", "ITエンジニア") in [(c.name, c.value) for c in picked.jobs.conditions]


def test_the_conditions_go_with_the_conversation(jobs_services) -> None:
    engine, store = jobs_services.engine, jobs_services.store
    say(engine, "東京で営業の求人を探したい", cid="jobs-del")
    assert store.get_state("jobs-del").extra["jobs"]["conditions"]["area"] == "東京都"
    engine.handle("jobs-del", "データを削除")
    assert store.get_state("jobs-del") is None and not store.conversation_exists("jobs-del")
    # A new conversation starts with nothing remembered: the job type is asked again.
    assert say(engine, "求人を探したい", cid="jobs-del").jobs.asking == "job_type"


def test_ask_once_answers_in_plain_text(jobs_engine) -> None:
    answer = jobs_engine.answer_once("東京でリモートのITエンジニアの求人を探したい")
    assert answer.jobs.asking == "employment_type"
    assert answer.text.splitlines()[-1].endswith("こだわらない") and "1. 正社員・フルタイム" in answer.text


def test_worries_that_mention_work_are_advice_not_a_job_search(jobs_engine) -> None:
    for worry in ("仕事はあるけど給料が安い", "正社員なのにパートみたいな扱い"):
        answer = say(jobs_engine, worry, cid=f"jobs-worry-{worry}")
        assert answer.jobs is None, worry
    # While a condition is asked, a thought that is not an answer is answered as a worry and thanks as thanks.
    say(jobs_engine, "求人を探したい", cid="jobs-pending")
    doubt = say(jobs_engine, "やっぱり今の会社で頑張るべきか迷う", cid="jobs-pending")
    assert doubt.jobs is None and doubt.kind in ("advice", "clarify")
    say(jobs_engine, "求人を探したい", cid="jobs-thanks")
    assert say(jobs_engine, "ありがとう", cid="jobs-thanks").jobs is None


def test_after_results_a_short_worry_is_not_read_as_a_new_condition(jobs_engine) -> None:
    say(jobs_engine, "東京で営業の正社員の求人を探したい", cid="jobs-after")
    shown = say(jobs_engine, "こだわらない", cid="jobs-after")
    assert shown.jobs is not None
    assert say(jobs_engine, "営業が向いてない", cid="jobs-after").jobs is None
    back = say(jobs_engine, "相談に戻る", cid="jobs-after")
    assert back.jobs is not None
    assert say(jobs_engine, "大阪の営業", cid="jobs-after").jobs is None, "after going back, the search is over"
