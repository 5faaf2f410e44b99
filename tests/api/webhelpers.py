"""Helpers for the web API tests (a visitor with its token; an SSE parser)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi.testclient import TestClient


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Visitor:
    """One browser: a token, and helpers that send it."""

    def __init__(self, client: TestClient, token: str | None = None) -> None:
        self.client = client
        self.token = token or new_token()
        self.headers = {"X-Visitor-Token": self.token}

    def start(self) -> str:
        response = self.client.post("/api/conversations", headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["conversation_id"])

    def send(self, conversation_id: str, text: str, **kwargs: Any) -> Any:
        return self.client.post(
            f"/api/conversations/{conversation_id}/messages", headers=self.headers, json={"text": text}, **kwargs
        )

    def stream(self, conversation_id: str, text: str) -> Any:
        return self.client.post(
            f"/api/conversations/{conversation_id}/messages/stream", headers=self.headers, json={"text": text}
        )

    def history(self, conversation_id: str) -> Any:
        return self.client.get(f"/api/conversations/{conversation_id}/messages", headers=self.headers)


def parse_sse(body: str) -> list[tuple[str, Any]]:
    """[(event, data)] in order; comments come back as ("comment", text)."""
    events: list[tuple[str, Any]] = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            events.append((event, json.loads("\n".join(data))))
    return events
