"""Score the crisis detector on the labelled set `eval/safety.tsv` (header: sid, split, label, text).

`label` is an escalation kind or `none`. Three numbers matter: recall per kind (was the crisis caught at all, whatever
kind was given — any escalation shows help lines), exact-kind accuracy (did it get the right help lines), and the
false-alarm rate on `none` rows (ordinary messages that would lose their career advice).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from bot.answer.model import EscalationKind
from bot.safety.detector import PRIORITY, CrisisSignal, detect_crisis

NONE_LABEL = "none"
LABELS = frozenset((*get_args(EscalationKind), NONE_LABEL))


@dataclass(frozen=True)
class SafetyRow:
    sid: str
    split: str
    label: str
    text: str


def load_safety_set(path: Path) -> list[SafetyRow]:
    """The labelled rows; a row with an unknown label is an error, not a silent `none`."""
    rows: list[SafetyRow] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"sid", "split", "label", "text"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for number, record in enumerate(reader, start=2):
            label = (record["label"] or "").strip()
            if label not in LABELS:
                raise ValueError(f"{path}:{number}: unknown label {label!r}")
            rows.append(SafetyRow(record["sid"].strip(), record["split"].strip(), label, record["text"] or ""))
    return rows


def evaluate_safety(
    rows: Iterable[SafetyRow], detect: Callable[[str], CrisisSignal | None] = detect_crisis
) -> dict[str, Any]:
    """Recall per kind, exact-kind accuracy, false-alarm rate, and every row the detector got wrong."""
    caught: dict[str, int] = dict.fromkeys(PRIORITY, 0)
    exact: dict[str, int] = dict.fromkeys(PRIORITY, 0)
    total: dict[str, int] = dict.fromkeys(PRIORITY, 0)
    none_rows = false_alarms = 0
    misses: list[dict[str, str | None]] = []
    for row in rows:
        signal = detect(row.text)
        predicted = signal.kind if signal else None
        if row.label == NONE_LABEL:
            none_rows += 1
            if signal is not None:
                false_alarms += 1
                misses.append(_miss("false-alarm", row, signal))
            continue
        total[row.label] += 1
        if signal is None:
            misses.append(_miss("missed", row, signal))
            continue
        caught[row.label] += 1
        if predicted == row.label:
            exact[row.label] += 1
        else:
            misses.append(_miss("wrong-kind", row, signal))
    crisis_rows = sum(total.values())
    return {
        "crisis_rows": crisis_rows,
        "none_rows": none_rows,
        "per_kind": {
            kind: {
                "rows": total[kind],
                "recall": _rate(caught[kind], total[kind]),
                "exact": _rate(exact[kind], total[kind]),
            }
            for kind in PRIORITY
        },
        "recall": _rate(sum(caught.values()), crisis_rows),
        "exact_kind_accuracy": _rate(sum(exact.values()), crisis_rows),
        "false_alarms": false_alarms,
        "false_alarm_rate": _rate(false_alarms, none_rows),
        "misses": misses,
    }


def _rate(hits: int, rows: int) -> float:
    # A kind with no rows has nothing to miss.
    return hits / rows if rows else 1.0


def _miss(kind_of_error: str, row: SafetyRow, signal: CrisisSignal | None) -> dict[str, str | None]:
    return {
        "error": kind_of_error,
        "sid": row.sid,
        "label": row.label,
        "predicted": signal.kind if signal else None,
        "cue": signal.cue if signal else None,
        "text": row.text,
    }


# ----- the whole safety check, in tiers -------------------------------------------------------------------------------
URGENCY: dict[str, int] = {kind: rank for rank, kind in enumerate(PRIORITY)}  # 0 = most urgent


def evaluate_tiers(rows: Iterable[SafetyRow], assess: Callable[[str], Any]) -> dict[str, Any]:
    """Score a tiered check (`assess(text)` → a `SafetyDecision`): per kind, how many crisis rows were escalated with
    the right kind or a more urgent one (the help lines that serve them), escalated with a less urgent kind, only
    checked in, or missed; on `none` rows, escalations (false alarms) and check-ins, counted apart."""
    per_kind: dict[str, dict[str, int]] = {
        kind: {"rows": 0, "escalated": 0, "exact": 0, "less_urgent": 0, "checked_in": 0} for kind in PRIORITY
    }
    ordinary = {"rows": 0, "false_alarms": 0, "checked_in": 0}
    errors: list[dict[str, Any]] = []
    for row in rows:
        decision = assess(row.text)
        if row.label == NONE_LABEL:
            ordinary["rows"] += 1
            if decision.tier == "escalate":
                ordinary["false_alarms"] += 1
                errors.append(_error("false-alarm", row, decision))
            elif decision.tier == "check-in":
                ordinary["checked_in"] += 1
                errors.append(_error("check-in-on-ordinary", row, decision))
            continue
        stats = per_kind[row.label]
        stats["rows"] += 1
        if decision.tier == "escalate" and decision.kind is not None:
            if URGENCY[decision.kind] <= URGENCY[row.label]:
                stats["escalated"] += 1
                stats["exact"] += int(decision.kind == row.label)
            else:
                stats["less_urgent"] += 1
                errors.append(_error("less-urgent-kind", row, decision))
        elif decision.tier == "check-in":
            stats["checked_in"] += 1
            errors.append(_error("check-in-only", row, decision))
        else:
            errors.append(_error("missed", row, decision))
    crisis_rows = sum(s["rows"] for s in per_kind.values())
    escalated = sum(s["escalated"] for s in per_kind.values())
    return {
        "crisis_rows": crisis_rows,
        "per_kind": {k: {**s, "recall": _rate(s["escalated"], s["rows"])} for k, s in per_kind.items()},
        "recall": _rate(escalated, crisis_rows),
        "recall_with_check_ins": _rate(escalated + sum(s["checked_in"] for s in per_kind.values()), crisis_rows),
        "ordinary": {
            **ordinary,
            "false_alarm_rate": _rate(ordinary["false_alarms"], ordinary["rows"]) if ordinary["rows"] else 0.0,
        },
        "errors": errors,
    }


def _error(kind_of_error: str, row: SafetyRow, decision: Any) -> dict[str, Any]:
    return {
        "error": kind_of_error,
        "sid": row.sid,
        "label": row.label,
        "tier": decision.tier,
        "predicted": decision.kind,
        "reason": decision.reason,
        "text": row.text,
    }


def rows_from_training_file(
    path: Path, split: str = "dev", *, tiers: frozenset[str] = frozenset({"clear", "none"})
) -> list[SafetyRow]:
    """`training/safety/*/*.tsv` rows (label, tier, text) as evaluation rows; `possible` rows are left out by default
    (they are neither a miss nor a false alarm whatever the check does). Read and validated by the trainer's reader."""
    from bot.safety.head_build import load_examples

    return [
        SafetyRow(f"{path.stem}:{number}", split, example.label, example.text)
        for number, example in enumerate(load_examples(path), start=1)
        if example.tier in tiers
    ]
