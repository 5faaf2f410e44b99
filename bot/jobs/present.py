"""A job-search turn as the answer's `jobs` part and its plain text (`bot ask`, the CLI, LINE's fallback).

Every field of a shown posting is the imported posting's own: title, company, place, pay, employment type, link,
and where it was published (a sample posting says so). The lines around them come from prompts/jobs.yaml.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from bot.answer.model import HelpResource, JobCondition, JobPostingView, JobSearchView
from bot.jobs.dialogue import JobTurn
from bot.jobs.model import ANY, REMOTE, Conditions, Posting
from bot.jobs.vocabulary import Vocabulary

JST = timezone(timedelta(hours=9))
SUMMARY_CHARS = 80
UNIT_WORDS = {"YEAR": "年収", "MONTH": "月給", "WEEK": "週給", "DAY": "日給", "HOUR": "時給"}


def condition_views(conditions: Conditions, vocab: Vocabulary, replies: dict[str, Any]) -> list[JobCondition]:
    labels = replies["labels"]
    choices = replies["choices"]
    views = []
    if conditions.job_type is not None:
        value = labels["any"] if conditions.job_type == ANY else vocab.job_types.get(conditions.job_type, "")
        views.append(JobCondition(name="job_type", label=labels["job_type"], value=value))
    if conditions.area is not None:
        value = {ANY: labels["any"], REMOTE: labels["remote"]}.get(conditions.area, conditions.area)
        views.append(JobCondition(name="area", label=labels["area"], value=value))
    if conditions.employment_type is not None:
        code = conditions.employment_type
        value = labels["any"] if code == ANY else vocab.employment_types.get(code, code)
        views.append(JobCondition(name="employment_type", label=labels["employment_type"], value=value))
    if conditions.salary_asked:
        if conditions.salary_floor:
            if conditions.salary_unit == "HOUR":
                value = choices["hourly"].format(amount=f"{conditions.salary_floor:,}")
            else:
                value = choices["yearly"].format(amount=_man(conditions.salary_floor))
        else:
            value = labels["any"]
        views.append(JobCondition(name="salary", label=labels["salary"], value=value))
    return views


def conditions_line(views: list[JobCondition]) -> str:
    """「営業／東京都／正社員・フルタイム／年収400万円以上」 (the 「こだわらない」 ones are left out)."""
    shown = [v.value for v in views if v.value and v.name and v.value != "こだわらない"]
    return "／".join(shown) or "こだわらない"


def _man(yen: int) -> str:
    value = yen / 10_000
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def salary_text(posting: Posting) -> str | None:
    """The posting's own pay, in its own unit: 「年収400万〜600万円」, 「時給1,200円〜」, 「月給25万円」."""
    unit, low, high = posting.salary_unit, posting.salary_min, posting.salary_max
    if unit is None or (low is None and high is None):
        return None
    word = UNIT_WORDS.get(unit, "")

    def amount(yen: int) -> str:
        if unit in ("YEAR", "MONTH") and yen >= 10_000:
            return f"{_man(yen)}万"
        return f"{yen:,}"

    if low is not None and high is not None and low != high:
        return f"{word}{amount(low)}〜{amount(high)}円"
    if low is not None and high is None:
        return f"{word}{amount(low)}円〜"
    if low is None and high is not None:
        return f"{word}〜{amount(high)}円"
    assert low is not None
    return f"{word}{amount(low)}円"


def posting_view(posting: Posting, vocab: Vocabulary, replies: dict[str, Any]) -> JobPostingView:
    results = replies["results"]
    place = " ".join(dict.fromkeys(x for x in (posting.prefecture or "", posting.locality) if x))
    if posting.remote:
        place = f"{place}（{results['remote']}）" if place else results["remote"]
    employment = "・".join(vocab.employment_types.get(c, c) for c in posting.employment_types)
    source = results["sample_source"] if posting.sample else posting.source_label
    until = None
    if posting.valid_through is not None:
        local = posting.valid_through.astimezone(JST)
        until = results["until"].format(date=f"{local.year}年{local.month}月{local.day}日")
    summary = " ".join(posting.description.split())
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1] + "…"
    return JobPostingView(
        id=posting.id,
        title=posting.title,
        company=posting.company,
        place=place or results["place_unknown"],
        remote=posting.remote,
        salary=salary_text(posting),
        employment_type=employment,
        summary=summary,
        url=posting.url,
        source=results["source"].format(source=source),
        sample=posting.sample,
        valid_through=until,
    )


def job_view(turn: JobTurn, vocab: Vocabulary, replies: dict[str, Any]) -> JobSearchView:
    view = JobSearchView(
        conditions=condition_views(turn.conditions, vocab, replies),
        asking=turn.asking,
        postings=[posting_view(p, vocab, replies) for p in turn.postings],
        total=turn.total,
        offset=turn.offset,
        has_more=turn.offset + len(turn.postings) < turn.total,
    )
    if view.postings:
        results = replies["results"]
        view.notes = [results["note"], *([results["sample_note"]] if any(p.sample for p in view.postings) else [])]
    if turn.kind in ("none", "empty"):
        none = replies["none"]
        view.fallback = HelpResource(name=none["hellowork_name"], contact="", hours="", url=none["hellowork_url"])
    return view


def opening(turn: JobTurn, view: JobSearchView, replies: dict[str, Any]) -> str:
    """The answer's first lines (its `empathy`)."""
    line = conditions_line(view.conditions)
    if turn.kind == "empty":
        return str(replies["none"]["empty"])
    if turn.kind == "none":
        return str(replies["none"]["message"].format(conditions=line))
    if turn.kind == "back":
        return str(replies["back"])
    if turn.kind == "change":
        return f"{replies['results']['conditions'].format(conditions=line)}\n{replies['change']['question']}"
    lead: list[str] = []
    if turn.started and not turn.taken:
        lead.append(replies["start"])
    if turn.taken:
        taken = [v.value for v in view.conditions if v.name in turn.taken]
        lead.append(replies["taken"].format(conditions="／".join(taken)))
    if turn.kind == "question" and turn.asking:
        questions = replies["questions"]
        lead.append((questions["retry"] + "\n" if turn.retry else "") + questions[turn.asking])
        return "\n".join(lead)
    results = replies["results"]
    if not turn.postings:
        lead.append(results["more_end"])
        return "\n".join(lead)
    first = turn.offset + 1
    if first == 1 and len(turn.postings) == turn.total:
        lead.append(results["found_all"].format(total=turn.total))
    else:
        lead.append(results["found"].format(total=turn.total, first=first, last=turn.offset + len(turn.postings)))
    lead.append(results["conditions"].format(conditions=line))
    return "\n".join(lead)


def follow_ups(turn: JobTurn, view: JobSearchView, choices: list[str], replies: dict[str, Any]) -> list[str]:
    labels = replies["choices"]
    if turn.kind in ("question", "change"):
        return choices
    if turn.kind == "empty":
        return [labels["back"]]
    if turn.kind == "back":
        return []
    out = [labels["more"]] if view.has_more else []
    return [*out, labels["change"], labels["back"]]


def render_jobs_text(view: JobSearchView, empathy: str, chips: list[str], replies: dict[str, Any]) -> str:
    """The plain-text answer: the opening, each posting in a few lines, the notes, and numbered choices."""
    lines = [empathy, ""]
    results = replies["results"]
    for n, p in enumerate(view.postings, start=view.offset + 1):
        lines.append(f"{n}. {p.title}")
        lines.append(f"   {p.company}")
        details = [p.place, p.employment_type, p.salary or results["salary_unknown"]]
        lines.append("   " + "／".join(d for d in details if d))
        if p.valid_through:
            lines.append(f"   {p.valid_through}")
        lines.append(f"   {p.source}")
        lines.append(f"   {p.url}")
        lines.append("")
    if view.notes:
        lines += [*view.notes, ""]
    if view.fallback is not None:
        lines += [f"・{view.fallback.name}　{view.fallback.url}", ""]
    if chips:
        lines += (
            [f"{n}. {c}" for n, c in enumerate(chips, start=1)] if view.asking else ["／".join(f"[{c}]" for c in chips)]
        )
    return "\n".join(lines).strip()
