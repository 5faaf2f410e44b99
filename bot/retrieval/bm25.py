"""Okapi BM25 over chunks with a sparse matrix, for exact terms (36協定, 有給, 退職届) that embeddings blur."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
from scipy import sparse

from bot.retrieval.tokenize_ja import get_tokenizer, to_hiragana


def kana_bigrams(text: str) -> list[str]:
    text = "".join(ch for ch in to_hiragana(text) if "ぁ" <= ch <= "ゖ" or ch == "ー")
    return [text[i : i + 2] for i in range(len(text) - 1)]


class BM25Index:
    """`analyzer` turns a text into terms: Sudachi words by default; `ReadingBM25` uses kana bigrams of readings."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            counts = Counter(self.analyze_document(text))
            lengths[row] = sum(counts.values())
            for token, count in counts.items():
                col = self.vocab.setdefault(token, len(self.vocab))
                rows.append(row)
                cols.append(col)
                vals.append(count)
        n_docs = max(len(texts), 1)
        tf = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), max(len(self.vocab), 1)), dtype=np.float32)
        df = np.bincount(cols, minlength=tf.shape[1]).astype(np.float32)
        self.idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if len(texts) else 1.0
        # Pre-compute the saturated term weights so a query is one sparse column sum.
        tf = tf.tocoo()
        denom = tf.data + k1 * (1 - b + b * lengths[tf.row] / max(avg, 1e-6))
        weights = tf.data * (k1 + 1) / denom * self.idf[tf.col]
        self.matrix = sparse.csc_matrix((weights, (tf.row, tf.col)), shape=tf.shape, dtype=np.float32)
        self.size = len(texts)

    def save(self, path: Path) -> None:
        """Write the index atomically (a temporary file renamed into place): readers see all of it or nothing."""
        terms = np.array(sorted(self.vocab, key=self.vocab.__getitem__), dtype=np.str_)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    terms=terms,
                    idf=self.idf,
                    data=self.matrix.data,
                    indices=self.matrix.indices,
                    indptr=self.matrix.indptr,
                    shape=np.asarray(self.matrix.shape, dtype=np.int64),
                )
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the index holds nothing secret
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Path) -> Self:
        with np.load(path, allow_pickle=False) as saved:
            index = cls.__new__(cls)
            index.vocab = {str(term): i for i, term in enumerate(saved["terms"])}
            index.idf = saved["idf"]
            shape = tuple(int(n) for n in saved["shape"])
            index.matrix = sparse.csc_matrix((saved["data"], saved["indices"], saved["indptr"]), shape=shape)
            index.size = shape[0]
        return index

    def analyze_document(self, text: str) -> list[str]:
        return get_tokenizer().tokens(text)

    def analyze_query(self, text: str) -> list[str]:
        return get_tokenizer().tokens(text)

    def scores(self, query: str) -> np.ndarray:
        ids = [self.vocab[t] for t in set(self.analyze_query(query)) if t in self.vocab]
        if not ids or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.matrix[:, ids].sum(axis=1)).ravel()


class ReadingBM25(BM25Index):
    """BM25 over kana bigrams of the documents' readings: lets 「ざんぎょうだい」 find 残業代."""

    def analyze_document(self, text: str) -> list[str]:
        return kana_bigrams(get_tokenizer().reading(text))

    def analyze_query(self, text: str) -> list[str]:
        return kana_bigrams(text)
