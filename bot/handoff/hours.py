"""Reception hours (HANDOFF_HOURS): when a consultant reads the queue, in words, and when it next opens.

The format is one or more rules separated by ";": days (`mon-fri`, `sat,sun`, `mon`), a space, and a time range
(`10:00-19:00`), in HANDOFF_TIMEZONE. An empty value means "always open".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RULE = re.compile(r"^\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """HANDOFF_HOURS is not in the documented format."""


@dataclass(frozen=True)
class Rule:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time


@dataclass(frozen=True)
class BusinessHours:
    rules: tuple[Rule, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str, timezone: str = "Asia/Tokyo") -> BusinessHours:
        rules = []
        for part in (p for p in spec.lower().split(";") if p.strip()):
            match = _RULE.match(part)
            if match is None:
                raise HoursError(f"HANDOFF_HOURS: cannot read {part.strip()!r} (expected e.g. 'mon-fri 10:00-19:00')")
            days = _days(match.group(1))
            start = time(int(match.group(2)), int(match.group(3)))
            end_hour = int(match.group(4))
            end = time(23, 59, 59) if end_hour == 24 else time(end_hour, int(match.group(5)))
            if end <= start:
                raise HoursError(f"HANDOFF_HOURS: {part.strip()!r} ends before it starts")
            rules.append(Rule(days, start, end))
        return cls(tuple(rules), ZoneInfo(timezone))

    @property
    def always(self) -> bool:
        return not self.rules

    def is_open(self, now: datetime) -> bool:
        if self.always:
            return True
        local = now.astimezone(self.zone)
        return any(local.weekday() in r.days and r.start <= local.time() < r.end for r in self.rules)

    def next_open(self, now: datetime) -> datetime | None:
        """When reception next begins (now, when open); None when always open."""
        if self.always:
            return None
        local = now.astimezone(self.zone)
        if self.is_open(now):
            return local
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            starts = sorted(datetime.combine(day, r.start, self.zone) for r in self.rules if day.weekday() in r.days)
            for start in starts:
                if start > local:
                    return start
        return None

    def describe(self, weekdays: list[str]) -> str:
        """In words: 「月〜金 10:00〜19:00」."""
        if self.always:
            return "24時間"
        return "、".join(f"{_day_words(r.days, weekdays)} {r.start:%H:%M}〜{r.end:%H:%M}" for r in self.rules)

    def when(self, moment: datetime, weekdays: list[str]) -> str:
        """「12月8日（月）10:00」."""
        local = moment.astimezone(self.zone)
        return f"{local.month}月{local.day}日（{weekdays[local.weekday()]}）{local:%H:%M}"


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        if "-" in item:
            first, last = item.split("-", 1)
            a, b = _day(first), _day(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            days.add(_day(item))
    return frozenset(days)


def _day(name: str) -> int:
    try:
        return DAYS.index(name.strip()[:3])
    except ValueError:
        raise HoursError(f"HANDOFF_HOURS: unknown day {name!r} (use mon, tue, wed, thu, fri, sat, sun)") from None


def _day_words(days: frozenset[int], weekdays: list[str]) -> str:
    ordered = sorted(days)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{weekdays[ordered[0]]}〜{weekdays[ordered[-1]]}"
    return "・".join(weekdays[d] for d in ordered)
