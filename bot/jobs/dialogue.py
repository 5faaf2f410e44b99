"""The job search as a conversation (no HTTP, no LINE): offered on job-change topics and when asked, it gathers the
conditions it lacks one question at a time (job type → area → employment type → salary floor), taking whatever the
user already said in the conversation, then shows the postings that meet them, ranked by the conversation's wishes.

The conditions live in the conversation's state (`state.extra["jobs"]`), so they go when the conversation is deleted
or reset. Each call returns a `JobTurn` the composer turns into an answer; None means "not a job-search message".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.jobs.model import ANY, REMOTE, Conditions, Posting
from bot.jobs.search import JobCatalog
from bot.jobs.vocabulary import Vocabulary, fold

STATE_KEY = "jobs"
PAGE = 5  # postings per answer (LINE carousel and widget cards)
AREA_CHOICES = 8  # prefectures offered as choices (the ones with most postings); any other can be typed
ASK_LIMIT = 40  # characters: a longer message is a new worry, not an answer to the question
CHANGE_LIMIT = 15  # after results, a message this short naming a condition (「大阪だと？」) changes it

# Topics where the advice points toward changing jobs: their answers offer the search as a follow-up.
JOB_CHANGE_TOPICS = frozenset(
    {
        "job-change-decision",
        "career-change",
        "job-hunting",
        "early-resignation",
        "layoff",
        "resignation",
        "after-retirement",
        "middle-age-career",
        "new-graduate-gap",
        "career-stagnation",
        "transfer",
    }
)

# 「求人を探したい」「営業の仕事ある？」「転職先を紹介して」: a short message that asks for jobs...
_ASKS_FOR_JOBS = re.compile(
    r"の求人(情報)?$|求人(情報)?(を|は|って)?(教え|おしえ|ほしい|欲しい|見|み)|"
    r"(求人|転職先|仕事|働き口|職場|案件|バイト|アルバイト|パート)(を|は|って|の)?(情報)?(を)?"
    r"(探|さが|見つけ|みつけ|紹介|しょうかい|見せ|みせ|知りたい)|"
    # 「営業の仕事ある？」 asks only at the end: 「仕事はあるけど給料が安い」「パートみたいな扱い」 tell a worry.
    r"(求人|仕事|働き口|案件|バイト|アルバイト|パート)(は|って|の)?(ある|あります|ありますか|ありませんか|見たい|みたい)$"
)
# ...but not one that asks how, or tells a worry (「転職先を探すコツは？」「仕事を探すべきか迷う」): the advice answers those.
_NOT_A_REQUEST = re.compile(
    r"どう|方法|コツ|こつ|やり方|迷|悩|不安|べき|つらい|辛い|怖|こわ|なぜ|なんで|けど|けれど|のに|安い|扱い|向いて"
)
# A reply this long that the pending question cannot read is something else (a worry, a thought): the search lets go.
UNREAD_RELEASE_CHARS = 8
_JOBS_WORD = re.compile(r"^(求人|求人情報|求人検索|仕事探し|仕事さがし|職探し)$")
_ANY = re.compile(
    r"(こだわらない|こだわりはない|こだわりなし|どこでも|なんでも|何でも|特にない|特になし|とくにない|指定なし|気にしない|わからない)"
)
# Bounded digits: a pay floor is never longer than this (a 300-digit 「年収…万」 overflowed the arithmetic).
_YEN_MAN = re.compile(r"(年収|年俸|月給|月収|給料|給与)?\s*(?<!\d)(\d{1,5}(?:\.\d{1,2})?)\s*万")
_HOURLY = re.compile(r"時給\s*(\d[\d,]{0,7})(?![\d,])")
_NUMBER = re.compile(r"^(\d[\d,]{0,11})\s*(円|万円|万)?(以上|から|〜|~)?$")

Asking = Literal["job_type", "area", "employment_type", "salary", "change"]


@dataclass
class JobTurn:
    """What the search says this turn; the composer words it (prompts/jobs.yaml)."""

    kind: Literal["question", "results", "none", "empty", "change", "back"]
    conditions: Conditions
    asking: str | None = None
    choices: list[str] = field(default_factory=list)
    postings: list[Posting] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    taken: list[str] = field(default_factory=list)  # conditions read from what they said (named in the answer)
    retry: bool = False
    started: bool = False


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    return re.sub(r"[\s。、！!？?…〜~]+$", "", text).strip()


class JobSearch:
    def __init__(self, catalog: JobCatalog, vocab: Vocabulary, replies: dict[str, Any]) -> None:
        self.catalog = catalog
        self.vocab = vocab
        self.replies = replies
        choices = replies["choices"]
        self.offer_label: str = replies["offer"]
        self._any, self._remote = choices["any"], choices["remote"]
        self._more, self._change, self._back = choices["more"], choices["change"], choices["back"]

    # ----- offering -------------------------------------------------------------------------------------------------
    def available(self) -> bool:
        try:
            return self.catalog.live_count() > 0
        except Exception:  # the search is an extra: a broken catalogue must not break advice
            return False

    def warm_up(self) -> None:
        """Load the catalogue (a server does it at start-up, so no user's turn waits for it)."""
        self.available()

    def offer(self, topic: str | None, follow_ups: list[str]) -> list[str]:
        """The follow-ups of an answer about `topic`, with 「求人を探す」 when the topic points toward a job change."""
        if topic not in JOB_CHANGE_TOPICS or self.offer_label in follow_ups or not self.available():
            return follow_ups
        return [*follow_ups[:3], self.offer_label]

    def asks_for_jobs(self, message: str) -> bool:
        t = normalise(message)
        if t == self.offer_label or _JOBS_WORD.match(t):
            return True
        return len(t) <= ASK_LIMIT and _ASKS_FOR_JOBS.search(t) is not None and not _NOT_A_REQUEST.search(t)

    # ----- one turn -------------------------------------------------------------------------------------------------
    def handle(self, message: str, extra: dict[str, Any], context: str = "") -> JobTurn | None:
        """The turn when the message belongs to the job search; `extra` is the conversation state's extra dict (the
        search's part is updated in place); `context` is what the user said before (the conversation's summary)."""
        t = normalise(message)
        state = extra.get(STATE_KEY)
        if isinstance(state, dict) and state.get("asking") and t.isascii() and t.isdigit():
            offered = state.get("choices") or []
            if 1 <= int(t) <= len(offered):  # 「2」 picks the second choice, as in the text rendering
                t = normalise(str(offered[int(t) - 1]))
                message = t
        if self.asks_for_jobs(message):
            if not self.available() and "求人" not in t:
                return None  # no postings to search: 「仕事を探したい」 gets the advice it would get anyway
            return self._start(message, extra, context)
        if not isinstance(state, dict):
            return None
        conditions = Conditions.model_validate(state.get("conditions") or {})
        asking = state.get("asking")
        if t == self._back:
            state["asking"], state["shown"] = None, None
            return JobTurn("back", conditions)
        if t == self._more and state.get("shown"):
            return self._results(extra, conditions, wishes=context, offset=int(state.get("offset", 0)) + PAGE)
        if t == self._change and state.get("shown") is not None:
            state["asking"] = "change"
            state["choices"] = self._change_choices()
            return JobTurn("change", conditions, asking="change", choices=state["choices"])
        if asking == "change":
            picked = self._picked_change(t)
            if picked is not None:
                conditions = Conditions() if picked == "all" else _cleared(conditions, picked)
                state["conditions"] = conditions.model_dump()
                return self._next(extra, conditions, context)
        if asking in ("job_type", "area", "employment_type", "salary"):
            if len(t) > ASK_LIMIT:
                state["asking"] = None  # a new worry: the search waits until they come back to it
                return None
            updated, understood = self._read_answer(t, asking, conditions)
            if not understood:
                if len(t) > UNREAD_RELEASE_CHARS or _NOT_A_REQUEST.search(t):
                    # 「やっぱり今の会社で頑張るべきか迷う」 is not an answer: the advice takes it; the search waits.
                    state["asking"] = None
                    return None
                return JobTurn(
                    "question", conditions, asking=asking, choices=self.choices(asking, conditions), retry=True
                )
            state["conditions"] = updated.model_dump()
            return self._next(extra, updated, context)
        if state.get("shown") and len(t) <= CHANGE_LIMIT and not _NOT_A_REQUEST.search(t):
            # After results: 「大阪だと？」「パートで」 change a condition directly.
            updated, taken = self._read_conditions(t, conditions, overwrite=True)
            if taken:
                state["conditions"] = updated.model_dump()
                return self._results(extra, updated, wishes=context, offset=0)
        return None

    def _start(self, message: str, extra: dict[str, Any], context: str) -> JobTurn:
        previous = extra.get(STATE_KEY)
        conditions = Conditions()
        if isinstance(previous, dict):
            conditions = Conditions.model_validate(previous.get("conditions") or {})
        if not self.available():
            extra[STATE_KEY] = {"conditions": conditions.model_dump(), "asking": None, "offset": 0, "shown": None}
            return JobTurn("empty", conditions)
        # What they said before, then this message (which wins): 「東京で営業の仕事ある？」
        conditions, taken = self._read_conditions(context, conditions, overwrite=False, latest=True)
        conditions, now_taken = self._read_conditions(message, conditions, overwrite=True)
        extra[STATE_KEY] = {"conditions": conditions.model_dump(), "asking": None, "offset": 0, "shown": None}
        turn = self._next(extra, conditions, context)
        turn.taken = [*taken, *now_taken]
        turn.started = True
        return turn

    def _next(self, extra: dict[str, Any], conditions: Conditions, context: str) -> JobTurn:
        state = extra[STATE_KEY]
        missing = conditions.missing()
        if missing:
            state["asking"] = missing[0]
            state["choices"] = self.choices(missing[0], conditions)
            return JobTurn("question", conditions, asking=missing[0], choices=state["choices"])
        return self._results(extra, conditions, wishes=context, offset=0)

    def _results(self, extra: dict[str, Any], conditions: Conditions, *, wishes: str, offset: int) -> JobTurn:
        state = extra[STATE_KEY]
        result = self.catalog.search(conditions, wishes, offset=offset, limit=PAGE)
        state.update(asking=None, choices=[], offset=offset, shown=bool(result.postings) or offset > 0)
        if result.total == 0:
            return JobTurn("none", conditions, total=0)
        return JobTurn("results", conditions, postings=result.postings, total=result.total, offset=offset)

    # ----- choices --------------------------------------------------------------------------------------------------
    def choices(self, asking: str, conditions: Conditions) -> list[str]:
        if asking == "job_type":
            return [*self.vocab.job_types.values(), self._any]
        if asking == "area":
            return [self._remote, *self.catalog.top_prefectures(AREA_CHOICES), self._any]
        if asking == "employment_type":
            return [*(self.vocab.employment_types[c] for c in self.vocab.employment_choices), self._any]
        unit = salary_unit_for(conditions)
        template = self.replies["choices"]["hourly" if unit == "HOUR" else "yearly"]
        return [*(template.format(amount=f"{a:,}") for a in self.vocab.salary_choices[unit]), self._any]

    def _change_choices(self) -> list[str]:
        change = self.replies["change"]
        return [change[k] for k in ("job_type", "area", "employment_type", "salary", "all")]

    def _picked_change(self, t: str) -> str | None:
        change = self.replies["change"]
        for key in ("job_type", "area", "employment_type", "salary", "all"):
            if t == change[key] or t == self.replies["labels"].get(key):
                return key
        return None

    # ----- reading answers ------------------------------------------------------------------------------------------
    def _read_answer(self, t: str, asking: str, conditions: Conditions) -> tuple[Conditions, bool]:
        """The answer to the question asked (a chip's label or their own words), plus any other condition named."""
        data = conditions.model_dump()
        if _ANY.search(t) or t == self._any:
            if asking == "salary":
                data.update(salary_floor=0, salary_unit=None, salary_asked=True)
            else:
                data[asking] = ANY
            return Conditions.model_validate(data), True
        updated, taken = self._read_conditions(t, conditions, overwrite=True, salary_number=asking == "salary")
        value = {
            "job_type": updated.job_type,
            "area": updated.area,
            "employment_type": updated.employment_type,
            "salary": updated.salary_asked or None,
        }[asking]
        return updated, value is not None and asking in taken

    def _read_conditions(
        self, text: str, conditions: Conditions, *, overwrite: bool, latest: bool = False, salary_number: bool = False
    ) -> tuple[Conditions, list[str]]:
        """Conditions named in free text; `overwrite`: a named one replaces what was set (else only fills gaps)."""
        if not text.strip():
            return conditions, []
        data = conditions.model_dump()
        taken: list[str] = []
        t = fold(text)
        labels = {label: slug for slug, label in self.vocab.job_types.items()}
        job = labels.get(normalise(t)) or self.vocab.job_type_in(t, last=latest)
        if job and (overwrite or data["job_type"] is None):
            data["job_type"] = job
            taken.append("job_type")
        area: str | None = None
        if normalise(t) == self._remote or self.vocab.mentions_remote(t):
            area = REMOTE
        else:
            area = self.vocab.prefecture_in(t, last=latest)
        if area and (overwrite or data["area"] is None):
            data["area"] = area
            taken.append("area")
        emp_labels = {label: code for code, label in self.vocab.employment_types.items()}
        emp = emp_labels.get(normalise(t)) or self.vocab.employment_type_in(t, last=latest)
        if emp and (overwrite or data["employment_type"] is None):
            data["employment_type"] = emp
            taken.append("employment_type")
        salary = read_salary(t, number_alone=salary_number, unit=salary_unit_for(Conditions.model_validate(data)))
        if salary is not None and (overwrite or not data["salary_asked"]):
            data.update(salary_unit=salary[0], salary_floor=salary[1], salary_asked=True)
            taken.append("salary")
        return Conditions.model_validate(data), taken


def salary_unit_for(conditions: Conditions) -> Literal["YEAR", "HOUR"]:
    """Part-time work is paid by the hour; everything else is compared by the year."""
    return "HOUR" if conditions.employment_type == "PART_TIME" else "YEAR"


def read_salary(
    text: str, *, number_alone: bool = False, unit: str = "YEAR"
) -> tuple[Literal["YEAR", "HOUR"], int] | None:
    """(unit, yen) of a pay floor in the text: 「年収400万円以上」, 「月給25万」 (×12), 「時給1,200円」; with
    `number_alone`, a bare number answering the salary question (「400」 is 万円 a year, 「1200」 yen an hour)."""
    hourly = _HOURLY.search(text)
    if hourly:
        return "HOUR", int(hourly.group(1).replace(",", ""))
    man = _YEN_MAN.search(text)
    if man:
        amount = float(man.group(2)) * 10_000
        if man.group(1) in ("月給", "月収") or (man.group(1) in (None, "給料", "給与") and amount < 1_000_000):
            amount *= 12  # a monthly figure: the postings' yearly pay is compared with twelve months of it
        return "YEAR", int(amount)
    if number_alone:
        found = _NUMBER.match(normalise(text))
        if found:
            value = int(found.group(1).replace(",", ""))
            if found.group(2) in ("万円", "万") or (unit == "YEAR" and value < 5000):
                return "YEAR", value * 10_000
            return ("HOUR", value) if unit == "HOUR" or value < 10_000 else ("YEAR", value)
    return None


def _cleared(conditions: Conditions, key: str) -> Conditions:
    data = conditions.model_dump()
    if key == "salary":
        data.update(salary_floor=None, salary_unit=None, salary_asked=False)
    else:
        data[key] = None
    return Conditions.model_validate(data)
