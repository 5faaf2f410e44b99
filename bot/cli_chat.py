"""`bot chat`: a multi-turn conversation in the terminal, with Japanese-aware wrapping."""

from __future__ import annotations

import shutil
import sys
import unicodedata
import uuid

from bot.answer.model import Answer
from bot.dialogue.engine import DialogueEngine

BOLD, DIM, CYAN, RED, RESET = "\033[1m", "\033[2m", "\033[36m", "\033[31m", "\033[0m"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """Wrap by display width (full-width characters count two); never split a character, avoid leading 。、."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = indent
        for ch in paragraph:
            if display_width(current + ch) > width and current.strip():
                if ch in "。、，．）」』！？":  # keep closing punctuation on the line it closes
                    current += ch
                    continue
                lines.append(current)
                current = indent + ("  " if indent else "")
            current += ch
        lines.append(current)
    return lines


def format_answer(answer: Answer, width: int, color: bool) -> str:
    b, d, c, r, z = (BOLD, DIM, CYAN, RED, RESET) if color else ("", "", "", "", "")
    out: list[str] = []

    def para(text: str, indent: str = "") -> None:
        out.extend(wrap(text, width, indent))

    if answer.empathy:
        para(answer.empathy)
        out.append("")
    if answer.escalation:
        para(f"{r}{answer.escalation.message}{z}")
        for res in answer.escalation.resources:
            para(f"  ☎ {b}{res.name}{z}  {res.contact}（{res.hours}）")
        out.append("")
    if answer.situation_analysis:
        out.append(f"{b}{c}■ 現状分析{z}")
        for point in answer.situation_analysis:
            para(f"・{b}{point.title}{z}：{point.detail}", "  ")
        out.append("")
    if answer.action_plan:
        out.append(f"{b}{c}■ アクションプラン{z}")
        for n, group in enumerate(answer.action_plan, start=1):
            out.append(f"  {b}{n}. {group.title}{z}")
            for step in group.steps:
                para(f"□ {step}", "    ")
        out.append("")
    if answer.career_strategy:
        out.append(f"{b}{c}■ キャリア戦略{z}")
        for strategy in answer.career_strategy:
            para(f"・{b}{strategy.title}{z}：{strategy.detail}", "  ")
        out.append("")
    if answer.kind == "advice" and answer.sources:
        out.append(f"{d}参考：{answer.sources[0].title}{z}")
    if answer.follow_ups:
        out.append(f"{d}" + "  ".join(f"[{n}] {f}" for n, f in enumerate(answer.follow_ups, start=1)) + z)
    return "\n".join(out)


def run_chat(engine: DialogueEngine) -> int:
    color = sys.stdout.isatty()
    width = min(shutil.get_terminal_size((80, 24)).columns, 100)
    conversation = f"cli:{uuid.uuid4().hex}"
    follow_ups: list[str] = []
    print(
        "キャリア相談チャット（AIです。専門家ではありません）。/reset でやり直し、/quit で終了。番号で候補を選べます。"
    )
    while True:
        try:
            line = input("\nあなた> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line in {"/quit", "/exit", ":q"}:
            return 0
        if line == "/reset":
            engine.reset(conversation)
            print("会話をリセットしました。")
            follow_ups = []
            continue
        if line.isdigit() and 1 <= int(line) <= len(follow_ups):
            line = follow_ups[int(line) - 1]
        reply = engine.handle(conversation, line)
        follow_ups = reply.answer.follow_ups
        print()
        print(format_answer(reply.answer, width, color))
