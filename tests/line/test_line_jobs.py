"""The job search on LINE: cards within the spec and every limit, and the whole flow through real `bot serve`
processes (postings imported with the real `bot jobs import`, a signed webhook in, a carousel out; the web API on the
same server answers with the same postings)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import line_events as ev
import pytest
from fake_line_api import FakeLine, graphemes, json_bytes
from test_line_render import check
from test_line_serve_e2e import ROOT, Server, serve_env  # noqa: F401  (the fixture is used below)

from bot.answer.model import Answer, HelpResource, JobCondition, JobPostingView, JobSearchView
from bot.channels.line.render import render_answer

EMOJI = "🙂"
REPLIES: dict = json.loads(json.dumps({"clarify": {"empty": "…"}, "headings": {}, "phrases": {}}))


def view(n: int, **extra: object) -> JobPostingView:
    values: dict[str, object] = {
        "id": f"p-{n}",
        "title": f"法人営業{n}",
        "company": "テスト商事（架空）",
        "place": "東京都 千代田区",
        "remote": False,
        "salary": "年収400万〜550万円",
        "employment_type": "正社員・フルタイム",
        "summary": "既存のお客さまを訪問します。",
        "url": f"https://jobs.example.com/{n}",
        "source": "掲載元：サンプル求人（架空）",
        "sample": True,
        "valid_through": "2099年12月31日まで掲載",
    }
    values.update(extra)
    return JobPostingView.model_validate(values)


def results(postings: list[JobPostingView], **extra: object) -> Answer:
    jobs = JobSearchView(
        conditions=[JobCondition(name="job_type", label="職種", value="営業")],
        postings=postings,
        total=len(postings) + 3,
        has_more=True,
        notes=["掲載内容は掲載元の情報です。", "※「サンプル求人」は架空の求人です。"],
        **extra,
    )
    return Answer(
        kind="advice",
        empathy="条件に合う求人が8件見つかりました。",
        follow_ups=["もっと見る", "条件を変える", "相談に戻る"],
        jobs=jobs,
        text="…",
    )


def test_postings_become_a_carousel_with_a_link_on_each_card() -> None:
    messages = render_answer(results([view(n) for n in range(1, 6)]), REPLIES)
    check(messages)
    text, flex = messages
    assert text["type"] == "text" and "架空の求人" in text["text"] and "8件" in text["text"]
    bubbles = flex["contents"]["contents"]
    assert flex["contents"]["type"] == "carousel" and len(bubbles) == 5
    for n, bubble in enumerate(bubbles, start=1):
        dumped = json.dumps(bubble, ensure_ascii=False)
        for field in (f"法人営業{n}", "テスト商事（架空）", "東京都 千代田区", "年収400万〜550万円", "正社員・フルタイム"):
            assert field in dumped
        assert "サンプル求人（架空）" in dumped
        (button,) = [c for c in bubble["footer"]["contents"] if c["type"] == "button"]
        assert button["action"] == {"type": "uri", "label": "詳しく見る", "uri": f"https://jobs.example.com/{n}"}
    labels = [item["action"]["label"] for item in flex["quickReply"]["items"]]
    assert labels == ["もっと見る", "条件を変える", "相談に戻る"]


def test_oversized_postings_stay_within_every_limit() -> None:
    long = (EMOJI + "長い説明" * 50) * 20
    hostile = [
        view(n, title=long, company=long, place=long, salary=long, employment_type=long, summary=long, source=long)
        for n in range(5)
    ]
    hostile.append(view(9, url="https://jobs.example.com/" + "a" * 1200))  # too long for a link: no button
    hostile.append(view(10, url="javascript:alert(1)"))
    messages = render_answer(results(hostile), REPLIES)
    check(messages)
    flex = messages[-1]
    assert json_bytes(flex["contents"]) <= 50_000 and len(flex["contents"]["contents"]) <= 12
    buttons = [c for b in flex["contents"]["contents"] for c in b["footer"]["contents"] if c["type"] == "button"]
    assert all(b["action"]["uri"].startswith("https://") and len(b["action"]["uri"]) <= 1000 for b in buttons)
    assert len(buttons) == 5, "no link button for a link LINE would refuse"


def test_a_question_offers_its_choices_as_quick_replies() -> None:
    choices = ["営業", "事務・管理", "ITエンジニア", "クリエイティブ", "企画・マーケティング", "販売・接客・飲食", "介護・福祉",
               "医療", "教育・保育", "物流・ドライバー", "製造・技術", "コンサル・専門職", "こだわらない"]
    answer = Answer(kind="clarify", empathy="どんな職種のお仕事を探していますか？", follow_ups=choices,
                    jobs=JobSearchView(asking="job_type"), text="…")
    (message,) = render_answer(answer, REPLIES)
    check([message])
    items = message["quickReply"]["items"]
    assert [i["action"]["label"] for i in items] == choices and len(items) <= 13
    assert all(graphemes(i["action"]["label"]) <= 20 for i in items)


def test_nothing_fitting_links_to_the_public_job_search() -> None:
    fallback = HelpResource(name="ハローワークインターネットサービス", contact="", hours="", url="https://www.hellowork.mhlw.go.jp/")
    answer = Answer(kind="clarify", empathy="ごめんなさい、見つかりませんでした。", follow_ups=["条件を変える"],
                    jobs=JobSearchView(fallback=fallback), text="…")
    (message,) = render_answer(answer, REPLIES)
    check([message])
    first = message["quickReply"]["items"][0]["action"]
    assert first["type"] == "uri" and first["uri"] == "https://www.hellowork.mhlw.go.jp/"


# ----- through `bot serve` ------------------------------------------------------------------------------------------


@pytest.fixture
def jobs_env(serve_env):  # noqa: F811
    env = {**serve_env, "JOBS_COLLECTION": f"jobs_e2e_{uuid.uuid4().hex[:8]}"}
    yield env
    from bot.config import Settings
    from bot.retrieval.index import make_chroma_client

    with contextlib.suppress(Exception):
        make_chroma_client(Settings(CHROMA_PATH=env["CHROMA_PATH"])).delete_collection(env["JOBS_COLLECTION"])


def bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_from_a_request_to_postings_on_line_and_the_web(jobs_env, fake_line: FakeLine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,company,url\nx,,c,https://jobs.example.com/x\n", encoding="utf-8")
    refused = bot(jobs_env, "jobs", "import", str(bad))
    assert refused.returncode == 1 and "line 2 (id=x): title: required" in refused.stderr
    assert "nothing imported" in refused.stderr
    imported = bot(jobs_env, "jobs", "import", str(ROOT / "knowledge" / "jobs" / "sample-postings.jsonld"))
    assert imported.returncode == 0, imported.stderr
    assert "34 new" in imported.stderr and "1 already expired" in imported.stderr

    server = Server(jobs_env, tmp_path / "serve.log")
    try:
        server.launch()
        server.wait_ready()
        user = ev.user_id()
        for n, text in enumerate(["東京で営業の仕事ある？", "正社員・フルタイム", "年収400万円以上"], start=1):
            assert server.post(ev.text(user, text, reply_token=fake_line.issue_reply_token(user))).status_code == 200
            assert fake_line.wait_for(lambda n=n: len(fake_line.delivered_to(user)) == n, 60), server.log.read_text()[-3000:]
        asked, _salary, found = fake_line.delivered_to(user)
        assert "働き方" in asked.messages[-1]["text"]
        assert [m["type"] for m in found.messages] == ["text", "flex"]
        uris = {b["footer"]["contents"][-1]["action"]["uri"] for b in found.messages[1]["contents"]["contents"]}
        assert uris == {"https://jobs.example.com/sample/001", "https://jobs.example.com/sample/002"}

        # The web chat on the same server: the same search, the `jobs` key beside the contract's keys.
        headers = {"X-Visitor-Token": "t" * 43}
        cid = httpx.post(f"{server.url}/api/conversations", headers=headers, timeout=10).json()["conversation_id"]
        for text in ("東京で営業の求人を探したい", "正社員・フルタイム", "年収400万円以上"):
            reply = httpx.post(f"{server.url}/api/conversations/{cid}/messages", headers=headers, json={"text": text},
                               timeout=60)
            assert reply.status_code == 200, reply.text
        jobs = reply.json()["answer"]["jobs"]
        assert {p["id"] for p in jobs["postings"]} == {"sample-001", "sample-002"}
        assert all(p["source"] == "掲載元：サンプル求人（架空）" for p in jobs["postings"])
        time.sleep(0.2)
        assert "東京で営業" not in server.log.read_text(), "message text never reaches the log"
    finally:
        server.stop()
