"""The hybrid retriever on the real library, with messages as workers really type them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.retrieval.evaluate import InMemoryChunks, evaluate, load_eval_set
from bot.retrieval.retriever import ArticleRetriever

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "tests" / "fixtures" / "seed_consultation.txt").read_text(encoding="utf-8")


def top_topics(searcher, text: str, **kwargs) -> list[str]:
    return [h.topic for h in searcher.search(text, **kwargs).articles]


def test_distinct_articles_best_first_with_matched_sections(searcher) -> None:
    result = searcher.search("上司に毎日怒鳴られて、みんなの前で人格を否定される", k=5)
    ids = [h.article_id for h in result.articles]
    assert len(ids) == len(set(ids)) == 5
    assert [h.score for h in result.articles] == sorted((h.score for h in result.articles), reverse=True)
    assert result.articles[0].topic == "power-harassment"
    assert result.articles[0].sections and all(s.role and s.heading for s in result.articles[0].sections)


def test_phrasings_count_but_are_never_shown_as_matched_sections(searcher) -> None:
    assert any(m["role"] == "phrasing" for m in searcher.meta.values()), "the library's phrasings are not indexed"
    for message in ("1on1で何話せばいいの", "ざんぎょうだいがでない", "来月復職、ブランクやばい"):
        for hit in searcher.search(message, k=5).articles:
            assert hit.sections and all(s.role != "phrasing" for s in hit.sections)


def test_the_seed_consultation_finds_the_handover_article(searcher) -> None:
    assert top_topics(searcher, SEED)[0] == "handover"


@pytest.mark.parametrize(
    ("message", "topic"),
    [
        ("36協定ってなに？残業させすぎでは", "overwork"),
        ("退職届っていつ出せばいい？上司に切り出せない", "resignation"),
        ("ざんぎょうだいがでない", "labor-rights"),  # hiragana only
        ("mainichi shuuden de kaette donichi mo shigoto", "overwork"),  # romaji
        ("面説でいつも緊張して頭が真っ白になる😭", "interview"),  # typo and emoji
        ("職務経歴所の書き方わからん", "resume"),  # typo
        ("ふくぎょうしたいけど会社にバレる？", "side-job"),
    ],
)
def test_what_people_really_type(searcher, message: str, topic: str) -> None:
    assert topic in top_topics(searcher, message)[:3]


def test_long_consultation_keeps_the_problem_in_the_middle(searcher) -> None:
    opening = (
        "お疲れさまです。長くなりますがすみません。私は地方の食品メーカーで働いていて、家族は妻と子ども二人です。" * 3
    )
    problem = "本題なのですが、来月から社内の評価制度が変わり、頑張って成果を出しているのに査定が低く、昇給もありませんでした。同期は上がっているのに納得できません。"
    closing = "趣味はキャンプで、休日は家族と出かけています。最近は子どもの受験もあり、家計のことも考えています。" * 3
    message = opening + problem + closing
    assert len(message) > 300
    assert top_topics(searcher, message)[0] == "unfair-evaluation"


def test_long_messages_are_read_in_sentence_windows_that_cover_all_of_it() -> None:
    from bot.retrieval.retriever import LONG_MESSAGE_CHARS, WINDOW_CHARS, _windows

    short = "上司に毎日怒鳴られる。どうしたらいい？"
    assert _windows(short) == [short]
    long = "前置きです。" * 40 + "本題は残業代が出ないことです。" + "あ" * 300 + "以上です。"
    assert len(long) > LONG_MESSAGE_CHARS
    windows = _windows(long)
    assert "".join(windows) == long  # nothing dropped, nothing repeated
    assert all(len(w) <= WINDOW_CHARS for w in windows)
    assert any("残業代が出ない" in w for w in windows)


def test_confidence_separates_specific_from_vague(searcher) -> None:
    specific = searcher.search("上司が定年で退職して、引き継ぎ2週間で得意先をほとんど任された。前任者は入院中")
    vague = searcher.search("なんかもうやだ")
    assert specific.confidence > 0.8
    assert vague.confidence < specific.confidence


def test_conversation_context_keeps_a_follow_up_with_its_article(searcher) -> None:
    context = ["前任の上司が急に退職して、引き継ぎが2週間しかなく、得意先の事情が何もわからない"]
    with_context = top_topics(searcher, "客にはどう説明すれば？", context=context)
    assert with_context[0] == "handover"


def test_restricting_to_an_article(searcher) -> None:
    handover = next(aid for aid, info in searcher.articles.items() if info["topic"] == "handover")
    result = searcher.search("顧客への説明", restrict_to=[handover])
    assert [h.article_id for h in result.articles] == [handover]


def test_langchain_retriever_interface(searcher) -> None:
    retriever = ArticleRetriever(searcher=searcher, k=3)
    docs = retriever.invoke("給料を上げてほしいと上司にどう伝えればいい？")
    assert len(docs) == 3
    assert docs[0].metadata["topic"] == "salary-negotiation"
    assert {"article_id", "score", "sections", "confidence"} <= set(docs[0].metadata)


def test_fused_retriever_beats_every_single_signal_on_the_dev_split(searcher) -> None:
    """A quality floor on the dev split (the test split is only reported by `bot eval`)."""
    rows = load_eval_set(ROOT / "eval" / "retrieval.tsv", "dev")
    topic_of = {aid: info["topic"] for aid, info in searcher.articles.items()}
    hybrid = evaluate("hybrid", lambda q: [h.article_id for h in searcher.search(q, k=10).articles], rows, topic_of)
    memory = InMemoryChunks(searcher)
    singles = [
        evaluate(f"dense{i}", memory.dense_ranker(i), rows, topic_of) for i in range(len(searcher.embeddings.parts))
    ]
    singles.append(evaluate("bm25", memory.bm25_ranker(), rows, topic_of))
    assert hybrid.recall_at_3 >= 0.93 and hybrid.mrr >= 0.85
    for single in singles:
        assert hybrid.recall_at_3 > single.recall_at_3, single.name
