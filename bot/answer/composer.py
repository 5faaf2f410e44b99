"""The one answer pipeline: everything a person reads is built here, behind one interface.

`AnswerComposer` builds every reply from curated text: advice (the three-part answer), clarifying questions,
follow-ups (「もっと詳しく」, the next step, the case, where to get help), questions about a step, escalations,
check-ins and the bot's short lines. `LLMAnswerComposer` is the same composer whose advice is rewritten by a chat
model, never beyond what the grounded answer says (`bot.answer.llm`). The dialogue engine only routes and keeps state.

Streaming is part of the interface, as in the field's RAG services (`answer` / `answer_stream`): `advice_stream`
yields the opening's text as an LLM writes it (a preview for a typing bubble) and ends with the authoritative
`Answer`; `advice` is the stream's last item. The grounded composer yields its answer alone, at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from bot.answer.grounded import GroundedComposer, read_signals
from bot.answer.model import ActionGroup, Answer, AnswerKind, Escalation, EscalationKind, Source
from bot.answer.render import render_text
from bot.jobs.dialogue import JobTurn
from bot.jobs.present import follow_ups as jobs_follow_ups
from bot.jobs.present import job_view, render_jobs_text
from bot.jobs.present import opening as jobs_opening
from bot.jobs.vocabulary import vocabulary
from bot.knowledge.model import Article, Role
from bot.retrieval.policy import close_topics
from bot.retrieval.retriever import RetrievalResult
from bot.safety.helplines import ALL_LINES, LineChoice, build_escalation, load_template, resources_for

TokenCallback = Callable[[str], None]

# Crisis kinds: the calm message and help lines only, no career advice mixed in.
# Crises whose help lines stand alone. Exhaustion and low mood (`mental`) get theirs first and then the curated advice
# on resting and seeing a doctor: the fourth blind set's reviewers read help lines alone, for people asking whether to
# take sick leave, as an answer to someone else.
CRISIS_ONLY = frozenset({"suicide", "self-harm"})
MENTAL_TOPICS = frozenset({"burnout", "overwork", "returning-from-leave"})
# A check-in is possible danger, not an emergency: the emergency number waits for an escalation (clear danger); the
# check-in offers the police's consultation line and the labour bureau (verbal abuse and a held-back resignation
# got 110 in the fourth blind set).
CHECK_IN_LINES = LineChoice(exclude=frozenset({"police-110"}))
# Possible danger of these kinds comes with the answer to the worry: the care line and two help lines, then the advice.
# The fourth blind set's check-ins were all on ordinary consultations (90 hours of overtime, a yelling boss, a held-back
# resignation) and withheld the answer the person asked for; on the safety sets no crisis row checked in with these
# kinds loses its help lines this way. A possible suicide or self-harm still gets the check-in alone.
CHECK_IN_WITH_ANSWER = frozenset({"mental", "harassment-severe"})
# Beside an answer, exhaustion gets the mental-health lines (こころの耳, the public mental-health dial), not the suicide
# prevention lines: reviewers read those, for people asking about overtime or sick leave, as alarm; and trouble at work
# is met first by the labour consultation, before the police's consultation line.
WITH_ANSWER_LINES = LineChoice(
    exclude=CHECK_IN_LINES.exclude | {"inochi-no-denwa", "inochi-sos", "yorisoi-hotline"},
    first=("sogo-rodo-sodan", "kokoro-no-mimi"),
)
# Exhaustion and breakdown (a mental escalation) get the 24-hour line and the mental-health lines, not the suicide
# prevention lines first: the fifth blind set's reviewers read those, for a nurse asking about sick leave and for
# someone who cried and took the day off, as a crisis tone that did not fit.
MENTAL_ESCALATION_LINES = LineChoice(
    exclude=frozenset({"inochi-no-denwa", "inochi-sos"}),
    first=("yorisoi-hotline", "kokoro-unified-dial", "kokoro-no-mimi"),
)
# A severe-harassment escalation keeps the retrieved article when it is about one of these; else the harassment one.
HARASSMENT_TOPICS = frozenset({"power-harassment", "coworker-relations", "customer-complaints", "women-career"})
# Topics whose articles carry the labour-law information an escalation about it shows (notice periods, care leave,
# equal treatment): a labour-law escalation keeps their best article rather than switching to labor-rights.
LABOUR_TOPICS = frozenset({"labor-rights", "layoff", "overwork", "resignation", "caregiving-balance", "women-career"})
# An escalation's topic when no article of it ranked for the message: its general article (the others serve
# particular situations: part-time and contract workers' rights).
TOPIC_FALLBACK_ARTICLES = {
    "labor-rights": "labor-rights-unpaid-overtime",
    "power-harassment": "power-harassment-yelling-boss",
}
MAX_CHOICES = 4
# A clarifying question offers the topics retrieval found close to the best one (a choice far below it is noise)...
CLARIFY_SPREAD = 0.08
# ...and, when fewer than two are close, the worries people bring most often.
CLARIFY_FALLBACK = ("overwork", "boss-conflict", "job-change-decision", "burnout")
# A plan item answers a question about the article when it shares this much with it (idf-weighted words + boosts; a
# lone common word such as 「なる」 scores about 1.4, one shared content word about 3).
STEP_ANSWER_MIN_SCORE = 2.5


class AnswerComposer:
    """Builds every `Answer` from the curated library; no network."""

    def __init__(self, grounded: GroundedComposer, *, knowledge_dir: Path, prompts_dir: Path) -> None:
        self.grounded = grounded
        self.knowledge_dir = knowledge_dir
        self.prompts_dir = prompts_dir
        self._job_replies: dict[str, Any] | None = None

    # ----- what channels and the engine read ------------------------------------------------------------------------
    @property
    def articles(self) -> dict[str, Article]:
        return self.grounded.articles

    @property
    def topic_names(self) -> dict[str, str]:
        return self.grounded.topic_names

    @property
    def replies(self) -> dict[str, Any]:
        return self.grounded.replies

    def sources(self, retrieval: RetrievalResult) -> list[Source]:
        return self.grounded.sources(retrieval)

    def follow_ups(self, article: Article, *, full: bool = False) -> list[str]:
        return self.grounded.follow_ups(article, full=full)

    def article_for_topic(self, topic: str, retrieval: RetrievalResult | None = None) -> Article | None:
        """The topic's article that ranked best for the message; when none ranked, the topic's general article (a
        topic can have articles for different situations, and the first by file name is not the general one)."""
        ranked = next((h.article_id for h in retrieval.articles if h.topic == topic), None) if retrieval else None
        found = self.articles.get(ranked or TOPIC_FALLBACK_ARTICLES.get(topic, ""))
        return found or next((a for a in self.articles.values() if a.topic == topic), None)

    # ----- advice ---------------------------------------------------------------------------------------------------
    def advice_stream(
        self,
        message: str,
        retrieval: RetrievalResult,
        *,
        article_id: str | None = None,
        context: str = "",
        curated: bool = False,
    ) -> Iterator[str | Answer]:
        """The three-part answer for the best (or the given) article. `curated`: shown exactly as written (never
        rewritten; escalations). Yields preview text (LLM only), then the final `Answer`."""
        yield self.grounded.advice(message, retrieval, article_id=article_id, context=context)

    def advice(
        self,
        message: str,
        retrieval: RetrievalResult,
        *,
        article_id: str | None = None,
        context: str = "",
        curated: bool = False,
        on_token: TokenCallback | None = None,
    ) -> Answer:
        """`advice_stream`'s final answer; `on_token` receives the preview text as it comes."""
        final: Answer | None = None
        for part in self.advice_stream(message, retrieval, article_id=article_id, context=context, curated=curated):
            if isinstance(part, Answer):
                final = part
            elif on_token is not None:
                on_token(part)
        if final is None:  # every stream ends with an answer; this guards a broken variant
            raise RuntimeError("the composer's stream ended without an answer")
        return final

    # ----- clarifying ------------------------------------------------------------------------------------------------
    def clarify_topics(self, message: str, retrieval: RetrievalResult) -> list[str]:
        """The choices for a clarifying question: topics retrieval placed close to the best one, in its order."""
        topics = [t for t in close_topics(retrieval, CLARIFY_SPREAD) if t in self.topic_names]
        if len(topics) < 2:
            for fallback in CLARIFY_FALLBACK:
                if len(topics) >= 3:
                    break
                if fallback not in topics and fallback in self.topic_names:
                    topics.append(fallback)
        return topics[:MAX_CHOICES]

    def clarify(self, message: str, retrieval: RetrievalResult, topics: list[str]) -> Answer:
        """One short question with choices, opened by a line that acknowledges what they wrote."""
        clarify = self.replies["clarify"]
        signals = read_signals(message, self.grounded.lexicon)
        opening = clarify["echo"].format(echo=signals.echo) if signals.echo else clarify["thanks"]
        answer = Answer(
            kind="clarify",
            topic=None,
            sources=self.sources(retrieval),
            empathy=f"{opening}{clarify['question']}",
            follow_ups=[self.topic_names[t] for t in topics if t in self.topic_names],
        )
        answer.text = render_text(answer, self.replies)
        return answer

    # ----- safety ----------------------------------------------------------------------------------------------------
    def escalation(self, message: str, kind: str, retrieval: RetrievalResult) -> Answer:
        """Clear danger: help lines first. Crises get them alone; severe harassment and labour-law trouble get them
        before the curated article, shown as written (never through an LLM)."""
        lines = MENTAL_ESCALATION_LINES if kind == "mental" else ALL_LINES
        escalation: Escalation = build_escalation(kind, self.knowledge_dir, self.prompts_dir, lines)  # type: ignore[arg-type]
        if kind in CRISIS_ONLY:
            answer = Answer(
                kind="escalation",
                topic=None,
                sources=self.sources(retrieval),
                escalation=escalation,
                safety_tier="escalation",
                follow_ups=[self.replies["follow_ups"]["keep_talking"]],
            )
            answer.text = render_text(answer, self.replies)
            return answer
        answer = self.advice(message, retrieval, article_id=self._escalation_article(kind, retrieval), curated=True)
        # The escalation's calm message is the answer's opening: the article's own opening line would greet them twice.
        answer = answer.model_copy(
            update={"kind": "escalation", "escalation": escalation, "safety_tier": "escalation", "empathy": ""}
        )
        if answer.reply_before_help():  # the general rule was said first: the note follows it, without a greeting
            note = load_template(kind, self.prompts_dir, variant="after-reply")  # type: ignore[arg-type]
            answer.escalation = escalation.model_copy(update={"message": note})
        answer.text = render_text(answer, self.replies)
        return answer

    def _escalation_article(self, kind: str, retrieval: RetrievalResult) -> str | None:
        best = retrieval.best
        if kind == "labor-law":
            if best is not None and best.topic in LABOUR_TOPICS:
                return best.article_id
            article = self.article_for_topic("labor-rights", retrieval)
            return article.id if article else None
        if kind == "mental" and (best is None or best.topic not in MENTAL_TOPICS):
            article = self.article_for_topic("burnout", retrieval)
            return article.id if article else None
        if kind == "harassment-severe" and (best is None or best.topic not in HARASSMENT_TOPICS):
            article = self.article_for_topic("power-harassment", retrieval)
            return article.id if article else None
        return None

    def check_in(self, message: str, kind: EscalationKind, retrieval: RetrievalResult) -> Answer:
        """Possible danger: name the feeling, offer two help lines, ask how they are; the worry waits until they say
        they want to go on (「仕事の相談を続けたい」)."""
        check_in = self.replies["check_in"]
        escalation = Escalation(
            kind=kind,
            message=check_in["message"].get(kind, check_in["message"]["default"]),
            resources=resources_for(kind, self.knowledge_dir, CHECK_IN_LINES)[:2],
        )
        answer = Answer(
            kind="clarify",
            topic=None,
            sources=self.sources(retrieval),
            escalation=escalation,
            safety_tier="check-in",
            follow_ups=[check_in["continue"], self.replies["follow_ups"]["keep_talking"]],
        )
        answer.text = render_text(answer, self.replies)
        return answer

    def answers_with_check_in(self, kind: EscalationKind) -> bool:
        """Whether possible danger of this kind is answered together with the worry (`with_check_in`)."""
        return kind in CHECK_IN_WITH_ANSWER

    def with_check_in(self, answer: Answer, kind: EscalationKind) -> Answer:
        """The answer to the worry with the check-in's care line and two help lines before it (never 110)."""
        lines = self.replies["check_in"]["with_answer"]
        escalation = Escalation(
            kind=kind,
            message=lines.get(kind, lines["default"]),
            resources=resources_for(kind, self.knowledge_dir, WITH_ANSWER_LINES)[:2],
        )
        answer = answer.model_copy(update={"escalation": escalation, "safety_tier": "check-in"})
        answer.text = render_text(answer, self.replies)
        return answer

    # ----- follow-ups on the article under discussion ----------------------------------------------------------------
    def more(self, article: Article, summary: str, retrieval: RetrievalResult) -> Answer:
        """「もっと詳しく」: every item of the article in full."""
        answer = self.grounded.advice(summary or article.title, retrieval, article_id=article.id, full=True)
        answer.empathy = self.replies["phrases"]["more_intro"].format(title=article.title)
        answer.cited = [article.id]
        answer.text = render_text(answer, self.replies)
        return answer

    def next_group(self, article: Article, summary: str, retrieval: RetrievalResult, shown: int) -> Answer | None:
        """「次のステップ」: the plan's group number `shown` (0-based) in full; None when every group was shown."""
        full = self.grounded.advice(summary or article.title, retrieval, article_id=article.id, full=True)
        if shown >= len(full.action_plan) or article.section(Role.ACTION_PLAN) is None:
            return None
        answer = Answer(
            kind="advice",
            topic=article.topic,
            sources=full.sources,
            empathy=self.replies["phrases"]["next_intro"],
            action_plan=[full.action_plan[shown]],
            follow_ups=self.follow_ups(article, full=True),
            cited=[article.id],
        )
        answer.text = render_text(answer, self.replies)
        return answer

    def plan_done(self, article: Article, retrieval: RetrievalResult) -> Answer:
        return self.plain(
            self.replies["phrases"]["next_done"],
            follow_ups=self.follow_ups(article, full=True),
            kind="advice",
            topic=article.topic,
            retrieval=retrieval,
        )

    def story(self, article: Article, role: Role, retrieval: RetrievalResult) -> Answer:
        """The article's success story (Role.CASE) or its where-to-get-help section (Role.EXPERT), as written."""
        phrases = self.replies["phrases"]
        intro = phrases["case_intro"] if role == Role.CASE else phrases["expert_intro"]
        section = article.section(role)
        body = section.text if section else ""
        answer = self.plain(
            f"{intro}\n\n{body}".strip(),
            follow_ups=self.follow_ups(article),
            kind="advice",
            topic=article.topic,
            retrieval=retrieval,
        )
        answer.cited = [article.id]
        return answer

    def step_question(self, message: str, article: Article, retrieval: RetrievalResult) -> Answer:
        """A question about the article under discussion: its Q&A item when one answers it, else the plan items
        that speak to it best."""
        signals = read_signals(message, self.grounded.lexicon)
        direct = self.grounded.direct_answer(article, signals, loose=True)
        plan = article.section(Role.ACTION_PLAN)
        scored = []
        for step in plan.steps if plan else []:
            for order, item in enumerate(step.items):
                scored.append((self.grounded.ranker.score(item, signals), -order, step.heading, item))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        best = [s for s in scored[:2] if s[0] >= STEP_ANSWER_MIN_SCORE]
        groups: list[ActionGroup] = []
        for _, _, heading, item in best:
            group = next((g for g in groups if g.title == heading), None)
            if group is None:
                group = ActionGroup(title=heading, steps=[])
                groups.append(group)
            group.steps.append(self.grounded.item_for(item, signals))
        phrases = self.replies["phrases"]
        if direct is None and not best:
            # Nothing in the article speaks to it: say so and offer what it can do, rather than pretend.
            intro = phrases["step_unanswered"].format(title=article.title)
        else:
            intro = phrases["step_answer_intro"].format(question=signals.echo or message.strip()[:30])
        answer = Answer(
            kind="advice",
            topic=article.topic,
            sources=self.sources(retrieval),
            empathy=intro,
            direct_answer=direct,
            action_plan=groups,
            follow_ups=self.follow_ups(article),
            cited=[article.id],
        )
        # The article under discussion leads the sources: it is the one the answer was built from.
        answer.sources.sort(key=lambda s: s.article_id != article.id)
        if not any(s.article_id == article.id for s in answer.sources):
            answer.sources.insert(
                0, Source(article_id=article.id, title=article.title, topic=article.topic or "", score=0.0)
            )
        answer.text = render_text(answer, self.replies)
        return answer

    # ----- the job search (bot.jobs) ---------------------------------------------------------------------------------
    @property
    def job_replies(self) -> dict[str, Any]:
        """prompts/jobs.yaml: the job search's lines."""
        if self._job_replies is None:
            self._job_replies = yaml.safe_load((self.prompts_dir / "jobs.yaml").read_text(encoding="utf-8"))
        return self._job_replies

    def jobs(self, turn: JobTurn) -> Answer:
        """A job-search turn: a question about a condition (its choices as follow-ups), the postings found, or an
        honest 「見つかりませんでした」 with the public job search to try."""
        replies, vocab = self.job_replies, vocabulary()
        view = job_view(turn, vocab, replies)
        empathy = jobs_opening(turn, view, replies)
        chips = jobs_follow_ups(turn, view, turn.choices, replies)
        kind: AnswerKind = "advice" if turn.kind == "results" else "clarify"
        answer = Answer(kind=kind, topic=None, empathy=empathy, follow_ups=chips, jobs=view)
        answer.text = render_jobs_text(view, empathy, chips, replies)
        return answer

    # ----- the bot's own lines ---------------------------------------------------------------------------------------
    def plain(
        self,
        text: str,
        *,
        follow_ups: list[str],
        kind: AnswerKind = "clarify",
        topic: str | None = None,
        retrieval: RetrievalResult | None = None,
    ) -> Answer:
        answer = Answer(
            kind=kind,
            topic=topic,
            sources=self.sources(retrieval) if retrieval else [],
            empathy=text,
            follow_ups=follow_ups,
        )
        answer.text = text
        return answer

    def reply(self, key: str, *, follow_ups: list[str] | None = None, kind: AnswerKind = "clarify") -> Answer:
        """One of the fixed replies (`prompts/replies.yaml`), by dotted key: 「deleted」, 「smalltalk.thanks」."""
        value: Any = self.replies
        for part in key.split("."):
            value = value[part]
        return self.plain(str(value), follow_ups=follow_ups or [], kind=kind)


class LLMAnswerComposer(AnswerComposer):
    """The grounded composer whose advice a chat model rewrites (`bot.answer.llm.LLMRewriter`); any failure, and
    anything curated, gives the grounded answer."""

    def __init__(self, grounded: GroundedComposer, rewriter: Any, *, knowledge_dir: Path, prompts_dir: Path) -> None:
        super().__init__(grounded, knowledge_dir=knowledge_dir, prompts_dir=prompts_dir)
        self.rewriter = rewriter

    def advice_stream(
        self,
        message: str,
        retrieval: RetrievalResult,
        *,
        article_id: str | None = None,
        context: str = "",
        curated: bool = False,
    ) -> Iterator[str | Answer]:
        grounded = self.grounded.advice(message, retrieval, article_id=article_id, context=context)
        if curated:
            yield grounded
            return
        yield from self.rewriter.stream_rewrite(message, grounded, retrieval)
