"""Readers for the three raw formats operators have, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.model import ArticleFormatError, Role
from bot.knowledge.readers import read_article, read_article_text
from bot.knowledge.readers.blocks import split_item
from bot.knowledge.roles import classify_heading
from bot.knowledge.writer import to_markdown

ARTICLES = Path(__file__).resolve().parent.parent / "fixtures" / "articles"


def roles(article) -> list[str]:
    return [s.role.value for s in article.sections]


def all_text(article) -> str:
    return article.model_dump_json()


@pytest.mark.parametrize(
    ("heading", "role"),
    [
        ("1. 現状分析:なぜ行き詰まったのか?", Role.ANALYSIS),
        ("なぜこうなったのか", Role.ANALYSIS),
        ("今すぐできること", Role.ACTION_PLAN),
        ("２．状況打開のための具体的なアクションプラン", Role.ACTION_PLAN),
        ("これからのキャリアを考える", Role.STRATEGY),
        ("3. 長期的なキャリア戦略:ピンチをチャンスに変える", Role.STRATEGY),
        ("4. 成功事例:困難を乗り越えた営業パーソン", Role.CASE),
        ("乗り越えた人のケース", Role.CASE),
        ("専門家からのアドバイス", Role.EXPERT),
        ("困ったときの相談先", Role.EXPERT),
        ("６．まとめ：明日からの一歩", Role.SUMMARY),
        ("おわりに", Role.SUMMARY),
        ("ご相談内容", Role.CONSULTATION),
        ("会社概要", Role.OTHER),
    ],
)
def test_heading_roles_come_from_meaning(heading: str, role: Role) -> None:
    assert classify_heading(heading) == role


@pytest.mark.parametrize(
    ("text", "title", "detail"),
    [
        ("**不十分な期間**: 二週間では足りません。", "不十分な期間", "二週間では足りません。"),
        ("前提の違い：本社と現場は違います。", "前提の違い", "本社と現場は違います。"),
        ("前提の違い: 本社と現場は違います。", "前提の違い", "本社と現場は違います。"),
        ("「10分だけください」: と頼みます。", "", "「10分だけください」: と頼みます。"),
        ("記録して見える化する", "", "記録して見える化する"),
    ],
)
def test_items_split_label_and_detail(text: str, title: str, detail: str) -> None:
    item = split_item(text)
    assert (item.title, item.detail) == (title, detail)


def test_plain_text_with_full_width_numbering() -> None:
    article = read_article(ARTICLES / "plain_fullwidth.txt", topic="transfer")
    assert article.title == "異動先で孤立したときの立て直し方"
    assert article.topic == "transfer"
    assert roles(article) == ["consultation", "analysis", "action_plan", "strategy", "case", "summary"]
    consultation = article.section(Role.CONSULTATION)
    assert consultation is not None and "物流センターに異動して3か月" in consultation.text
    assert "本社の企画部から" in article.lead
    analysis = article.section(Role.ANALYSIS)
    assert [i.title for i in analysis.items] == ["前提の違い", "関係づくりの時間不足"]
    plan = article.section(Role.ACTION_PLAN)
    assert [s.heading for s in plan.steps] == ["現場のやり方を知る", "味方を一人つくる"]
    assert [i.title for i in plan.steps[1].items] == ["年の近い人に声をかける", "感謝を言葉にする"]
    assert "10分だけ、明日の朝に" in plan.steps[0].items[1].detail
    strategy = article.section(Role.STRATEGY)
    assert [i.title for i in strategy.items] == ["現場経験の棚卸し", "次の異動の希望を整理"]


def test_plain_text_promotions_are_removed() -> None:
    article = read_article(ARTICLES / "plain_fullwidth.txt")
    text = all_text(article)
    for ad in ("無料登録", "友だち追加", "AIキャリアパートナー", "勧誘", "気軽に相談したいあなたへ"):
        assert ad not in text
    case = article.section(Role.CASE)
    assert case is not None and "Cさん" in case.text


def test_summary_recap_bullets_are_not_advice_items() -> None:
    article = read_article(ARTICLES / "plain_fullwidth.txt")
    summary = article.section(Role.SUMMARY)
    assert summary is not None and summary.items == [] and summary.steps == []
    assert "背景を知る" in summary.text


def test_markdown_with_other_heading_words() -> None:
    article = read_article(ARTICLES / "other_headings.md")
    assert article.title == "年上の部下にどう指示を出すか"
    assert roles(article) == ["consultation", "analysis", "action_plan", "strategy", "case", "summary"]
    assert "20歳上のベテラン" in article.section(Role.CONSULTATION).text
    plan = article.section(Role.ACTION_PLAN)
    assert [s.heading for s in plan.steps] == ["一対一で話す時間をとる", "任せ方を変える"]
    assert plan.steps[1].items[0].title == "手順ではなく目的を伝える"
    text = all_text(article)
    assert "リーダー研修のご案内" not in text and "友だち追加" not in text


def test_html_page() -> None:
    article = read_article(ARTICLES / "page.html")
    assert article.title == "残業が減らない職場で自分を守る"
    assert roles(article) == ["consultation", "analysis", "action_plan", "strategy", "expert", "summary"]
    analysis = article.section(Role.ANALYSIS)
    assert [(i.title, i.detail[:6]) for i in analysis.items] == [
        ("業務量の見えなさ", "誰がどれだけ"),
        ("締切の集中", "月末に処理が"),
    ]
    plan = article.section(Role.ACTION_PLAN)
    assert [s.heading for s in plan.steps] == ["記録をつける", "仕事を分ける"]
    text = all_text(article)
    for chrome in ("トップ", "人気記事", "転職サイトに無料登録", "©"):
        assert chrome not in text


def test_canonical_markdown_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "sample-article.md"
    path.write_text(
        "---\nid: sample-article\ntopic: overwork\ntitle: 題\ntags: [残業]\nreviewed: 2026-11-28\n"
        "references:\n  - key: roukihou\n    title: 労働基準法\n    url: https://laws.e-gov.go.jp/law/322AC0000000049\n"
        "---\n\n# 題\n\n導入。\n\n## 相談\n\n困っています。\n\n## 現状分析\n\n- **要因**: 説明[^roukihou]。\n",
        encoding="utf-8",
    )
    article = read_article(path)
    assert (article.id, article.topic, article.tags, str(article.reviewed)) == (
        "sample-article",
        "overwork",
        ["残業"],
        "2026-11-28",
    )
    assert article.references[0].key == "roukihou"
    assert article.lead == "導入。"


def test_phrasings_are_read_and_written_back(tmp_path: Path) -> None:
    path = tmp_path / "sample-article.md"
    path.write_text(
        "---\nid: sample-article\ntopic: overwork\ntitle: 題\ntags: [残業]\nreviewed: 2026-11-28\nreferences: []\n"
        "phrasings:\n  - 毎日終電\n  - 'ざんぎょう多すぎ…'\n---\n\n# 題\n\n導入。\n\n## 相談\n\n困っています。\n",
        encoding="utf-8",
    )
    article = read_article(path)
    assert article.phrasings == ["毎日終電", "ざんぎょう多すぎ…"]
    again = tmp_path / "again.md"
    again.write_text(to_markdown(article), encoding="utf-8")
    assert read_article(again).phrasings == article.phrasings


def test_phrasings_must_be_a_list(tmp_path: Path) -> None:
    path = tmp_path / "sample-article.md"
    path.write_text(
        "---\nid: sample-article\ntopic: overwork\ntitle: 題\nphrasings:\n  key: 毎日終電\n---\n\n# 題\n\n## 相談\n\n本文\n",
        encoding="utf-8",
    )
    with pytest.raises(ArticleFormatError, match="phrasings must be a list") as info:
        read_article(path)
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("name", "line", "fragment"),
    [
        ("empty.md", 1, "empty"),
        ("no_headings.txt", 1, "no section headings"),
        ("broken_front_matter.md", 4, "not valid YAML"),
        ("unclosed_front_matter.md", 1, "never closed"),
    ],
)
def test_malformed_input_names_file_and_line(name: str, line: int, fragment: str) -> None:
    with pytest.raises(ArticleFormatError) as info:
        read_article(ARTICLES / name)
    assert info.value.line == line
    assert fragment in info.value.message
    assert str(info.value).startswith(f"{ARTICLES / name}:{line}: ")


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "sjis.txt"
    path.write_bytes("題\n１．分析\n".encode("shift_jis"))
    with pytest.raises(ArticleFormatError, match="not UTF-8"):
        read_article(path)


def test_reading_text_directly_detects_format() -> None:
    html = "<h1>題</h1><h2>原因</h2><ul><li><b>要因</b>: 説明です。</li></ul>"
    article = read_article_text(html, "page.html")
    assert article.section(Role.ANALYSIS).items[0].title == "要因"
