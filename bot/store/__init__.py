"""The persistent store: conversations, feedback, web bindings, the channel inbox and the sent-answer ledger.

`open_store(settings.resolved_database_url)` gives a `Store`: SQLite by default, PostgreSQL for a shared database.
"""

from bot.store.base import (
    AlreadyBound,
    ConversationState,
    InboxEvent,
    NotFound,
    Store,
    StoreError,
    Turn,
)
from bot.store.factory import open_store, upgrade

__all__ = [
    "AlreadyBound",
    "ConversationState",
    "InboxEvent",
    "NotFound",
    "Store",
    "StoreError",
    "Turn",
    "open_store",
    "upgrade",
]
