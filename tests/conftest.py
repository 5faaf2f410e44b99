"""Shared fixtures. Tests never read ../shared: what they need is copied into tests/fixtures/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KNOWLEDGE = ROOT / "knowledge"
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def knowledge_dir() -> Path:
    return KNOWLEDGE
