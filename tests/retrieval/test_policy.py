"""The topic decision a user notices: a sure answer, an answer with 「もしかして」 alternatives, or a question."""

from __future__ import annotations

from bot.retrieval.policy import CLARIFY_BELOW, SURE, decide
from bot.retrieval.retriever import ArticleHit, RetrievalResult


def result(confidence: float, *scored: tuple[str, float]) -> RetrievalResult:
    hits = [ArticleHit(f"{topic}-article", topic, topic, score) for topic, score in scored]
    return RetrievalResult(hits, confidence)


def test_sure_answers_alone() -> None:
    assert decide(result(SURE + 0.1, ("transfer", 0.80), ("job-change-decision", 0.79))).action == "answer"


def test_unsure_answers_and_offers_the_close_runners_up_of_other_topics() -> None:
    decision = decide(
        result(
            (SURE + CLARIFY_BELOW) / 2,
            ("transfer", 0.80),
            ("transfer", 0.79),  # the same topic's other article is no alternative
            ("job-change-decision", 0.78),
            ("resignation", 0.77),
            ("overwork", 0.60),  # far below: noise, not an alternative
        )
    )
    assert decision.action == "answer_with_alternatives"
    assert decision.alternatives == ["job-change-decision", "resignation"]


def test_unsure_without_a_close_runner_up_just_answers() -> None:
    decision = decide(result((SURE + CLARIFY_BELOW) / 2, ("transfer", 0.80), ("overwork", 0.60)))
    assert decision.action == "answer" and decision.alternatives == []


def test_lost_asks() -> None:
    assert decide(result(CLARIFY_BELOW - 0.01, ("transfer", 0.5))).action == "clarify"
    assert decide(RetrievalResult([], 0.0)).action == "clarify"
