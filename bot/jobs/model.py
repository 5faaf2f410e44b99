"""A job posting as the bot keeps it, and the conditions a user searches with.

Postings carry no personal data: they describe an employer's offer. Everything the bot shows about a job (title,
company, place, salary, employment type, link) comes from an imported posting; nothing is made up.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

SalaryUnit = Literal["HOUR", "DAY", "WEEK", "MONTH", "YEAR"]
SALARY_UNITS: tuple[str, ...] = ("HOUR", "DAY", "WEEK", "MONTH", "YEAR")
ID_MAX = 128
TITLE_MAX = 200
COMPANY_MAX = 200
DESCRIPTION_MAX = 4000  # longer descriptions are cut (the bot shows a line or two; the link has the rest)
URL_MAX = 1000  # LINE's limit for a link button
LABEL_MAX = 100


class Posting(BaseModel):
    id: str = Field(min_length=1, max_length=ID_MAX)
    source: str = Field(min_length=1, max_length=64)  # the feed it came from (`bot jobs import --source`)
    source_label: str = Field(min_length=1, max_length=LABEL_MAX)  # shown with every result: where it comes from
    sample: bool = False  # an invented posting of the sample feed: always shown as such
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    company: str = Field(min_length=1, max_length=COMPANY_MAX)
    description: str = ""
    job_type: str | None = None  # slug of bot/jobs/vocabulary.yaml
    prefecture: str | None = None
    locality: str = ""
    remote: bool = False
    employment_types: list[str] = Field(default_factory=list)  # schema.org codes
    salary_min: int | None = None  # yen
    salary_max: int | None = None
    salary_unit: SalaryUnit | None = None
    url: str = Field(min_length=1, max_length=URL_MAX)
    date_posted: datetime | None = None
    valid_through: datetime | None = None

    def content_hash(self) -> str:
        """Changes when anything shown or searched changes (an unchanged posting is not embedded again)."""
        data = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]

    def search_texts(self) -> tuple[str, str]:
        """What the semantic index embeds, apart: the title and the description (a user's wishes are matched against
        both; feeds repeat each of them across many postings, so each distinct text is embedded once)."""
        return self.title, (self.description or self.title)[:1000]

    def annual_floor_range(self) -> tuple[int, int] | None:
        """(min, max) yearly pay in yen, for a yearly salary floor: monthly pay times 12 (bonuses unknown, so this
        never overstates); None for hourly, daily or weekly pay, which a yearly floor cannot be compared with."""
        if self.salary_unit is None or (self.salary_min is None and self.salary_max is None):
            return None
        low = self.salary_min if self.salary_min is not None else self.salary_max
        high = self.salary_max if self.salary_max is not None else self.salary_min
        assert low is not None and high is not None
        if self.salary_unit == "YEAR":
            return low, high
        if self.salary_unit == "MONTH":
            return low * 12, high * 12
        return None


class Conditions(BaseModel):
    """What the user looks for; each field is unset (not asked yet), a value, or ANY (「こだわらない」)."""

    job_type: str | None = None  # slug or ANY
    area: str | None = None  # prefecture name, REMOTE or ANY
    employment_type: str | None = None  # schema.org code or ANY
    salary_unit: Literal["YEAR", "HOUR"] | None = None
    salary_floor: int | None = None  # yen per salary_unit; 0 = ANY
    salary_asked: bool = False

    def missing(self) -> list[str]:
        """The conditions still to ask for, in the order they are asked."""
        order = []
        if self.job_type is None:
            order.append("job_type")
        if self.area is None:
            order.append("area")
        if self.employment_type is None:
            order.append("employment_type")
        if not self.salary_asked:
            order.append("salary")
        return order


ANY = "any"
REMOTE = "remote"
