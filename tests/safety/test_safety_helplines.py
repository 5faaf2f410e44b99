"""Help lines: the data file is valid and complete, templates carry no numbers, escalations are built per kind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.answer.model import Escalation, EscalationKind
from bot.knowledge.check import PHONE
from bot.safety.helplines import (
    KINDS,
    HelplineError,
    build_escalation,
    format_resources_text,
    helplines_path,
    load_helplines,
    resources_for,
)

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
PROMPTS = ROOT / "prompts"
TEMPLATES = sorted((PROMPTS / "escalation").glob("*.txt"))


def test_every_kind_has_at_least_two_resources() -> None:
    for kind in KINDS:
        assert len(resources_for(kind, KNOWLEDGE)) >= 2, kind


def test_every_entry_names_its_source_and_check_date() -> None:
    lines = load_helplines(helplines_path(KNOWLEDGE))
    assert lines
    for line in lines:
        assert line.source_url.startswith("https://"), line.id
        assert line.url.startswith("https://"), line.id
        assert line.checked.year >= 2026, line.id
        assert line.kinds, line.id


def test_the_brief_s_help_lines_are_present_with_its_numbers() -> None:
    text = helplines_path(KNOWLEDGE).read_text(encoding="utf-8")
    for fact in (
        "0120-783-556",
        "0120-279-338",
        "0570-064-556",
        "0120-061-338",
        "0120-811-610",
        "こころの耳",
        "総合労働相談コーナー",
        "#9110",
        "110番",
    ):
        assert fact in text, fact


def test_harassment_and_labour_point_to_the_labour_bureau() -> None:
    for kind in ("harassment-severe", "labor-law"):
        assert "総合労働相談コーナー" in {r.name for r in resources_for(kind, KNOWLEDGE)}


def test_templates_exist_for_every_kind_and_carry_no_phone_numbers() -> None:
    # A kind's variants (`labor-law.after-reply.txt`) are second wordings of a kind, never a kind of their own.
    assert {path.stem.split(".")[0] for path in TEMPLATES} == set(KINDS)
    assert {path.stem for path in TEMPLATES if "." not in path.stem} == set(KINDS)
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        assert not PHONE.search(text), path.name
        # No 110, 119, #9110 or any other run of digits either: numbers live in helplines.yaml only.
        assert not re.search(r"[0-9０-９]{3,}", text), path.name


@pytest.mark.parametrize("kind", KINDS)
def test_build_escalation(kind: EscalationKind) -> None:
    escalation = build_escalation(kind, KNOWLEDGE, PROMPTS)
    assert isinstance(escalation, Escalation)
    assert escalation.kind == kind
    assert escalation.message == (PROMPTS / "escalation" / f"{kind}.txt").read_text(encoding="utf-8").strip()
    assert len(escalation.resources) >= 2
    assert escalation.model_dump()["resources"][0].keys() == {"name", "contact", "hours", "url"}


@pytest.mark.parametrize("kind", ["suicide", "self-harm", "mental"])
def test_crisis_messages_say_the_bot_is_an_ai_and_offer_to_listen(kind: EscalationKind) -> None:
    message = build_escalation(kind, KNOWLEDGE, PROMPTS).message
    assert "AI" in message
    assert "ひとりではありません" in message
    assert "聴" in message or "聞かせて" in message


def test_labour_message_gives_no_verdict_and_points_to_the_public_desks() -> None:
    message = build_escalation("labor-law", KNOWLEDGE, PROMPTS).message
    assert "一般的な情報" in message
    assert "総合労働相談コーナー" in message and "労働条件相談ほっとライン" in message


def test_format_resources_text_is_one_line_per_resource() -> None:
    resources = resources_for("suicide", KNOWLEDGE)
    text = format_resources_text(resources)
    lines = text.split("\n")
    assert len(lines) == len(resources)
    for line, resource in zip(lines, resources, strict=True):
        assert resource.name in line and resource.contact in line and resource.hours in line


def _copy_helplines(tmp_path: Path) -> Path:
    shutil.copy(helplines_path(KNOWLEDGE), tmp_path / "helplines.yaml")
    return tmp_path / "helplines.yaml"


def test_a_kind_with_fewer_than_two_lines_is_rejected(tmp_path: Path) -> None:
    path = _copy_helplines(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["helplines"] = [h for h in data["helplines"] if "labor-law" not in h["kinds"]][:]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(HelplineError, match="labor-law"):
        load_helplines(path)


def test_an_entry_without_source_url_is_rejected(tmp_path: Path) -> None:
    path = _copy_helplines(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["helplines"][0]["source_url"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(HelplineError, match="source_url"):
        load_helplines(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HelplineError, match="cannot read"):
        resources_for("suicide", tmp_path)
