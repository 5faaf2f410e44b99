"""The safety check every message goes through first: rules and the learned head, in tiers, with memory.

- `escalate`: clear danger. A rule fired, or the head's P(crisis) reached its escalation threshold. The answer is the
  calm message and help lines (for labour-law trouble: the labour-law answer) and never career advice mixed in.
- `check-in`: possible danger. The head is unsure (between the check-in and escalation thresholds), or risk spread
  over turns (「疲れた」 then 「手紙を書いた」). A short message names the feeling, offers the help lines and asks how
  they are; the worry itself is answered when they say they want to go on.
- `none`: no sign of danger; the turn goes on to commands and the dialogue.

Memory: a turn whose risk reached `Thresholds.memory` is remembered in the conversation state (the kind and the
score, never the text). The next message is then also read together with the previous user messages, so a crisis
said over two messages is caught. After an escalation the next message is read on its own: a person who was just
shown the help lines and answers 「ありがとう、少し落ち着いた」 must not be escalated again by the earlier words.

Either part can raise; neither can silence the other. The rules stay the explainable floor: a rule hit is always at
least `escalate`.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.answer.model import EscalationKind
from bot.safety.classifier import CrisisHead, HeadScores, has_head, head_dir
from bot.safety.detector import PRIORITY, detect_crisis

log = logging.getLogger(__name__)

Tier = Literal["none", "check-in", "escalate"]
# The kinds a check-in is for: a person who may be in danger. Possible labour-law trouble is answered by the advice
# (retrieval finds the labour articles), not by asking how someone feels.
CHECK_IN_KINDS: frozenset[str] = frozenset({"suicide", "self-harm", "mental", "harassment-severe"})
MEMORY_KEY = "risk"
MEMORY_TURNS = 3  # a remembered risk is re-read with at most this many later messages
CONTEXT_MESSAGES = 2  # previous user messages joined with the current one when re-reading
# When the head is confident about a crisis, a more urgent kind whose share is at least this is named instead: the
# suicide help lines serve a message that mixes self-harm and wanting to die.
URGENT_SHARE = 0.25
# Whole messages that are plain small talk. The head reads character n-grams, and 「ありがとう」 alone shares them with
# farewells it was trained on (「今までありがとう」); as a whole message in a career chat it is thanks. The rules still
# read these, and a farewell says more (「今までありがとう」 is not on this list).
SMALL_TALK = (
    "ありがとう",
    "ありがとうございます",
    "ありがとうございました",
    "はい",
    "うん",
    "了解",
    "了解です",
    "わかりました",
    "分かりました",
    "なるほど",
    "こんにちは",
    "こんばんは",
    "おはよう",
    "おはようございます",
    "よろしくお願いします",
    "ok",
)


@dataclass(frozen=True)
class SafetyDecision:
    tier: Tier
    kind: EscalationKind | None = None
    reason: str = ""  # "rule:<cue>" or "model:<p>"; safe to log (a normalised cue or a number, never the message)
    score: float = 0.0
    from_context: bool = False

    @property
    def escalate(self) -> bool:
        return self.tier == "escalate"

    @property
    def check_in(self) -> bool:
        return self.tier == "check-in"


NO_RISK = SafetyDecision("none")


def _urgent_kind(scores: HeadScores) -> EscalationKind | None:
    if not scores.kinds:
        return None
    total = sum(scores.kinds.values()) or 1.0
    for kind in PRIORITY:
        if scores.kinds.get(kind, 0.0) / total >= URGENT_SHARE:
            return kind
    return scores.kind


class SafetyCheck:
    """Rules plus the learned head (None: rules only).

    `own_phrases`: the bot's own button and chip labels (「もっと詳しく」, the topic names of a clarifying question).
    A tap on one sends its label as the message; the head never saw these strings in training and must not read a
    crisis into them (it once placed 「もっと詳しく」 in the check-in band). The rules still read them.
    """

    def __init__(self, head: CrisisHead | None, own_phrases: Iterable[str] = ()) -> None:
        self.head = head
        self.own_phrases = frozenset(_key(p) for p in (*own_phrases, *SMALL_TALK))

    @property
    def learned(self) -> bool:
        return self.head is not None

    def assess_text(self, text: str) -> SafetyDecision:
        """One message on its own, no memory (`bot ask`, the evaluation)."""
        signal = detect_crisis(text)
        if signal is not None:
            return SafetyDecision("escalate", signal.kind, f"rule:{signal.cue}", 1.0)
        return self._head_decision(text)

    def head_scores(self, text: str) -> HeadScores | None:
        if self.head is None or not text.strip() or _key(text) in self.own_phrases:
            return None
        return self.head.score_message(text)

    def _head_decision(self, text: str, *, from_context: bool = False) -> SafetyDecision:
        scores = self.head_scores(text)
        if scores is None or self.head is None:
            return NO_RISK
        t = self.head.thresholds
        reason = f"model:{scores.crisis:.2f}"
        if scores.crisis >= t.escalate:
            return SafetyDecision("escalate", _urgent_kind(scores), reason, scores.crisis, from_context)
        kind = scores.kind
        if scores.crisis >= t.check_in and kind in CHECK_IN_KINDS:
            return SafetyDecision("check-in", kind, reason, scores.crisis, from_context)
        return SafetyDecision("none", kind, reason, scores.crisis, from_context)

    def assess(self, text: str, memory: dict[str, Any] | None, previous: Sequence[str]) -> SafetyDecision:
        """A message in a conversation. `memory` is what `remember` stored last turn; `previous` the user's earlier
        messages, oldest first (only read when the memory says the conversation carries risk)."""
        alone = self.assess_text(text)
        if alone.escalate or not memory or memory.get("tier") == "escalate" or not previous:
            return alone
        if _key(text) in self.own_phrases:  # a tap on one of our chips adds nothing to read together
            return alone
        if alone.score < _memory_floor(self.head):
            # Both turns must carry some risk: 「ありがとう」 after a worrying message is not read as part of it.
            return alone
        if int(memory.get("age", 0)) >= MEMORY_TURNS:
            return alone
        joined = "。".join([*previous[-CONTEXT_MESSAGES:], text])
        signal = detect_crisis(joined)
        if signal is not None:
            together = SafetyDecision("escalate", signal.kind, f"rule:{signal.cue}", 1.0, True)
        else:
            together = self._head_decision(joined, from_context=True)
        if together.escalate:
            return together
        # A check-in from the messages read together, unless they were already asked (no check-in loop: a person who
        # answered a check-in with 「仕事の相談を続けたい」 goes on to their worry).
        kind = together.kind or alone.kind
        if together.check_in and memory.get("tier") != "check-in" and not alone.check_in and kind in CHECK_IN_KINDS:
            return SafetyDecision("check-in", kind, together.reason, max(together.score, alone.score), True)
        return alone

    def remember(self, decision: SafetyDecision, memory: dict[str, Any] | None) -> dict[str, Any] | None:
        """The risk memory to store for the next turn (kind, tier, score, age; never text)."""
        floor = _memory_floor(self.head)
        if decision.tier != "none" or decision.score >= floor:
            return {"tier": decision.tier, "kind": decision.kind, "score": round(decision.score, 3), "age": 0}
        if memory:
            aged = dict(memory, age=int(memory.get("age", 0)) + 1)
            return aged if aged["age"] < MEMORY_TURNS else None
        return None


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split()).rstrip("?？!！。、〜~ー")


def _memory_floor(head: CrisisHead | None) -> float:
    return head.thresholds.memory if head is not None else 1.0


def load_safety_check(models_dir: Path, own_phrases: Iterable[str] = ()) -> SafetyCheck:
    """Rules plus the head `bot models build` trained; without one the rules alone, said in the log and `/readyz`."""
    if not has_head(models_dir):
        log.warning("no crisis head in %s: safety runs on the rules alone (run `bot models build`)", models_dir)
        return SafetyCheck(None, own_phrases)
    return SafetyCheck(CrisisHead.load(head_dir(models_dir)), own_phrases)
