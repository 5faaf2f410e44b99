"""Browser fixtures: Debian's Chromium through Python Playwright (no `playwright install`), real uvicorn servers.

Our own `sync_playwright()` fixture, module-scoped: pytest-playwright would break the pytest-asyncio tests that run
after it. Without Chromium the tests skip locally and FAIL in CI (env CI set): a missing browser must not look green.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from live_server import LiveServer

from bot.api.main import create_app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
URL_TEMPLATE = "https://media.example.com/articles/{article_id}"


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed (apt-get install chromium fonts-noto-cjk, or `make test-deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def url_template() -> str:
    return URL_TEMPLATE


@pytest.fixture(scope="module")
def web_services(tmp_path_factory, index_settings, searcher):
    """One engine and store for the module's servers (a fresh database of its own)."""
    from bot.dialogue.factory import build_engine

    data_dir = tmp_path_factory.mktemp("browser-data")
    settings = index_settings.model_copy(
        update={"data_dir": data_dir, "models_path": index_settings.models_dir, "chroma_path": ROOT / "data" / "chroma"}
    )
    built = build_engine(settings, searcher=searcher)
    yield settings, built
    built.store.close()


class HostPages:
    """Another site (another origin) whose article page embeds the widget from the bot's server."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>empty</title>"
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def origin(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}"


@pytest.fixture(scope="module")
def host_pages() -> Iterator[HostPages]:
    pages = HostPages()
    pages.thread.start()
    yield pages
    pages.httpd.shutdown()
    pages.httpd.server_close()


@pytest.fixture(scope="module")
def live(web_services, host_pages) -> Iterator[LiveServer]:
    """The bot as `make run` serves it, with article links and the other site's origin allowed."""
    settings, services = web_services
    settings = settings.model_copy(
        update={
            "web_article_url_template": URL_TEMPLATE,
            "web_allowed_origins": host_pages.origin("localhost"),
            "web_heartbeat_seconds": 2.0,
        }
    )
    with LiveServer(create_app(settings, services=services)) as server:
        yield server


@pytest.fixture
def make_server(web_services) -> Iterator[Callable[..., LiveServer]]:
    """Another server on the same engine with other settings (e.g. tight rate limits)."""
    servers: list[LiveServer] = []

    def make(**updates: Any) -> LiveServer:
        settings, services = web_services
        server = LiveServer(create_app(settings.model_copy(update=updates), services=services)).__enter__()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., Any]]:
    """`new_page(**context_options)`: a page in a fresh context (empty localStorage); page errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        options.setdefault("locale", "ja-JP")
        context = browser.new_context(**options)
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(exist_ok=True)

    def shoot(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return shoot
