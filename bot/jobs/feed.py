"""Reading postings as operators have them: schema.org JobPosting JSON-LD (one object, a list, or an @graph) and CSV
with the header documented in docs/jobs.md. Every problem is reported, with the posting it belongs to; a feed with
any problem is imported not at all (`bot jobs import` writes nothing then).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.jobs.model import (
    COMPANY_MAX,
    DESCRIPTION_MAX,
    ID_MAX,
    SALARY_UNITS,
    TITLE_MAX,
    URL_MAX,
    Posting,
)
from bot.jobs.vocabulary import Vocabulary, fold, vocabulary

JST = timezone(timedelta(hours=9))
CSV_COLUMNS = (
    "id",
    "title",
    "company",
    "description",
    "job_type",
    "prefecture",
    "locality",
    "remote",
    "employment_type",
    "salary_min",
    "salary_max",
    "salary_unit",
    "url",
    "date_posted",
    "valid_through",
)
CSV_REQUIRED = ("id", "title", "company", "url")
TRUE_WORDS = {"true", "1", "yes", "y", "可", "あり", "○", "telecommute"}
FALSE_WORDS = {"false", "0", "no", "n", "不可", "なし", "×", ""}


@dataclass(frozen=True)
class FeedOptions:
    source: str
    source_label: str
    sample: bool = False


@dataclass
class FeedError:
    where: str  # "posting 3 (id=abc)" or "line 4 (id=abc)"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Feed:
    postings: list[Posting] = field(default_factory=list)
    errors: list[FeedError] = field(default_factory=list)
    options: FeedOptions | None = None


class Problems(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


# A yearly salary above this is a typo, not a posting (it also keeps every figure far inside the database's BIGINT).
MAX_SALARY_YEN = 1_000_000_000


# ----- entry point ---------------------------------------------------------------------------------------------------


def read_feed(path: Path, *, source: str | None = None, label: str | None = None, sample: bool | None = None) -> Feed:
    """The postings of a JSON-LD (.json, .jsonld) or CSV (.csv) file, with every problem found. A JSON-LD file may
    name its own source, label and sample flag (`x-source`, `x-source-label`, `x-sample` beside `@graph`); the
    arguments override them."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # a Shift_JIS export, say: one clear error, nothing read
        return Feed(errors=[FeedError(f"byte {exc.start}", "the file is not UTF-8: save it as UTF-8 and import again")])
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    if suffix == ".csv":
        items: Iterable[tuple[str, dict[str, Any] | None, str | None]] = _csv_rows(text)
    elif suffix in (".json", ".jsonld"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            return Feed(errors=[FeedError(f"line {exc.lineno}", f"not valid JSON: {exc.msg}")])
        if isinstance(document, dict):
            meta = {k: document[k] for k in ("x-source", "x-source-label", "x-sample") if k in document}
        items = _jsonld_items(document)
    else:
        return Feed(errors=[FeedError(path.name, "unknown format: use .jsonld / .json (JSON-LD) or .csv")])
    options = FeedOptions(
        source=(source or str(meta.get("x-source") or "") or path.stem)[:64],
        source_label=(
            label or str(meta.get("x-source-label") or "") or source or str(meta.get("x-source") or "") or path.stem
        )[:100],
        # Only JSON true marks a feed as invented: the string "false" must not label real postings 架空.
        sample=(meta.get("x-sample") is True) if sample is None else sample,
    )
    feed = Feed(options=options)
    reader = PostingReader(vocabulary(), options)
    seen: dict[str, str] = {}
    for where, item, problem in items:
        if problem is not None or item is None:
            feed.errors.append(FeedError(where, problem or "empty"))
            continue
        try:
            posting = reader.read(item, csv_row=suffix == ".csv")
        except Problems as exc:
            ident = _guess_id(item)
            label_ = f"{where} (id={ident})" if ident else where
            feed.errors += [FeedError(label_, m) for m in exc.messages]
            continue
        where_id = f"{where} (id={posting.id})"
        if posting.id in seen:
            feed.errors.append(FeedError(where_id, f"the same id as {seen[posting.id]}: ids must be unique in a feed"))
            continue
        seen[posting.id] = where
        feed.postings.append(posting)
    if not feed.postings and not feed.errors:
        feed.errors.append(FeedError(path.name, "no JobPosting found"))
    return feed


def _guess_id(item: dict[str, Any]) -> str:
    value = item.get("identifier", item.get("id"))
    if isinstance(value, dict):
        value = value.get("value")
    return str(value)[:40] if isinstance(value, str | int) and str(value).strip() else ""


# ----- JSON-LD -------------------------------------------------------------------------------------------------------


def _jsonld_items(document: Any) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """Every JobPosting node, from an object, a list, an @graph (or a list of those), numbered from 1."""
    nodes: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict) and "@graph" in node:
            walk(node["@graph"])
        else:
            nodes.append(node)

    walk(document)
    number = 0
    for node in nodes:
        kind = node.get("@type") if isinstance(node, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if isinstance(node, dict) and kind is not None and "JobPosting" not in kinds:
            continue  # an Organization or a WebSite node beside the postings: not ours to read
        number += 1
        if not isinstance(node, dict):
            yield f"posting {number}", None, "not a JSON object"
        elif kind is None:
            yield f"posting {number}", None, '"@type": "JobPosting" is missing'
        else:
            yield f"posting {number}", node, None


# ----- CSV -----------------------------------------------------------------------------------------------------------


def _csv_rows(text: str) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if unknown:
            parts.append("unknown column(s) " + ", ".join(unknown))
        yield "line 1 (header)", None, "; ".join(parts) + f" (expected: {','.join(CSV_COLUMNS)})"
        return
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            yield where, None, f"{len(row[None]) + len(header)} fields, the header has {len(header)}"
            continue
        if not any((v or "").strip() for v in row.values()):
            continue
        yield where, dict(row), None


# ----- one posting ---------------------------------------------------------------------------------------------------


class PostingReader:
    def __init__(self, vocab: Vocabulary, options: FeedOptions, now: datetime | None = None) -> None:
        self.vocab = vocab
        self.options = options

    def read(self, item: dict[str, Any], *, csv_row: bool) -> Posting:
        problems: list[str] = []
        fields = self._csv(item, problems) if csv_row else self._jsonld(item, problems)
        if problems:
            raise Problems(problems)
        try:
            return Posting(
                source=self.options.source, source_label=self.options.source_label, sample=self.options.sample, **fields
            )
        except ValidationError as exc:
            raise Problems([f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]) from None

    # JSON-LD -----------------------------------------------------------------------------------------------------
    def _jsonld(self, node: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        title = _text(node.get("title"))
        company = node.get("hiringOrganization")
        company_name = _text(company.get("name") if isinstance(company, dict) else company)
        url = _text(node.get("url"))
        fields["title"] = _required(title, "title", TITLE_MAX, problems)
        fields["company"] = _required(company_name, "hiringOrganization.name", COMPANY_MAX, problems)
        fields["url"] = _url(url, "url", problems)
        fields["id"] = _identifier(node.get("identifier"), url, problems)
        fields["description"] = _plain(_text(node.get("description")))[:DESCRIPTION_MAX]
        location_type = node.get("jobLocationType")
        location_types = location_type if isinstance(location_type, list) else [location_type]
        fields["remote"] = any(str(t).upper() == "TELECOMMUTE" for t in location_types if t)
        region, locality = _address(node.get("jobLocation"))
        if not region:
            # Without addressRegion, only a prefecture's full name in the locality counts (「東京都港区」): a city
            # alias guesses wrong (柏原市 is in Osaka, not 千葉県's 柏; 福島区 is in Osaka, not 福島県).
            region = next((name for name in self.vocab.prefectures if name in locality), "")
        fields["prefecture"] = self._prefecture(
            region, "jobLocation.address.addressRegion", problems, required=not fields["remote"]
        )
        fields["locality"] = locality[:200]
        kinds = node.get("employmentType")
        fields["employment_types"] = self._employment(kinds if isinstance(kinds, list) else [kinds], problems)
        category = _text(node.get("occupationalCategory")) or _text(node.get("industry"))
        fields["job_type"] = self.vocab.job_type_in(title) or (self.vocab.job_type_slug(category) if category else None)
        fields.update(_salary(node.get("baseSalary"), problems))
        fields["date_posted"] = _when(node.get("datePosted"), "datePosted", problems, end_of_day=False)
        fields["valid_through"] = _when(node.get("validThrough"), "validThrough", problems, end_of_day=True)
        return fields

    # CSV ---------------------------------------------------------------------------------------------------------
    def _csv(self, row: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        get = {k: (v or "").strip() for k, v in row.items()}
        fields: dict[str, Any] = {}
        fields["id"] = _required(get.get("id", ""), "id", ID_MAX, problems)
        fields["title"] = _required(get.get("title", ""), "title", TITLE_MAX, problems)
        fields["company"] = _required(get.get("company", ""), "company", COMPANY_MAX, problems)
        fields["url"] = _url(get.get("url", ""), "url", problems)
        fields["description"] = _plain(get.get("description", ""))[:DESCRIPTION_MAX]
        remote = fold(get.get("remote", "")).lower()
        if remote not in TRUE_WORDS | FALSE_WORDS:
            problems.append(f"remote: {get['remote']!r} is not true/false")
        fields["remote"] = remote in TRUE_WORDS
        fields["prefecture"] = self._prefecture(
            get.get("prefecture", ""), "prefecture", problems, required=not fields["remote"]
        )
        fields["locality"] = get.get("locality", "")[:200]
        kinds = re.split(r"[|、,／/]", get.get("employment_type", ""))
        fields["employment_types"] = self._employment([k for k in kinds if k.strip()], problems)
        job_type = get.get("job_type", "")
        slug = self.vocab.job_type_slug(job_type) if job_type else self.vocab.job_type_in(fields["title"] or "")
        if job_type and slug is None:
            problems.append(f"job_type: {job_type!r} is not one of {', '.join(self.vocab.job_types)}")
        fields["job_type"] = slug
        amounts = {}
        for key in ("salary_min", "salary_max"):
            value = get.get(key, "").replace(",", "")
            if value:
                try:
                    amounts[key] = int(float(value))
                except (ValueError, OverflowError):  # not a number, NaN, or 1e400
                    problems.append(f"{key}: {get[key]!r} is not a number")
        unit = get.get("salary_unit", "").upper()
        fields.update(_salary_fields(amounts.get("salary_min"), amounts.get("salary_max"), unit, "salary", problems))
        fields["date_posted"] = _when(get.get("date_posted"), "date_posted", problems, end_of_day=False)
        fields["valid_through"] = _when(get.get("valid_through"), "valid_through", problems, end_of_day=True)
        return fields

    # shared ------------------------------------------------------------------------------------------------------
    def _prefecture(self, value: str, name: str, problems: list[str], *, required: bool) -> str | None:
        if not value.strip():
            if required:
                problems.append(f"{name}: a prefecture is required unless the job is remote (TELECOMMUTE)")
            return None
        found = self.vocab.prefecture_in(value)
        if found is None:
            problems.append(f"{name}: {value!r} names no prefecture (都道府県)")
        return found

    def _employment(self, values: list[Any], problems: list[str]) -> list[str]:
        codes: list[str] = []
        for value in values:
            if value is None or not str(value).strip():
                continue
            code = self.vocab.employment_code(str(value))
            if code is None:
                known = ", ".join(self.vocab.employment_types)
                problems.append(f"employmentType: {value!r} is not one of {known} (or 正社員, パート, …)")
            elif code not in codes:
                codes.append(code)
        return codes


def _text(value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return " ".join(str(value).split())
    return ""


_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(r"(?i)<\s*(br|/p|/li|/div|/h\d)\s*/?\s*>")


def _plain(value: str) -> str:
    """HTML descriptions (schema.org allows them) as plain text; the bot never renders a feed's markup."""
    value = _BLOCK.sub("\n", value)
    value = html.unescape(_TAG.sub("", value))
    lines = [" ".join(line.split()) for line in value.splitlines()]
    return "\n".join(line for line in lines if line)


def _required(value: str, name: str, limit: int, problems: list[str]) -> str:
    if not value:
        problems.append(f"{name}: required")
    elif len(value) > limit:
        problems.append(f"{name}: longer than {limit} characters")
    return value


def _url(value: str, name: str, problems: list[str]) -> str:
    if not value:
        problems.append(f"{name}: required (the link the user opens)")
    elif not re.match(r"^https?://[^\s/$.?#][^\s]*$", value):
        problems.append(f"{name}: {value[:80]!r} is not an http(s) URL")
    elif len(value) > URL_MAX:
        problems.append(f"{name}: longer than {URL_MAX} characters")
    return value


def _identifier(value: Any, url: str, problems: list[str]) -> str:
    if isinstance(value, dict):
        value = value.get("value")
    ident = _text(value)
    if not ident:
        if not url:
            problems.append("identifier: required (or a url to identify the posting by)")
            return ""
        return "url-" + hashlib.sha256(url.encode()).hexdigest()[:32]
    if len(ident) > ID_MAX:
        problems.append(f"identifier: longer than {ID_MAX} characters")
    return ident


def _address(location: Any) -> tuple[str, str]:
    places = location if isinstance(location, list) else [location]
    for place in places:
        if not isinstance(place, dict):
            continue
        address = place.get("address")
        if isinstance(address, str):
            return address, address
        if isinstance(address, dict):
            region = _text(address.get("addressRegion"))
            locality = _text(address.get("addressLocality"))
            return region, locality
    return "", ""


def _salary(base: Any, problems: list[str]) -> dict[str, Any]:
    if base is None:
        return {}
    if not isinstance(base, dict):
        problems.append("baseSalary: expected a MonetaryAmount object")
        return {}
    currency = _text(base.get("currency")).upper()
    if currency and currency != "JPY":
        problems.append(f"baseSalary.currency: {currency!r}; only JPY is shown")
        return {}
    value = base.get("value")
    unit = ""
    low = high = None
    if isinstance(value, dict):
        unit = _text(value.get("unitText")).upper()
        low, high = value.get("minValue"), value.get("maxValue")
        if low is None and high is None:
            low = high = value.get("value")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        low = high = value
    for name, amount in (("minValue", low), ("maxValue", high)):
        if amount is not None and (
            not isinstance(amount, int | float) or isinstance(amount, bool) or not math.isfinite(amount)
        ):  # JSON's NaN and 1e400 (read as infinity) are not amounts either
            problems.append(f"baseSalary.value.{name}: {amount!r} is not a number")
            return {}
    return _salary_fields(
        int(low) if low is not None else None, int(high) if high is not None else None, unit, "baseSalary", problems
    )


def _salary_fields(low: int | None, high: int | None, unit: str, name: str, problems: list[str]) -> dict[str, Any]:
    if low is None and high is None:
        return {}
    if unit not in SALARY_UNITS:
        problems.append(f"{name} unit: {unit or 'missing'!r}; use one of {', '.join(SALARY_UNITS)}")
        return {}
    if (low is not None and low <= 0) or (high is not None and high <= 0):
        problems.append(f"{name}: amounts must be positive yen")
        return {}
    if (low or 0) > MAX_SALARY_YEN or (high or 0) > MAX_SALARY_YEN:
        problems.append(f"{name}: more than {MAX_SALARY_YEN:,} yen is not a salary (a typo?)")
        return {}
    if low is not None and high is not None and low > high:
        problems.append(f"{name}: the minimum {low} is above the maximum {high}")
        return {}
    return {"salary_min": low, "salary_max": high, "salary_unit": unit}


def _when(value: Any, name: str, problems: list[str], *, end_of_day: bool) -> datetime | None:
    """ISO 8601 date or date-time; without an offset it is Japan time. A bare date is valid through its whole day."""
    text = _text(value)
    if not text:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(23, 59, 59) if end_of_day else time(0, 0), JST)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=JST)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved across time zones
        problems.append(f"{name}: {text[:40]!r} is not an ISO 8601 date (2026-12-31 or 2026-12-31T18:00:00+09:00)")
        return None
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.append(f"{name}: {text[:40]!r} is out of range")
        return None
