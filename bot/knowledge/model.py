"""The article model every reader produces and every consumer (index, composer, linter) reads."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, Field


class Role(StrEnum):
    """What a section of an advice article is for, whatever its heading says."""

    CONSULTATION = "consultation"
    QA = "qa"  # short questions people ask about the topic, each answered directly (optional)
    ANALYSIS = "analysis"
    ACTION_PLAN = "action_plan"
    STRATEGY = "strategy"
    CASE = "case"
    EXPERT = "expert"
    SUMMARY = "summary"
    OTHER = "other"


# The order of the seed article; the linter requires library articles to follow it.
CANONICAL_ORDER: tuple[Role, ...] = (
    Role.CONSULTATION,
    Role.ANALYSIS,
    Role.ACTION_PLAN,
    Role.STRATEGY,
    Role.QA,
    Role.CASE,
    Role.EXPERT,
    Role.SUMMARY,
)

CANONICAL_HEADINGS: dict[Role, str] = {
    Role.CONSULTATION: "相談",
    Role.ANALYSIS: "現状分析",
    Role.ACTION_PLAN: "アクションプラン",
    Role.STRATEGY: "キャリア戦略",
    Role.QA: "よくある質問",
    Role.CASE: "成功事例",
    Role.EXPERT: "専門家からのアドバイス",
    Role.SUMMARY: "まとめ",
    Role.OTHER: "その他",
}


class Item(BaseModel):
    """One named factor or step, e.g. 「不十分な引き継ぎ期間: ...」."""

    title: str
    detail: str
    line: int = Field(default=0, exclude=True)


class Step(BaseModel):
    """An action-plan sub-step (「2-1. 情報収集と整理」) with its concrete items."""

    heading: str
    text: str = ""
    items: list[Item] = Field(default_factory=list)
    line: int = Field(default=0, exclude=True)


class Section(BaseModel):
    role: Role
    heading: str
    text: str = ""
    items: list[Item] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    line: int = Field(default=0, exclude=True)


class Reference(BaseModel):
    key: str
    title: str
    url: str


class Article(BaseModel):
    id: str
    topic: str | None
    title: str
    tags: list[str] = Field(default_factory=list)
    reviewed: dt.date | None = None
    references: list[Reference] = Field(default_factory=list)
    # How workers put this worry in their own words (front matter `phrasings`): indexed for search, never shown.
    phrasings: list[str] = Field(default_factory=list)
    # Words of the article's own case that an editor has confirmed are general (front matter `general_words`,
    # e.g. 「誠意」 in the complaints article): the case-term check lets them stand in the advice items.
    general_words: list[str] = Field(default_factory=list)
    lead: str = ""
    sections: list[Section] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)

    def section(self, role: Role) -> Section | None:
        """The first section with this role, if any."""
        return next((s for s in self.sections if s.role == role), None)

    def sections_with(self, role: Role) -> list[Section]:
        return [s for s in self.sections if s.role == role]


class ArticleFormatError(ValueError):
    """A raw article that cannot be read; names the file and line so an operator can fix it."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message
