"""The handoff desk: the engine's routing step for conversations a consultant holds, and the consultant's actions.

The engine asks `before()` on every turn, after the safety check: a message that asks for a person queues the
conversation; while a consultant holds it (or the user waits for one) the bot stays silent and only stores the message
(`held`), but a message the safety check flags is answered as always, help lines first. `after()` then decides
whether the answer also queues the conversation on its own (a crisis, several unsure answers in a row) and tells the
user so; `record()` writes all of it in the turn's own transaction.

The console calls `reply()`, `take()`, `hand_back()` and `close()`; what must reach the user comes back as a
`Delivery` the channel sends (LINE push; the widget polls the history). Nothing here knows HTTP or LINE.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from bot.answer.composer import AnswerComposer
from bot.answer.model import Answer
from bot.handoff.hours import BusinessHours
from bot.handoff.phrases import asks_for_bot, asks_for_person, offer_person
from bot.safety.triage import SafetyDecision
from bot.store.base import ConversationState, Store
from bot.store.desk import HELD, Desk, Handoff, HandoffReason

UNSURE_KEY = "unsure_turns"  # state.extra: clarifying questions in a row
REPLY_MAX_CHARS = 2000
Outcome = Literal["handed_back", "closed", "user_returned"]


class NotInQueue(Exception):
    """The conversation is not (or no longer) in the consultant queue."""


class HeldByAnother(Exception):
    """Another consultant holds the conversation: only they (or an admin) may act on it."""

    def __init__(self, conversation_id: str, assigned_to: str | None) -> None:
        super().__init__(conversation_id)
        self.assigned_to = assigned_to


def _refused(desk: Desk, conversation_id: str) -> Exception:
    """Why the desk refused an action: the conversation left the queue, or someone else holds it."""
    current = desk.handoff(conversation_id)
    if current is None or not current.open:
        return NotInQueue(conversation_id)
    return HeldByAnother(conversation_id, current.assigned_to)


@dataclass(frozen=True)
class HandoffPolicy:
    enabled: bool
    hours: BusinessHours
    escalation_kinds: frozenset[str]
    on_negative_feedback: bool
    low_confidence_turns: int

    @classmethod
    def from_settings(cls, settings: Any) -> HandoffPolicy:
        return cls(
            enabled=bool(settings.handoff_enabled),
            hours=BusinessHours.parse(settings.handoff_hours, settings.handoff_timezone),
            escalation_kinds=frozenset(settings.handoff_escalation_kinds),
            on_negative_feedback=bool(settings.handoff_on_negative_feedback),
            low_confidence_turns=int(settings.handoff_low_confidence_turns),
        )


@dataclass
class Step:
    """What the handoff desk decided for one turn."""

    answer: Answer | None = None  # replaces the dialogue's answer
    held: bool = False  # the bot stays silent: the message is stored for the consultant, nothing is answered
    queue: HandoffReason | None = None  # queue the conversation in the turn's transaction
    finish: Outcome | None = None  # end the open handoff (the user went back to the bot)
    open_handoff: Handoff | None = None
    offer: bool = False  # add the offer of a person to the dialogue's answer


@dataclass(frozen=True)
class Delivery:
    """A message for the user on their channel: a consultant's reply or the notice that the bot is back."""

    conversation_id: str
    text: str
    turn_id: int
    retry_key: str  # the same for every attempt at this message: LINE runs a push with one key at most once


def retry_key(turn_id: int, conversation_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"handoff:{conversation_id}:{turn_id}"))


def load_texts(prompts_dir: Path) -> dict[str, Any]:
    data = yaml.safe_load((prompts_dir / "handoff.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("prompts/handoff.yaml: expected a mapping")
    return data


class HandoffDesk:
    def __init__(
        self,
        store: Store,
        composer: AnswerComposer,
        policy: HandoffPolicy,
        texts: dict[str, Any],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.composer = composer
        self.policy = policy
        self.texts = texts
        self.clock = clock

    # ----- words -------------------------------------------------------------------------------------------------

    @property
    def ask_chip(self) -> str:
        return str(self.texts["chips"]["ask"])

    @property
    def back_chip(self) -> str:
        return str(self.texts["chips"]["back"])

    @property
    def chips(self) -> list[str]:
        """The desk's own chips (the safety check reads them as the bot's words, not the user's)."""
        return [self.ask_chip, self.back_chip]

    @property
    def consultant_label(self) -> str:
        return str(self.texts["consultant_label"])

    def hours_words(self) -> dict[str, str]:
        weekdays = list(self.texts["weekdays"])
        hours = self.policy.hours
        now = self.clock()
        nxt = hours.next_open(now)
        return {
            "hours": hours.describe(weekdays),
            "next_open": hours.when(nxt, weekdays) if nxt is not None else "",
            "back": self.back_chip,
            "ask": self.ask_chip,
        }

    def reception_open(self) -> bool:
        return self.policy.hours.is_open(self.clock())

    def _fill(self, template: str) -> str:
        return template.format(**self.hours_words())

    def queued_text(self) -> str:
        texts = self.texts["queued"]
        when = texts["open"] if self.reception_open() else texts["closed"]
        return "\n".join(self._fill(t) for t in (texts["lead"], when, texts["tail"]))

    def auto_notice(self, reason: HandoffReason) -> str:
        texts = self.texts["auto"]
        when = texts["open"] if self.reception_open() else texts["closed"]
        return f"{texts[reason]}{self._fill(when)}"

    def ended_text(self, outcome: Outcome) -> str:
        return self._fill(str(self.texts[outcome]))

    # ----- the engine's routing step -----------------------------------------------------------------------------

    def before(self, conversation_id: str, text: str, state: ConversationState, decision: SafetyDecision) -> Step:
        """Before the dialogue: a request for a person, a return to the bot, or a message the bot must not answer."""
        with self.store.desk_read() as desk:
            current = desk.handoff(conversation_id)
        open_handoff = current if current is not None and current.open else None
        step = Step(open_handoff=open_handoff)
        if decision.tier != "none":
            return step  # safety first: help lines are shown whoever holds the conversation
        if open_handoff is not None and open_handoff.holds_bot:
            if asks_for_bot(text):
                step.finish = "user_returned"
                step.answer = self.composer.plain(self.ended_text("user_returned"), follow_ups=[], topic=state.topic)
                return step
            step.held = True
            step.answer = self.composer.plain("", follow_ups=[])
            return step
        if self.policy.enabled and open_handoff is None and offer_person(text):
            step.offer = True
        elif self.policy.enabled and asks_for_person(text):
            step.queue = "user"
            step.answer = self.composer.plain(self.queued_text(), follow_ups=[self.back_chip], topic=state.topic)
        return step

    def after(self, step: Step, answer: Answer, state: ConversationState, decision: SafetyDecision) -> None:
        """After the dialogue answered: queue on its own (a crisis, several unsure answers) and tell the user."""
        if answer.kind == "clarify" and answer.safety_tier == "none" and state.pending_choices:
            state.extra[UNSURE_KEY] = int(state.extra.get(UNSURE_KEY, 0)) + 1
        elif step.queue is None:
            state.extra.pop(UNSURE_KEY, None)
        if step.offer:
            texts = self.texts["offer"]
            _add_notice(answer, self._fill(texts["open"] if self.reception_open() else texts["closed"]))
            answer.follow_ups = [self.ask_chip, *[f for f in answer.follow_ups if f != self.ask_chip]][:4]
        if not self.policy.enabled or step.queue is not None or step.finish is not None:
            return
        reason: HandoffReason | None = None
        if decision.escalate and decision.kind in self.policy.escalation_kinds:
            reason = "crisis"
        elif (
            self.policy.low_confidence_turns and int(state.extra.get(UNSURE_KEY, 0)) >= self.policy.low_confidence_turns
        ):
            reason = "low_confidence"
            state.extra.pop(UNSURE_KEY, None)
        if reason is None or step.open_handoff is not None:
            return  # already in the queue: the consultant sees the new message there
        step.queue = reason
        _add_notice(answer, self.auto_notice(reason))

    def record(
        self,
        desk: Desk,
        conversation_id: str,
        step: Step,
        answer: Answer | None,
        state: ConversationState,
        decision: SafetyDecision,
        user_turn_id: int | None,
    ) -> None:
        """Inside the turn's transaction: the queue and the message log."""
        escalation = str(decision.kind) if decision.tier != "none" and decision.kind else None
        if step.queue is not None:
            desk.queue(
                conversation_id,
                reason=step.queue,
                topic=state.topic,
                summary=state.summary,
                steps_done=len(state.done_steps),
                escalation=escalation,
            )
        elif step.finish is not None:
            desk.finish(conversation_id, outcome=step.finish)
        if step.open_handoff is not None and step.finish is None:
            desk.user_wrote(conversation_id, escalation=escalation)
        desk.log_message(
            conversation_id,
            _log_kind(step, answer, state, decision),
            topic=answer.topic if answer is not None else None,
            escalation=escalation,
            user_turn_id=user_turn_id,
        )

    # ----- feedback ----------------------------------------------------------------------------------------------

    def on_feedback(self, conversation_id: str, helpful: bool) -> str | None:
        """A "not helpful" queues the conversation (when configured); returns what to tell the user, if anything."""
        if helpful or not (self.policy.enabled and self.policy.on_negative_feedback):
            return None
        state = self.store.get_state(conversation_id) or ConversationState()
        with self.store.desk() as desk:
            current = desk.handoff(conversation_id)
            if current is not None and current.open:
                return None
            desk.queue(
                conversation_id,
                reason="feedback",
                topic=state.topic,
                summary=state.summary,
                steps_done=len(state.done_steps),
                escalation=None,
            )
        return self.auto_notice("feedback")

    # ----- the consultant's actions (the console) -----------------------------------------------------------------

    def take(self, conversation_id: str, operator: str) -> Handoff:
        """Raises NotInQueue (closed or gone) or HeldByAnother (another consultant has it; admins included: an admin
        acts on it without taking it over)."""
        with self.store.desk() as desk:
            taken = desk.take(conversation_id, operator)
            if taken is None:
                raise _refused(desk, conversation_id)
            desk.audit(operator, "take", conversation_id)
        return taken

    def reply(self, conversation_id: str, operator: str, text: str, *, admin: bool = False) -> Delivery:
        """The consultant's message to the user. A waiting conversation becomes theirs; another consultant's is
        refused (HeldByAnother) unless `admin`."""
        text = text.strip()[:REPLY_MAX_CHARS]
        if not text:
            raise ValueError("empty reply")
        with self.store.transaction() as tx:
            if not tx.desk.consultant_wrote(conversation_id, operator, admin=admin):
                raise _refused(tx.desk, conversation_id)
            turn_id = tx.add_turn(conversation_id, "consultant", text)
            tx.desk.audit(operator, "reply", conversation_id)
        return Delivery(conversation_id, text, turn_id, retry_key(turn_id, conversation_id))

    def hand_back(
        self, conversation_id: str, operator: str, note: str | None = None, *, admin: bool = False
    ) -> Delivery:
        return self._end(conversation_id, operator, "handed_back", note, admin)

    def close(self, conversation_id: str, operator: str, note: str | None = None, *, admin: bool = False) -> Delivery:
        return self._end(conversation_id, operator, "closed", note, admin)

    def _end(self, conversation_id: str, operator: str, outcome: Outcome, note: str | None, admin: bool) -> Delivery:
        text = self.ended_text(outcome)
        answer = self.composer.plain(text, follow_ups=[])
        with self.store.transaction() as tx:
            ended = tx.desk.finish(
                conversation_id, outcome=outcome, note=(note or "").strip() or None, operator=operator, admin=admin
            )
            if ended is None:
                raise _refused(tx.desk, conversation_id)
            turn_id = tx.add_turn(conversation_id, "bot", text, answer=answer.model_dump(mode="json"))
            tx.desk.audit(operator, "hand_back" if outcome == "handed_back" else "close", conversation_id)
        return Delivery(conversation_id, text, turn_id, retry_key(turn_id, conversation_id))


def _add_notice(answer: Answer, notice: str) -> None:
    """Say it in the text (LINE, `bot ask`) and in the opening the widget shows."""
    answer.text = f"{answer.text}\n\n{notice}" if answer.text else notice
    answer.empathy = f"{answer.empathy}\n{notice}" if answer.empathy else notice


def _log_kind(step: Step, answer: Answer | None, state: ConversationState, decision: SafetyDecision) -> str:
    if step.held:
        return HELD
    if step.queue == "user" or step.finish is not None:
        return "handoff"
    if decision.escalate:
        return "escalation"
    if decision.check_in:
        return "check-in"
    if answer is not None and answer.kind == "clarify" and state.pending_choices:
        return "unsure"
    return answer.kind if answer is not None else "advice"
