"""Helpers for the console tests: operators, a signed-in browser, reading the CSRF token off a page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from bot.console.auth import Auth

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_operator(store: Any, username: str, role: str = "consultant", password: str = PASSWORD) -> None:
    assert Auth(store).add_operator(username, password, role)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


class Operator:
    """One operator's browser: its own cookie jar on the app, or the given client's (a LINE push must run in the
    event loop the app's LINE client lives in, the one its own TestClient started)."""

    def __init__(self, app: Any, username: str, password: str = PASSWORD) -> None:
        self.client = app if isinstance(app, TestClient) else TestClient(app)
        self.username = username
        self.password = password

    def login(self, password: str | None = None) -> Any:
        page = self.client.get("/console/login")
        assert page.status_code == 200
        return self.client.post(
            "/console/login",
            data={"csrf": csrf_of(page.text), "username": self.username, "password": password or self.password},
            follow_redirects=False,
        )

    def page(self, path: str) -> Any:
        return self.client.get(path, follow_redirects=False)

    def post(self, path: str, form_page: str, **fields: str) -> Any:
        """Post a form the way the browser does: with the CSRF token of the page it came from."""
        page = self.client.get(form_page)
        assert page.status_code == 200, page.text
        return self.client.post(path, data={"csrf": csrf_of(page.text), **fields}, follow_redirects=False)
