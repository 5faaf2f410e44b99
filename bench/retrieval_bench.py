"""Retrieval benchmark: index build time, warm query latency, and scale (10k / 100k synthetic sections).

    .venv/bin/python bench/retrieval_bench.py [--sizes 10000 100000] [--queries 100]

The synthetic libraries are generated from the real chunks: each synthetic section is a real chunk's text with
sentences from other chunks mixed in, and its vector a normalised mix of the real vectors plus noise (embedding
100,000 texts would take hours on 2 cores and measure the embedder, not the index).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, rss_mb, summary

from bot.config import Settings
from bot.knowledge.library import load_library
from bot.retrieval.chunks import library_chunks
from bot.retrieval.evaluate import load_eval_set
from bot.retrieval.index import build_index, get_all, make_chroma_client
from bot.retrieval.retriever import HybridSearcher
from bot.retrieval.stack import build_embeddings, open_searcher


def measure(searcher: HybridSearcher, queries: list[str]) -> list[float]:
    for q in queries[:5]:
        searcher.search(q)
    out = []
    for q in queries:
        start = time.perf_counter()
        searcher.search(q)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    settings = Settings(DATA_DIR=ROOT / "data")
    queries = [r.query for r in load_eval_set(ROOT / "eval" / "retrieval.tsv")][: args.queries]
    embeddings = build_embeddings(settings)
    chunks = library_chunks(load_library(settings.knowledge_dir))

    with tempfile.TemporaryDirectory() as tmp:
        fresh = settings.model_copy(update={"data_dir": Path(tmp), "chroma_path": Path(tmp) / "chroma"})
        start = time.perf_counter()
        report = build_index(make_chroma_client(fresh), chunks, embeddings, rebuild=True)
        print(f"index build (real library, from scratch): {report.summary()} wall={time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        again = build_index(make_chroma_client(fresh), chunks, embeddings)
        print(f"index build (nothing changed): {again.summary()} wall={time.perf_counter() - start:.2f} s")

    searcher = open_searcher(settings, embeddings)
    print(summary(f"query latency, real library ({searcher.size} chunks), warm", measure(searcher, queries)))
    print(f"rss after real library: {rss_mb():.0f} MB")

    got = get_all(searcher.collection, ["embeddings", "documents", "metadatas"])
    base_vectors = np.asarray(got["embeddings"], dtype=np.float32)
    base_docs = list(got["documents"])
    base_meta = list(got["metadatas"])
    sentences = [s for d in base_docs for s in d.replace("。", "。\n").split("\n") if len(s) > 8]
    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            scaled = settings.model_copy(update={"data_dir": Path(tmp), "chroma_path": Path(tmp) / "chroma"})
            client = make_chroma_client(scaled)
            collection = client.create_collection(
                f"chunks_synthetic_{size}",
                metadata={"hnsw:space": "cosine", "embedder": embeddings.name},
                embedding_function=None,
            )
            start = time.perf_counter()
            for begin in range(0, size, 2000):
                n = min(2000, size - begin)
                picks = nrng.integers(0, len(base_docs), size=n)
                mix = nrng.integers(0, len(base_docs), size=n)
                vectors = (
                    base_vectors[picks] * 0.8
                    + base_vectors[mix] * 0.2
                    + nrng.normal(0, 0.02, base_vectors[picks].shape)
                )
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                docs = [base_docs[p] + " " + " ".join(rng.sample(sentences, 2)) for p in picks]
                metas = [
                    {**base_meta[p], "article_id": f"{base_meta[p]['article_id']}-s{(begin + i) // 10}"}
                    for i, p in enumerate(picks)
                ]
                collection.add(
                    ids=[f"s{begin + i}" for i in range(n)],
                    embeddings=vectors.astype(np.float32),
                    documents=docs,
                    metadatas=metas,
                )
            load_s = time.perf_counter() - start
            lexical = Path(tmp) / "lexical"
            start = time.perf_counter()
            # What `bot index` does after writing the collection: tokenise once, save both lexical indexes.
            HybridSearcher(client, collection.name, embeddings, lexical_cache=lexical).prepare_lexical()
            tokenise_s = time.perf_counter() - start
            before = rss_mb()
            start = time.perf_counter()
            synthetic = HybridSearcher(client, collection.name, embeddings, lexical_cache=lexical)
            synthetic.prepare_lexical()
            open_s = time.perf_counter() - start
            latencies = measure(synthetic, queries)
            print(
                f"scale {size:>7} sections: load {load_s:.0f} s, lexical indexes built and saved {tokenise_s:.0f} s, "
                f"searcher start-up from saved indexes {open_s:.1f} s, "
                f"rss {rss_mb():.0f} MB (+{rss_mb() - before:.0f} MB for the searcher); " + summary("query", latencies)
            )


if __name__ == "__main__":
    main()
