"""One typed settings object, read from the environment and `.env` (names are a public contract)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Server
    host: str = Field(default="127.0.0.1", alias="HOST")
    port: int = Field(default=8000, alias="PORT")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # "production" turns off what only helps a developer (the Swagger UI at /docs, which loads from a CDN).
    environment: Literal["development", "production"] = Field(default="development", alias="ENVIRONMENT")
    api_docs: bool | None = Field(default=None, alias="API_DOCS")  # unset: on in development, off in production

    # Content
    knowledge_dir: Path = Field(default=PROJECT_ROOT / "knowledge", alias="KNOWLEDGE_DIR")
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts", alias="PROMPTS_DIR")
    data_dir: Path = Field(default=PROJECT_ROOT / "data", alias="DATA_DIR")
    # Labelled data the learned parts are built from (`bot models build`); not read at serve time.
    training_dir: Path = Field(default=PROJECT_ROOT / "training", alias="TRAINING_DIR")
    models_path: Path | None = Field(default=None, alias="MODELS_DIR")

    # LINE (optional: without them the web chat still works and the webhook answers 503)
    line_channel_secret: SecretStr | None = Field(default=None, alias="LINE_CHANNEL_SECRET")
    line_channel_access_token: SecretStr | None = Field(default=None, alias="LINE_CHANNEL_ACCESS_TOKEN")
    line_api_base_url: str = Field(default="https://api.line.me", alias="LINE_API_BASE_URL")
    line_request_timeout: float = Field(default=10.0, alias="LINE_REQUEST_TIMEOUT")
    # In groups and rooms the bot answers only when mentioned or when a message contains this keyword ("" = mention only).
    line_group_keyword: str = Field(default="#相談", alias="LINE_GROUP_KEYWORD")
    line_worker_concurrency: int = Field(default=8, ge=1, alias="LINE_WORKER_CONCURRENCY")
    # A claimed inbox event whose worker went silent this long is taken over (crashed process).
    # A live worker renews its claims every quarter of this; a dead worker's events are taken over after it.
    line_inbox_stale_seconds: float = Field(default=20.0, gt=0, alias="LINE_INBOX_STALE_SECONDS")
    # How long an event is retried (outages of Chroma, the database, LINE) before one apology is pushed instead.
    line_retry_budget_seconds: float = Field(default=600.0, gt=0, alias="LINE_RETRY_BUDGET_SECONDS")
    line_inbox_poll_seconds: float = Field(default=1.0, gt=0, alias="LINE_INBOX_POLL_SECONDS")
    # Reply tokens last about a minute after the webhook arrives; past this age the answer is pushed instead.
    line_reply_window_seconds: float = Field(default=50.0, ge=0, alias="LINE_REPLY_WINDOW_SECONDS")
    line_send_attempts: int = Field(default=4, ge=1, le=10, alias="LINE_SEND_ATTEMPTS")
    line_retry_base_seconds: float = Field(default=0.5, ge=0, alias="LINE_RETRY_BASE_SECONDS")

    # Storage
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    chroma_path: Path | None = Field(default=None, alias="CHROMA_PATH")
    chroma_host: str | None = Field(default=None, alias="CHROMA_HOST")
    chroma_port: int = Field(default=8000, alias="CHROMA_PORT")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    # The job postings' semantic index: its own Chroma collection beside the articles' (bot.jobs.index).
    jobs_collection: str = Field(default="job_postings", alias="JOBS_COLLECTION")

    # Embeddings: the default is the offline e5 rebuild; any sentence-transformers path or hub name works.
    embedding_model: str | None = Field(default=None, alias="EMBEDDING_MODEL")
    embedding_threads: int = Field(default=2, alias="EMBEDDING_THREADS")
    # Queries through the domain-tuned e5 (`bot models tune`) when true and built. Off by default: measured, the tuned
    # query side is not yet better on the test split (issue 12's note); the base model is what ships.
    embedding_tuned: bool = Field(default=False, alias="EMBEDDING_TUNED")
    # The topic head (`bot models build`) adds its topic probability to the search's scores; off: the search alone.
    topic_head: bool = Field(default=True, alias="TOPIC_HEAD")
    # Which of a topic's articles fits the message's situation (bot.retrieval.topic_head, the article head).
    article_head: bool = Field(default=True, alias="ARTICLE_HEAD")
    # Where `bot models build` keeps tuned weights by fingerprint, outside the checkout, so a fresh clone on the same
    # machine (CI) copies them instead of training again; empty turns the cache off.
    tune_cache_dir: Path | None = Field(
        default=Path.home() / ".cache" / "career-partner-bot" / "tuned-e5", alias="TUNE_CACHE_DIR"
    )
    # Weight of the Universal Sentence Encoder in the fused vector (0 turns it off); the primary model gets 0.5.
    embedding_use_weight: float = Field(default=0.5, alias="EMBEDDING_USE_WEIGHT")

    # Optional LLM rewrite (any OpenAI-compatible endpoint)
    llm_base_url: str | None = Field(default=None, alias="LLM_BASE_URL")
    llm_model: str | None = Field(default=None, alias="LLM_MODEL")
    llm_api_key: SecretStr | None = Field(default=None, alias="LLM_API_KEY")
    llm_timeout: float = Field(default=20.0, alias="LLM_TIMEOUT")

    # Web chat
    web_allowed_origins: str = Field(default="", alias="WEB_ALLOWED_ORIGINS")
    # Sources become links when set, e.g. "https://media.example.com/articles/{article_id}" ({topic} works too).
    web_article_url_template: str = Field(default="", alias="WEB_ARTICLE_URL_TEMPLATE")
    web_max_message_chars: int = Field(default=2000, alias="WEB_MAX_MESSAGE_CHARS")  # longer: 413
    web_max_body_bytes: int = Field(default=32768, alias="WEB_MAX_BODY_BYTES")  # any /api/ request body: 413
    # Rate limits per fixed window (in-process, or Redis): messages per visitor and per client IP, new conversations
    # per IP, and API requests per IP with valid and invalid ones counted apart (bot.channels.web.budget).
    web_rate_limit_window: float = Field(default=60.0, alias="WEB_RATE_LIMIT_WINDOW")
    web_rate_limit_visitor: int = Field(default=12, alias="WEB_RATE_LIMIT_VISITOR")
    web_rate_limit_ip: int = Field(default=120, alias="WEB_RATE_LIMIT_IP")
    web_rate_limit_ip_invalid: int = Field(default=30, alias="WEB_RATE_LIMIT_IP_INVALID")
    web_rate_limit_ip_messages: int = Field(default=30, alias="WEB_RATE_LIMIT_IP_MESSAGES")
    web_rate_limit_ip_conversations: int = Field(default=10, alias="WEB_RATE_LIMIT_IP_CONVERSATIONS")
    web_rate_limit_prefix: str = Field(default="career-partner:ratelimit:", alias="WEB_RATE_LIMIT_PREFIX")
    web_heartbeat_seconds: float = Field(default=10.0, alias="WEB_HEARTBEAT_SECONDS")  # SSE keep-alive comments

    # Handoff to a career consultant (bot.handoff) and the operators' console at /console (bot.console)
    handoff_enabled: bool = Field(default=True, alias="HANDOFF_ENABLED")
    # When consultants read the queue, e.g. "mon-fri 10:00-19:00" (days: mon..sun, ranges or comma lists; several
    # rules separated by ";"), in HANDOFF_TIMEZONE. Outside them the bot says so honestly.
    handoff_hours: str = Field(default="mon-fri 10:00-19:00", alias="HANDOFF_HOURS")
    handoff_timezone: str = Field(default="Asia/Tokyo", alias="HANDOFF_TIMEZONE")
    # Escalation kinds that also queue the conversation for a consultant (comma-separated; empty turns it off).
    handoff_on_escalation: str = Field(
        default="suicide,self-harm,mental,harassment-severe", alias="HANDOFF_ON_ESCALATION"
    )
    handoff_on_negative_feedback: bool = Field(default=True, alias="HANDOFF_ON_NEGATIVE_FEEDBACK")
    # This many unsure answers (clarifying questions) in a row queue the conversation (0 turns it off).
    handoff_low_confidence_turns: int = Field(default=3, ge=0, alias="HANDOFF_LOW_CONFIDENCE_TURNS")
    console_session_hours: float = Field(default=12.0, gt=0, alias="CONSOLE_SESSION_HOURS")
    console_lockout_failures: int = Field(default=5, ge=1, alias="CONSOLE_LOCKOUT_FAILURES")
    console_lockout_minutes: float = Field(default=15.0, gt=0, alias="CONSOLE_LOCKOUT_MINUTES")
    # Sign-in attempts per client IP per window (whatever the usernames): guessing across accounts is bounded too.
    console_login_rate_limit: int = Field(default=20, ge=1, alias="CONSOLE_LOGIN_RATE_LIMIT")
    console_login_rate_window: float = Field(default=300.0, gt=0, alias="CONSOLE_LOGIN_RATE_WINDOW")
    # The session cookie's Secure flag; unset: on in production (behind HTTPS), off in development.
    console_secure_cookie: bool | None = Field(default=None, alias="CONSOLE_SECURE_COOKIE")
    # How often console pages and the widget (while a consultant holds its conversation) ask for updates.
    console_poll_seconds: float = Field(default=2.0, gt=0, alias="CONSOLE_POLL_SECONDS")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'bot.sqlite3'}"

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.models_path or self.data_dir / "models"

    @property
    def line_enabled(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    @property
    def console_cookie_secure(self) -> bool:
        if self.console_secure_cookie is not None:
            return self.console_secure_cookie
        return self.environment == "production"

    @property
    def handoff_escalation_kinds(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.handoff_on_escalation.split(",") if k.strip())

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
