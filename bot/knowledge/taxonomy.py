"""The topic taxonomy (knowledge/topics.tsv): slug, Japanese name, what the worker faces."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Topic:
    slug: str
    name_ja: str
    description: str
    line: int


def load_topics(path: Path) -> dict[str, Topic]:
    topics: dict[str, Topic] = {}
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for number, row in enumerate(reader, start=2):
            if len(row) >= 2 and row[0].strip():
                topics[row[0].strip()] = Topic(
                    row[0].strip(), row[1].strip(), (row[2] if len(row) > 2 else "").strip(), number
                )
    return topics
