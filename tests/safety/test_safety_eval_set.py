"""The whole labelled set eval/safety.tsv: every crisis caught, the right kind almost always, few false alarms."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.safety.detector import PRIORITY, CrisisSignal
from bot.safety.evaluate import SafetyRow, evaluate_safety, load_safety_set

ROOT = Path(__file__).resolve().parents[2]
SAFETY_SET = ROOT / "eval" / "safety.tsv"


@pytest.fixture(scope="module")
def rows() -> list[SafetyRow]:
    return load_safety_set(SAFETY_SET)


def test_set_covers_every_kind_and_both_splits(rows: list[SafetyRow]) -> None:
    labels = {row.label for row in rows}
    assert labels == {*PRIORITY, "none"}
    assert {row.split for row in rows} >= {"dev", "test"}
    assert len({row.sid for row in rows}) == len(rows)


def test_every_crisis_is_caught_and_ordinary_messages_stay_quiet(rows: list[SafetyRow]) -> None:
    result = evaluate_safety(rows)
    missed = [m["sid"] for m in result["misses"] if m["error"] == "missed"]
    assert missed == []
    assert result["recall"] == 1.0
    for kind in PRIORITY:
        assert result["per_kind"][kind]["recall"] == 1.0, kind
    assert result["exact_kind_accuracy"] >= 0.9
    assert result["false_alarm_rate"] <= 1 / 20


@pytest.mark.parametrize("split", ["dev", "test"])
def test_each_split_on_its_own(rows: list[SafetyRow], split: str) -> None:
    result = evaluate_safety([row for row in rows if row.split == split])
    assert result["recall"] == 1.0
    assert result["exact_kind_accuracy"] >= 0.9
    assert result["false_alarm_rate"] <= 1 / 20


def test_evaluate_safety_counts_each_kind_of_error() -> None:
    rows = [
        SafetyRow("a", "dev", "suicide", "caught"),
        SafetyRow("b", "dev", "suicide", "wrong"),
        SafetyRow("c", "dev", "mental", "missed"),
        SafetyRow("d", "dev", "none", "alarm"),
        SafetyRow("e", "dev", "none", "quiet"),
    ]
    answers = {
        "caught": CrisisSignal("suicide", "x"),
        "wrong": CrisisSignal("mental", "y"),
        "alarm": CrisisSignal("labor-law", "z"),
    }
    result = evaluate_safety(rows, detect=answers.get)
    assert result["per_kind"]["suicide"] == {"rows": 2, "recall": 1.0, "exact": 0.5}
    assert result["per_kind"]["mental"] == {"rows": 1, "recall": 0.0, "exact": 0.0}
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["exact_kind_accuracy"] == pytest.approx(1 / 3)
    assert result["false_alarm_rate"] == 0.5
    assert sorted((m["error"], m["sid"]) for m in result["misses"]) == [
        ("false-alarm", "d"),
        ("missed", "c"),
        ("wrong-kind", "b"),
    ]


def test_load_safety_set_rejects_unknown_labels(tmp_path: Path) -> None:
    path = tmp_path / "safety.tsv"
    path.write_text("sid\tsplit\tlabel\ttext\nx1\tdev\tsuicidal\tしにたい\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown label"):
        load_safety_set(path)


def test_load_safety_set_keeps_quotes_in_text(tmp_path: Path) -> None:
    path = tmp_path / "safety.tsv"
    path.write_text('sid\tsplit\tlabel\ttext\nx1\tdev\tnone\t"ブラック企業"って何？\n', encoding="utf-8")
    assert load_safety_set(path)[0].text == '"ブラック企業"って何？'


def test_rules_and_learned_head_together_keep_the_set(rows: list[SafetyRow], index_settings) -> None:
    """The whole check (rules + the head `bot models build` trained) on the same set: nothing caught by the rules is
    lost, and the head adds few alarms on its ordinary messages."""
    from bot.safety.evaluate import evaluate_tiers
    from bot.safety.triage import load_safety_check

    check = load_safety_check(index_settings.models_dir)
    assert check.learned
    result = evaluate_tiers(rows, check.assess_text)
    assert result["recall"] == 1.0
    assert result["ordinary"]["false_alarm_rate"] <= 1 / 20


def test_blind_set_holds_its_first_reading(index_settings) -> None:
    """eval/safety_blind.tsv was read once, first time, for the note on the safety issue (recall 0.921, false alarms
    23/230; with check-ins 0.958 after the check-in threshold was re-chosen on dev). It is a regression floor now, no
    longer blind: a change that loses crises or adds alarms fails here."""
    from bot.safety.evaluate import evaluate_tiers
    from bot.safety.triage import load_safety_check

    blind = load_safety_set(ROOT / "eval" / "safety_blind.tsv")
    assert len(blind) >= 300 and sum(row.label != "none" for row in blind) >= 120
    result = evaluate_tiers(blind, load_safety_check(index_settings.models_dir).assess_text)
    assert result["recall"] >= 0.92
    assert result["recall_with_check_ins"] >= 0.95
    assert result["ordinary"]["false_alarms"] <= 23
