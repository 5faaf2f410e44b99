"""Public help lines (`knowledge/helplines.yaml`) and the escalation answer built from them.

The YAML file is the one place phone numbers live: the message templates in `prompts/escalation/<kind>.txt` carry
none, so a number corrected in the data file is corrected everywhere. Every entry names its source page and the date
it was checked, because a wrong number in a crisis is worse than no number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.answer.model import Escalation, EscalationKind, HelpResource
from bot.config import get_settings

HELPLINES_FILE = "helplines.yaml"
TEMPLATE_DIR = "escalation"
# Every kind gets a choice: one line may be closed or busy at the moment someone needs it.
MIN_RESOURCES_PER_KIND = 2
KINDS: tuple[EscalationKind, ...] = get_args(EscalationKind)


class HelplineError(ValueError):
    """The help-line file or a template is missing or invalid."""


class Helpline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    name: str = Field(min_length=1)
    contact: str = Field(min_length=1)
    hours: str = Field(min_length=1)
    url: str
    source_url: str
    checked: dt.date
    kinds: list[EscalationKind] = Field(min_length=1)

    @field_validator("url", "source_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"must be an https:// URL, got {value!r}")
        return value

    def resource(self) -> HelpResource:
        return HelpResource(name=self.name, contact=self.contact, hours=self.hours, url=self.url)


class HelplineFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    helplines: list[Helpline]

    @model_validator(mode="after")
    def _complete(self) -> HelplineFile:
        ids = [line.id for line in self.helplines]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate ids: {duplicates}")
        for kind in KINDS:
            count = sum(kind in line.kinds for line in self.helplines)
            if count < MIN_RESOURCES_PER_KIND:
                raise ValueError(f"kind {kind!r} has {count} help lines, needs at least {MIN_RESOURCES_PER_KIND}")
        return self


def helplines_path(knowledge_dir: Path | None = None) -> Path:
    return (knowledge_dir or get_settings().knowledge_dir) / HELPLINES_FILE


def load_helplines(path: Path) -> list[Helpline]:
    """The validated entries in file order; cached until the file changes."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise HelplineError(f"{path}: cannot read help lines ({exc})") from exc
    return list(_load(str(path), stamp))


@lru_cache(maxsize=8)
def _load(path: str, stamp: int) -> tuple[Helpline, ...]:
    # `stamp` is only part of the cache key, so an edited file is read again.
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return tuple(HelplineFile.model_validate(data).helplines)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise HelplineError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class LineChoice:
    """Which of a kind's help lines to show, and in what order: `exclude`, ids left out; `first`, ids moved to the
    front in that order (a line that fits beside an answer before the most immediate one)."""

    exclude: frozenset[str] = frozenset()
    first: tuple[str, ...] = ()


ALL_LINES = LineChoice()


def resources_for(
    kind: EscalationKind, knowledge_dir: Path | None = None, choice: LineChoice = ALL_LINES
) -> list[HelpResource]:
    """The help lines that serve `kind`, most immediate first (the file's order), as `choice` picks them."""
    lines = [
        line
        for line in load_helplines(helplines_path(knowledge_dir))
        if kind in line.kinds and line.id not in choice.exclude
    ]
    lines.sort(key=lambda line: choice.first.index(line.id) if line.id in choice.first else len(choice.first))
    return [line.resource() for line in lines]


def template_path(kind: EscalationKind, prompts_dir: Path | None = None, variant: str = "") -> Path:
    """`variant`: a second wording of the same kind (`labor-law.after-reply.txt`: the note that follows a reply)."""
    name = f"{kind}.{variant}" if variant else kind
    return (prompts_dir or get_settings().prompts_dir) / TEMPLATE_DIR / f"{name}.txt"


def load_template(kind: EscalationKind, prompts_dir: Path | None = None, variant: str = "") -> str:
    path = template_path(kind, prompts_dir, variant)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise HelplineError(f"{path}: cannot read escalation template ({exc})") from exc
    if not text:
        raise HelplineError(f"{path}: escalation template is empty")
    return text


def build_escalation(
    kind: EscalationKind,
    knowledge_dir: Path | None = None,
    prompts_dir: Path | None = None,
    choice: LineChoice = ALL_LINES,
) -> Escalation:
    """The calm message for `kind` and the help lines that serve it, as `choice` picks them."""
    resources = resources_for(kind, knowledge_dir, choice)
    return Escalation(kind=kind, message=load_template(kind, prompts_dir), resources=resources)


def format_resources_text(resources: list[HelpResource]) -> str:
    """One line per help line for plain-text channels (LINE text, CLI): name, how to reach it, hours."""
    return "\n".join(f"・{r.name}：{r.contact}／{r.hours}" for r in resources)
