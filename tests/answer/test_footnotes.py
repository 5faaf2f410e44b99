"""Footnote markers (`[^key]`) are shown as the article's sources, never raw: in the composer's answers and text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answer.footnotes import render_footnotes, source_name, with_sources
from bot.answer.grounded import GroundedComposer
from bot.knowledge.library import load_library
from bot.knowledge.model import Reference
from bot.knowledge.taxonomy import load_topics
from bot.retrieval.retriever import ArticleHit, RetrievalResult

ROOT = Path(__file__).resolve().parents[2]
RAW = re.compile(r"\[\^")
REFS = {
    "roukihou": Reference(key="roukihou", title="労働基準法（e-Gov法令検索）", url="https://laws.e-gov.go.jp/"),
    "kokoro": Reference(key="kokoro", title="こころの耳（厚生労働省）", url="https://kokoro.mhlw.go.jp/"),
}


def test_markers_become_one_source_note() -> None:
    assert (
        render_footnotes("有給休暇は働く人が決めます[^roukihou]。", REFS)
        == "有給休暇は働く人が決めます（出典：労働基準法）。"
    )
    assert render_footnotes("相談できます[^roukihou][^kokoro][^roukihou]。", REFS) == (
        "相談できます（出典：労働基準法、こころの耳）。"
    )
    assert render_footnotes("知らない鍵[^nokey]。", REFS) == "知らない鍵。"
    assert render_footnotes("配列 a[^ 1] と [x] はそのまま", REFS) == "配列 a[^ 1] と [x] はそのまま"
    assert source_name(REFS["kokoro"]) == "こころの耳"


@pytest.fixture(scope="module")
def library():
    return {a.id: a for a in load_library(ROOT / "knowledge")}


@pytest.fixture(scope="module")
def composer(library):
    topics = load_topics(ROOT / "knowledge" / "topics.tsv")
    return GroundedComposer(library, {s: t.name_ja for s, t in topics.items()}, ROOT / "prompts")


def test_the_library_uses_footnotes_and_no_shown_text_keeps_one(library) -> None:
    cited = [a for a in library.values() if RAW.search(a.model_dump_json())]
    assert len(cited) >= 19, "the issue counted 19 articles with footnotes"
    for article in cited:
        shown = with_sources(article).model_dump_json()
        assert not RAW.search(shown), article.id
        assert "（出典：" in shown, article.id


def test_every_answer_from_a_cited_article_names_sources_not_markers(library, composer) -> None:
    for article in library.values():
        if not RAW.search(article.model_dump_json()):
            continue
        hit = ArticleHit(article_id=article.id, title=article.title, topic=article.topic or "", score=0.9)
        retrieval = RetrievalResult(articles=[hit], confidence=0.9)
        for full in (False, True):
            answer = composer.advice(article.title, retrieval, article_id=article.id, full=full)
            dumped = answer.model_dump_json()
            assert not RAW.search(dumped), (article.id, full)
            assert not RAW.search(answer.text)
        # What the engine shows for 「専門家に相談したい」 and 「成功事例を教えて」: the composer's copy of the sections.
        for section in composer.articles[article.id].sections:
            assert not RAW.search(section.text), (article.id, section.heading)
