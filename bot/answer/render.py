"""Plain-text rendering of an answer (CLI, LINE fallback, the `text` key of the JSON contract)."""

from __future__ import annotations

from typing import Any

from bot.answer.model import Answer


def cited_titles(answer: Answer) -> list[str]:
    """Titles of the articles the answer was built from (`answer.cited`), as its sources name them."""
    titles = {s.article_id: s.title for s in answer.sources}
    return [titles[c] for c in answer.cited if c in titles]


def alternatives_line(answer: Answer, replies: dict[str, Any]) -> str:
    """「もしかして、こちらのお悩みでしたか？ 「A」／「B」」, or "" without alternatives (every channel says it so)."""
    if not answer.alternatives:
        return ""
    return str(replies["phrases"]["alternatives"]) + "／".join(f"「{a}」" for a in answer.alternatives)


def direct_reply_lines(answer: Answer, replies: dict[str, Any]) -> list[str]:
    """The direct reply block (heading, Q., A.) as every channel shows it; [] without one."""
    direct = answer.direct_answer
    if direct is None:
        return []
    return [f"■ {replies['headings']['direct_answer']}", f"Q. {direct.question}", f"A. {direct.answer}"]


def render_text(answer: Answer, replies: dict[str, Any], cited: list[str] | None = None) -> str:
    """`cited`: titles of the articles the answer was built from (default: `answer.cited`, else the best source)."""
    headings = replies["headings"]
    lines: list[str] = []
    direct_first = answer.reply_before_help()
    if direct_first:
        lines += [*direct_reply_lines(answer, replies), ""]
    # Help lines first, as on LINE and in the widget: the safety answer is what the person reads before any advice.
    if answer.escalation is not None:
        lines += [answer.escalation.message, ""]
        for r in answer.escalation.resources:
            lines.append(f"・{r.name}　{r.contact}（{r.hours}）")
        lines.append("")
    if answer.empathy:
        lines += [answer.empathy, ""]
    if answer.direct_answer is not None and not direct_first:
        lines += [*direct_reply_lines(answer, replies), ""]
    if answer.situation_analysis:
        lines.append(f"■ {headings['analysis']}")
        if answer.kind != "escalation" and replies["phrases"].get("analysis_intro"):
            lines.append(replies["phrases"]["analysis_intro"])
        lines += [f"・{p.title}：{p.detail}" if p.title else f"・{p.detail}" for p in answer.situation_analysis]
        lines.append("")
    if answer.action_plan:
        lines.append(f"■ {headings['action_plan']}")
        for n, group in enumerate(answer.action_plan, start=1):
            lines.append(f"【{n}. {group.title}】")
            lines += [f"・{step}" for step in group.steps]
        lines.append("")
    if answer.career_strategy:
        lines.append(f"■ {headings['strategy']}")
        lines += [f"・{p.title}：{p.detail}" if p.title else f"・{p.detail}" for p in answer.career_strategy]
        lines.append("")
    if answer.legal_points:
        lines.append(f"■ {headings['legal']}")
        lines += [f"・{point}" for point in answer.legal_points]
        lines += [replies["phrases"]["legal_note"], ""]
    if answer.kind == "advice" and answer.sources:
        titles = cited or cited_titles(answer) or [answer.sources[0].title]
        lines.append(f"{headings['sources']}：" + "／".join(f"「{t}」" for t in titles))
    if answer.alternatives:
        lines += ["", alternatives_line(answer, replies)]
    if answer.follow_ups and answer.kind == "clarify":
        lines += [f"{n}. {choice}" for n, choice in enumerate(answer.follow_ups, start=1)]
    return "\n".join(lines).strip()
