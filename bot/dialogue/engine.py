"""The conversation engine every channel shares: `(conversation id, message) -> Answer`.

The turn pipeline, the same on every channel: the safety check (rules and the learned head, with the conversation's
risk memory) → commands (only a message that *is* the command: 「データを削除」, never a word inside a worry) → the
dialogue (small talk, follow-ups on the article under discussion, retrieval for a new worry, or one clarifying
question). A crisis is answered first and loses nothing: no command runs on a message that signals danger. Deleting a
conversation from a button or an API call goes through `delete_conversation`, not through a text command.

State lives in the store; one conversation's turns run one at a time, different conversations in parallel.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

from bot.answer.composer import AnswerComposer, TokenCallback
from bot.answer.model import Answer
from bot.answer.render import render_text
from bot.dialogue.intents import (
    Intent,
    classify,
    is_how_to_question,
    is_vague,
    looks_like_follow_up_question,
    normalise,
    parse_command,
)
from bot.handoff.desk import HandoffDesk, Step
from bot.jobs.dialogue import JobSearch
from bot.knowledge.model import Article, Role
from bot.retrieval.policy import CLARIFY_BELOW, decide
from bot.retrieval.retriever import HybridSearcher, RetrievalResult
from bot.safety.triage import MEMORY_KEY, SafetyCheck, SafetyDecision
from bot.store.base import ConversationState, Store

log = logging.getLogger(__name__)

HISTORY_TURNS = 20  # turns kept per conversation; older ones are folded into the state's summary
SHORT_MESSAGE = 30  # characters: below this, earlier context helps place the message
VAGUE_CLARIFY_BELOW = 0.9  # a message made only of generic words is clarified unless retrieval is very sure
FOLLOW_UP_MARGIN = 0.03  # a follow-up question stays with the current article unless another is clearly better
# A question of the kind people send, so that the warm-up goes through retrieval, Q&A matching and composition.
WARM_UP_MESSAGE = "上司との関係に悩んでいます。異動を希望してもいいのでしょうか？"
MAX_REMEMBERED_TOPICS = 8  # topics whose article a conversation remembers, for coming back to them


@dataclass
class Turn:
    """One message on its way through the pipeline."""

    text: str
    state: ConversationState
    decision: SafetyDecision
    on_token: TokenCallback | None = None


@dataclass(frozen=True)
class EngineReply:
    answer: Answer
    turn_id: int
    deleted: bool = False  # the message was the delete command: nothing of the conversation is left
    held: bool = False  # a consultant holds the conversation: the message was stored for them, the bot says nothing


class ConversationLocks:
    """One lock per conversation id, dropped when nobody holds a reference.

    A lock is this process's thread lock, then the store's cross-process conversation lock (PostgreSQL's advisory
    lock; nothing more on SQLite, which serves one process): turns and deletions of one conversation run one at a
    time across every worker sharing the database, and threads of one process queue here without each holding a
    database connection while they wait.
    """

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def get(self, conversation_id: str) -> Any:
        with self._guard:
            lock = self._locks.get(conversation_id)
            if lock is None:
                shared = None if self._store is None else partial(self._store.conversation_lock, conversation_id)
                lock = _Lock(shared)
                self._locks[conversation_id] = lock
            return lock


class _Lock:
    # threading.Lock cannot be weak-referenced; a tiny wrapper can.
    def __init__(self, shared: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        self._lock = threading.Lock()
        self._shared = shared
        self._held: AbstractContextManager[None] | None = None  # only touched by the thread holding _lock

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._shared is None:
            return
        try:
            held = self._shared()
            held.__enter__()
        except BaseException:
            self._lock.release()
            raise
        self._held = held

    def __exit__(self, *exc: object) -> None:
        held, self._held = self._held, None
        try:
            if held is not None:
                held.__exit__(None, None, None)
        finally:
            self._lock.release()


class ConversationGone(Exception):
    """The conversation was deleted (or given to another owner) before this turn could run: nothing is stored."""


class DialogueEngine:
    """Routes each message and keeps the conversation's state; every reply is built by the composer."""

    def __init__(
        self,
        *,
        store: Store,
        searcher: HybridSearcher,
        composer: AnswerComposer,
        safety: SafetyCheck | None = None,
        metrics: Any | None = None,
        handoffs: HandoffDesk | None = None,
        jobs: JobSearch | None = None,
    ) -> None:
        self.store = store
        self.searcher = searcher
        self.composer = composer
        # Rules only unless a learned head is given (the factory loads the one `bot models build` trained).
        self.safety = safety or SafetyCheck(None)
        self.metrics = metrics  # counts escalations and check-ins by kind (`/metrics`); None in the CLI
        self.jobs = jobs  # the job search (bot.jobs); None when no postings can be searched
        self._locks = ConversationLocks(store)
        # The handoff to a consultant (bot.handoff): a routing step after the safety check; None in `bot ask`.
        self.handoffs = handoffs

    @property
    def articles(self) -> dict[str, Article]:
        return self.composer.articles

    @property
    def topic_names(self) -> dict[str, str]:
        return self.composer.topic_names

    @property
    def replies(self) -> dict[str, Any]:
        return self.composer.replies

    # ----- public API -----------------------------------------------------------------------------------------------
    def handle(
        self,
        conversation_id: str,
        text: str,
        *,
        channel_message_id: str | None = None,
        owner: str | None = None,
        on_token: TokenCallback | None = None,
    ) -> EngineReply:
        """Answer one message. Turns of one conversation are processed strictly one after another, on every worker.

        `channel_message_id` makes the turn idempotent: a message already answered (a retry after a crash or an
        outage, a redelivery) gets the stored answer back and stores nothing again. The turn's writes (the user's
        message, the answer, the state, the pruning) commit in one transaction, so a turn that fails stores nothing.
        `owner` (the web visitor's token hash): the turn runs only while the conversation is bound to that owner,
        checked under the lock, so a deletion that got the lock first is never undone by a turn queued behind it
        (raises ConversationGone). `on_token` receives the answer's opening as an LLM writes it (a preview; the
        returned answer is authoritative).
        """
        with self._locks.get(conversation_id):
            if owner is not None and self.store.owner_of(conversation_id) != owner:
                raise ConversationGone(conversation_id)
            if channel_message_id is not None:
                earlier = self.store.answer_to(conversation_id, channel_message_id)
                if earlier is not None and earlier.answer is not None:
                    log.info("engine: message already answered; the stored answer is returned")
                    return EngineReply(Answer.model_validate(earlier.answer), earlier.id)
                if earlier is None and self._stored(conversation_id, channel_message_id):
                    # Held for a consultant (or stored without an answer): nothing to send again, nothing to store.
                    log.info("engine: message already stored and not answered by the bot; nothing is resent")
                    return EngineReply(self.composer.plain("", follow_ups=[]), 0, held=True)
            state = self.store.get_state(conversation_id) or ConversationState()
            memory = state.extra.get(MEMORY_KEY)
            previous = self._previous_user_messages(conversation_id) if memory else []
            decision = self.safety.assess(text, memory, previous)
            self._observe(decision)
            if decision.tier == "none" and parse_command(text) == Intent.DELETE:
                self.store.delete_user_data(conversation_id)
                answer = self.composer.reply("deleted")
                return EngineReply(
                    answer, 0, deleted=True
                )  # nothing is stored: the user asked for their data to be gone
            step = self.handoffs.before(conversation_id, text, state, decision) if self.handoffs else None
            if step is not None and step.held:
                return self._hold(conversation_id, text, channel_message_id, step, state, decision, memory)
            if step is not None and step.answer is not None:
                answer = step.answer
                answer.sources = self.composer.sources(self.searcher.search(text))
            else:
                answer = self._answer(Turn(text, state, decision, on_token))
            if step is not None and self.handoffs is not None:
                self.handoffs.after(step, answer, state, decision)
            self._remember(state, decision, memory)
            state.last_kind = answer.kind
            with self.store.transaction() as tx:
                user_turn = tx.add_turn(conversation_id, "user", text, channel_message_id=channel_message_id)
                turn_id = tx.add_turn(conversation_id, "bot", answer.text, answer=answer.model_dump(mode="json"))
                tx.save_state(conversation_id, state)
                if step is None or (step.open_handoff is None and step.queue is None):
                    tx.prune_turns(conversation_id, HISTORY_TURNS)  # a consultant's conversation is kept whole
                if step is not None and self.handoffs is not None:
                    self.handoffs.record(tx.desk, conversation_id, step, answer, state, decision, user_turn)
            return EngineReply(answer, turn_id)

    def _hold(
        self,
        conversation_id: str,
        text: str,
        channel_message_id: str | None,
        step: Step,
        state: ConversationState,
        decision: SafetyDecision,
        memory: dict[str, Any] | None,
    ) -> EngineReply:
        """A consultant holds the conversation: store the message for them (once), answer nothing. The safety memory
        goes on: a risk said over several messages is caught across the hold, as it is when the bot answers."""
        assert self.handoffs is not None and step.answer is not None
        with self.store.transaction() as tx:
            if channel_message_id is None or not tx.desk.message_stored(conversation_id, channel_message_id):
                user_turn = tx.add_turn(conversation_id, "user", text, channel_message_id=channel_message_id)
                self.handoffs.record(tx.desk, conversation_id, step, None, state, decision, user_turn)
                self._remember(state, decision, memory)
                tx.save_state(conversation_id, state)
        return EngineReply(step.answer, 0, held=True)

    def _stored(self, conversation_id: str, channel_message_id: str) -> bool:
        with self.store.desk_read() as desk:
            return desk.message_stored(conversation_id, channel_message_id)

    def _remember(self, state: ConversationState, decision: SafetyDecision, memory: dict[str, Any] | None) -> None:
        """Carry the cross-turn safety memory into the state that is saved with the turn."""
        remembered = self.safety.remember(decision, memory)
        if remembered is None:
            state.extra.pop(MEMORY_KEY, None)
        else:
            state.extra[MEMORY_KEY] = remembered

    def answer_once(self, text: str) -> Answer:
        """A fresh conversation of one message, stored nowhere (`bot ask`)."""
        decision = self.safety.assess_text(text)
        self._observe(decision)
        return self._answer(Turn(text, ConversationState(), decision))

    def warm_up(self) -> None:
        """Answer one sample message, stored and counted nowhere: models, tokenizers and caches that load on first
        use load now, so a server reports ready only when its first users will not wait for them (and a webhook
        burst right after a start does not queue behind them)."""
        text = WARM_UP_MESSAGE
        self._answer(Turn(text, ConversationState(), self.safety.assess_text(text)))

    def delete_conversation(self, conversation_id: str) -> int:
        """Everything stored for the conversation; waits for a turn in flight, so nothing is written after."""
        with self._locks.get(conversation_id):
            return self.store.delete_user_data(conversation_id)

    def reset(self, conversation_id: str) -> None:
        with self._locks.get(conversation_id):
            self.store.save_state(conversation_id, ConversationState())

    def mark_step_done(self, conversation_id: str, step: str) -> list[str]:
        """The step checklist: remember a step as done; returns every done step."""
        with self._locks.get(conversation_id):
            state = self.store.get_state(conversation_id) or ConversationState()
            if step and step not in state.done_steps:
                state.done_steps.append(step[:200])
            self.store.save_state(conversation_id, state)
            return list(state.done_steps)

    # ----- routing ----------------------------------------------------------------------------------------------------
    def _answer(self, turn: Turn) -> Answer:
        answer = self._route(turn)
        if not answer.sources and turn.text.strip():
            # The contract: every answer carries the retrieval ranking for the message, small talk included.
            answer.sources = self.composer.sources(self.searcher.search(turn.text))
        return answer

    def _route(self, turn: Turn) -> Answer:
        message, state, decision = turn.text.strip(), turn.state, turn.decision
        if not message:
            return self.composer.reply("clarify.empty")

        # 1. Safety: clear danger gets the escalation answer, possible danger a check-in; career advice waits.
        if decision.escalate and decision.kind is not None:
            state.pending_choices = []
            answer = self.composer.escalation(message, decision.kind, self.searcher.search(message))
            if answer.cited:
                self._remember_article(state, answer)
            return answer
        if decision.check_in and decision.kind is not None:
            state.pending_choices = []
            if self.composer.answers_with_check_in(decision.kind):
                worry = self._worry(
                    Turn(message, state, decision, turn.on_token), self.articles.get(state.article_id or "")
                )
                return self.composer.with_check_in(worry, decision.kind)
            state.extra["pending_worry"] = " ".join(message.split())[:600]
            return self.composer.check_in(message, decision.kind, self.searcher.search(message))

        # 2. Commands (whole-message only; delete was handled before the turn was stored), 3. the dialogue.
        intent = classify(message)
        if intent == Intent.CONTINUE:
            pending = state.extra.pop("pending_worry", None)
            if pending:
                return self._worry(Turn(str(pending), state, decision, turn.on_token))
            intent = Intent.KEEP_TALKING
        if intent == Intent.DELETE:  # `bot ask`: a fresh conversation has nothing stored to delete
            return self.composer.reply("deleted")
        if intent == Intent.RESET:
            state.__dict__.update(ConversationState().__dict__)
            return self.composer.reply("reset")
        if intent in (Intent.GREETING, Intent.THANKS, Intent.BYE, Intent.ACK):
            return self.composer.reply(f"smalltalk.{intent.value}", follow_ups=self._current_follow_ups(state))
        if self.jobs is not None:  # the job search: asked for, or a condition it asked about (bot.jobs.dialogue)
            try:
                job_turn = self.jobs.handle(message, state.extra, context=state.summary)
            except Exception:  # the search is an extra: a fault in it must not cost the person their answer
                log.warning("engine: the job search failed; the message is answered as a worry", exc_info=True)
                job_turn = None
            if job_turn is not None:
                state.pending_choices = []
                return self.composer.jobs(job_turn)
        if intent == Intent.KEEP_TALKING:
            return self.composer.reply("smalltalk.ack")
        if intent == Intent.OTHER:
            state.topic, state.article_id, state.pending_choices = None, None, []
            return self.composer.reply("clarify.empty")

        chosen = self._chosen_topic(message, state)
        if chosen is not None:
            retrieval = self.searcher.search(f"{self.topic_names.get(chosen, chosen)} {state.summary[-200:]}")
            article = self._article_for(chosen, retrieval, state)
            if article is not None:
                return self._advice(turn, retrieval, article_id=article.id, context=state.summary)

        current = self.articles.get(state.article_id or "")
        if intent in (Intent.MORE, Intent.NEXT, Intent.CASE, Intent.EXPERT):
            if current is None:
                return self.composer.reply("no_current_topic")
            return self._follow_up(intent, current, state)
        return self._worry(Turn(message, state, decision, turn.on_token), current)

    def _worry(self, turn: Turn, current: Article | None = None) -> Answer:
        message, state = turn.text, turn.state
        context = [state.summary] if state.summary and len(normalise(message)) < SHORT_MESSAGE else []
        retrieval = self.searcher.search(message, context=context)
        if current is not None and looks_like_follow_up_question(message):
            best = retrieval.best
            current_score = next((h.score for h in retrieval.articles if h.article_id == current.id), None)
            stays = (
                is_how_to_question(message)
                or best is None
                or best.article_id == current.id
                or (current_score is not None and best.score - current_score < FOLLOW_UP_MARGIN)
                or retrieval.confidence < CLARIFY_BELOW
            )
            if stays:
                return self.composer.step_question(message, current, retrieval)
        decision = decide(retrieval)
        if decision.action == "clarify" or (is_vague(message) and retrieval.confidence < VAGUE_CLARIFY_BELOW):
            state.pending_choices = self.composer.clarify_topics(message, retrieval)
            return self.composer.clarify(message, retrieval, state.pending_choices)
        state.summary = _append_summary(state.summary, message)
        answer = self._advice(turn, retrieval)
        if decision.alternatives:
            # A close call: the runners-up are one tap away (a tap is read as choosing that topic).
            answer.alternatives = [self.topic_names[t] for t in decision.alternatives if t in self.topic_names]
            state.pending_choices = [t for t in decision.alternatives if t in self.topic_names]
            answer.text = render_text(answer, self.replies)
        return answer

    def _advice(
        self, turn: Turn, retrieval: RetrievalResult, *, article_id: str | None = None, context: str = ""
    ) -> Answer:
        answer = self.composer.advice(
            turn.text, retrieval, article_id=article_id, context=context, on_token=turn.on_token
        )
        self._remember_article(turn.state, answer)
        if self.jobs is not None:  # a job-change topic offers 「求人を探す」
            answer.follow_ups = self.jobs.offer(answer.topic, answer.follow_ups)
        return answer

    def _remember_article(self, state: ConversationState, answer: Answer) -> None:
        cited = self.articles.get(answer.cited[0]) if answer.cited else None
        if cited is None:
            return
        state.topic, state.article_id, state.pending_choices = cited.topic, cited.id, []
        state.extra["shown_groups"] = len(answer.action_plan)
        state.extra["next_cursor"] = 0
        # Which article answered each topic in this conversation: coming back to a topic shows the same article.
        seen = dict(state.extra.get("topic_articles") or {})
        if cited.topic:
            seen[cited.topic] = cited.id
        state.extra["topic_articles"] = dict(list(seen.items())[-MAX_REMEMBERED_TOPICS:])

    def _article_for(self, topic: str, retrieval: RetrievalResult, state: ConversationState) -> Article | None:
        """A tapped topic: the article that already answered it in this conversation, else the one of that topic
        that ranks best for what they told us (caregiving has one for parents and one for small children)."""
        earlier = self.articles.get((state.extra.get("topic_articles") or {}).get(topic) or "")
        if earlier is not None:
            return earlier
        ranked = next((self.articles.get(h.article_id) for h in retrieval.articles if h.topic == topic), None)
        return ranked or self.composer.article_for_topic(topic)

    def _chosen_topic(self, message: str, state: ConversationState) -> str | None:
        if not state.pending_choices:
            return None
        t = normalise(message)
        for number, topic in enumerate(state.pending_choices, start=1):
            name = self.topic_names.get(topic, topic)
            if t in {normalise(name), str(number), topic}:
                return topic
        return None

    def _follow_up(self, intent: Intent, article: Article, state: ConversationState) -> Answer:
        retrieval = self.searcher.search(state.summary or article.title, restrict_to=None)
        if intent == Intent.MORE:
            return self.composer.more(article, state.summary, retrieval)
        if intent == Intent.NEXT:
            shown = int(state.extra.get("next_cursor", 0))
            answer = self.composer.next_group(article, state.summary, retrieval, shown)
            if answer is None:
                return self.composer.plan_done(article, retrieval)
            state.extra["next_cursor"] = shown + 1
            return answer
        return self.composer.story(article, Role.CASE if intent == Intent.CASE else Role.EXPERT, retrieval)

    def _current_follow_ups(self, state: ConversationState) -> list[str]:
        article = self.articles.get(state.article_id or "")
        return self.composer.follow_ups(article) if article is not None else []

    # ----- safety bookkeeping -----------------------------------------------------------------------------------------
    def _observe(self, decision: SafetyDecision) -> None:
        if decision.tier == "none":
            return
        # The kind and the rule's cue or the head's score: never the message.
        log.info(
            "safety tier=%s kind=%s reason=%s%s",
            decision.tier,
            decision.kind,
            decision.reason,
            " (over turns)" if decision.from_context else "",
        )
        if self.metrics is not None:
            name = "safety_escalations_total" if decision.escalate else "safety_check_ins_total"
            source = "rule" if decision.reason.startswith("rule:") else "model"
            self.metrics.inc(
                name,
                "Messages answered with help lines first (escalations) or a check-in, by kind and what raised it",
                kind=str(decision.kind),
                source=source,
                over_turns=str(decision.from_context).lower(),
            )

    def _previous_user_messages(self, conversation_id: str) -> list[str]:
        turns = self.store.recent_turns(conversation_id, 6)
        return [t.text for t in turns if t.role == "user"][-2:]


def _append_summary(summary: str, message: str) -> str:
    """The situation so far, newest last; bounded (the store also bounds it)."""
    message = " ".join(message.split())
    joined = f"{summary} / {message}" if summary else message
    return joined[-600:]
