"""Request and response models of the web API (they are what the OpenAPI schema documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from bot.answer.model import Answer, Source
from bot.channels.edge import clean_text


def _clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


# What a client sends is cleaned at the door, before pydantic's own checks (which refuse a lone surrogate as soon as
# a length constraint applies): `"\ud800"` is valid JSON and becomes U+FFFD instead of failing a write later.
CleanStr = Annotated[str, BeforeValidator(_clean)]
# Row ids are 64-bit signed integers in both databases; anything larger can name no row (422, not an overflow).
MAX_ROW_ID = 2**63 - 1

SOURCES_LABEL = "参考にした記事："  # the rendered sources line (bot.answer.render) names the cited articles


class ErrorBody(BaseModel):
    """Every error: a stable code for programs and a Japanese sentence a widget can show as is."""

    error: str = Field(examples=["rate_limited"])
    message: str = Field(examples=["送信が続いたため、少し時間をおいてからお試しください。"])


class WebSource(Source):
    url: str | None = Field(default=None, description="Link to the article when WEB_ARTICLE_URL_TEMPLATE is set")
    cited: bool = Field(default=False, description="The answer was built from this article (show it as the source)")


class WebAnswer(Answer):
    """The engine's answer model, with article links on the sources."""

    sources: list[WebSource] = Field(default_factory=list)  # type: ignore[assignment]


class NewConversation(BaseModel):
    conversation_id: str = Field(description="`web:` and 32 random characters; bound to the visitor token that made it")


class MessageIn(BaseModel):
    text: CleanStr = Field(
        description="The visitor's message (or a follow-up chip's text); limit WEB_MAX_MESSAGE_CHARS"
    )


class HandoffInfo(BaseModel):
    """The conversation is (or was) with a career consultant."""

    status: Literal["waiting", "active", "closed"] = Field(
        description="waiting: queued for a consultant; active: a consultant holds it; closed: the bot answers again"
    )
    reception_open: bool = Field(description="Consultants read the queue now (HANDOFF_HOURS)")


class ChatReply(BaseModel):
    conversation_id: str
    turn_id: int = Field(description="The bot turn's id, for feedback (0 when nothing was stored)")
    answer: WebAnswer
    conversation_deleted: bool = Field(
        default=False, description="The message asked to delete the data: the conversation is gone, start a new one"
    )
    held: bool = Field(
        default=False,
        description="A consultant holds the conversation: the message went to them and the bot does not answer "
        "(show no answer; the consultant's reply arrives in the history)",
    )
    handoff: HandoffInfo | None = Field(
        default=None, description="Set while the conversation is queued for or held by a consultant, or was"
    )


class HistoryMessage(BaseModel):
    id: int
    role: Literal["user", "bot", "consultant"] = Field(description="`consultant`: a career consultant's reply")
    text: str
    answer: WebAnswer | None = None
    created_at: datetime


class History(BaseModel):
    conversation_id: str
    messages: list[HistoryMessage]
    done_steps: list[str] = Field(default_factory=list, description="Action-plan steps the visitor checked off")
    handoff: HandoffInfo | None = Field(
        default=None, description="Set while a consultant is involved: poll `?after=` for their replies until closed"
    )


class FeedbackIn(BaseModel):
    turn_id: int = Field(ge=1, le=MAX_ROW_ID)
    helpful: bool
    comment: CleanStr | None = Field(default=None, description="Optional; at most 1000 characters")


class FeedbackOut(BaseModel):
    feedback_id: int
    notice: str | None = Field(
        default=None, description="What happens next, when a 'not helpful' put the conversation in a consultant's queue"
    )


class StepIn(BaseModel):
    step: CleanStr = Field(min_length=1, max_length=200, description="The step's text as shown in the checklist")


class StepsOut(BaseModel):
    done_steps: list[str]


class WidgetConfig(BaseModel):
    max_message_chars: int
    article_links: bool
    poll_seconds: float = Field(default=3.0, description="How often the widget asks for a consultant's replies")


def web_answer(answer: Answer | dict[str, Any], url_template: str) -> WebAnswer:
    """The answer with each source's link (when configured) and whether the answer cites it."""
    data = answer.model_dump(mode="json") if isinstance(answer, Answer) else dict(answer)
    result = WebAnswer.model_validate(data)
    # Answers stored before `cited` existed name their articles only on the text's sources line.
    line = next((ln for ln in result.text.splitlines() if ln.startswith(SOURCES_LABEL)), "")
    for source in result.sources:
        source.cited = source.article_id in result.cited if result.cited else f"「{source.title}」" in line
        source.url = article_url(url_template, source.article_id, source.topic)
    return result


def article_url(template: str, article_id: str, topic: str) -> str | None:
    if not template:
        return None
    try:
        url = template.format(article_id=article_id, topic=topic, id=article_id)
    except (KeyError, IndexError, ValueError):
        return None
    return url if url.startswith(("https://", "http://", "/")) else None
