"""The topic decision: answer, answer with 「もしかして」 alternatives, or ask — from the calibrated confidence.

`RetrievalResult.confidence` is P(the best article's topic is right), Platt-scaled on a dev split that includes hard
near-miss messages (`bot eval --calibrate`). The policy spends questions where they prevent wrong answers:
- sure (confidence ≥ SURE): answer;
- unsure (CLARIFY_BELOW ≤ confidence < SURE): answer the best, and offer the close runners-up as one-tap
  alternatives (LINE quick replies, widget chips), so a miss costs the user one tap instead of a wrong answer;
- lost (confidence < CLARIFY_BELOW): ask one short question with the close topics as choices.
The thresholds are chosen by measurement (`bot eval` prints the confident-wrong share and the ask/chip rate). On the
dev messages (eval dev split + the writers' held-out queries, 585), with the topic head and the calibration refitted
on them (the sweep: SURE 0.4-0.8 x spread 0.06/0.1): SURE 0.5 / spread 0.1 asks 9.6 % and leaves 12.5 % answered
confidently wrong; 0.55 / 0.1 asks 12.6 % for 11.1 %; **0.6 / 0.1 asks 14.0 % for 10.4 %** (28 misses rescued by a
chip); 0.65 / 0.1 asks 14.5 % for 10.1 %, 0.5 points of questions for 0.3 of wrong answers. (Before the topic head:
0.55 / 0.06 asked 13 % and left 15 % wrong.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.retrieval.retriever import RetrievalResult

CLARIFY_BELOW = 0.25
SURE = 0.6
# Runners-up offered as alternatives: other topics scoring within this much of the best hit, at most two.
ALTERNATIVE_SPREAD = 0.1
MAX_ALTERNATIVES = 2

Action = Literal["answer", "answer_with_alternatives", "clarify"]


@dataclass(frozen=True)
class TopicDecision:
    action: Action
    alternatives: list[str] = field(default_factory=list)  # topic slugs, best first


def close_topics(retrieval: RetrievalResult, spread: float) -> list[str]:
    """The distinct topics of the hits scoring within `spread` of the best one, best first (its own topic included)."""
    best = retrieval.best
    out: list[str] = []
    for hit in retrieval.articles:
        if best is not None and best.score - hit.score > spread:
            break
        if hit.topic and hit.topic not in out:
            out.append(hit.topic)
    return out


def alternatives_of(retrieval: RetrievalResult) -> list[str]:
    best = retrieval.best
    if best is None:
        return []
    return [t for t in close_topics(retrieval, ALTERNATIVE_SPREAD) if t != best.topic][:MAX_ALTERNATIVES]


def decide(retrieval: RetrievalResult, *, clarify_below: float = CLARIFY_BELOW, sure: float = SURE) -> TopicDecision:
    if retrieval.best is None or retrieval.confidence < clarify_below:
        return TopicDecision("clarify")
    if retrieval.confidence < sure:
        alternatives = alternatives_of(retrieval)
        if alternatives:
            return TopicDecision("answer_with_alternatives", alternatives)
    return TopicDecision("answer")
