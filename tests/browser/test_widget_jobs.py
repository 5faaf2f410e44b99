"""The job search in the widget (headless Chromium): from a request to posting cards in a few taps, built safely —
a posting whose title carries markup is shown as text, and links open http(s) pages only, without an opener."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import pytest
from live_server import LiveServer
from test_widget import ROOT_JS, W, bots, open_widget, send, wait_answer

from bot.api.main import create_app

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ATTACK = "<img src=x onerror=alert(1)>法人営業"


@pytest.fixture(scope="module")
def jobs_live(tmp_path_factory, index_settings, searcher):
    from bot.dialogue.factory import build_engine
    from bot.jobs.feed import read_feed
    from bot.jobs.index import JobIndex, posting_embedder
    from bot.jobs.repository import JobRepository
    from bot.retrieval.index import make_chroma_client

    data_dir = tmp_path_factory.mktemp("browser-jobs")
    settings = index_settings.model_copy(
        update={
            "data_dir": data_dir,
            "models_path": index_settings.models_dir,
            "chroma_path": ROOT / "data" / "chroma",
            "jobs_collection": f"jobs_browser_{uuid.uuid4().hex[:8]}",
        }
    )
    services = build_engine(settings, searcher=searcher)
    sample = json.loads((ROOT / "knowledge" / "jobs" / "sample-postings.jsonld").read_text(encoding="utf-8"))
    hostile = dict(sample["@graph"][0], identifier="sample-attack", title=ATTACK)
    sample["@graph"].append(hostile)
    feed_path = data_dir / "feed.jsonld"
    feed_path.write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
    feed = read_feed(feed_path)
    assert feed.errors == []
    repo = JobRepository(services.store)
    repo.import_feed(feed.postings, source="sample")
    client = make_chroma_client(settings)
    JobIndex(client, posting_embedder(searcher.embeddings), settings.jobs_collection).sync(repo)
    with LiveServer(create_app(settings, services=services)) as server:
        yield server
    services.store.close()
    with contextlib.suppress(Exception):
        client.delete_collection(settings.jobs_collection)


def tap(page, label: str) -> None:
    before = bots(page)
    page.locator(f"{W} .msg.bot").last.get_by_role("button", name=label, exact=True).click()
    wait_answer(page, before + 1)


def test_from_a_request_to_posting_cards_in_a_few_taps(jobs_live, new_page, artifacts):
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_widget(page, jobs_live.url + "/")
    send(page, "東京で営業の仕事ある？")
    tap(page, "正社員・フルタイム")
    tap(page, "年収400万円以上")
    last = page.locator(f"{W} .msg.bot").last
    cards = last.locator(".job")
    assert cards.count() == 3
    titles = [cards.nth(i).locator("h4").inner_text() for i in range(cards.count())]
    assert ATTACK in titles and "法人営業（ルートセールス）" in titles
    for i in range(cards.count()):
        card = cards.nth(i)
        assert card.locator(".sample").inner_text() == "サンプル求人（架空）"
        assert "掲載元：サンプル求人（架空）" in card.locator(".src").inner_text()
        link = card.locator("a.open")
        assert link.get_attribute("href").startswith("https://jobs.example.com/sample/")
        assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    assert "架空の求人" in last.inner_text()
    artifacts(page, "widget-jobs")
    # The markup in a posting's title stayed text: no element was made from it, no script ran.
    assert page.evaluate(f"() => {ROOT_JS}.querySelectorAll('img, script:not([src])').length") == 0
    assert dialogs == []
    # 「条件を変える」 → 「勤務地を変える」 → リモート: only remote postings.
    tap(page, "条件を変える")
    tap(page, "勤務地を変える")
    tap(page, "リモートワーク")
    remote = page.locator(f"{W} .msg.bot").last.locator(".job h4")
    assert [remote.nth(i).inner_text() for i in range(remote.count())] == ["インサイドセールス"]
