"""`bot knowledge check` flags items that point at another item's output (「このうち」「上記の表」「4つの箱のメモ」):
the composer shows items one at a time, shortened, so such an item cannot be read alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.knowledge.check import back_reference_phrases, check_library

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
GOOD = "handover-sudden-retirement.md"

# Each line replaces one item of the good article: (an exact item start, the hostile item).
HOSTILE = {
    "- **不十分な引き継ぎ期間**: ": "- **不十分な引き継ぎ期間**: このうち一番大事なのは、相手先ごとの事情を知らないことです。",
    "- **受付から完了までの流れ**: ": "- **受付から完了までの流れ**: 上記のシートを見ながら、最近の案件を1件選びます。",
    "- **最初の連絡の台本**: ": "- **最初の連絡の台本**: その一覧を手元に置いて、主な取引先に先に電話します。",
    "- **週1回の振り返り**: ": "- **週1回の振り返り**: 先ほどの比較表を金曜に見返します。",
    "- **自己分析**: ": "- **自己分析**: 3つの箱のメモから、伸ばしたい力を一つ選びます。",
    "- **自力で何とかすべき？**: ": "- **自力で何とかすべき？**: 前のステップで作った表を人事に見せて相談しましょう。",
}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    shutil.copy(KNOWLEDGE / "topics.tsv", tmp_path / "topics.tsv")
    shutil.copy(KNOWLEDGE / GOOD, tmp_path / GOOD)
    return tmp_path


def back_references(directory: Path) -> list[str]:
    problems, _ = check_library(directory)
    return [str(p) for p in problems if "back-reference" in p.message and p.severity == "error"]


def hostile_article(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    # The counted set is named first by an earlier item, as an article that splits worries into boxes would.
    for start, replacement in HOSTILE.items():
        at = next(i for i, line in enumerate(lines) if line.startswith(start))
        lines[at] = replacement
    at = next(i for i, line in enumerate(lines) if line.startswith("- **過去書類の掘り起こし**: "))
    lines[at] = "- **過去書類の掘り起こし**: 書類を「取引先」「社内」「お金」の3つの箱に分けて、フォルダに集めます。"
    path.write_text("\n".join(lines), encoding="utf-8")


def test_the_clean_article_and_the_real_library_pass(library: Path) -> None:
    assert back_references(library) == []
    assert back_references(KNOWLEDGE) == []


def test_a_hostile_article_is_flagged_item_by_item(library: Path) -> None:
    path = library / GOOD
    hostile_article(path)
    found = back_references(library)
    lines = path.read_text(encoding="utf-8").split("\n")
    expected = {
        "不十分な引き継ぎ期間": ("analysis", "このうち"),
        "受付から完了までの流れ": ("action_plan › 情報収集と整理", "上記"),
        "最初の連絡の台本": ("action_plan › 顧客とのコミュニケーション", "その一覧"),
        "週1回の振り返り": ("action_plan › スキルアップ", "先ほど"),
        "自己分析": ("strategy", "3つの箱"),
        "自力で何とかすべき？": ("qa", "前のステップ"),
    }
    assert len(found) >= len(expected)
    for title, (section, phrase) in expected.items():
        (line,) = [m for m in found if f"item 「{title}」" in m and f"「{phrase}」" in m]
        assert f"handover-sudden-retirement: back-reference 「{phrase}」 in {section} item 「{title}」" in line
        number = int(line.split(":")[1])
        assert lines[number - 1].startswith(f"- **{title}**")
    # The item that names the three boxes is not pointing back at anything.
    assert not [m for m in found if "過去書類の掘り起こし" in m]


def test_the_cli_fails_on_a_back_reference(library: Path) -> None:
    import subprocess
    import sys

    hostile_article(library / GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "knowledge", "check", "--dir", str(library)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "back-reference" in result.stdout


@pytest.mark.parametrize(
    ("title", "detail"),
    [
        # What someone says to a listener who shares the moment.
        ("決まったことを書いて送る", "その場で「先ほどの件、B案で進めると理解しました」とチャットで送ります。"),
        # A written thing the item itself makes, pointed back at.
        ("手放す仕事のリスト化", "担当業務を書き出し、三つに分けます。そのリストを上司に見せましょう。"),
        ("勤務と睡眠の記録", "勤務記録の横に寝た時刻を毎日つけ、その記録を持って面談を申し込みます。"),
        # A set the item names itself.
        (
            "雇用確保の仕組み",
            "会社は三つの措置のいずれかをとります。再雇用はこのうちの継続雇用にあたることが多いです。",
        ),
        ("理由を分ける", "ノートに4つの見出しを書き、不満を振り分けます。"),
        # 「そのうち」 as "someday" is not a pointer.
        ("請求は早めに", "「そのうち」と先送りせず、早めに相談しましょう。"),
    ],
)
def test_items_that_stand_alone_pass(title: str, detail: str) -> None:
    assert back_reference_phrases(title, detail, set()) == []


@pytest.mark.parametrize(
    ("title", "detail", "earlier", "phrase"),
    [
        (
            "見直す日を決める",
            "「3か月後に、もう一度この4つの箱を見直す」とカレンダーに書きます。",
            set(),
            "この4つの箱",
        ),
        ("自己分析", "4つの箱のメモから、譲れない条件を2つ選びます。", {"4つの箱"}, "4つの箱"),
        ("身近な人に話す", "家族がいれば、比較表を見せて相談します。", {"比較表"}, "比較表"),
        ("面接官役を頼む", "「この紙の質問を順番に聞いて」と頼みます。", set(), "この紙"),
        ("選択肢を持つ", "今回作った一覧は、職務経歴書の材料にもなります。", set(), "今回作った"),
        ("返事の前に", "これらを書面でもらいましょう。", set(), "これらを"),
        ("まとめ方", "上の表に、今週の数字を足します。", set(), "上の"),
    ],
)
def test_back_references_are_found(title: str, detail: str, earlier: set[str], phrase: str) -> None:
    assert phrase in back_reference_phrases(title, detail, earlier)
