"""Reading feeds as operators have them: JSON-LD (object, list, @graph) and CSV; every problem reported per posting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.jobs.feed import read_feed

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge" / "jobs" / "sample-postings.jsonld"


def posting(**extra: object) -> dict[str, object]:
    node: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "JobPosting",
        "identifier": {"@type": "PropertyValue", "name": "テスト", "value": "t-1"},
        "title": "法人営業",
        "description": "<p>既存のお客さまを訪問します。</p><ul><li>残業少なめ</li></ul>",
        "hiringOrganization": {"@type": "Organization", "name": "テスト商事（架空）"},
        "jobLocation": {
            "@type": "Place",
            "address": {"@type": "PostalAddress", "addressRegion": "東京都", "addressLocality": "港区"},
        },
        "employmentType": "FULL_TIME",
        "baseSalary": {
            "@type": "MonetaryAmount",
            "currency": "JPY",
            "value": {"@type": "QuantitativeValue", "minValue": 4000000, "maxValue": 5000000, "unitText": "YEAR"},
        },
        "datePosted": "2026-11-01",
        "validThrough": "2027-01-31",
        "url": "https://jobs.example.com/t-1",
    }
    node.update(extra)
    return node


def write(tmp_path: Path, document: object, name: str = "feed.jsonld") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_single_json_ld_object_is_read_field_by_field(tmp_path: Path) -> None:
    feed = read_feed(write(tmp_path, posting()))
    assert feed.errors == []
    (p,) = feed.postings
    assert (p.id, p.title, p.company, p.prefecture, p.locality) == (
        "t-1",
        "法人営業",
        "テスト商事（架空）",
        "東京都",
        "港区",
    )
    assert (p.job_type, p.employment_types, p.remote) == ("sales", ["FULL_TIME"], False)
    assert (p.salary_min, p.salary_max, p.salary_unit) == (4_000_000, 5_000_000, "YEAR")
    # A bare date is valid through its whole day in Japan.
    assert p.valid_through == datetime(2027, 1, 31, 14, 59, 59, tzinfo=UTC)
    # HTML descriptions become plain text: the bot never renders a feed's markup.
    assert p.description == "既存のお客さまを訪問します。\n残業少なめ"


def test_a_list_and_a_graph_are_read_and_other_nodes_skipped(tmp_path: Path) -> None:
    listed = read_feed(write(tmp_path, [posting(), posting(identifier="t-2")]))
    assert [p.id for p in listed.postings] == ["t-1", "t-2"] and listed.errors == []
    graph = {
        "@context": "https://schema.org",
        "@graph": [{"@type": "Organization", "name": "x"}, posting(identifier="g-1"), posting(identifier="g-2")],
    }
    read = read_feed(write(tmp_path, graph))
    assert [p.id for p in read.postings] == ["g-1", "g-2"] and read.errors == []


def test_remote_needs_no_prefecture_and_japanese_employment_words_are_understood(tmp_path: Path) -> None:
    node = posting(jobLocationType="TELECOMMUTE", employmentType=["パート", "CONTRACTOR"])
    node.pop("jobLocation")
    feed = read_feed(write(tmp_path, node))
    (p,) = feed.postings
    assert p.remote and p.prefecture is None and p.employment_types == ["PART_TIME", "CONTRACTOR"]


def test_every_problem_is_reported_with_its_posting_and_nothing_is_kept(tmp_path: Path) -> None:
    bad = [
        posting(),
        posting(identifier="t-2", title=""),
        posting(identifier="t-3", url="javascript:alert(1)", validThrough="someday"),
        posting(identifier="t-4", baseSalary={"currency": "USD", "value": 100}),
        posting(identifier="t-1"),
        posting(identifier="t-6", jobLocation={"address": {"addressRegion": "Atlantis"}}),
    ]
    feed = read_feed(write(tmp_path, bad))
    text = "\n".join(str(e) for e in feed.errors)
    assert "posting 2 (id=t-2): title: required" in text
    assert "posting 3 (id=t-3): url: 'javascript:alert(1)' is not an http(s) URL" in text
    assert "posting 3 (id=t-3): validThrough: 'someday' is not an ISO 8601 date" in text
    assert "posting 4 (id=t-4): baseSalary.currency: 'USD'" in text
    assert "posting 5 (id=t-1): the same id as posting 1" in text
    assert "posting 6 (id=t-6): jobLocation.address.addressRegion: 'Atlantis' names no prefecture" in text


def test_broken_json_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonld"
    path.write_text('{"@type": "JobPosting",\n "title": }', encoding="utf-8")
    feed = read_feed(path)
    assert feed.postings == [] and [str(e) for e in feed.errors] == ["line 2: not valid JSON: Expecting value"]


def test_csv_with_the_documented_header(fixtures_dir: Path) -> None:
    feed = read_feed(fixtures_dir / "jobs" / "postings.csv", source="csv-feed", label="テスト求人サイト")
    assert feed.errors == []
    by_id = {p.id: p for p in feed.postings}
    assert by_id["csv-001"].job_type == "sales" and by_id["csv-001"].employment_types == ["FULL_TIME"]
    assert by_id["csv-002"].remote and by_id["csv-002"].employment_types == ["PART_TIME"]
    assert by_id["csv-002"].job_type == "office"
    assert by_id["csv-003"].job_type == "care"  # read from the title when the column is empty
    assert (by_id["csv-003"].salary_unit, by_id["csv-003"].valid_through) == ("MONTH", None)
    assert {p.source_label for p in feed.postings} == {"テスト求人サイト"}


def test_csv_problems_name_their_line_and_column(fixtures_dir: Path) -> None:
    feed = read_feed(fixtures_dir / "jobs" / "invalid.csv")
    text = [str(e) for e in feed.errors]
    assert "line 2 (id=bad-001): title: required" in text
    assert "line 3 (id=bad-002): prefecture: 'どこか' names no prefecture (都道府県)" in text
    assert "line 5 (id=bad-004): remote: 'maybe' is not true/false" in text
    assert "line 5 (id=bad-004): url: 'javascript:alert(1)' is not an http(s) URL" in text
    assert any(t.startswith("line 5 (id=bad-004): salary: the minimum 500 is above the maximum 300") for t in text)
    assert any(t.startswith("line 5 (id=bad-004): date_posted:") for t in text)
    assert not any("ok-003" in t for t in text)


@pytest.mark.parametrize("header", ["id,title,url", "id,title,company,url,colour"])
def test_a_wrong_csv_header_says_what_is_expected(tmp_path: Path, header: str) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(header + "\n1,a,b\n", encoding="utf-8")
    (error,) = read_feed(path).errors
    assert str(error).startswith("line 1 (header): ") and "expected: id,title,company," in str(error)


def test_the_sample_feed_is_marked_as_invented_everywhere() -> None:
    feed = read_feed(SAMPLE)
    assert feed.errors == [] and len(feed.postings) >= 30
    assert feed.options is not None and feed.options.sample and feed.options.source == "sample"
    for p in feed.postings:
        assert p.sample and p.source_label == "サンプル求人（架空）"
        assert p.company.endswith("（架空）") and p.description.startswith("【サンプル求人・架空】")
        assert p.url.startswith("https://jobs.example.com/")


@pytest.mark.parametrize(("flag", "invented"), [(True, True), ("false", False), ("true", False), (1, False)])
def test_only_json_true_marks_a_feed_as_invented(tmp_path: Path, flag: object, invented: bool) -> None:
    feed = read_feed(write(tmp_path, {"x-sample": flag, "@graph": [posting()]}))
    assert feed.errors == [] and feed.options.sample is invented


def test_odd_numbers_dates_and_encodings_are_problems_not_crashes(tmp_path: Path) -> None:
    document = json.dumps({"@graph": [posting()]}, ensure_ascii=False)
    for odd in ("1e400", "NaN", "4000000000000"):
        path = tmp_path / f"odd-{odd}.jsonld"
        path.write_text(document.replace('"minValue": 4000000', f'"minValue": {odd}'), encoding="utf-8")
        feed = read_feed(path)
        assert feed.postings == [] and any("baseSalary" in e.message for e in feed.errors), (odd, feed.errors)
    ancient = read_feed(write(tmp_path, posting(datePosted="0001-01-01T00:00:00+09:00"), name="ancient.jsonld"))
    assert ancient.postings == [] and any(
        "datePosted" in e.message or "date_posted" in e.message for e in ancient.errors
    )
    shift_jis = tmp_path / "sjis.csv"
    shift_jis.write_bytes("id,title\nx-1,営業\n".encode("shift_jis"))
    feed = read_feed(shift_jis)
    assert feed.postings == [] and "UTF-8" in feed.errors[0].message


def test_without_a_region_only_a_full_prefecture_name_places_a_posting(tmp_path: Path) -> None:
    def at(locality: str) -> dict[str, object]:
        return posting(
            jobLocation={"@type": "Place", "address": {"@type": "PostalAddress", "addressLocality": locality}}
        )

    (named,) = read_feed(write(tmp_path, at("東京都港区"), name="named.jsonld")).postings
    assert named.prefecture == "東京都"
    # 柏原市 (Osaka) is not 柏 (Chiba): a guess would show a wrong place, so the posting is refused with a reason.
    guessed = read_feed(write(tmp_path, at("柏原市"), name="guessed.jsonld"))
    assert guessed.postings == [] and "addressRegion" in guessed.errors[0].message
