"""`bot eval`: recall@1/@3, MRR, per-topic misses and warm latency for the configured retriever and baselines.

Baselines run in the same process over the same chunks: e5 alone, USE alone, BM25 alone (all exact search in
memory, vectors sliced from the fused index so nothing is embedded twice), and a plain LangChain RAG (fixed
500-character chunks of each article file, one embedding model, LangChain's in-memory vector store).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.retrieval.bm25 import BM25Index
from bot.retrieval.index import get_all
from bot.retrieval.retriever import HybridSearcher, clean_query

Ranker = Callable[[str], list[str]]  # query -> article ids, best first


@dataclass(frozen=True)
class EvalRow:
    qid: str
    split: str
    length: str
    topic: str
    query: str


def load_eval_set(path: Path, split: str | None = None) -> list[EvalRow]:
    with path.open(encoding="utf-8") as handle:
        rows = [
            EvalRow(r["qid"], r["split"], r["length"], r["topic"], r["query"])
            for r in csv.DictReader(handle, delimiter="\t")
        ]
    return [r for r in rows if split in (None, "all", r.split)]


@dataclass
class Report:
    name: str
    n: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    latency_p50_ms: float
    latency_p95_ms: float
    misses: dict[str, list[str]] = field(default_factory=dict)
    # The selective policy (bot.retrieval.policy), for the configured searchers: the share of messages answered with
    # confidence about the wrong topic, and the share that got a clarifying question or 「もしかして」 alternatives.
    confident_wrong: float | None = None
    asked: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "confident_wrong": None if self.confident_wrong is None else round(self.confident_wrong, 4),
            "asked_or_alternatives": None if self.asked is None else round(self.asked, 4),
            "name": self.name,
            "n": self.n,
            "recall@1": round(self.recall_at_1, 4),
            "recall@3": round(self.recall_at_3, 4),
            "mrr": round(self.mrr, 4),
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p95_ms": round(self.latency_p95_ms, 2),
            "misses": self.misses,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), interpolated between samples; every report and benchmark uses this one."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]


def evaluate(name: str, rank: Ranker, rows: Sequence[EvalRow], topic_of: dict[str, str], *, warmup: int = 3) -> Report:
    for row in rows[:warmup]:
        rank(row.query)
    hits1 = hits3 = 0
    rr = 0.0
    latencies: list[float] = []
    misses: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        start = time.perf_counter()
        ranking = rank(row.query)
        latencies.append((time.perf_counter() - start) * 1000)
        topics = []
        for aid in ranking:
            topic = topic_of.get(aid, "")
            if topic not in topics:
                topics.append(topic)
        position = topics.index(row.topic) + 1 if row.topic in topics else 0
        hits1 += position == 1
        hits3 += 1 <= position <= 3
        rr += 1.0 / position if position else 0.0
        if position != 1:
            misses[row.topic].append(f"{row.qid}→{topics[0] if topics else '-'}")
    n = max(len(rows), 1)
    return Report(
        name,
        len(rows),
        hits1 / n,
        hits3 / n,
        rr / n,
        statistics.median(latencies) if latencies else 0.0,
        percentile(latencies, 0.95),
        dict(sorted(misses.items())),
    )


class InMemoryChunks:
    """Exact search over the index's chunks for the baselines and for tuning on the dev split."""

    def __init__(self, searcher: HybridSearcher) -> None:
        got = get_all(searcher.collection, ["embeddings", "documents", "metadatas"])
        self.vectors = np.asarray(got["embeddings"], dtype=np.float32)
        self.documents = list(got["documents"])
        self.article_ids = np.array([md["article_id"] for md in got["metadatas"]])
        self.embeddings = searcher.embeddings
        self._bm25: BM25Index | None = None

    def part_vectors(self, index: int) -> np.ndarray:
        """The chunk vectors of one model inside the fused vector, re-normalised."""
        offset = sum(int(m.dimension) for m, _ in self.embeddings.parts[:index])
        dim = int(self.embeddings.parts[index][0].dimension)
        block = self.vectors[:, offset : offset + dim]
        return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)

    @property
    def bm25(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = BM25Index(self.documents)
        return self._bm25

    def rank_by_chunk_scores(self, scores: np.ndarray) -> list[str]:
        best: dict[str, float] = {}
        for idx in np.argsort(-scores)[:80]:
            aid = str(self.article_ids[idx])
            if aid not in best:
                best[aid] = float(scores[idx])
        return list(best)

    def dense_ranker(self, index: int) -> Ranker:
        vectors = self.part_vectors(index)
        model = self.embeddings.parts[index][0]
        return lambda q: self.rank_by_chunk_scores(vectors @ model.embed_query_array(clean_query(q)))

    def bm25_ranker(self) -> Ranker:
        return lambda q: self.rank_by_chunk_scores(self.bm25.scores(clean_query(q)))


def plain_rag_ranker(knowledge_dir: Path, embeddings: Any) -> Ranker:
    """The textbook LangChain RAG: 500-character chunks of the raw files, one embedding, top-k similarity."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from bot.knowledge.library import article_paths

    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=0)
    docs: list[Document] = []
    for path in article_paths(knowledge_dir):
        text = path.read_text(encoding="utf-8").split("\n---", 1)[-1]
        docs += [Document(page_content=c, metadata={"article_id": path.stem}) for c in splitter.split_text(text)]
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_documents(docs)

    def rank(query: str) -> list[str]:
        out: list[str] = []
        for doc in store.similarity_search(query, k=40):
            aid = doc.metadata["article_id"]
            if aid not in out:
                out.append(aid)
        return out

    return rank


def fit_calibration(searcher: HybridSearcher, rows: Sequence[EvalRow], vague: Sequence[str]) -> dict[str, float]:
    """Platt-scale (top score, margin) to P(top article right) on dev rows plus vague messages (never right)."""
    from sklearn.linear_model import LogisticRegression

    features: list[tuple[float, float]] = []
    labels: list[int] = []
    for text, topic in [(r.query, r.topic) for r in rows] + [(v, "") for v in vague]:
        result = searcher.search(text)
        top = result.articles[0].score if result.articles else 0.0
        second = result.articles[1].score if len(result.articles) > 1 else 0.0
        features.append((top, top - second))
        labels.append(int(bool(result.articles) and result.articles[0].topic == topic))
    model = LogisticRegression(C=10.0).fit(np.asarray(features), np.asarray(labels))
    return {
        "bias": float(model.intercept_[0]),
        "w_top": float(model.coef_[0][0]),
        "w_margin": float(model.coef_[0][1]),
    }


def policy_report(name: str, searcher: HybridSearcher, rows: Sequence[EvalRow], topic_of: dict[str, str]) -> Report:
    """`evaluate` for a hybrid searcher, with the selective policy's two shares."""
    from bot.retrieval.policy import decide

    decisions: dict[str, tuple[str, str]] = {}  # query -> (action, top topic)

    def hybrid(query: str) -> list[str]:
        result = searcher.search(query, k=10)
        ranking = [h.article_id for h in result.articles]
        decisions[query] = (decide(result).action, topic_of.get(ranking[0], "") if ranking else "")
        return ranking

    report = evaluate(name, hybrid, rows, topic_of)
    wrong = asked = 0
    for row in rows:
        action, top = decisions[row.query]
        asked += action != "answer"
        wrong += action != "clarify" and top != row.topic and action == "answer"
    n = max(len(rows), 1)
    report.confident_wrong, report.asked = wrong / n, asked / n
    return report


def run_eval(
    searcher: HybridSearcher,
    rows: Sequence[EvalRow],
    knowledge_dir: Path,
    *,
    baselines: bool = True,
    base_searcher: HybridSearcher | None = None,
) -> list[Report]:
    """`base_searcher`: the same index queried through the base embedding model, reported beside the tuned one."""
    topic_of = {aid: info["topic"] for aid, info in searcher.articles.items()}
    reports = [policy_report("hybrid (configured)", searcher, rows, topic_of)]
    if searcher.topic_head is not None:
        # The same search with the topic head's weight at 0: what the head adds, in the same run.
        plain = copy.copy(searcher)
        plain.params = dataclasses.replace(searcher.params, topic_head_weight=0.0)
        reports.append(policy_report("hybrid, no topic head", plain, rows, topic_of))
    if base_searcher is not None:
        reports.append(policy_report("hybrid, base e5 (fallback)", base_searcher, rows, topic_of))
    if baselines:
        memory = InMemoryChunks(searcher)
        for index, (model, _) in enumerate(searcher.embeddings.parts):
            reports.append(
                # A model folder's name, not its path ("multilingual-e5-small alone").
                evaluate(
                    f"{Path(str(getattr(model, 'name', 'model'))).name} alone",
                    memory.dense_ranker(index),
                    rows,
                    topic_of,
                )
            )
        reports.append(evaluate("BM25 alone", memory.bm25_ranker(), rows, topic_of))
        primary = searcher.embeddings.parts[0][0]
        rag = plain_rag_ranker(knowledge_dir, primary)
        reports.append(evaluate("plain LangChain RAG (500-char chunks, e5)", rag, rows, topic_of))
    return reports


def format_reports(reports: Sequence[Report], split: str) -> str:
    lines = [f"split: {split}   n={reports[0].n if reports else 0}", ""]
    lines.append(
        f"{'retriever':<46} {'R@1':>6} {'R@3':>6} {'MRR':>6} {'p50 ms':>8} {'p95 ms':>8} {'conf.wrong':>10} {'asked':>6}"
    )
    for r in reports:
        policy = (
            f" {r.confident_wrong:10.3f} {r.asked:6.3f}"
            if r.confident_wrong is not None and r.asked is not None
            else ""
        )
        lines.append(
            f"{r.name:<46} {r.recall_at_1:6.3f} {r.recall_at_3:6.3f} {r.mrr:6.3f} {r.latency_p50_ms:8.1f} "
            f"{r.latency_p95_ms:8.1f}{policy}"
        )
    lines += [
        "",
        "conf.wrong: answered without alternatives about the wrong topic; asked: a clarifying question or "
        "「もしかして」 alternatives (bot.retrieval.policy). Every hybrid row uses the configured calibration, which is"
        " fitted to the configured scores: the policy columns of the other rows only show how far apart they are.",
    ]
    if reports:
        lines += ["", "misses of the configured retriever (top-1 wrong), by expected topic:"]
        for topic, misses in reports[0].misses.items():
            lines.append(f"  {topic}: {', '.join(misses)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ArticleChoiceRow:
    ref: str
    topic: str
    article: str  # the article a labeller chose for the message's situation among its topic's articles
    text: str


def load_article_choice(path: Path) -> list[ArticleChoiceRow]:
    """eval/article_choice.tsv: dev messages of topics with several articles, each labelled with the article whose
    situation fits (by a labeller subagent who saw the messages and one line per article, never the heads)."""
    with path.open(encoding="utf-8") as f:
        return [
            ArticleChoiceRow(r["ref"], r["topic"], r["article"], r["text"])
            for r in csv.DictReader(f, delimiter="\t")
            if r.get("text") and r.get("article") and r["article"] != "none"
        ]


def article_choice_accuracy(searcher: HybridSearcher, rows: Sequence[ArticleChoiceRow]) -> float:
    """How often the first of the labelled topic's articles in the results is the labelled article: the choice among
    a topic's situations, apart from whether the topic itself came first."""
    right = 0
    for row in rows:
        hits = searcher.search(row.text, k=10).articles
        first = next((h.article_id for h in hits if h.topic == row.topic), None)
        right += first == row.article
    return right / max(len(rows), 1)
