"""Optional LLM mode: rewrite the grounded answer more naturally for this worker, never beyond what it says.

The grounded composer stays the source of truth. The model sees the grounded answer's items, each with a stable id
(`A1` analysis item 1, `P2` action group 2, `P2.1` its first step, `S1` strategy item 1), and must return JSON whose
every item carries the `source_ids` it rewrites. What cannot be traced back is dropped:
- an item citing no id of its own part is dropped, and so is one much longer than what it cites (added content);
- a part left empty falls back to the grounded part; kind, topic, sources, follow-ups and escalation never change.
Labour-law content (topics `labor-rights`/`layoff`, any escalation, a message the crisis detector flags) is returned
as written: curated wording matters legally there. Any failure — timeout, connection error, HTTP error, refusal,
malformed JSON, schema mismatch, nothing usable — returns the grounded answer and logs the reason class at WARNING,
never the worker's text. The total time is bounded by LLM_TIMEOUT even when the client itself hangs.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.utils.json import parse_partial_json
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.answer.model import ActionGroup, AnalysisPoint, Answer, StrategyPoint
from bot.answer.prompts import load_replies, load_text
from bot.answer.render import cited_titles, render_text
from bot.retrieval.retriever import RetrievalResult
from bot.safety.detector import detect_crisis

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "llm_system.txt"
USER_PROMPT = "llm_user.txt"
# Curated labour-law wording is shown as written (PRODUCT.md: no case-specific legal verdicts, no paraphrase).
UNTOUCHED_TOPICS = frozenset({"labor-rights", "layoff"})
MAX_MESSAGE_CHARS = 2000  # a pasted essay adds cost, not grounding
MAX_EMPATHY_CHARS = 160  # the opening reflects the worker's words; a long one is carrying advice
# A rewritten item may reword and address the worker, but not grow far beyond what it cites: that is added content.
GROWTH_FACTOR = 1.6
GROWTH_SLACK = 40
# Sync callers wait on a worker thread so a hung client cannot hold them past the deadline; the thread itself ends
# when the client's own timeout fires.
_WORKERS = 8
# Placeholder key for endpoints that need none (local vLLM, Ollama); the OpenAI client refuses an empty one.
NO_KEY = "not-needed"


class RewriteError(Exception):
    """A failure with a short reason class that is safe to log (never the worker's text or the model's output)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ----- what the model returns ----------------------------------------------------------------------------------------
class _Cited(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source_ids: list[str] = Field(default_factory=list)

    @field_validator("source_ids", mode="before")
    @classmethod
    def _one_id_is_a_list(cls, value: Any) -> Any:
        # Models often write "source_ids": "A1" for a single id; that is still a citation.
        return [value] if isinstance(value, str) else value


class OutPoint(_Cited):
    title: str = ""
    detail: str


class OutStep(_Cited):
    text: str


class OutGroup(_Cited):
    title: str
    steps: list[OutStep] = Field(default_factory=list)


class RewriteOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")
    empathy: str = ""
    situation_analysis: list[OutPoint] = Field(default_factory=list)
    action_plan: list[OutGroup] = Field(default_factory=list)
    career_strategy: list[OutPoint] = Field(default_factory=list)


# ----- the grounded items, by id -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    """The grounded answer's items by stable id, with the text each one says."""

    analysis: dict[str, str]
    groups: dict[str, str]
    steps: dict[str, str]
    strategy: dict[str, str]

    @classmethod
    def of(cls, answer: Answer) -> Catalogue:
        groups: dict[str, str] = {}
        steps: dict[str, str] = {}
        for g, group in enumerate(answer.action_plan, start=1):
            groups[f"P{g}"] = group.title
            for s, step in enumerate(group.steps, start=1):
                steps[f"P{g}.{s}"] = step
        return cls(
            analysis={f"A{n}": _point(p.title, p.detail) for n, p in enumerate(answer.situation_analysis, start=1)},
            groups=groups,
            steps=steps,
            strategy={f"S{n}": _point(p.title, p.detail) for n, p in enumerate(answer.career_strategy, start=1)},
        )

    def prompt_sections(self) -> dict[str, str]:
        plan: list[str] = []
        for gid, title in self.groups.items():
            plan.append(f"[{gid}] {title}")
            plan += [f"  [{sid}] {text}" for sid, text in self.steps.items() if sid.startswith(f"{gid}.")]
        return {
            "analysis": "\n".join(f"[{i}] {t}" for i, t in self.analysis.items()) or "（なし）",
            "action_plan": "\n".join(plan) or "（なし）",
            "strategy": "\n".join(f"[{i}] {t}" for i, t in self.strategy.items()) or "（なし）",
        }


def _point(title: str, detail: str) -> str:
    return f"{title}：{detail}" if title else detail


def _grounded_in(text: str, ids: list[str], known: dict[str, str]) -> bool:
    """True when `text` cites at least one known id and is not much longer than what it cites."""
    cited = [known[i] for i in dict.fromkeys(i.strip() for i in ids) if i in known]
    if not cited or not text.strip():
        return False
    return len(text) <= GROWTH_FACTOR * sum(len(c) for c in cited) + GROWTH_SLACK


# ----- parsing and merging -------------------------------------------------------------------------------------------
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_output(content: str) -> RewriteOutput:
    """The model's reply as a `RewriteOutput`; raises `RewriteError` with the reason class."""
    text = _FENCE.sub("", content.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Some models wrap the object in a sentence; read the outermost braces.
        start, end = text.find("{"), text.rfind("}")
        if start < 0:
            # No JSON at all: the model declined or chatted instead ("申し訳ありませんが…").
            raise RewriteError("refusal") from None
        try:
            data = json.loads(text[start : end + 1]) if end > start else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise RewriteError("malformed-json") from None
    if not isinstance(data, dict):
        raise RewriteError("schema")
    try:
        return RewriteOutput.model_validate(data)
    except ValidationError:
        raise RewriteError("schema") from None


def merge(grounded: Answer, out: RewriteOutput) -> tuple[dict[str, Any], int, int]:
    """The rewritten parts (an `Answer` update), how many items were kept and how many were dropped."""
    cat = Catalogue.of(grounded)
    kept = dropped = 0

    def keep(ok: bool) -> bool:
        nonlocal kept, dropped
        kept, dropped = kept + ok, dropped + (not ok)
        return ok

    analysis = [
        AnalysisPoint(title=p.title, detail=p.detail)
        for p in out.situation_analysis
        if keep(_grounded_in(_point(p.title, p.detail), p.source_ids, cat.analysis))
    ][: len(grounded.situation_analysis)]
    strategy = [
        StrategyPoint(title=p.title, detail=p.detail)
        for p in out.career_strategy
        if keep(_grounded_in(_point(p.title, p.detail), p.source_ids, cat.strategy))
    ][: len(grounded.career_strategy)]
    most_steps = max((len(g.steps) for g in grounded.action_plan), default=0)
    groups: list[ActionGroup] = []
    for group in out.action_plan:
        if not keep(_grounded_in(group.title, group.source_ids, cat.groups)):
            continue
        steps = [s.text for s in group.steps if keep(_grounded_in(s.text, s.source_ids, cat.steps))][:most_steps]
        if steps:
            groups.append(ActionGroup(title=group.title, steps=steps))
    groups = groups[: len(grounded.action_plan)]

    update: dict[str, Any] = {
        # A part the rewrite emptied keeps the grounded part: the answer always has its three parts.
        "situation_analysis": analysis or grounded.situation_analysis,
        "action_plan": groups or grounded.action_plan,
        "career_strategy": strategy or grounded.career_strategy,
    }
    empathy = out.empathy.strip()
    if empathy and len(empathy) <= MAX_EMPATHY_CHARS:
        update["empathy"] = empathy
    if not (analysis or groups or strategy):
        kept = 0  # only an opening survived: the model ignored the ids, so none of its text is trusted
    return update, kept, dropped


def _reason(exc: BaseException) -> str:
    """A short, content-free name for what went wrong."""
    if isinstance(exc, RewriteError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    # Only a loaded `openai` can have raised its errors; importing it here would cost a second on the fallback path.
    openai = sys.modules.get("openai")
    if openai is None:
        return type(exc).__name__
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return f"http-{exc.status_code}"
    return type(exc).__name__


# ----- the rewriter --------------------------------------------------------------------------------------------------
class LLMRewriter:
    """Rewrites grounded advice answers with any LangChain chat model; falls back to the grounded answer."""

    def __init__(self, model: BaseChatModel, prompts_dir: Path, *, timeout: float = 20.0) -> None:
        self.model = model
        self.timeout = timeout
        self.replies = load_replies(prompts_dir)
        self.system_prompt = load_text(prompts_dir, SYSTEM_PROMPT)
        self.user_prompt = Template(load_text(prompts_dir, USER_PROMPT))
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="llm-rewrite")

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMRewriter:
        from langchain_openai import ChatOpenAI

        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else NO_KEY
        model = ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model or "",
            api_key=api_key,  # type: ignore[arg-type]
            timeout=settings.llm_timeout,
            max_retries=0,  # a retry would double the wait; the grounded answer is the better fallback
            temperature=0.3,
        )
        return cls(model, settings.prompts_dir, timeout=settings.llm_timeout)

    # ----- what may be rewritten --------------------------------------------------------------------------------------
    def should_rewrite(self, message: str, answer: Answer) -> bool:
        if answer.kind != "advice" or answer.escalation is not None or answer.topic in UNTOUCHED_TOPICS:
            return False
        if any(s.topic in UNTOUCHED_TOPICS for s in answer.sources if s.title in self._cited(answer)):
            return False  # a mixed worry pulled a step from a labour-law article
        # The engine attaches a labour-law or harassment escalation after the advice is built, so the message is
        # checked here too: an answer that will carry help lines is shown as curated.
        if detect_crisis(message) is not None:
            return False
        return bool(answer.situation_analysis or answer.action_plan or answer.career_strategy)

    def messages(self, message: str, answer: Answer) -> list[BaseMessage]:
        user = self.user_prompt.substitute(
            message=message.strip()[:MAX_MESSAGE_CHARS],
            empathy=answer.empathy or "（なし）",
            **Catalogue.of(answer).prompt_sections(),
        )
        return [SystemMessage(self.system_prompt), HumanMessage(user)]

    # ----- entry points -----------------------------------------------------------------------------------------------
    def rewrite(self, message: str, answer: Answer, retrieval: RetrievalResult) -> Answer:
        """The rewritten answer, or `answer` itself when it must stay as written or anything goes wrong.

        `retrieval` is part of the engine's rewriter interface; the grounded answer already carries what is needed.
        """
        if not self.should_rewrite(message, answer):
            return answer
        started = time.monotonic()
        try:
            future = self._pool.submit(self.model.invoke, self.messages(message, answer))
            try:
                reply = future.result(timeout=self.timeout)
            finally:
                future.cancel()  # a no-op once running; the client's own timeout ends that thread
            return self._finish(answer, reply.text, _refused(reply), started)
        except Exception as exc:  # any failure at all: the grounded answer is always a correct reply
            return self._fallback(answer, exc, started)

    def stream_rewrite(self, message: str, answer: Answer, retrieval: RetrievalResult) -> Iterator[str | Answer]:
        """Yields `str` chunks of the opening (empathy) as the model writes it, then one `Answer`.

        The chunks are a preview for a typing bubble. The final `Answer` is authoritative: on any failure it is the
        grounded answer, whose opening may differ from what was previewed, so clients replace the preview with it.
        Answers that stay as written yield the `Answer` alone, at once. The model's stream is read on a pool thread
        and handed over through a queue, so the total time is bounded by the deadline even when the server trickles
        bytes and each read stays under the client's own timeout.
        """
        if not self.should_rewrite(message, answer):
            yield answer
            return
        started = time.monotonic()
        deadline = started + self.timeout
        chunks: queue.Queue[BaseMessage | BaseException | None] = queue.Queue()
        stop = threading.Event()

        def pump() -> None:
            stream: Iterator[BaseMessage] | None = None
            try:
                stream = self.model.stream(self.messages(message, answer))
                for chunk in stream:
                    if stop.is_set():
                        break
                    chunks.put(chunk)
                chunks.put(None)
            except BaseException as exc:  # handed to the reader, which falls back
                chunks.put(exc)
            finally:
                close = getattr(stream, "close", None)  # release the HTTP stream when we stop early
                if close is not None:
                    close()

        buffer, shown, refused = "", "", False
        try:
            self._pool.submit(pump)
            while True:
                try:
                    item = chunks.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise TimeoutError from None
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                buffer += item.text
                refused = refused or _refused(item)
                opening = _opening(buffer)
                if len(shown) < len(opening) <= MAX_EMPATHY_CHARS and opening.startswith(shown):
                    yield opening[len(shown) :]
                    shown = opening
            final = self._finish(answer, buffer, refused, started)
        except Exception as exc:
            final = self._fallback(answer, exc, started)
        finally:
            stop.set()
        yield final

    # ----- helpers ----------------------------------------------------------------------------------------------------
    def _finish(self, grounded: Answer, content: str, refused: bool, started: float) -> Answer:
        if refused:
            raise RewriteError("refusal")
        update, kept, dropped = merge(grounded, parse_output(content))
        if kept == 0:
            raise RewriteError("empty")
        answer = grounded.model_copy(update=update, deep=True)
        answer.text = render_text(answer, self.replies, self._cited(grounded) or None)
        log.info("llm rewrite kept=%d dropped=%d ms=%d", kept, dropped, (time.monotonic() - started) * 1000)
        return answer

    def _fallback(self, grounded: Answer, exc: BaseException, started: float) -> Answer:
        # The reason class only: exception messages can echo the prompt or the model's output.
        log.warning(
            "llm rewrite fell back to the grounded answer: reason=%s ms=%d",
            _reason(exc),
            (time.monotonic() - started) * 1000,
        )
        return grounded

    def _cited(self, answer: Answer) -> list[str]:
        """Titles of the articles the grounded answer was built from."""
        return cited_titles(answer)


def _refused(message: BaseMessage) -> bool:
    # OpenAI-style structured refusals arrive in a separate field with empty content.
    return bool(message.additional_kwargs.get("refusal"))


def _opening(buffer: str) -> str:
    """The `empathy` value written so far in a partial JSON reply ("" until it starts)."""
    start = buffer.find("{")
    if start < 0:
        return ""
    try:
        partial = parse_partial_json(buffer[start:])
    except Exception:  # a partial reply that cannot be read yet is simply not previewed
        return ""
    value = partial.get("empathy") if isinstance(partial, dict) else None
    return value.strip() if isinstance(value, str) else ""
