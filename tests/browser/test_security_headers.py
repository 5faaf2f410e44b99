"""Security headers as Chromium enforces them: the demo page works under its CSP, an injected inline script does
not run, the page cannot be framed by another site, and the private API is not cached."""

from __future__ import annotations

import pytest
from test_widget import open_widget, send

pytestmark = pytest.mark.browser


def test_the_demo_page_runs_the_widget_under_its_csp_and_blocks_inline_script(new_page, live) -> None:
    page = new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(live.url + "/")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["server"] == "web", "a neutral Server header, not the software's name"
    # The widget (an external script, styles in its Shadow DOM) works under the policy: a real answer comes back.
    open_widget(page, live.url + "/")
    send(page, "上司とうまくいきません")
    assert violations == [], violations
    # Script injected into the page (what an XSS would do) is refused by the browser.
    ran = page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';
                   document.body.appendChild(s); return window.__pwned === 1; }"""
    )
    assert ran is False
    assert any("inline script" in v for v in violations)


def test_another_site_cannot_frame_the_page(new_page, live, host_pages) -> None:
    host_pages.html = f'<!doctype html><title>frame</title><iframe id="f" src="{live.url}/"></iframe>'
    page = new_page()
    page.goto(host_pages.origin("localhost"))
    page.wait_for_timeout(1500)
    framed = [f for f in page.frames if f != page.main_frame]
    assert framed, "the iframe exists"
    # Chromium shows its own "refused to connect" page in the frame instead of ours.
    texts = [f.evaluate("() => document.body ? document.body.innerText : ''") for f in framed]
    assert all("引き継ぎ" not in t for t in texts), texts


def test_private_api_responses_are_not_cached(new_page, live) -> None:
    page = new_page()
    page.goto(live.url + "/")
    result = page.evaluate(
        """async () => {
            const token = 'T'.repeat(40);
            const made = await fetch('/api/conversations', {method: 'POST', headers: {'X-Visitor-Token': token}});
            const {conversation_id} = await made.json();
            const history = await fetch(`/api/conversations/${conversation_id}/messages`,
                                        {headers: {'X-Visitor-Token': token}});
            return {made: made.headers.get('cache-control'), history: history.headers.get('cache-control')};
        }"""
    )
    assert result == {"made": "no-store", "history": "no-store"}
