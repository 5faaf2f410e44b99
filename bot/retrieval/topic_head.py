"""The topic head: a logistic regression from the query vector to the library's topics, beside the fused search.

Search ranks articles by how close their sections are to the message; it cannot learn where one topic ends and its
neighbour begins (転職 vs 退職, 昇進 vs 年上の部下), and hard near-misses and long messages with background were where
it failed. The head learns those boundaries from the labelled messages we have — the writers' training queries, the
articles' phrasings and their Q&A questions (`bot.retrieval.tune.training_queries`; the writers' dev split and
`eval/` are never trained on) — on the same fused query vector the search uses, so it costs no extra encoder pass.
Its probability for a topic is added to the fused score of that topic's articles (`RetrievalParams.topic_head_weight`).

Built by `bot models build` after the embedding model, in seconds (scikit-learn's LogisticRegression, deterministic
lbfgs); skipped when the fingerprint of the training rows, the embedding model and the recipe matches the head on disk.
A head trained on another embedding model is not loaded (the search then runs without it).

The same linear head, trained with article ids as its classes, is the **article head**: where a topic has articles for
different situations (before and after a transfer; a sick-leave and a parental-leave return), it chooses among the
topic's articles (`HybridSearcher` reorders a topic's articles by it and never moves a topic). Its rows are each
article's own words for its situation (`article_rows`): its consultation, title, phrasings, Q&A questions and item
titles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

HEAD_DIR_NAME = "topic-head"
ARTICLE_HEAD_DIR_NAME = "article-head"
# C chosen on the dev messages (eval dev split + the writers' held-out queries, 434): 1, 4 and 16 were tried with head
# weights 0-1; C 16 with weight 0.5 and C 4 with weight 1.0 tied on the combined R@1, C 16 had the higher eval-dev R@1.
RECIPE: dict[str, Any] = {"C": 16.0, "max_iter": 3000, "version": 1}


def head_dir(models_dir: Path, name: str = HEAD_DIR_NAME) -> Path:
    return models_dir / name


def mean_vector(windows: np.ndarray) -> np.ndarray:
    """One unit vector for a message embedded window by window (see retriever._windows)."""
    vector = np.asarray(windows, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@dataclass(frozen=True)
class TopicHead:
    classes: list[str]
    coef: np.ndarray  # (topics, dimension)
    intercept: np.ndarray  # (topics,)
    embedding: str  # the embedding model's name the head was trained on
    fingerprint: str

    def probabilities(self, vector: np.ndarray) -> dict[str, float]:
        """P(topic | message vector) for every topic the head knows (a softmax, as the multinomial model)."""
        logits = self.coef @ np.asarray(vector, dtype=np.float32) + self.intercept
        logits -= logits.max()
        weights = np.exp(logits)
        weights /= weights.sum()
        return {topic: float(p) for topic, p in zip(self.classes, weights, strict=True)}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "topic-head.npz", coef=self.coef, intercept=self.intercept)
        card = {"classes": self.classes, "embedding": self.embedding, "fingerprint": self.fingerprint, **RECIPE}
        (folder / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> TopicHead:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        with np.load(folder / "topic-head.npz") as arrays:
            coef = arrays["coef"].astype(np.float32)
            intercept = arrays["intercept"].astype(np.float32)
        return cls(list(card["classes"]), coef, intercept, str(card["embedding"]), str(card["fingerprint"]))


def embedding_key(embedding_name: str) -> str:
    """The embedding's name without folders ("/x/models/multilingual-e5-small*0.50+use*0.50" ->
    "multilingual-e5-small*0.50+use*0.50"): a checkout moved or cloned elsewhere keeps its head."""
    return "+".join(part.rstrip("/").rsplit("/", 1)[-1] for part in embedding_name.split("+"))


def load_topic_head(models_dir: Path, embedding_name: str, name: str = HEAD_DIR_NAME) -> TopicHead | None:
    """The head on disk when it was trained on `embedding_name`; None otherwise (the search runs without it)."""
    folder = head_dir(models_dir, name)
    if not (folder / "card.json").is_file():
        return None
    try:
        head = TopicHead.load(folder)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("topic head at %s unreadable (%s); searching without it", folder, type(exc).__name__)
        return None
    if head.embedding != embedding_key(embedding_name):
        log.warning("topic head at %s was trained on another embedding model; searching without it", folder)
        return None
    return head


def fingerprint(rows: Sequence[tuple[str, str]], embedding_name: str) -> str:
    digest = hashlib.sha256(json.dumps([RECIPE, embedding_key(embedding_name)], sort_keys=True).encode())
    for text, topic in sorted(rows):
        digest.update(f"{topic}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def build_topic_head(
    models_dir: Path,
    rows: Sequence[tuple[str, str]],
    embedding_name: str,
    vectorize: Callable[[str], np.ndarray],
    *,
    force: bool = False,
    name: str = HEAD_DIR_NAME,
) -> tuple[TopicHead, dict[str, Any] | None]:
    """Train on (text, label) rows with `vectorize` (a message -> its unit query vector); None as the report when the
    head on disk is already current. `name`: the folder under `models_dir` (the topic head's or the article head's)."""
    from sklearn.linear_model import LogisticRegression

    folder = head_dir(models_dir, name)
    wanted = fingerprint(rows, embedding_name)
    current = load_topic_head(models_dir, embedding_name, name)
    if current is not None and current.fingerprint == wanted and not force:
        return current, None
    started = time.perf_counter()
    ordered = sorted(rows, key=lambda row: (row[1], row[0]))
    vectors = np.vstack([vectorize(text) for text, _ in ordered])
    labels = [topic for _, topic in ordered]
    model = LogisticRegression(C=RECIPE["C"], max_iter=RECIPE["max_iter"])
    model.fit(vectors, labels)
    head = TopicHead(
        [str(c) for c in model.classes_],
        model.coef_.astype(np.float32),
        model.intercept_.astype(np.float32),
        embedding_key(embedding_name),
        wanted,
    )
    head.save(folder)
    accuracy = float(np.mean(model.predict(vectors) == np.asarray(labels)))
    report = {"rows": len(ordered), "classes": len(head.classes), "train_accuracy": round(accuracy, 3)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return head, report
