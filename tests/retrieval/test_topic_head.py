"""The topic head: built reproducibly from the training queries, loaded only for its own embedding model, and what it
adds to the search (the right topic first more often on messages no part of the build saw)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bot.retrieval.evaluate import load_eval_set
from bot.retrieval.retriever import embed_windows
from bot.retrieval.stack import build_embeddings, build_topic_head_for, open_searcher
from bot.retrieval.topic_head import TopicHead, build_topic_head, embedding_key, head_dir, load_topic_head, mean_vector

ROOT = Path(__file__).resolve().parents[2]
SUBSET = ("handover", "overwork", "labor-rights", "resume")  # the small library's topics (conftest.py)


def test_the_head_builds_reproducibly_and_is_skipped_when_current(minilm_settings, tmp_path: Path) -> None:
    # The writers' queries of the small library's four topics (the whole file is 1,500 messages: minutes to embed).
    training = tmp_path / "training" / "retrieval"
    training.mkdir(parents=True)
    lines = (ROOT / "training" / "retrieval" / "queries.tsv").read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split("\t", 1)[0] in SUBSET]
    (training / "queries.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    settings = minilm_settings.model_copy(update={"training_dir": tmp_path / "training"})
    first, report = build_topic_head_for(settings)
    assert report is not None and report["classes"] == len(SUBSET) and report["rows"] > 100
    _, skipped = build_topic_head_for(settings)
    assert skipped is None, "a current head is not trained again"
    rebuilt, forced = build_topic_head_for(settings, force=True)
    assert forced is not None
    assert rebuilt.fingerprint == first.fingerprint and rebuilt.classes == first.classes
    assert np.array_equal(rebuilt.coef, first.coef), "same rows, same recipe: the same weights"


def test_a_head_is_only_used_with_the_embedding_model_it_was_trained_on(minilm_settings, tmp_path: Path) -> None:
    embeddings = build_embeddings(minilm_settings)
    rows = [("残業が多くて毎日終電です", "overwork"), ("職務経歴書の書き方がわからない", "resume")] * 3
    head, _ = build_topic_head(
        tmp_path, rows, embeddings.name, lambda text: mean_vector(embed_windows(embeddings, text))
    )
    assert head.embedding == embedding_key(embeddings.name) and "/" not in head.embedding
    assert load_topic_head(tmp_path, embeddings.name) is not None
    # Another model (or the same one moved to another folder keeps its key: only the folder name counts).
    assert load_topic_head(tmp_path, "multilingual-e5-small*0.50+use-multilingual-v3*0.50") is None
    moved = embeddings.name.replace(str(Path(embeddings.name).parent), "/elsewhere/models")
    assert load_topic_head(tmp_path, moved) is not None
    (head_dir(tmp_path) / "topic-head.npz").write_bytes(b"not an npz")
    assert load_topic_head(tmp_path, embeddings.name) is None, "an unreadable head is skipped, not a crash"


def test_the_head_probabilities_are_a_distribution_over_its_topics(searcher) -> None:
    head = searcher.topic_head
    assert isinstance(head, TopicHead), "`make prepare` builds the topic head and the searcher loads it"
    probabilities = head.probabilities(mean_vector(searcher.embed_query("上司が毎日怒鳴ってくる")))
    assert set(probabilities) == set(head.classes)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_the_head_puts_the_right_topic_first_more_often_on_the_dev_split(index_settings, searcher) -> None:
    """eval/'s dev split: never trained on (the head learns from training/ and the articles only)."""
    rows = load_eval_set(ROOT / "eval" / "retrieval.tsv", "dev")
    plain = open_searcher(index_settings.model_copy(update={"topic_head": False}), embeddings=searcher.embeddings)
    assert plain.topic_head is None
    without = dataclasses.replace(searcher.params, topic_head_weight=0.0)

    def top1(s) -> float:
        right = 0
        for row in rows:
            best = s.search(row.query, k=3).best
            right += best is not None and best.topic == row.topic
        return right / len(rows)

    zero = copy.copy(searcher)  # as `bot eval` reports the search without the head: the shared searcher untouched
    zero.params = without
    search_alone = top1(plain)
    assert top1(searcher) >= search_alone + 0.015
    assert top1(zero) == pytest.approx(search_alone), "weight 0 is the search alone"
