"""`bot index`: incremental builds, deletions, rebuilds, and never serving a half-built index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.knowledge.library import load_library
from bot.retrieval.chunks import library_chunks
from bot.retrieval.index import CHUNK_PREFIX, active_collection_name, build_index, make_chroma_client
from bot.retrieval.retriever import HybridSearcher
from bot.retrieval.stack import build_embeddings, open_searcher

ROOT = Path(__file__).resolve().parents[2]


def index(settings, **kwargs):
    chunks = library_chunks(load_library(settings.knowledge_dir))
    return build_index(make_chroma_client(settings), chunks, build_embeddings(settings), **kwargs)


def test_first_build_then_no_op(minilm_settings) -> None:
    first = index(minilm_settings)
    assert first.changed and first.articles == 4 and first.embedded == first.chunks > 20 and first.reused == 0
    again = index(minilm_settings)
    assert not again.changed and again.embedded == 0
    assert again.collection == first.collection


def test_only_changed_chunks_are_embedded(minilm_settings, small_library: Path) -> None:
    first = index(minilm_settings)
    article = next(small_library.glob("resume-*.md"))
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("## 成功事例\n", "## 成功事例\n\n追記: 一行足しました。\n", 1), encoding="utf-8")
    second = index(minilm_settings)
    assert second.changed and second.embedded == 1 and second.reused == first.chunks - 1 and second.removed == 0
    assert second.collection != first.collection
    client = make_chroma_client(minilm_settings)
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    # the old one is retired, not dropped: workers still on it finish their searches (see test_index_switch.py)
    assert sorted(n for n in names if n.startswith(CHUNK_PREFIX)) == sorted([first.collection, second.collection])
    assert "retired_at" in (client.get_collection(first.collection).metadata or {})


def test_removed_article_is_deleted_from_the_index(minilm_settings, small_library: Path) -> None:
    index(minilm_settings)
    removed = next(small_library.glob("labor-rights-*.md"))
    removed.unlink()
    report = index(minilm_settings)
    assert report.removed > 0 and report.articles == 3 and report.embedded == 0
    searcher = open_searcher(minilm_settings)
    assert removed.stem not in searcher.articles
    assert all(h.article_id != removed.stem for h in searcher.search("残業代が払われない", k=10).articles)


def test_rebuild_embeds_everything_again(minilm_settings) -> None:
    first = index(minilm_settings)
    again = index(minilm_settings, rebuild=True)
    assert again.changed and again.embedded == first.chunks and again.reused == 0


def test_an_interrupted_build_leaves_the_served_index_intact(minilm_settings, small_library: Path) -> None:
    first = index(minilm_settings)
    client = make_chroma_client(minilm_settings)
    before = open_searcher(minilm_settings).search("職務経歴書の書き方", k=3).articles[0].article_id
    article = next(small_library.glob("resume-*.md"))
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("## 成功事例\n", "## 成功事例\n\n変更しました。\n", 1), encoding="utf-8")
    embeddings = build_embeddings(minilm_settings)

    class Failing:
        name = embeddings.name
        dimension = embeddings.dimension

        def embed_documents_array(self, texts):
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        build_index(client, library_chunks(load_library(small_library)), Failing())
    assert active_collection_name(client) == first.collection
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    assert [n for n in names if n.startswith(CHUNK_PREFIX)] == [first.collection]
    searcher = HybridSearcher(client, first.collection, embeddings)
    assert searcher.search("職務経歴書の書き方", k=3).articles[0].article_id == before


def test_chunks_know_article_topic_role_and_heading(minilm_settings) -> None:
    index(minilm_settings)
    searcher = open_searcher(minilm_settings)
    roles = {m["role"] for m in searcher.meta.values()}
    assert {"overview", "consultation", "analysis", "action_plan", "strategy", "case", "expert"} <= roles
    for meta in searcher.meta.values():
        assert meta["article_id"] and meta["topic"] and meta["heading"] and meta["title"]


def test_cli_prints_a_summary_line(minilm_settings, tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATA_DIR": str(minilm_settings.data_dir),
        "KNOWLEDGE_DIR": str(minilm_settings.knowledge_dir),
        "EMBEDDING_MODEL": str(minilm_settings.embedding_model),
        "EMBEDDING_USE_WEIGHT": "0",
        "HF_HUB_OFFLINE": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "bot", "index", "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("indexed 4 articles, ")
    again = subprocess.run(
        [sys.executable, "-m", "bot", "index", "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.stdout.startswith("index up to date: 4 articles")


def test_lexical_indexes_are_saved_with_the_collection_and_reused(
    minilm_settings, small_library: Path, monkeypatch
) -> None:
    from bot.retrieval import bm25

    first = index(minilm_settings)
    searcher = open_searcher(minilm_settings)
    searcher.prepare_lexical()
    saved = sorted(p.name for p in (minilm_settings.data_dir / "lexical").iterdir())
    assert len(saved) == 2 and all(name.startswith(first.collection) for name in saved)
    expected = [h.article_id for h in searcher.search("ざんぎょうだいがでない", k=4).articles]
    expected_words = [h.article_id for h in searcher.search("36協定の上限", k=4).articles]

    def no_tokenising(self, *args, **kwargs):
        raise AssertionError("the saved lexical index should have been loaded")

    with monkeypatch.context() as patch:
        patch.setattr(bm25.BM25Index, "__init__", no_tokenising)
        reopened = open_searcher(minilm_settings)
        assert [h.article_id for h in reopened.search("ざんぎょうだいがでない", k=4).articles] == expected
        assert [h.article_id for h in reopened.search("36協定の上限", k=4).articles] == expected_words

    # A damaged file is rebuilt rather than trusted; a new index replaces the old files.
    words = next((minilm_settings.data_dir / "lexical").glob("*-words-*.npz"))
    words.write_bytes(b"not an npz")
    assert [h.article_id for h in open_searcher(minilm_settings).search("36協定の上限", k=4).articles] == expected_words
    article = next(small_library.glob("resume-*.md"))
    article.write_text(
        article.read_text(encoding="utf-8").replace("## 成功事例\n", "## 成功事例\n\n追記。\n", 1), "utf-8"
    )
    second = index(minilm_settings)
    open_searcher(minilm_settings).prepare_lexical()
    assert all(p.name.startswith(second.collection) for p in (minilm_settings.data_dir / "lexical").iterdir())
