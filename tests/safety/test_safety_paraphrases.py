"""Paraphrases written while reviewing the detector (tests/safety/paraphrases.tsv, header `label<TAB>text`).

They are not the labelled eval set: they are new wordings and near-miss ordinary messages that each exposed a gap
or a false alarm in some version of the rules, kept so that no later edit brings the gap back.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.safety.detector import detect_crisis

PARAPHRASES = Path(__file__).resolve().parent / "paraphrases.tsv"


def _cases() -> list[tuple[str, str]]:
    with PARAPHRASES.open(encoding="utf-8", newline="") as handle:
        return [(row["label"], row["text"]) for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_every_paraphrase_gets_its_label() -> None:
    wrong = []
    for label, text in _cases():
        signal = detect_crisis(text)
        predicted = signal.kind if signal else "none"
        if predicted != label:
            wrong.append((label, predicted, text))
    assert wrong == []


# Known gaps, left out on purpose: too vague to tell from ordinary talk without context, or (the last) a question
# about how leave works that reads exactly like a complaint. A fix that catches them without false alarms is welcome.
KNOWN_GAPS = [
    ("suicide", "ビルの屋上に来てる"),
    ("suicide", "来世に期待する"),
    ("suicide", "もうすぐ全部終わる。ありがとう"),
    ("mental", "何も考えられない、何も感じない"),
    ("mental", "頭が真っ白で何も考えられない、息が苦しい"),
    ("mental", "不安で夜中に何度も目が覚めて、もう限界"),
    ("none", "休職中は給料が出ないの？"),
]


@pytest.mark.xfail(reason="known gap of the rules", strict=False)
@pytest.mark.parametrize(("label", "text"), KNOWN_GAPS)
def test_known_gaps(label: str, text: str) -> None:
    signal = detect_crisis(text)
    assert (signal.kind if signal else "none") == label
