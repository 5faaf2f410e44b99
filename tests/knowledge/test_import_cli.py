"""`bot knowledge import FILE [--topic SLUG] [--json]` as operators call it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.knowledge.readers import read_article_text

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "tests" / "fixtures" / "articles"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "knowledge", "import", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("name", ["plain_fullwidth.txt", "other_headings.md", "page.html"])
def test_json_shape_for_every_format(name: str) -> None:
    result = run(str(ARTICLES / name), "--topic", "transfer", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"id", "topic", "title", "sections"} <= set(data)
    assert data["topic"] == "transfer"
    for section in data["sections"]:
        assert set(section) >= {"role", "heading", "text", "items", "steps"}
        for step in section["steps"]:
            assert {"heading", "items"} <= set(step)
            for item in step["items"]:
                assert set(item) == {"title", "detail"}
    plan = next(s for s in data["sections"] if s["role"] == "action_plan")
    assert len(plan["steps"]) == 2 and all(s["items"] for s in plan["steps"])


def test_canonical_markdown_round_trips() -> None:
    result = run(str(ARTICLES / "page.html"), "--topic", "overwork")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("---\nid: page\ntopic: overwork\n")
    again = read_article_text(result.stdout, "page.md")
    original = read_article_text((ARTICLES / "page.html").read_text(encoding="utf-8"), "page.html", topic="overwork")
    assert [s.role for s in again.sections] == [s.role for s in original.sections]
    assert [i.model_dump() for s in again.sections for i in s.items] == [
        i.model_dump() for s in original.sections for i in s.items
    ]
    assert [st.model_dump() for s in again.sections for st in s.steps] == [
        st.model_dump() for s in original.sections for st in s.steps
    ]


def test_topic_is_guessed_from_the_library_when_not_given() -> None:
    result = run(str(ARTICLES / "other_headings.md"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["topic"] == "older-subordinate"
    assert "guessed" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(ARTICLES / "empty.md")], "empty.md:1: the file is empty"),
        ([str(ARTICLES / "broken_front_matter.md")], "broken_front_matter.md:4: front matter is not valid YAML"),
        ([str(ARTICLES / "nope.txt")], "nope.txt:0: cannot read the file"),
        ([str(ARTICLES / "page.html"), "--topic", "no-such-topic"], "unknown topic 'no-such-topic'"),
    ],
)
def test_errors_are_one_clear_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
