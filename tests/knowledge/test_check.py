"""`bot knowledge check`: the real library passes; each kind of fault is reported as file:line: message."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.knowledge.check import check_library
from bot.knowledge.library import load_library
from bot.knowledge.taxonomy import load_topics

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
GOOD = "handover-sudden-retirement.md"


def test_real_library_passes_and_covers_every_topic() -> None:
    problems, count = check_library(KNOWLEDGE)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert errors == []
    topics = load_topics(KNOWLEDGE / "topics.tsv")
    assert count >= len(topics) >= 38
    assert {a.topic for a in load_library(KNOWLEDGE)} == set(topics)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    shutil.copy(KNOWLEDGE / "topics.tsv", tmp_path / "topics.tsv")
    shutil.copy(KNOWLEDGE / GOOD, tmp_path / GOOD)
    return tmp_path


def messages(directory: Path) -> list[str]:
    problems, _ = check_library(directory)
    return [str(p) for p in problems if p.severity == "error" and "has no article" not in p.message]


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_a_good_article_has_no_problems(library: Path) -> None:
    assert messages(library) == []


def test_unknown_topic(library: Path) -> None:
    edit(library / GOOD, "topic: handover", "topic: handoverr")
    (line,) = messages(library)
    assert re.match(rf"{re.escape(str(library / GOOD))}:3: unknown topic 'handoverr'", line)


def test_duplicate_ids(library: Path) -> None:
    shutil.copy(library / GOOD, library / "copy-of-handover.md")
    found = messages(library)
    assert any("duplicate id 'handover-sudden-retirement'" in m for m in found)
    assert any("must equal the file name 'copy-of-handover'" in m for m in found)


def test_missing_section_and_items(library: Path) -> None:
    edit(library / GOOD, "## キャリア戦略", "## 付録")
    found = messages(library)
    assert any(m.endswith("missing section: strategy") for m in found)
    assert any("heading '付録' has no recognised role" in m for m in found)


def test_broken_reference_and_phone_number(library: Path) -> None:
    text = (library / GOOD).read_text(encoding="utf-8")
    lines = text.split("\n")
    target = next(i for i, line in enumerate(lines) if line.startswith("- **不十分な引き継ぎ期間**"))
    lines[target] += "[^nosuchref] 困ったら 0120-000-000 へ。"
    (library / GOOD).write_text("\n".join(lines), encoding="utf-8")
    found = messages(library)
    assert f"{library / GOOD}:{target + 1}: [^nosuchref] cites a reference that the front matter does not list" in found
    assert (
        f"{library / GOOD}:{target + 1}: phone number in article text: help lines live in knowledge/helplines.yaml"
        in found
    )


def test_legal_fact_without_reference(library: Path) -> None:
    text = (library / GOOD).read_text(encoding="utf-8")
    text = re.sub(r"references:\n(?:  .*\n)+", "references: []\n", text)
    text = text.replace("## まとめ", "## まとめ\n\n退職は民法で2週間前と決まっています。\n", 1)
    (library / GOOD).write_text(text, encoding="utf-8")
    assert any("states a legal fact (民法) but lists no reference" in m for m in messages(library))


def test_phrasings_too_long_or_repeated(library: Path) -> None:
    edit(library / GOOD, "\nphrasings:\n", f"\nphrasings:\n  - {'長' * 201}\n  - 前任がいない\n  - 前任がいない\n")
    found = messages(library)
    assert any("is over 200 characters" in m for m in found)
    assert any("phrasing '前任がいない' is listed twice" in m for m in found)


def test_too_short(library: Path) -> None:
    text = (library / GOOD).read_text(encoding="utf-8")
    front, _, _ = text.partition("# ")
    sections = "".join(
        f"## {h}\n\n短い本文です。\n\n" for h in ("相談", "成功事例", "専門家からのアドバイス", "まとめ")
    )
    (library / GOOD).write_text(front + "# 題\n\n" + sections, encoding="utf-8")
    assert any(re.search(r":1: body is \d+ characters; keep it between 2500 and 5000", m) for m in messages(library))


def test_cli_exit_code_and_format(library: Path) -> None:
    edit(library / GOOD, "topic: handover", "topic: nope")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "knowledge", "check", "--dir", str(library)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert f"{library / GOOD}:3: unknown topic 'nope' (not in topics.tsv)" in result.stdout.splitlines()
    assert "Traceback" not in result.stderr


def test_case_terms_in_items_are_flagged_where_they_stand(tmp_path: Path) -> None:
    """A word only this article's 相談 uses (the case) inside a step is shown to every reader: it is flagged."""
    library = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, library)
    path = library / GOOD
    text = path.read_text(encoding="utf-8")
    assert "## 相談" in text
    text = text.replace("## 相談\n\n", "## 相談\n\n社内の鉄道模型同好会の会長もしています。", 1)
    step = next(line for line in text.splitlines() if line.startswith("- **引き継ぎシート**"))
    text = text.replace(step, step + "鉄道模型同好会の名簿も見直します。", 1)
    path.write_text(text, encoding="utf-8")
    problems, _ = check_library(library)
    flagged = [p for p in problems if "case term" in p.message and "同好会" in p.message]
    assert flagged and flagged[0].severity == "error"
    assert text.splitlines()[flagged[0].line - 1].startswith(step[:20])

    # The same words in a marked example sentence are allowed: the composer shows it only to someone who shares them.
    path.write_text(text.replace("鉄道模型同好会の名簿も見直します。", "例：鉄道模型同好会の名簿も見直します。", 1))
    problems, _ = check_library(library)
    assert not [p for p in problems if "同好会" in p.message]

    # ...and so are words an editor lists as general in the front matter.
    path.write_text(text.replace("\ntags:", "\ngeneral_words: [鉄道模型同好会]\ntags:", 1), encoding="utf-8")
    problems, _ = check_library(library)
    assert not [p for p in problems if "同好会" in p.message]


def test_an_optional_qa_section_is_read_and_checked(library: Path) -> None:
    from bot.knowledge.model import Role
    from bot.knowledge.readers import read_article

    path = library / GOOD
    qa = read_article(path).section(Role.QA)
    assert qa is not None and len(qa.items) >= 2 and all(i.title.endswith("？") for i in qa.items)
    text = path.read_text(encoding="utf-8")
    without = text[: text.index("## よくある質問")] + text[text.index("## 成功事例") :]
    path.write_text(without, encoding="utf-8")
    assert messages(library) == [], "the Q&A section is optional"
    path.write_text(text.replace(qa.items[0].title, qa.items[0].title.rstrip("？"), 1), encoding="utf-8")
    assert any("ending in ？" in m for m in messages(library))
