"""The widget script and the demo page as served, and what the widget's source must never do."""

from __future__ import annotations

import re
from pathlib import Path

import bot.web

WEB = Path(bot.web.__file__).parent


def test_the_widget_script_is_served_for_embedding(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.content == (WEB / "widget.js").read_bytes()


def test_the_demo_page_embeds_the_widget_with_one_tag(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    tags = re.findall(r"<script[^>]*>", response.text)
    assert tags == ['<script src="/widget.js" data-title="キャリア相談パートナー" data-accent="#0b6e4f" defer>']
    assert 'lang="ja"' in response.text and "viewport-fit=cover" in response.text


def test_the_widget_source_keeps_its_rules():
    source = (WEB / "widget.js").read_text(encoding="utf-8")
    # Comments may name what is forbidden; the code may not use it.
    code = re.sub(r"(?<![:\\])//.*$", "", re.sub(r"/\*.*?\*/", "", source, flags=re.S), flags=re.M)
    assert "innerHTML" not in code and "outerHTML" not in code and "insertAdjacentHTML" not in code
    assert "document.write" not in code and "eval(" not in code and "new Function" not in code
    assert "attachShadow" in code
    # No dependency fetched from elsewhere: the only absolute URL is the SVG namespace.
    assert set(re.findall(r"https?://[^\s\"')]+", code)) == {"http://www.w3.org/2000/svg"}
    assert "import " not in code and "require(" not in code
