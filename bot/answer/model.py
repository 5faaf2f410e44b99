"""The answer model. Its JSON (`bot ask --json`) is a public contract: keys and kinds are fixed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AnswerKind = Literal["advice", "clarify", "escalation"]
EscalationKind = Literal["suicide", "self-harm", "mental", "harassment-severe", "labor-law"]
# What the safety check decided for the message: `escalation` (clear danger: help lines first, no career advice
# mixed in; `kind` is "escalation"), `check-in` (possible danger: a short check-in with help lines that asks how they
# are; `kind` is "clarify" and `escalation` carries the help lines), or `none`.
SafetyTier = Literal["none", "check-in", "escalation"]


class Source(BaseModel):
    """One retrieved article, best first."""

    article_id: str
    title: str
    topic: str
    score: float


class AnalysisPoint(BaseModel):
    title: str
    detail: str


class ActionGroup(BaseModel):
    title: str
    steps: list[str]


class StrategyPoint(BaseModel):
    title: str
    detail: str


class DirectAnswer(BaseModel):
    """The article's own short answer to the question the message asks (its よくある質問 section)."""

    question: str
    answer: str


class HelpResource(BaseModel):
    name: str
    contact: str
    hours: str
    url: str


class Escalation(BaseModel):
    kind: EscalationKind
    message: str
    resources: list[HelpResource] = Field(default_factory=list)


class Answer(BaseModel):
    kind: AnswerKind
    topic: str | None = None
    sources: list[Source] = Field(default_factory=list)
    empathy: str = ""
    # A message that asks something gets the best-matching Q&A item of the cited article first (null when none fits).
    direct_answer: DirectAnswer | None = None
    situation_analysis: list[AnalysisPoint] = Field(default_factory=list)
    action_plan: list[ActionGroup] = Field(default_factory=list)
    career_strategy: list[StrategyPoint] = Field(default_factory=list)
    # Sentences of general legal information the answer's items rest on, each whole and with its source (a first
    # answer shows items shortened; what a law says is never shortened). Empty when the items cite no law.
    legal_points: list[str] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list)
    escalation: Escalation | None = None
    safety_tier: SafetyTier = "none"
    # The article ids the answer was built from, best first (channels show them as its sources; no re-parsing).
    cited: list[str] = Field(default_factory=list)
    text: str = ""
