"""The domain tuning's data rules: never an eval message, a fixed held-out split, a fingerprint that sees the data."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from bot.knowledge.library import load_library
from bot.retrieval.tune import Recipe, fingerprint, query_split, read_queries, training_queries

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training"


def test_training_queries_never_contain_an_eval_message() -> None:
    with (ROOT / "eval" / "retrieval.tsv").open(encoding="utf-8") as handle:
        evaluation = {row["query"].strip() for row in csv.DictReader(handle, delimiter="\t")}
    written = {text for _, text in read_queries(TRAINING, None)}
    assert len(written) > 1000
    assert not written & evaluation


def test_the_held_out_split_is_fixed_by_the_text_and_disjoint() -> None:
    train = {text for _, text in read_queries(TRAINING, "train")}
    dev = {text for _, text in read_queries(TRAINING, "dev")}
    assert not train & dev and len(dev) > 200
    assert all(query_split(text) == "dev" for text in dev)
    used = {text for text, _ in training_queries(load_library(ROOT / "knowledge"), TRAINING)}
    assert not used & dev  # the tuned model never sees the messages its confidence is calibrated on


def test_the_fingerprint_changes_with_the_training_data(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "build_info.json").write_text("{}")
    training = tmp_path / "training"
    shutil.copytree(TRAINING / "retrieval", training / "retrieval")
    articles = load_library(ROOT / "knowledge")
    before = fingerprint(base, training, articles, Recipe())
    assert fingerprint(base, training, articles, Recipe()) == before
    with (training / "retrieval" / "queries.tsv").open("a", encoding="utf-8") as handle:
        handle.write("overwork\t毎日終電で帰ってます\n")
    assert fingerprint(base, training, articles, Recipe()) != before
    assert fingerprint(base, TRAINING, articles, Recipe(epochs=2)) != fingerprint(base, TRAINING, articles, Recipe())
