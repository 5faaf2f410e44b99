"""The widget in a real browser (headless Chromium): the demo page, a real conversation, keyboard, mobile, IME, XSS,
rate limits, errors and offline, and embedding on another origin. Screenshots go to test-artifacts/."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

W = "career-partner-chat"  # the widget's host element; Playwright's CSS locators pierce its open shadow root
ROOT_JS = "document.querySelector('career-partner-chat').shadowRoot"


def open_widget(page, url: str, *, dismiss_notice: bool = True) -> None:
    page.goto(url)
    page.locator(f"{W} .launcher").click()
    page.locator(f"{W} .panel").wait_for(state="visible")
    if dismiss_notice:
        page.locator(f"{W} .notice-ok").click()


def active(page) -> dict:
    """What has focus inside the widget (class, id, text)."""
    return page.evaluate(
        f"""() => {{
            if (document.activeElement?.tagName !== 'CAREER-PARTNER-CHAT') return {{outside: true}};
            const el = {ROOT_JS}.activeElement;
            return el ? {{cls: el.className, id: el.id, text: el.textContent.trim()}} : {{}};
        }}"""
    )


def bots(page) -> int:
    return page.locator(f"{W} .msg.bot").count()


def wait_answer(page, count: int) -> None:
    """Until there are `count` bot messages and the last one is finished (no typing indicator)."""
    page.wait_for_function(
        f"""(n) => {{
            const all = {ROOT_JS}.querySelectorAll('.msg.bot');
            const last = all[all.length - 1];
            return all.length >= n && last && !last.hasAttribute('aria-busy') && !last.querySelector('[data-typing]');
        }}""",
        arg=count,
        timeout=60_000,
    )


def send(page, text: str) -> None:
    before = bots(page)
    box = page.locator(f"{W} #cp-input")
    box.fill(text)
    box.press("Enter")
    wait_answer(page, before + 1)
    assert page.locator(f"{W} .msg.bot").last.locator(".error").count() == 0


def local(page, key: str):
    return page.evaluate(
        """(key) => {
            for (let i = 0; i < localStorage.length; i++) {
                const k = localStorage.key(i);
                if (k.endsWith(':' + key)) return JSON.parse(localStorage.getItem(k));
            }
            return null;
        }""",
        key,
    )


CONTRAST_JS = """(selectors) => {
    const root = document.querySelector('career-partner-chat').shadowRoot;
    const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
        .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
    const background = (el) => {
        for (let e = el; e; e = e.parentElement || e.getRootNode().host) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const out = {};
    for (const sel of selectors) {
        const el = root.querySelector(sel);
        if (!el) { out[sel] = null; continue; }
        const fg = parse(getComputedStyle(el).color).slice(0, 3), bg = background(el);
        const [a, b] = [lum(fg), lum(bg)];
        out[sel] = Math.round(((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)) * 100) / 100;
    }
    return out;
}"""
CONTRAST_TARGETS = [
    "#cp-title",
    ".hbtn.new",
    ".send",
    ".chip:not([disabled])",
    "#cp-hint",
    ".linkbtn",
    ".who",
    ".bubble h3",
    ".user .bubble",
    ".fb",
    ".sources a",
    ".empathy",
    "#cp-input",
]


# ----- the main path -------------------------------------------------------------------------------------------------------
def test_a_real_conversation_on_the_demo_page(live, new_page, artifacts, fixtures_dir, url_template):
    seed = (fixtures_dir / "seed_consultation.txt").read_text(encoding="utf-8")
    page = new_page()
    page.goto(live.url + "/")
    assert "急な引き継ぎ" in page.title()
    launcher = page.locator(f"{W} .launcher")
    # The page's own CSS (button { border-radius: 0; text-transform: uppercase; font-size: 22px }) does not reach in.
    assert launcher.evaluate("e => [getComputedStyle(e).borderRadius, getComputedStyle(e).fontSize]") == [
        "999px",
        "16px",
    ]
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    assert launcher.get_attribute("aria-expanded") == "true"
    notice = page.locator(f"{W} .notice")
    assert "AI" in notice.inner_text() and "専門家ではなく" in notice.inner_text()
    assert notice.locator("button", has_text="会話データを削除する").is_visible()
    assert active(page)["cls"] == "btn notice-ok"  # focus moves into the panel, to the first-visit notice
    artifacts(page, "desktop-01-first-visit-notice")
    page.locator(f"{W} .notice-ok").click()
    assert active(page)["id"] == "cp-input"

    send(page, seed)
    answer = page.locator(f"{W} .msg.bot").last
    # The seed asks 「自力で何とかすべきでしょうか？」: the article's own direct reply comes first, then the three parts.
    assert answer.locator("h3").all_inner_texts() == ["ご質問への答え", "現状分析", "アクションプラン", "キャリア戦略"]
    steps = answer.locator(".checklist input[type=checkbox]")
    assert steps.count() >= 4
    chips = answer.locator(".chip")
    assert "もっと詳しく" in chips.all_inner_texts()
    source = answer.locator(".sources a").first
    assert source.get_attribute("href") == url_template.format(article_id="handover-sudden-retirement")
    expect(page.locator(f"{W} #cp-live")).to_contain_text("回答が届きました")
    ratios = page.evaluate(CONTRAST_JS, CONTRAST_TARGETS)
    assert all(r is not None and r >= 4.5 for r in ratios.values()), ratios  # WCAG AA for text
    artifacts(page, "desktop-02-answer")
    page.locator(f"{W} .log").evaluate("e => e.scrollTop = e.scrollHeight")
    artifacts(page, "desktop-03-answer-end-chips")

    steps.first.check()
    answer.locator("h3", has_text="アクションプラン").evaluate("e => e.scrollIntoView({block: 'start'})")
    artifacts(page, "desktop-03b-checklist")
    answer.locator(".fb.yes").click()
    page.locator(f"{W} .feedback", has_text="評価を送信しました").wait_for()
    conversation = local(page, "conversation")
    before = bots(page)
    page.locator(f"{W} .chip", has_text="次のステップは？").or_(
        page.locator(f"{W} .chip", has_text="もっと詳しく")
    ).first.click()
    wait_answer(page, before + 1)
    assert page.locator(f"{W} .msg.bot").last.locator("h3", has_text="アクションプラン").count() == 1
    assert page.locator(f"{W} .msg.user").count() == 2

    # Reload: the panel comes back open with the whole conversation, the checked step and the feedback.
    page.reload()
    page.locator(f"{W} .msg.user").nth(1).wait_for()
    assert page.locator(f"{W} .msg.user .bubble").first.inner_text().startswith("仕事の引き継ぎについて質問です")
    assert page.locator(f"{W} .msg.bot:not(.welcome)").count() == 2
    assert page.locator(f"{W} .msg.bot:not(.welcome)").first.locator(".checklist input").first.is_checked()
    assert local(page, "conversation") == conversation
    artifacts(page, "desktop-04-history-after-reload")

    # 「新しい相談」 starts over with a new conversation.
    page.locator(f"{W} .hbtn.new").click()
    assert page.locator(f"{W} .msg.user").count() == 0 and bots(page) == 1
    assert active(page)["id"] == "cp-input"
    send(page, "転職するか迷っている")
    assert local(page, "conversation") not in (None, conversation)
    assert set(local(page, "conversations")) == {conversation, local(page, "conversation")}


def test_deleting_my_data_from_the_notice(live, new_page):
    page = new_page()
    open_widget(page, live.url + "/")
    send(page, "残業が続いて疲れている")
    token, conversation = local(page, "visitor"), local(page, "conversation")
    page.locator(f"{W} .foot .linkbtn").click()  # 「AIについて・データの削除」 shows the notice again
    assert active(page)["cls"] == "btn notice-ok"
    page.locator(f"{W} .notice button", has_text="会話データを削除する").click()
    page.locator(f"{W} .confirm button", has_text="削除する").click()
    page.locator(f"{W} .msg.bot", has_text="削除しました").wait_for()
    assert local(page, "conversation") is None and local(page, "conversations") == []
    gone = httpx.get(f"{live.url}/api/conversations/{conversation}/messages", headers={"X-Visitor-Token": token})
    assert gone.status_code == 404


# ----- keyboard, mobile, IME, XSS -----------------------------------------------------------------------------------------------
def test_keyboard_only_end_to_end(live, new_page):
    page = new_page()
    page.goto(live.url + "/")
    for _ in range(40):
        page.keyboard.press("Tab")
        if "launcher" in active(page).get("cls", ""):
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    assert page.locator(f"{W} .panel").is_visible()
    assert active(page)["cls"] == "btn notice-ok"
    page.keyboard.press("Enter")
    assert active(page)["id"] == "cp-input"
    page.keyboard.type("残業が続いて疲れている")
    page.keyboard.press("Enter")
    wait_answer(page, 2)
    expect(page.locator(f"{W} #cp-live")).to_contain_text("回答が届きました")
    # Back from the text box into the answer, to a follow-up chip, and send it with the keyboard.
    for _ in range(40):
        page.keyboard.press("Shift+Tab")
        if active(page).get("text") == "成功事例を教えて":
            break
    else:
        pytest.fail("the follow-up chips are not reachable with the keyboard")
    page.keyboard.press("Enter")
    wait_answer(page, 3)
    assert page.locator(f"{W} .msg.user .bubble").last.inner_text() == "成功事例を教えて"
    # A step of the checklist toggles with Space.
    page.locator(f"{W} #cp-input").focus()
    page.keyboard.press("Escape")
    assert not page.locator(f"{W} .panel").is_visible()
    assert "launcher" in active(page)["cls"]  # focus returns to the launcher
    assert page.locator(f"{W} .launcher").get_attribute("aria-expanded") == "false"
    page.keyboard.press("Enter")
    assert active(page)["id"] == "cp-input"  # notice already seen: straight to the text box


def test_mobile_full_screen(live, new_page, artifacts):
    page = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(live.url + "/")
    page.locator(f"{W} .launcher").tap()
    panel = page.locator(f"{W} .panel")
    box = panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}
    assert not page.locator(f"{W} .launcher").is_visible()  # covered: the panel has its own close button
    assert page.locator(f"{W} #cp-input").evaluate("e => getComputedStyle(e).fontSize") == "16px"  # no zoom on focus
    styles = page.evaluate(f"() => {ROOT_JS}.querySelector('style').textContent")
    for inset in ("safe-area-inset-top", "safe-area-inset-bottom", "safe-area-inset-left", "safe-area-inset-right"):
        assert inset in styles
    assert "viewport-fit=cover" in page.locator("meta[name=viewport]").get_attribute("content")
    artifacts(page, "mobile-01-first-visit-notice")
    page.locator(f"{W} .notice-ok").tap()
    send(page, "急な引き継ぎで顧客対応が追いつかない")
    artifacts(page, "mobile-02-answer")
    send(page, "もう死にたいです")
    tel = page.locator(f"{W} .msg.bot").last.locator("a.tel").first
    assert tel.get_attribute("href").startswith("tel:0120")
    assert tel.evaluate("e => e.getBoundingClientRect().height") >= 32  # a real tap target
    artifacts(page, "mobile-03-help-lines")
    page.locator(f"{W} .hbtn.close").tap()
    assert page.locator(f"{W} .launcher").is_visible()


def test_enter_during_ime_composition_never_sends(live, new_page):
    page = new_page()
    open_widget(page, live.url + "/")
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" and "/messages" in r.url else None)
    box = page.locator(f"{W} #cp-input")
    box.fill("ひきつぎ")
    # Dispatched composition events: the confirming Enter (Chrome: isComposing; Safari: keyCode 229 after the end).
    box.evaluate(
        """el => {
            const enter = (extra) => el.dispatchEvent(new KeyboardEvent('keydown',
                Object.assign({key: 'Enter', code: 'Enter', bubbles: true, cancelable: true}, extra)));
            el.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
            enter({isComposing: true});
            enter({keyCode: 229});
            enter({});  // between compositionstart and compositionend, even without the flags
            el.dispatchEvent(new CompositionEvent('compositionend', {data: '引き継ぎ'}));
            enter({keyCode: 229});
        }"""
    )
    # And a real composition through Chromium's IME API, confirmed with a real Enter key press.
    cdp = page.context.new_cdp_session(page)
    box.focus()
    cdp.send("Input.imeSetComposition", {"selectionStart": 2, "selectionEnd": 2, "text": "へん"})
    page.keyboard.press("Enter")
    cdp.send("Input.insertText", {"text": "変"})
    page.wait_for_timeout(300)
    assert posted == [] and page.locator(f"{W} .msg.user").count() == 0
    # Shift+Enter is a new line; Enter (no composition) sends; the send button works too.
    box.fill("引き継ぎが大変です")
    box.press("Shift+Enter")
    box.press_sequentially("助けて")
    assert box.input_value() == "引き継ぎが大変です\n助けて"
    assert posted == []
    box.press("Enter")
    wait_answer(page, 2)
    assert page.locator(f"{W} .msg.user .bubble").last.inner_text() == "引き継ぎが大変です\n助けて"
    box.fill("次のステップは？")
    page.locator(f"{W} .send").click()
    wait_answer(page, 3)
    assert len(posted) == 2


def test_markup_in_a_message_is_shown_as_typed(live, new_page):
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_widget(page, live.url + "/")
    attack = "<img src=x onerror=alert(1)>"
    send(page, attack)
    assert page.locator(f"{W} .msg.user .bubble").last.inner_text() == attack
    page.reload()
    page.locator(f"{W} .msg.user").first.wait_for()
    assert page.locator(f"{W} .msg.user .bubble").last.inner_text() == attack
    assert page.evaluate(f"() => {ROOT_JS}.querySelectorAll('img, script:not([src])').length") == 0
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert dialogs == []


# ----- limits, errors, offline -------------------------------------------------------------------------------------------------
def test_a_429_shows_a_friendly_message_and_retry_works_after_the_wait(make_server, new_page, artifacts):
    server = make_server(web_rate_limit_visitor=1, web_rate_limit_window=3)
    page = new_page()
    open_widget(page, server.url + "/")
    send(page, "残業が続いて疲れている")
    box = page.locator(f"{W} #cp-input")
    box.fill("もっと詳しく")
    box.press("Enter")
    error = page.locator(f"{W} .msg.bot").last.locator(".error")
    error.wait_for()
    assert error.get_attribute("data-status") == "429"
    assert "秒ほど待って" in error.inner_text()
    retry = error.locator("button.retry")
    assert retry.is_disabled() and "あと" in retry.inner_text()  # counts down the Retry-After
    expect(page.locator(f"{W} #cp-alert")).to_contain_text("秒ほど待って")
    artifacts(page, "desktop-05-rate-limited")
    page.wait_for_function(f"() => !{ROOT_JS}.querySelector('.error button.retry').disabled", timeout=10_000)
    retry.click()
    wait_answer(page, 3)
    assert page.locator(f"{W} .msg.bot").last.locator(".error").count() == 0
    assert page.locator(f"{W} .msg.user").count() == 2  # the retry did not add the message twice


def test_an_outage_shows_its_message_and_counts_down_before_the_retry(make_server, new_page):
    """The server's outage answer (503, a sentence, Retry-After: bot.api.main) as the widget receives it; the server
    side is tested in tests/api. The retry waits out the Retry-After, then the message is answered once."""
    import json

    from bot.outages import WEB_UNAVAILABLE_MESSAGE

    server = make_server()  # its own server: the shared one's per-IP message budget belongs to the other tests
    page = new_page()
    open_widget(page, server.url + "/")
    body = json.dumps({"error": "unavailable", "message": WEB_UNAVAILABLE_MESSAGE}, ensure_ascii=False)
    page.route(
        "**/messages/stream",
        lambda route: route.fulfill(
            status=503, headers={"Retry-After": "2"}, content_type="application/json", body=body
        ),
    )
    box = page.locator(f"{W} #cp-input")
    box.fill("転職するか迷っている")
    box.press("Enter")
    error = page.locator(f"{W} .msg.bot").last.locator(".error")
    error.wait_for()
    assert error.get_attribute("data-status") == "503"
    assert WEB_UNAVAILABLE_MESSAGE in error.inner_text()
    retry = error.locator("button.retry")
    assert retry.is_disabled() and "あと" in retry.inner_text()
    page.unroute("**/messages/stream")
    page.wait_for_function(f"() => !{ROOT_JS}.querySelector('.error button.retry').disabled", timeout=10_000)
    retry.click()
    answer = page.locator(f"{W} .msg.bot").last
    answer.locator("h3").first.wait_for()  # the retried message is answered in the same bubble
    assert answer.locator(".error").count() == 0
    assert page.locator(f"{W} .msg.user").count() == 1


def test_network_errors_offer_a_retry_and_offline_is_shown(live, new_page, artifacts):
    page = new_page()
    open_widget(page, live.url + "/")
    page.route("**/messages/stream", lambda route: route.abort())
    box = page.locator(f"{W} #cp-input")
    box.fill("転職するか迷っている")
    box.press("Enter")
    error = page.locator(f"{W} .msg.bot").last.locator(".error")
    error.wait_for()
    assert "接続できませんでした" in error.inner_text()
    page.unroute("**/messages/stream")
    error.locator("button.retry").click()
    wait_answer(page, 2)
    assert page.locator(f"{W} .msg.bot").last.locator("h3").count() == 3

    page.context.set_offline(True)
    banner = page.locator(f"{W} .banner.offline")
    banner.wait_for(state="visible")
    assert page.locator(f"{W} .send").get_attribute("aria-disabled") == "true"
    box.fill("次のステップは？")
    box.press("Enter")
    assert box.input_value() == "次のステップは？"  # kept, not lost
    expect(page.locator(f"{W} #cp-alert")).to_contain_text("オフライン")
    artifacts(page, "desktop-06-offline")
    page.context.set_offline(False)
    banner.wait_for(state="hidden")
    box.press("Enter")
    wait_answer(page, 3)

    # The connection breaks after the server took the message (its answer is stored): the widget finds the answer
    # in the history instead of offering a retry that would send the message twice.
    def cut_after_accepted(route) -> None:
        body = route.fetch().text()  # the real server answers (and stores the turn)
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body.split("event: section")[0])

    page.route("**/messages/stream", cut_after_accepted)
    box.fill("成功事例を教えて")
    box.press("Enter")
    wait_answer(page, 4)
    last = page.locator(f"{W} .msg.bot").last
    assert last.locator(".error").count() == 0 and last.locator(".empathy").count() == 1
    assert page.locator(f"{W} .msg.user").count() == 3


# ----- another origin -------------------------------------------------------------------------------------------------------------
def embed_page(api_url: str) -> str:
    return f"""<!doctype html><html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover"><title>他社メディアの記事</title>
<style>* {{ all: unset; }} body {{ display: block; font: 20px serif; }}</style></head>
<body><h1>転職を考えはじめたら読む記事</h1><p>本文…</p>
<script src="{api_url}/widget.js" data-title="外部メディアの相談窓口" data-accent="#ffcc00" data-position="left" defer></script>
</body></html>"""


def test_the_widget_embedded_on_another_origin(live, host_pages, new_page, artifacts):
    host_pages.html = embed_page(live.url)
    page = new_page()
    open_widget(page, host_pages.origin("localhost") + "/article.html")
    assert page.locator(f"{W} #cp-title").inner_text() == "外部メディアの相談窓口"
    # A light accent gets dark text: contrast stays AA whatever colour the operator picks.
    assert page.locator(f"{W} #cp-title").evaluate("e => getComputedStyle(e).color") == "rgb(17, 17, 17)"
    assert page.locator(f"{W} .panel").bounding_box()["x"] < 100  # data-position="left"
    send(page, "転職するか迷っている")
    artifacts(page, "desktop-07-embedded-other-origin")

    # The same page on an origin that is not in WEB_ALLOWED_ORIGINS: the browser blocks the API, the widget says so.
    other = new_page()
    open_widget(other, host_pages.origin("127.0.0.1") + "/article.html")
    box = other.locator(f"{W} #cp-input")
    box.fill("転職するか迷っている")
    box.press("Enter")
    other.locator(f"{W} .msg.bot").last.locator(".error").wait_for()
    assert "接続できませんでした" in other.locator(f"{W} .msg.bot").last.inner_text()


def test_a_question_shows_the_direct_answer_before_the_plan(live, new_page):
    page = new_page()
    open_widget(page, live.url + "/")
    send(page, "退職って何か月前に言えばいい？")
    last = page.locator(f"{W} .msg.bot").last
    direct = last.locator(".part.direct")
    assert direct.count() == 1
    assert "Q. " in direct.inner_text() and "A. " in direct.inner_text()
    order = page.evaluate(
        f"""() => {{
            const all = {ROOT_JS}.querySelectorAll('.msg.bot');
            const parts = [...all[all.length - 1].querySelectorAll('.part')].map(p => p.className);
            return parts;
        }}"""
    )
    assert order[0] == "part direct" and any("analysis" in c for c in order[1:])


def test_a_labour_question_shows_the_general_rule_before_the_note_and_help_lines(make_server, new_page):
    # Its own server: the module's server has by now seen more new conversations from 127.0.0.1 in a minute than
    # the per-IP limit allows (the widget then shows its rate-limit message instead of the answer).
    server = make_server(web_rate_limit_ip_conversations=100, web_rate_limit_ip_messages=100)
    page = new_page()
    open_widget(page, server.url + "/")
    send(
        page,
        "みなし残業30時間込みと言われていますが、毎月50時間以上残業して超過分は一度も払われていません。これって違法ですよね？",
    )
    last = page.locator(f"{W} .msg.bot").last
    assert last.locator(".escalation").count() == 1, "a labour-law question still lists the help lines"
    sections = page.evaluate(
        f"""() => {{
            const all = {ROOT_JS}.querySelectorAll('.msg.bot');
            return [...all[all.length - 1].querySelectorAll('[data-section]')].map(p => p.dataset.section);
        }}"""
    )
    assert sections[0] == "direct_answer" and sections[1] == "escalation"
    assert "一般的な情報" in last.locator(".escalation").inner_text()
