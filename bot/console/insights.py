"""What the console's admins see: messages and conversations per day by channel, topics asked, escalations by kind,
feedback, and the messages the library could not place, grouped by similarity (the knowledge gaps to fill next).

Counts come from the message log (one row per answered message, no text), so they outlive history pruning; the
unsure messages' text comes from the stored history, so a pruned or deleted conversation's words are gone from here
too.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.store.desk import Desk

SIMILAR = 0.3  # cosine similarity of character 1-3-grams at which two unsure messages count as one gap
MAX_GAPS = 30
EXAMPLES = 3


@dataclass(frozen=True)
class Gap:
    size: int
    examples: list[str]


@dataclass
class Insights:
    since: datetime
    days: list[str]
    channels: list[str]
    messages: dict[tuple[str, str], int] = field(default_factory=dict)  # (day, channel) -> messages
    conversations: dict[tuple[str, str], int] = field(default_factory=dict)  # (day, channel) -> conversations
    topics: list[tuple[str, int]] = field(default_factory=list)
    escalations: list[tuple[str, int]] = field(default_factory=list)
    handoffs: list[tuple[str, int]] = field(default_factory=list)  # messages by what happened: held, handoff, …
    helpful: int = 0
    not_helpful: int = 0
    gaps: list[Gap] = field(default_factory=list)
    unsure_total: int = 0


def compute(desk: Desk, *, now: datetime, days: int, zone: ZoneInfo, topic_names: dict[str, str]) -> Insights:
    local_today = now.astimezone(zone).date()
    first_day = local_today - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), zone)
    day_names = [(first_day + timedelta(days=i)).isoformat() for i in range(days)]
    messages: Counter[tuple[str, str]] = Counter()
    conversations: dict[tuple[str, str], set[str]] = defaultdict(set)
    topics: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    channels: set[str] = set()
    for row in desk.message_rows(since):
        day = row.created_at.astimezone(zone).date().isoformat()
        channels.add(row.channel)
        messages[(day, row.channel)] += 1
        conversations[(day, row.channel)].add(row.conversation_id)
        if row.topic and row.kind == "advice":
            topics[topic_names.get(row.topic, row.topic)] += 1
        if row.escalation:
            escalations[row.escalation] += 1
        kinds[row.kind] += 1
    feedback = desk.feedback_rows(since)
    unsure = desk.unsure_messages(since)
    return Insights(
        since=since,
        days=day_names,
        channels=sorted(channels) or ["line", "web"],
        messages=dict(messages),
        conversations={key: len(ids) for key, ids in conversations.items()},
        topics=topics.most_common(),
        escalations=escalations.most_common(),
        handoffs=[(k, kinds[k]) for k in ("handoff", "held", "unsure") if kinds[k]],
        helpful=sum(1 for helpful, _ in feedback if helpful),
        not_helpful=sum(1 for helpful, _ in feedback if not helpful),
        gaps=group_by_similarity(unsure),
        unsure_total=len(unsure),
    )


def group_by_similarity(texts: list[str], threshold: float = SIMILAR) -> list[Gap]:
    """Greedy grouping on character 1-3-grams (Japanese needs no tokenizer for this): each message joins the most
    similar group when close enough, else starts one. Largest groups first."""
    texts = [" ".join(t.split())[:300] for t in texts if t.strip()]
    if not texts:
        return []
    if len(texts) == 1:
        return [Gap(1, texts)]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).fit_transform(texts)
    dense = np.asarray(vectors.todense(), dtype=np.float32)
    centroids: list[np.ndarray] = []
    members: list[list[int]] = []
    for i, vector in enumerate(dense):
        if centroids:
            matrix = np.stack(centroids)
            norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(vector) or 1.0)
            sims = matrix @ vector / np.where(norms == 0, 1.0, norms)
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                members[best].append(i)
                centroids[best] = centroids[best] + (vector - centroids[best]) / len(members[best])
                continue
        centroids.append(vector.copy())
        members.append([i])
    groups = sorted(members, key=len, reverse=True)[:MAX_GAPS]
    return [Gap(len(group), _examples([texts[i] for i in group])) for group in groups]


def _examples(texts: list[str]) -> list[str]:
    seen: list[str] = []
    for text in texts:
        if text not in seen:
            seen.append(text)
        if len(seen) == EXAMPLES:
            break
    return seen


# ----- CSV export ----------------------------------------------------------------------------------------------------

TABLES = ("daily", "topics", "escalations", "feedback", "gaps")


def table(insights: Insights, name: str) -> tuple[list[str], list[list[str | int]]]:
    if name == "daily":
        rows: list[list[str | int]] = [
            [day, channel, insights.messages.get((day, channel), 0), insights.conversations.get((day, channel), 0)]
            for day in insights.days
            for channel in insights.channels
        ]
        return ["day", "channel", "messages", "conversations"], rows
    if name == "topics":
        return ["topic", "messages"], [[t, n] for t, n in insights.topics]
    if name == "escalations":
        return ["kind", "messages"], [[k, n] for k, n in insights.escalations]
    if name == "feedback":
        return ["helpful", "count"], [["yes", insights.helpful], ["no", insights.not_helpful]]
    if name == "gaps":
        return ["messages", "examples"], [[g.size, " / ".join(g.examples)] for g in insights.gaps]
    raise KeyError(name)


def to_csv(header: list[str], rows: list[list[str | int]]) -> str:
    """CSV for a spreadsheet: a cell a spreadsheet would run as a formula (=, +, -, @) is quoted with a '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: str | int) -> str | int:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
