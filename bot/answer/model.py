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


class JobCondition(BaseModel):
    """One search condition as the user sees it: 「勤務地：東京都」."""

    name: str  # job_type | area | employment_type | salary
    label: str
    value: str


class JobPostingView(BaseModel):
    """One imported posting, as shown: every field comes from the posting (nothing is made up)."""

    id: str
    title: str
    company: str
    place: str  # 「東京都 千代田区」, 「リモート可」, or both
    remote: bool
    salary: str | None  # 「年収400万〜600万円」; null when the posting names no pay
    employment_type: str  # 「正社員・フルタイム」
    summary: str  # the description's start
    url: str
    source: str  # 「掲載元：…」; a sample posting says 「サンプル求人（架空）」
    sample: bool
    valid_through: str | None  # 「2027年1月31日まで掲載」


class JobSearchView(BaseModel):
    """The job search's part of an answer (`jobs`): the conditions so far, the question being asked (its choices are
    the answer's follow_ups), or the postings found."""

    conditions: list[JobCondition] = Field(default_factory=list)
    asking: str | None = None  # job_type | area | employment_type | salary | change; null with results
    postings: list[JobPostingView] = Field(default_factory=list)
    total: int = 0  # postings meeting the conditions
    offset: int = 0
    has_more: bool = False
    # Shown under the postings: where their content comes from, and that a sample posting is invented.
    notes: list[str] = Field(default_factory=list)
    # None fitting: the public job search to try instead (name and its well-known address).
    fallback: HelpResource | None = None


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
    # 「もしかして」: when the topic was a close call, the runners-up's names; tapping one answers about it instead.
    alternatives: list[str] = Field(default_factory=list)
    escalation: Escalation | None = None
    safety_tier: SafetyTier = "none"
    # The article ids the answer was built from, best first (channels show them as its sources; no re-parsing).
    cited: list[str] = Field(default_factory=list)
    # The job search (issue 15): null unless the answer is part of it (a question about conditions, or postings).
    jobs: JobSearchView | None = None
    text: str = ""

    def reply_before_help(self) -> bool:
        """Whether the direct reply comes before the help lines: a labour-law question answered with its general rule
        (「超えた分は別に支払うのが原則です」) reads that rule first and the 「一般的な情報だけ」 note and the lines after
        it; a crisis or a check-in keeps its help lines first."""
        return (
            self.direct_answer is not None
            and self.escalation is not None
            and self.escalation.kind == "labor-law"
            and self.safety_tier == "escalation"
        )
