"""Marked example sentences in advice items: the case shown only to someone who shares it.

An item states what applies to anyone in the situation; it may end with one or more example sentences marked
「例：」 (「例：営業で得意先を引き継いだなら、…」) that carry a particular case's words. A reader who never mentioned that
case must not be told it, so the composer keeps an example only when the message shares one of its own distinctive
words (words the rest of the item does not use, and rare enough in the library to name something specific).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

EXAMPLE_MARK = "例："
# idf (bot.answer.grounded.ItemRanker, over the library's ~1,200 items) a shared word needs to count: used by at most
# about four items. At 3.0 (about 60 items) 「毎年」「時期」「電話」 showed the tender example to anyone who typed them.
EXAMPLE_MIN_IDF = 5.5


def _sentences(text: str) -> list[str]:
    from bot.answer.grounded import sentences

    return sentences(text)


def split_examples(text: str) -> tuple[str, list[str]]:
    """`text` without its marked example sentences, and those sentences."""
    if EXAMPLE_MARK not in text:
        return text, []
    general: list[str] = []
    examples: list[str] = []
    for sentence in _sentences(text):
        (examples if sentence.strip().startswith(EXAMPLE_MARK) else general).append(sentence)
    return "".join(general).strip(), [e.strip() for e in examples]


def fitting_examples(
    examples: list[str],
    general: str,
    message_tokens: Iterable[str],
    tokens: Callable[[str], Iterable[str]],
    idf: Callable[[str], float],
) -> list[str]:
    """The example sentences whose own distinctive words (not in the item's `general` text) the message shares."""
    said = frozenset(message_tokens)
    general_words = frozenset(tokens(general))
    return [
        example
        for example in examples
        if any(
            len(t) >= 2 and idf(t) >= EXAMPLE_MIN_IDF
            for t in (frozenset(tokens(example.removeprefix(EXAMPLE_MARK))) - general_words) & said
        )
    ]
