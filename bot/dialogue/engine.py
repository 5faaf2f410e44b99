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
from pathlib import Path
from typing import Any

from bot.answer.grounded import GroundedComposer, item_text
from bot.answer.model import ActionGroup, Answer, Escalation
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
from bot.knowledge.model import Article, Role
from bot.retrieval.retriever import HybridSearcher, RetrievalResult
from bot.safety.helplines import build_escalation, resources_for
from bot.safety.triage import MEMORY_KEY, SafetyCheck, SafetyDecision
from bot.store.base import ConversationState, Store

log = logging.getLogger(__name__)

HISTORY_TURNS = 20  # turns kept per conversation; older ones are folded into the state's summary
SHORT_MESSAGE = 30  # characters: below this, earlier context helps place the message
CLARIFY_BELOW = 0.25  # calibrated confidence under which we ask instead of guessing
VAGUE_CLARIFY_BELOW = 0.9  # a message made only of generic words is clarified unless retrieval is very sure
FOLLOW_UP_MARGIN = 0.03  # a follow-up question stays with the current article unless another is clearly better
MAX_CHOICES = 4
CRISIS_ONLY = {"suicide", "self-harm", "mental"}


@dataclass(frozen=True)
class EngineReply:
    answer: Answer
    turn_id: int
    deleted: bool = False  # the message was the delete command: nothing of the conversation is left


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
    def __init__(
        self,
        *,
        store: Store,
        searcher: HybridSearcher,
        composer: GroundedComposer,
        knowledge_dir: Path,
        prompts_dir: Path,
        rewriter: Any | None = None,
        safety: SafetyCheck | None = None,
        metrics: Any | None = None,
    ) -> None:
        self.store = store
        self.searcher = searcher
        self.composer = composer
        self.articles: dict[str, Article] = composer.articles
        self.topic_names = composer.topic_names
        self.replies = composer.replies
        self.knowledge_dir = knowledge_dir
        self.prompts_dir = prompts_dir
        self.rewriter = rewriter  # optional LLM rewrite; falls back to the grounded answer on any failure
        # Rules only unless a learned head is given (the factory loads the one `bot models build` trained).
        self.safety = safety or SafetyCheck(None)
        self.metrics = metrics  # counts escalations and check-ins by kind (`/metrics`); None in the CLI
        self._locks = ConversationLocks(store)

    # ----- public API -----------------------------------------------------------------------------------------------
    def handle(
        self, conversation_id: str, text: str, *, channel_message_id: str | None = None, owner: str | None = None
    ) -> EngineReply:
        """Answer one message. Turns of one conversation are processed strictly one after another, on every worker.

        `channel_message_id` makes the turn idempotent: a message already answered (a retry after a crash or an
        outage, a redelivery) gets the stored answer back and stores nothing again. The turn's writes (the user's
        message, the answer, the state, the pruning) commit in one transaction, so a turn that fails stores nothing.
        `owner` (the web visitor's token hash): the turn runs only while the conversation is bound to that owner,
        checked under the lock, so a deletion that got the lock first is never undone by a turn queued behind it
        (raises ConversationGone).
        """
        with self._locks.get(conversation_id):
            if owner is not None and self.store.owner_of(conversation_id) != owner:
                raise ConversationGone(conversation_id)
            if channel_message_id is not None:
                earlier = self.store.answer_to(conversation_id, channel_message_id)
                if earlier is not None and earlier.answer is not None:
                    log.info("engine: message already answered; the stored answer is returned")
                    return EngineReply(Answer.model_validate(earlier.answer), earlier.id)
            state = self.store.get_state(conversation_id) or ConversationState()
            memory = state.extra.get(MEMORY_KEY)
            previous = self._previous_user_messages(conversation_id) if memory else []
            decision = self.safety.assess(text, memory, previous)
            self._observe(decision)
            if decision.tier == "none" and parse_command(text) == Intent.DELETE:
                self.store.delete_user_data(conversation_id)
                answer = self._plain(self.replies["deleted"], follow_ups=[])
                return EngineReply(
                    answer, 0, deleted=True
                )  # nothing is stored: the user asked for their data to be gone
            answer = self._answer(text, state, decision)
            remembered = self.safety.remember(decision, memory)
            if remembered is None:
                state.extra.pop(MEMORY_KEY, None)
            else:
                state.extra[MEMORY_KEY] = remembered
            state.last_kind = answer.kind
            with self.store.transaction() as tx:
                tx.add_turn(conversation_id, "user", text, channel_message_id=channel_message_id)
                turn_id = tx.add_turn(conversation_id, "bot", answer.text, answer=answer.model_dump(mode="json"))
                tx.save_state(conversation_id, state)
                tx.prune_turns(conversation_id, HISTORY_TURNS)
            return EngineReply(answer, turn_id)

    def answer_once(self, text: str) -> Answer:
        """A fresh conversation of one message, stored nowhere (`bot ask`)."""
        decision = self.safety.assess_text(text)
        self._observe(decision)
        return self._answer(text, ConversationState(), decision)

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

    # ----- turn logic -----------------------------------------------------------------------------------------------
    def _answer(self, text: str, state: ConversationState, decision: SafetyDecision) -> Answer:
        answer = self._turn(text, state, decision)
        if not answer.sources and text.strip():
            # The contract: every answer carries the retrieval ranking for the message, small talk included.
            answer.sources = self.composer.sources(self.searcher.search(text))
        return answer

    def _turn(self, text: str, state: ConversationState, decision: SafetyDecision) -> Answer:
        message = text.strip()
        if not message:
            return self._plain(self.replies["clarify"]["empty"], follow_ups=[], kind="clarify")

        # 1. Safety: clear danger gets the escalation answer, possible danger a check-in; career advice waits.
        if decision.escalate and decision.kind is not None:
            return self._escalation(message, decision.kind, state)
        if decision.check_in and decision.kind is not None:
            return self._check_in(message, decision.kind, state)

        # 2. Commands (whole-message only; delete was handled before the turn was stored), 3. the dialogue.
        intent = classify(message)
        if intent == Intent.CONTINUE:
            pending = state.extra.pop("pending_worry", None)
            if pending:
                return self._worry(str(pending), state, self.articles.get(state.article_id or ""))
            intent = Intent.KEEP_TALKING
        if intent == Intent.DELETE:  # `bot ask`: a fresh conversation has nothing stored to delete
            return self._plain(self.replies["deleted"], follow_ups=[])
        if intent == Intent.RESET:
            state.__dict__.update(ConversationState().__dict__)
            return self._plain(self.replies["reset"], follow_ups=[], kind="clarify")
        if intent in (Intent.GREETING, Intent.THANKS, Intent.BYE, Intent.ACK):
            return self._plain(self.replies["smalltalk"][intent.value], follow_ups=self._after_smalltalk(state))
        if intent == Intent.KEEP_TALKING:
            return self._plain(self.replies["smalltalk"]["ack"], follow_ups=[])
        if intent == Intent.OTHER:
            state.topic, state.article_id, state.pending_choices = None, None, []
            return self._plain(self.replies["clarify"]["empty"], follow_ups=[], kind="clarify")

        chosen = self._chosen_topic(message, state)
        if chosen is not None:
            article = self._article_for_topic(chosen)
            if article is not None:
                retrieval = self.searcher.search(f"{self.topic_names.get(chosen, chosen)} {state.summary[-200:]}")
                return self._advice(message, retrieval, state, article_id=article.id, context=state.summary)

        current = self.articles.get(state.article_id or "")
        if current is not None and intent in (Intent.MORE, Intent.NEXT, Intent.CASE, Intent.EXPERT):
            return self._follow_up(intent, current, state)
        if current is None and intent in (Intent.MORE, Intent.NEXT, Intent.CASE, Intent.EXPERT):
            return self._plain(self.replies["no_current_topic"], follow_ups=[], kind="clarify")

        return self._worry(message, state, current)

    def _worry(self, message: str, state: ConversationState, current: Article | None) -> Answer:
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
                return self._step_question(message, current, retrieval, state)
        vague = is_vague(message)
        if (
            retrieval.best is None
            or retrieval.confidence < CLARIFY_BELOW
            or (vague and retrieval.confidence < VAGUE_CLARIFY_BELOW)
        ):
            return self._clarify(retrieval, state)
        state.summary = _append_summary(state.summary, message)
        return self._advice(message, retrieval, state)

    def _advice(
        self,
        message: str,
        retrieval: RetrievalResult,
        state: ConversationState,
        *,
        article_id: str | None = None,
        context: str = "",
        rewrite: bool = True,
    ) -> Answer:
        answer = self.composer.advice(message, retrieval, article_id=article_id, context=context)
        cited = self.articles[article_id or retrieval.best.article_id]  # type: ignore[union-attr]
        state.topic, state.article_id, state.pending_choices = cited.topic, cited.id, []
        state.extra["shown_groups"] = len(answer.action_plan)
        if rewrite and self.rewriter is not None:
            answer = self.rewriter.rewrite(message, answer, retrieval)
        return answer

    def _clarify(self, retrieval: RetrievalResult, state: ConversationState) -> Answer:
        topics: list[str] = []
        for hit in retrieval.articles:
            if hit.topic and hit.topic not in topics:
                topics.append(hit.topic)
        for fallback in ("overwork", "boss-conflict", "job-change-decision", "burnout"):
            if len(topics) >= 3:
                break
            if fallback not in topics and fallback in self.topic_names:
                topics.append(fallback)
        topics = topics[:MAX_CHOICES]
        choices = [self.topic_names[t] for t in topics if t in self.topic_names]
        state.pending_choices = topics
        answer = Answer(
            kind="clarify",
            topic=None,
            sources=self.composer.sources(retrieval),
            empathy=self.replies["clarify"]["question"],
            follow_ups=choices,
        )
        answer.text = render_text(answer, self.replies)
        return answer

    def _chosen_topic(self, message: str, state: ConversationState) -> str | None:
        if not state.pending_choices:
            return None
        t = normalise(message)
        for number, topic in enumerate(state.pending_choices, start=1):
            name = self.topic_names.get(topic, topic)
            if t in {normalise(name), str(number), topic}:
                return topic
        return None

    def _article_for_topic(self, topic: str) -> Article | None:
        return next((a for a in self.articles.values() if a.topic == topic), None)

    def _escalation(self, message: str, kind: str, state: ConversationState) -> Answer:
        escalation: Escalation = build_escalation(kind, self.knowledge_dir, self.prompts_dir)  # type: ignore[arg-type]
        retrieval = self.searcher.search(message)
        if kind in CRISIS_ONLY:
            # Career advice waits: the calm message and help lines only, and an offer to keep talking.
            answer = Answer(
                kind="escalation",
                topic=None,
                sources=self.composer.sources(retrieval),
                escalation=escalation,
                safety_tier="escalation",
                follow_ups=[self.replies["follow_ups"]["keep_talking"]],
            )
            answer.text = render_text(answer, self.replies)
            state.pending_choices = []
            return answer
        # Severe harassment and labour-law trouble: safety and where to go first, then the curated article as written.
        article_id = None
        if kind == "labor-law":
            article = self._article_for_topic("labor-rights")
            best = retrieval.best
            if best is not None and best.topic in {"labor-rights", "layoff", "overwork"}:
                article_id = best.article_id
            elif article is not None:
                article_id = article.id
        elif kind == "harassment-severe":
            best = retrieval.best
            if best is None or best.topic not in {
                "power-harassment",
                "coworker-relations",
                "customer-complaints",
                "women-career",
            }:
                article = self._article_for_topic("power-harassment")
                article_id = article.id if article else None
        # Never through the LLM: escalations show the curated content as written.
        answer = self._advice(message, retrieval, state, article_id=article_id, rewrite=False)
        answer = answer.model_copy(update={"kind": "escalation", "escalation": escalation, "safety_tier": "escalation"})
        answer.text = render_text(answer, self.replies)
        return answer

    def _check_in(self, message: str, kind: str, state: ConversationState) -> Answer:
        """Possible danger: name the feeling, offer the help lines, ask how they are; the worry waits until they say
        they want to go on (「仕事の相談を続けたい」), then it is answered as usual."""
        check_in = self.replies["check_in"]
        resources = resources_for(kind, self.knowledge_dir)  # type: ignore[arg-type]
        escalation = Escalation(
            kind=kind,  # type: ignore[arg-type]
            message=check_in["message"].get(kind, check_in["message"]["default"]),
            resources=resources[:2],
        )
        state.pending_choices = []
        state.extra["pending_worry"] = " ".join(message.split())[:600]
        answer = Answer(
            kind="clarify",
            topic=None,
            sources=self.composer.sources(self.searcher.search(message)),
            escalation=escalation,
            safety_tier="check-in",
            follow_ups=[check_in["continue"], self.replies["follow_ups"]["keep_talking"]],
        )
        answer.text = render_text(answer, self.replies)
        return answer

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

    def _follow_up(self, intent: Intent, article: Article, state: ConversationState) -> Answer:
        phrases = self.replies["phrases"]
        retrieval = self.searcher.search(state.summary or article.title, restrict_to=None)
        if intent == Intent.MORE:
            answer = self.composer.advice(state.summary or article.title, retrieval, article_id=article.id, full=True)
            answer.empathy = phrases["more_intro"].format(title=article.title)
            answer.cited = [article.id]
            answer.text = render_text(answer, self.replies)
            return answer
        if intent == Intent.NEXT:
            plan = article.section(Role.ACTION_PLAN)
            full = self.composer.advice(state.summary or article.title, retrieval, article_id=article.id, full=True)
            shown = int(state.extra.get("next_cursor", 0))
            groups = full.action_plan
            if shown >= len(groups) or plan is None:
                return self._plain(
                    phrases["next_done"],
                    follow_ups=self.composer.follow_ups(article, full=True),
                    kind="advice",
                    topic=article.topic,
                    retrieval=retrieval,
                )
            state.extra["next_cursor"] = shown + 1
            answer = Answer(
                kind="advice",
                topic=article.topic,
                sources=full.sources,
                empathy=phrases["next_intro"],
                action_plan=[groups[shown]],
                follow_ups=self.composer.follow_ups(article, full=True),
            )
            answer.cited = [article.id]
            answer.text = render_text(answer, self.replies)
            return answer
        role = Role.CASE if intent == Intent.CASE else Role.EXPERT
        section = article.section(role)
        intro = phrases["case_intro"] if role == Role.CASE else phrases["expert_intro"]
        body = section.text if section else ""
        return self._plain(
            f"{intro}\n\n{body}".strip(),
            follow_ups=self.composer.follow_ups(article),
            kind="advice",
            topic=article.topic,
            retrieval=retrieval,
        )

    def _step_question(
        self, message: str, article: Article, retrieval: RetrievalResult, state: ConversationState
    ) -> Answer:
        """A free-form question about the current article: the items of that article that answer it best."""
        from bot.answer.grounded import read_signals

        signals = read_signals(message, self.composer.lexicon)
        plan = article.section(Role.ACTION_PLAN)
        scored = []
        for step in plan.steps if plan else []:
            for order, item in enumerate(step.items):
                scored.append((self.composer.ranker.score(item, signals), -order, step.heading, item))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        best = [s for s in scored[:2] if s[0] > 0] or scored[:1]
        groups: list[ActionGroup] = []
        for _, _, heading, item in best:
            group = next((g for g in groups if g.title == heading), None)
            if group is None:
                group = ActionGroup(title=heading, steps=[])
                groups.append(group)
            group.steps.append(item_text(item))
        question = normalise(message)[:30]
        answer = Answer(
            kind="advice",
            topic=article.topic,
            sources=self.composer.sources(retrieval),
            empathy=self.replies["phrases"]["step_answer_intro"].format(question=question),
            action_plan=groups,
            follow_ups=self.composer.follow_ups(article),
        )
        # The article under discussion leads the sources: it is the one the answer was built from.
        answer.sources.sort(key=lambda s: s.article_id != article.id)
        answer.cited = [article.id]
        answer.text = render_text(answer, self.replies)
        return answer

    # ----- helpers ----------------------------------------------------------------------------------------------------
    def _plain(
        self,
        text: str,
        *,
        follow_ups: list[str],
        kind: str = "clarify",
        topic: str | None = None,
        retrieval: RetrievalResult | None = None,
    ) -> Answer:
        answer = Answer(
            kind=kind,  # type: ignore[arg-type]
            topic=topic,
            sources=self.composer.sources(retrieval) if retrieval else [],
            empathy=text,
            follow_ups=follow_ups,
        )
        answer.text = text
        return answer

    def _after_smalltalk(self, state: ConversationState) -> list[str]:
        if state.article_id:
            return (
                self.composer.follow_ups(self.articles[state.article_id]) if state.article_id in self.articles else []
            )
        return []


def _append_summary(summary: str, message: str) -> str:
    """The situation so far, newest last; bounded (the store also bounds it)."""
    message = " ".join(message.split())
    joined = f"{summary} / {message}" if summary else message
    return joined[-600:]
