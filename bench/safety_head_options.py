"""Which learned crisis head: measured on the dev split of training/safety/ (the decision behind bot/safety/classifier).

Candidates, each a logistic regression trained on training/safety/train/ with the same class balancing:
character 1–4-gram TF-IDF (shipped), the fused e5+USE query vector retrieval computes, e5 (int8 query) alone, USE
alone, and the n-gram and fused heads averaged. Each gets the escalation threshold that lets through 2 % of dev's
ordinary messages; recall is the share of dev's clear crisis messages escalated by the rules or the head.

Run: .venv/bin/python bench/safety_head_options.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.config import get_settings
from bot.retrieval.retriever import clean_query
from bot.retrieval.stack import build_embeddings
from bot.safety import head_build as hb
from bot.safety.detector import detect_crisis

ROOT = Path(__file__).resolve().parent.parent
ORDINARY_RATE = 0.02


def report(name: str, crisis: np.ndarray, dev: list[hb.Example], rules: np.ndarray) -> None:
    ordinary = np.array([e.label == hb.NONE for e in dev])
    clear = np.array([e.tier == "clear" for e in dev])
    ranked = np.sort(crisis[ordinary])[::-1]
    threshold = ranked[int(ORDINARY_RATE * len(ranked))] + 1e-6
    head = crisis >= threshold
    both = head | rules
    print(
        f"{name:<22} head alone {head[clear].mean():.3f}  rules+head {both[clear].mean():.3f}  "
        f"false alarms rules+head {both[ordinary].sum()}/{ordinary.sum()}  (threshold {threshold:.3f})"
    )


def main() -> int:
    folder = hb.training_dir(ROOT / "training")
    train, dev = hb.load_split(folder, "train"), hb.load_split(folder, "dev")
    rules = np.array([detect_crisis(e.text) is not None for e in dev])
    print(
        f"train {len(train)} rows, dev {len(dev)} rows; rules alone catch {rules[[e.tier == 'clear' for e in dev]].mean():.3f}"
    )

    ngram = hb.fit(train)
    p_ngram = np.array([ngram.score([clean_query(e.text)]).crisis for e in dev])
    report("char n-grams (shipped)", p_ngram, dev, rules)

    embeddings = build_embeddings(get_settings())
    start = time.perf_counter()
    vectors = {t: embeddings.embed_query_array(clean_query(t)) for t in [e.text for e in train + dev]}
    print(f"(embedded {len(vectors)} messages in {time.perf_counter() - start:.0f} s)")
    x_train = np.vstack([vectors[e.text] for e in train])
    x_dev = np.vstack([vectors[e.text] for e in dev])
    y = np.array([e.label != hb.NONE for e in train], dtype=int)
    weights = np.array([hb.POSSIBLE_WEIGHT if e.tier == "possible" else 1.0 for e in train])
    e5 = embeddings.parts[0][0].dimension
    fused_p = None
    for name, cols in (("fused e5+USE", slice(None)), ("e5 only", slice(0, e5)), ("USE only", slice(e5, None))):
        model = LogisticRegression(C=8.0, max_iter=5000, class_weight="balanced")
        model.fit(x_train[:, cols], y, sample_weight=weights)
        p = model.predict_proba(x_dev[:, cols])[:, 1]
        fused_p = p if fused_p is None else fused_p
        report(name, p, dev, rules)
    assert fused_p is not None
    report("n-grams + fused, mean", (p_ngram + fused_p) / 2, dev, rules)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
