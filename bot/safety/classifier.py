"""The learned crisis detector: scikit-learn logistic regression over character n-grams of the message.

Rules (`bot.safety.detector`) catch what they were written for and say why; people in crisis write in words no rule
list foresees (farewells without 死, an overdose already taken, 「いなくなる」). This head learns from the project's own
labelled messages (`training/safety/`, trained by `bot models build`).

Why character n-grams and not sentence embeddings: decided by measurement on the dev split (`bench/
safety_head_options.py`). At the same false-alarm rate on ordinary messages, a head over character 1–3-grams
(TF-IDF) caught clearly more crises than heads over the fused e5+USE query vectors, e5 or USE alone, an MLP or an RBF
SVM over them, or averages of these (numbers in the README). Japanese has no spaces, slang and kana spellings vary,
and the cues are short strings (「逝」「 od」「形見」): n-grams see them, a sentence vector blurs them into the career
story around them. It also costs well under a millisecond and needs no model files.

The head reads the whole message. Reading a long consultation window by window (as retrieval does) was tried and
dropped: short windows such as 「毎日怒られています」 scored like crises on their own (the seed consultation got a
check-in), and the buried explicit sentences it would have caught are what the rules already catch in any message.

Stored as plain data, never a pickle: `crisis-head.json` (classes, thresholds, n-gram settings, the vocabulary, a
fingerprint of the training data) and `crisis-head.npz` (idf, coefficients, intercepts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.answer.model import EscalationKind

HEAD_DIR_NAME = "crisis-head"
NONE = "none"
FORMAT = 2
NGRAMS = (1, 3)


@dataclass(frozen=True)
class Thresholds:
    """Chosen on the dev split (`bot models build` prints the dev numbers they give)."""

    escalate: float = 0.9  # P(crisis) at or above: the escalation answer
    check_in: float = 0.8  # P(crisis) at or above (and below escalate): a short check-in
    memory: float = 0.5  # a turn this risky is remembered and re-read with the next message


@dataclass(frozen=True)
class HeadScores:
    """P(kind) for each crisis kind and P(any crisis) = 1 - P(none), from the most alarming text scored."""

    crisis: float
    kinds: dict[str, float] = field(default_factory=dict)

    @property
    def kind(self) -> EscalationKind | None:
        if not self.kinds:
            return None
        return max(self.kinds.items(), key=lambda kv: kv[1])[0]  # type: ignore[return-value]


def make_vectorizer(vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=NGRAMS, min_df=2, sublinear_tf=True, vocabulary=vocabulary, dtype=np.float32
    )


class CrisisHead:
    """A fitted TF-IDF vocabulary and multinomial logistic regression, as arrays."""

    def __init__(
        self,
        classes: Sequence[str],
        vocabulary: dict[str, int],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        *,
        thresholds: Thresholds | None = None,
        fingerprint: str = "",
    ) -> None:
        if coef.shape != (len(classes), len(vocabulary)) or intercept.shape != (len(classes),):
            raise ValueError("coef/intercept do not match the classes and vocabulary")
        self.classes = list(classes)
        self.vocabulary = vocabulary
        self.idf = idf.astype(np.float32)
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.thresholds = thresholds or Thresholds()
        self.fingerprint = fingerprint
        self._none = self.classes.index(NONE)
        self._vectorizer = make_vectorizer(vocabulary)
        self._vectorizer.idf_ = self.idf

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax class probabilities, one row per text."""
        features = self._vectorizer.transform(list(texts))
        logits = np.asarray(features @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return probs

    def score_message(self, message: str) -> HeadScores:
        """What the head reads: the whole message, cleaned as retrieval cleans queries (width, romaji, repeats)."""
        from bot.retrieval.retriever import clean_query

        return self.score([clean_query(message)])

    def score(self, texts: Sequence[str]) -> HeadScores:
        """The most alarming of `texts` decides P(crisis) and the kinds."""
        probs = self.probabilities(texts)
        crisis = 1.0 - probs[:, self._none]
        row = int(np.argmax(crisis))
        kinds = {c: float(probs[row, i]) for i, c in enumerate(self.classes) if c != NONE}
        return HeadScores(float(crisis[row]), kinds)

    # ----- files -----------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "crisis-head.tmp.npz"
        np.savez(tmp, idf=self.idf, coef=self.coef, intercept=self.intercept)
        card = {
            "format": FORMAT,
            "classes": self.classes,
            "ngrams": list(NGRAMS),
            "thresholds": self.thresholds.__dict__,
            "fingerprint": self.fingerprint,
            "vocabulary": self.vocabulary,
        }
        tmp_card = folder / "crisis-head.tmp.json"
        tmp_card.write_text(json.dumps(card, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        tmp.replace(folder / "crisis-head.npz")
        tmp_card.replace(folder / "crisis-head.json")

    @classmethod
    def load(cls, folder: Path) -> CrisisHead:
        card = json.loads((folder / "crisis-head.json").read_text(encoding="utf-8"))
        if card.get("format") != FORMAT or tuple(card.get("ngrams", ())) != NGRAMS:
            raise ValueError(f"{folder}: crisis head format {card.get('format')!r}: run `bot models build`")
        with np.load(folder / "crisis-head.npz") as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
        return cls(
            card["classes"],
            {str(k): int(v) for k, v in card["vocabulary"].items()},
            idf,
            coef,
            intercept,
            thresholds=Thresholds(**card.get("thresholds", {})),
            fingerprint=card.get("fingerprint", ""),
        )


def head_dir(models_dir: Path) -> Path:
    return models_dir / HEAD_DIR_NAME


def has_head(models_dir: Path) -> bool:
    folder = head_dir(models_dir)
    return (folder / "crisis-head.json").is_file() and (folder / "crisis-head.npz").is_file()


def data_fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    """Changes when any training file or the recipe (`extra`) changes: the build then trains again."""
    digest = hashlib.sha256(f"{FORMAT}\n{extra}\n".encode())
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
