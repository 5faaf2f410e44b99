"""Webhook signatures against LINE's official test vectors, and agreement with the SDK's validator."""

from __future__ import annotations

import json

import pytest
from linebot.v3.webhook import SignatureValidator

from bot.channels.line.webhook import verify_signature


@pytest.fixture(scope="module")
def vectors(fixtures_dir) -> list[dict[str, str]]:
    data = json.loads((fixtures_dir / "line" / "line-developers-docs" / "signature-test-vectors.json").read_text())
    return data["vectors"]


def test_official_vectors_verify(vectors) -> None:
    assert len(vectors) >= 2
    for vector in vectors:
        body = vector["body"].encode("utf-8")
        assert verify_signature(vector["channel_secret"], body, vector["x_line_signature"])
        # The SDK's own validator agrees (it works on text; we verify the raw bytes).
        assert SignatureValidator(vector["channel_secret"]).validate(vector["body"], vector["x_line_signature"])


def test_any_change_breaks_the_signature(vectors) -> None:
    vector = vectors[0]
    body = vector["body"].encode("utf-8")
    good = vector["x_line_signature"]
    assert not verify_signature(vector["channel_secret"], body + b" ", good)
    assert not verify_signature(vector["channel_secret"] + "x", body, good)
    assert not verify_signature(vector["channel_secret"], body, good[:-2] + "A=")
    assert not verify_signature(vector["channel_secret"], body, "")
    assert not verify_signature(vector["channel_secret"], body, None)
    assert not verify_signature(vector["channel_secret"], body, "署名")  # non-ASCII header value: False, no crash


def test_signature_is_over_raw_bytes_not_a_reencoding(vectors) -> None:
    # The same JSON re-serialised (spacing, escapes) is a different body: only the exact bytes LINE signed verify.
    vector = vectors[0]
    reencoded = json.dumps(json.loads(vector["body"]), indent=1).encode()
    assert not verify_signature(vector["channel_secret"], reencoded, vector["x_line_signature"])
