"""Load prompt and reply templates from `prompts/` (files, not code)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Situation:
    pattern: re.Pattern[str]
    phrase: str
    boost: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class Lexicon:
    templates: dict[str, str]
    default_feeling: str
    feelings: tuple[tuple[re.Pattern[str], str], ...]
    roles: tuple[tuple[re.Pattern[str], str], ...]
    situations: tuple[Situation, ...]
    role_self: re.Pattern[str]
    role_before: re.Pattern[str]
    other_subject: re.Pattern[str]
    question: re.Pattern[str]
    planning: re.Pattern[str]
    # The body speaking (palpitations, no sleep, a stomach that hurts, extreme hours): the opening adds a line that
    # a doctor or the company's 産業医 is worth seeing — a suggestion, never a diagnosis.
    body_signs: re.Pattern[str]
    body_others: re.Pattern[str]
    body_sentence: str


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


@lru_cache(maxsize=8)
def load_lexicon(prompts_dir: Path) -> Lexicon:
    data = _yaml(prompts_dir / "empathy.yaml")
    return Lexicon(
        templates=dict(data["templates"]),
        default_feeling=str(data["default_feeling"]),
        feelings=tuple((re.compile(f["pattern"]), str(f["sentence"])) for f in data["feelings"]),
        roles=tuple((re.compile(r["pattern"]), str(r["label"])) for r in data["roles"]),
        situations=tuple(
            Situation(
                re.compile(s["pattern"]), str(s["phrase"]), tuple(s.get("boost") or ()), float(s.get("weight", 1))
            )
            for s in data["situations"]
        ),
        role_self=re.compile(data["role_self"]),
        role_before=re.compile(data["role_before"]),
        other_subject=re.compile(data["other_subject"]),
        question=re.compile(data["question"]),
        planning=re.compile(data["planning"]),
        body_signs=re.compile(data["body_signs"]["pattern"]),
        body_others=re.compile(data["body_signs"]["others"]),
        body_sentence=str(data["body_signs"]["sentence"]),
    )


@lru_cache(maxsize=8)
def load_replies(prompts_dir: Path) -> dict[str, Any]:
    return _yaml(prompts_dir / "replies.yaml")


def load_text(prompts_dir: Path, name: str) -> str:
    return (prompts_dir / name).read_text(encoding="utf-8")
