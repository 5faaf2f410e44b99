"""Fine-tune the e5 embedding model's query side on the career domain, offline on the CPU (`bot models build`).

Training queries never come from `eval/`: the messages writers wrote for training (`training/retrieval/queries.tsv`,
labelled with a topic), the articles' own phrasings and Q&A questions.

Query-side tuning, decided by measurement: the textbook recipe (MultipleNegativesRankingLoss over query/passage
pairs, both sides trained) ran at ~21 s per batch of 32 on this machine's two cores with 7 GB of memory (passages are
~200 tokens), half an hour per epoch. Here the passages keep the base model's embeddings — computed once, and exactly
the vectors already in the search index, so nothing is re-indexed — and only the query encoder learns. Each batch sees
the whole library at once: the loss is a softmax over all passages, and the target is the query's topic (the sum over
its passages), so every other topic's passage is a negative, the neighbouring ones hardest. It runs with
sentence-transformers' trainer and a small custom loss (`TopicSoftmaxLoss`).

The result is a sentence-transformers folder beside the base model (same "query: "/"passage: " prompts, its own int8
ONNX query copy, and a card naming the base model its passages come from), which `SentenceTransformerEmbeddings` serves
as queries-from-here, passages-from-the-base. The base model stays the configured fallback (`EMBEDDING_TUNED=false`).
The build is reproducible (fixed seeds, sorted data) and skipped when a fingerprint of the base model, the data and
this recipe matches; the weights are also kept in a cache outside the checkout (`TUNE_CACHE_DIR`), so a fresh clone on
the same machine does not train again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bot.knowledge.model import Article, Role
from bot.retrieval.chunks import PHRASING_ROLE, library_chunks
from bot.retrieval.embeddings import TUNE_CARD as CARD

QUERIES_FILE = "retrieval/queries.tsv"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the weights; part of the fingerprint."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    temperature: float = 0.02
    # Training cost on two CPU cores, measured: all 12 layers at 128 tokens ~22 s a batch (over an hour an epoch);
    # the top layers only, at 64 tokens, a few seconds. The lower layers keep e5's general Japanese.
    max_seq_length: int = 64
    trainable_layers: int = 2
    seed: int = 20261207
    version: int = 3


DEV_SHARE = 5  # one writer query in five is held out: the dev split the confidence and the policy are fitted on


def query_split(text: str) -> str:
    """ "dev" or "train", fixed by the text itself (no file order or seed can move a query between them)."""
    return "dev" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % DEV_SHARE == 0 else "train"


def read_queries(training_dir: Path, split: str | None = "train") -> list[tuple[str, str]]:
    """(topic, text) rows of the writers' queries: the training split, the held-out dev split, or all (None)."""
    path = training_dir / QUERIES_FILE
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(r["topic"].strip(), r["text"].strip()) for r in csv.DictReader(handle, delimiter="\t")]
    return [(topic, text) for topic, text in rows if topic and text and split in (None, query_split(text))]


def training_queries(articles: list[Article], training_dir: Path) -> list[tuple[str, str]]:
    """(text, topic) for every training query: the writers' training split, the phrasings and the Q&A questions."""
    out: list[tuple[str, str]] = [(text, topic) for topic, text in read_queries(training_dir)]
    for article in articles:
        topic = article.topic or ""
        out += [(p, topic) for p in article.phrasings]
        qa = article.section(Role.QA)
        out += [(item.title, topic) for item in (qa.items if qa else [])]
    return _without_held_out(out, training_dir)


def article_rows(articles: list[Article], training_dir: Path) -> list[tuple[str, str]]:
    """(text, article id) for the article head: each article's own words for the situation it serves — its
    consultation, title, phrasings, Q&A questions and the titles of its factors and steps. Only topics with more than
    one article need choosing among, but every article is a class so one head serves any library."""
    out: list[tuple[str, str]] = []
    for article in articles:
        texts = [article.title, *article.phrasings]
        for role in (Role.CONSULTATION, Role.QA, Role.ANALYSIS, Role.ACTION_PLAN):
            section = article.section(role)
            if section is None:
                continue
            if role is Role.CONSULTATION and section.text.strip():
                texts.append(section.text.strip())
            texts += [item.title for item in section.items if item.title]
            texts += [item.title for step in section.steps for item in step.items if item.title]
        out += [(text, article.id) for text in texts if text]
    return _without_held_out(out, training_dir)


def _without_held_out(rows: list[tuple[str, str]], training_dir: Path) -> list[tuple[str, str]]:
    """The (text, label) rows, deduplicated and sorted, without any text of the writers' dev split: a phrasing or Q&A
    question can repeat a held-out message word for word (Q&A items were written from the writers' questions)."""
    held_out = {text for _, text in read_queries(training_dir, "dev")}
    return sorted({row for row in rows if row[0] not in held_out}, key=lambda row: (row[1], row[0]))


class TopicSoftmaxLoss(torch.nn.Module):
    """Softmax over every passage of the library; the query's topic is right (all its passages count)."""

    def __init__(self, model: Any, passages: torch.Tensor, passage_topics: torch.Tensor, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.passages = passages  # fixed: the base model's passage vectors, i.e. the search index
        self.passage_topics = passage_topics
        self.temperature = temperature

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        queries = F.normalize(self.model(sentence_features[0])["sentence_embedding"], dim=-1)
        logits = queries @ self.passages.T / self.temperature
        mine = self.passage_topics[None, :] == labels[:, None]
        everything = torch.logsumexp(logits, dim=1)
        right = torch.logsumexp(logits.masked_fill(~mine, float("-inf")), dim=1)
        return (everything - right).mean()


def freeze_lower_layers(model: Any, trainable: int) -> None:
    """Only the top `trainable` transformer layers learn; embeddings and the layers below stay e5's."""
    bert = model[0].auto_model
    for parameter in bert.parameters():
        parameter.requires_grad = False
    for layer in bert.encoder.layer[-trainable:]:
        for parameter in layer.parameters():
            parameter.requires_grad = True


def fingerprint(base: Path, training_dir: Path, articles: list[Article], recipe: Recipe) -> str:
    digest = hashlib.sha256()
    card = base / "build_info.json"
    digest.update(card.read_bytes() if card.exists() else str(base).encode())
    digest.update((training_dir / QUERIES_FILE).read_bytes())
    for article in sorted(articles, key=lambda a: a.id):
        digest.update(article.model_dump_json(exclude={"source", "reviewed"}).encode())
    digest.update(json.dumps(asdict(recipe), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def is_current(target: Path, print_: str) -> bool:
    card = target / CARD
    if not card.exists() or not (target / "model.safetensors").exists():
        return False
    try:
        return bool(json.loads(card.read_text(encoding="utf-8")).get("fingerprint") == print_)
    except ValueError:
        return False


def tune(
    base: Path,
    target: Path,
    articles: list[Article],
    training_dir: Path,
    *,
    recipe: Recipe | None = None,
    cache_dir: Path | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the tuned model at `target` from `base`; returns its card. Skipped when up to date; copied from
    `cache_dir` when a build with the same fingerprint is kept there."""
    recipe = recipe or Recipe()
    print_ = fingerprint(base, training_dir, articles, recipe)
    cached = cache_dir / print_ if cache_dir else None
    if not force and is_current(target, print_):
        card: dict[str, Any] = json.loads((target / CARD).read_text(encoding="utf-8"))
        if cached is not None and not is_current(cached, print_):
            _keep(target, cached, log)
        return card
    if not force and cached is not None and is_current(cached, print_):
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(cached, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        log(f"tune: copied {target.name} from the cache {cached}")
        card = json.loads((target / CARD).read_text(encoding="utf-8"))
        return card

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments
    from transformers import set_seed

    from bot.retrieval.onnx_query import QUERY_MODEL_FILE, export_query_model

    started = time.perf_counter()
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    set_seed(recipe.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    model = SentenceTransformer(str(base), device="cpu")
    passages = [c for c in library_chunks(articles) if c.role != PHRASING_ROLE]
    topics = sorted({c.topic for c in passages})
    topic_index = {t: i for i, t in enumerate(topics)}
    with torch.no_grad():
        passage_vectors = model.encode(
            [c.text for c in passages],
            prompt_name="passage",
            batch_size=32,
            normalize_embeddings=True,
            convert_to_tensor=True,
        )
    # Passages were embedded at full length above; queries train at the recipe's length, top layers only.
    serving_length = model.max_seq_length
    model.max_seq_length = recipe.max_seq_length
    freeze_lower_layers(model, recipe.trainable_layers)
    queries = [(text, topic) for text, topic in training_queries(articles, training_dir) if topic in topic_index]
    log(f"tune: {len(queries)} queries over {len(passages)} passages ({time.perf_counter() - started:.0f} s)")
    dataset = Dataset.from_dict({"anchor": [q for q, _ in queries], "label": [topic_index[t] for _, t in queries]})
    loss = TopicSoftmaxLoss(
        model,
        passage_vectors.detach().clone(),
        torch.tensor([topic_index[c.topic] for c in passages]),
        recipe.temperature,
    )
    prompts = model.prompts or {}
    scratch = target.with_name(target.name + ".training")
    shutil.rmtree(scratch, ignore_errors=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(scratch),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        warmup_steps=recipe.warmup_ratio,
        seed=recipe.seed,
        data_seed=recipe.seed,
        prompts={"anchor": prompts.get("query", "query: ")},
        save_strategy="no",
        logging_steps=20,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    model.max_seq_length = serving_length  # served like the base model: long messages are not cut at 64 tokens

    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    export_query_model(staging, staging / QUERY_MODEL_FILE)
    card = {
        "base": base.name,
        # Passages (the search index) are embedded by the base model; this folder embeds queries only.
        "passage_model": base.name,
        "fingerprint": print_,
        "queries": len(queries),
        "passages": len(passages),
        "recipe": asdict(recipe),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (staging / CARD).write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log(f"tune: built {target} in {card['seconds']} s")
    if cached is not None:
        _keep(target, cached, log)
    return card


def _keep(target: Path, cached: Path, log: Callable[[str], None]) -> None:
    try:
        shutil.rmtree(cached, ignore_errors=True)
        shutil.copytree(target, cached)
    except OSError as exc:  # a cache that cannot be written only costs the next build its shortcut
        log(f"tune: could not keep a copy in {cached}: {type(exc).__name__}")
