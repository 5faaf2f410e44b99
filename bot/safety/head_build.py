"""Train the crisis head from the labelled messages in `training/safety/` (run by `bot models build`).

Files: `train/*.tsv` (fit) and `dev/*.tsv` (thresholds, and the numbers printed here), one file per writer, columns
`label`, `tier`, `text` (no header). `tier` is `clear`, `possible` or `none`. `clear` rows are trained as their kind; `possible` rows (worrying
but ambiguous) are trained as their kind with a lower weight, so the head learns they are closer to a crisis than
ordinary worries but scores them lower than clear danger — the middle band the check-in is for.

Reproducible: the same files give the same head (deterministic lbfgs solver, files read in sorted order). The build is
skipped when the fingerprint of the files and the recipe matches the head on disk; it takes a few seconds.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.retrieval.retriever import clean_query
from bot.safety.classifier import NONE, CrisisHead, Thresholds, data_fingerprint, has_head, head_dir, make_vectorizer
from bot.safety.detector import PRIORITY

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = (*PRIORITY, NONE)
TIERS = frozenset({"clear", "possible", "none"})
POSSIBLE_WEIGHT = 0.5
C = 30.0  # inverse regularisation, chosen on dev
# Thresholds: the escalation threshold is the lowest that keeps false alarms on dev's ordinary messages within this
# share; the check-in threshold the lowest that keeps check-ins on them within CHECK_IN_RATE.
FALSE_ALARM_RATE = 0.02
CHECK_IN_RATE = 0.04
RECIPE = (
    f"char_wb 1-3 tfidf, multinomial lbfgs C={C} possible={POSSIBLE_WEIGHT} fa={FALSE_ALARM_RATE} ci={CHECK_IN_RATE}"
)


@dataclass(frozen=True)
class Example:
    label: str
    tier: str
    text: str


def load_examples(path: Path) -> list[Example]:
    rows: list[Example] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not record or not "".join(record).strip():
                continue
            if len(record) != 3:
                raise ValueError(f"{path}:{number}: expected label, tier, text")
            label, tier, text = (field.strip() for field in record)
            if label not in LABELS or tier not in TIERS or (label == NONE) != (tier == "none") or not text:
                raise ValueError(f"{path}:{number}: bad row ({label!r}, {tier!r})")
            rows.append(Example(label, tier, text))
    return rows


def training_dir(root: Path) -> Path:
    """The safety data under a training folder (TRAINING_DIR, default `training/` in the repo)."""
    return root / "safety"


def split_files(folder: Path, split: str) -> list[Path]:
    return sorted((folder / split).glob("*.tsv"))


def load_split(folder: Path, split: str) -> list[Example]:
    files = split_files(folder, split)
    if not files:
        raise FileNotFoundError(f"no {split} files under {folder / split}")
    return [example for path in files for example in load_examples(path)]


def fingerprint(folder: Path) -> str:
    files = split_files(folder, "train") + split_files(folder, "dev")
    return data_fingerprint(files, RECIPE)


def is_current(models_dir: Path, folder: Path) -> bool:
    if not has_head(models_dir):
        return False
    try:
        return CrisisHead.load(head_dir(models_dir)).fingerprint == fingerprint(folder)
    except (OSError, ValueError, KeyError):
        return False


def fit(examples: Sequence[Example], classes: Sequence[str] = LABELS) -> CrisisHead:
    from sklearn.linear_model import LogisticRegression

    texts = [clean_query(e.text) for e in examples]
    vectorizer = make_vectorizer()
    x = vectorizer.fit_transform(texts)
    y = np.array([classes.index(e.label) for e in examples])
    weights = np.array([POSSIBLE_WEIGHT if e.tier == "possible" else 1.0 for e in examples])
    # Balanced classes: there are far more ordinary messages than, say, self-harm ones.
    counts = np.bincount(y, minlength=len(classes)).astype(float)
    weights = weights * (len(y) / (len(classes) * np.maximum(counts[y], 1.0)))
    model = LogisticRegression(C=C, max_iter=5000, solver="lbfgs")
    model.fit(x, y, sample_weight=weights)
    present = [classes[i] for i in model.classes_]
    vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
    return CrisisHead(present, vocabulary, vectorizer.idf_, model.coef_, model.intercept_)


def crisis_scores(head: CrisisHead, examples: Sequence[Example]) -> np.ndarray:
    return np.array([head.score_message(e.text).crisis for e in examples])


def choose_thresholds(head: CrisisHead, dev: Sequence[Example]) -> Thresholds:
    crisis = crisis_scores(head, dev)
    ordinary = np.sort(crisis[[e.label == NONE for e in dev]])[::-1]
    if len(ordinary) == 0:
        return Thresholds()

    def above(rate: float) -> float:
        # The smallest threshold with at most `rate` of ordinary messages at or above it.
        allowed = int(np.floor(rate * len(ordinary)))
        return float(ordinary[allowed] + 1e-4) if allowed < len(ordinary) else 0.05

    escalate = min(0.99, max(0.5, above(FALSE_ALARM_RATE)))
    check_in = min(escalate - 0.02, max(0.3, above(CHECK_IN_RATE)))
    return Thresholds(escalate=round(escalate, 4), check_in=round(check_in, 4), memory=round(check_in * 0.6, 4))


def dev_report(head: CrisisHead, dev: Sequence[Example]) -> dict[str, Any]:
    """Head alone on dev: escalations per kind (clear rows), check-ins, false alarms on ordinary rows."""
    t = head.thresholds
    per_kind: dict[str, list[int]] = {k: [0, 0, 0] for k in PRIORITY}  # rows, escalated, checked in
    ordinary = [0, 0, 0]
    for example, p in zip(dev, crisis_scores(head, dev), strict=True):
        bucket = ordinary if example.label == NONE else per_kind[example.label] if example.tier == "clear" else None
        if bucket is None:
            continue
        bucket[0] += 1
        bucket[1] += int(p >= t.escalate)
        bucket[2] += int(t.check_in <= p < t.escalate)
    return {"thresholds": t.__dict__, "per_kind": per_kind, "ordinary": ordinary}


def build_head(models_dir: Path, folder: Path, *, force: bool = False) -> tuple[CrisisHead, dict[str, Any] | None]:
    """Train (when the data or recipe changed, or `force`), choose thresholds on dev, save; returns the dev report."""
    target = head_dir(models_dir)
    if not force and is_current(models_dir, folder):
        return CrisisHead.load(target), None
    start = time.perf_counter()
    train = load_split(folder, "train")
    dev = load_split(folder, "dev")
    fitted = fit(train)
    head = CrisisHead(
        fitted.classes,
        fitted.vocabulary,
        fitted.idf,
        fitted.coef,
        fitted.intercept,
        thresholds=choose_thresholds(fitted, dev),
        fingerprint=fingerprint(folder),
    )
    head.save(target)
    report = dev_report(head, dev)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["train_rows"] = len(train)
    report["dev_rows"] = len(dev)
    return head, report
