"""Conversation rows (turns, state, feedback, bindings; the handoff queue through `desk`) on a connection the caller owns.

The caller opens the transaction (`Store.transaction()`) and decides what commits together, as the CRUD functions of
FastAPI's full-stack template take the caller's session: a turn's user message, answer, state and pruning commit
together or not at all, so a failed or retried turn leaves nothing behind to duplicate. The `Store` methods of the
same names are one-statement transactions over these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, exists, insert, or_, select

from bot.store import schema
from bot.store.base import ROLES, ConversationState, NotFound, Role, Turn, bounded_steps, utcnow
from bot.store.desk import HELD, Desk
from bot.store.statements import insert_ignore, upsert

T = schema.turns
S = schema.conversation_states
F = schema.feedback
B = schema.bindings
M = schema.message_log


class Conversations:
    """The conversation queries, run on `conn` inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def desk(self) -> Desk:
        """The handoff queue and the message log, in this same transaction."""
        return Desk(self.conn)

    # ----- turns ---------------------------------------------------------------------------------------------------

    def add_turn(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        *,
        answer: dict[str, Any] | None = None,
        channel_message_id: str | None = None,
    ) -> int:
        if role not in ROLES:
            raise ValueError(f"role must be 'user' or 'bot', not {role!r}")
        values = {
            "conversation_id": conversation_id,
            "role": role,
            "text": text,
            "answer": answer,
            "channel_message_id": channel_message_id,
            "created_at": utcnow(),
        }
        return int(self.conn.execute(insert(T).values(values).returning(T.c.id)).scalar_one())

    def recent_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        stmt = select(T).where(T.c.conversation_id == conversation_id).order_by(T.c.id.desc()).limit(limit)
        return [turn_of(row) for row in reversed(self.conn.execute(stmt).all())]

    def answer_to(self, conversation_id: str, channel_message_id: str) -> Turn | None:
        """The bot turn that answered the user's message `channel_message_id`: the turn directly after it (consultant
        turns aside), stored in the same transaction. None when the message is not stored, nothing answered it (a
        message held for a consultant: the bot turn after it is a later one, such as the hand-back notice), or another
        user turn came next."""
        asked = self.conn.execute(
            select(T.c.id).where(T.c.conversation_id == conversation_id, T.c.channel_message_id == channel_message_id)
        ).scalar()
        if asked is None:
            return None
        held = select(M.c.id).where(M.c.conversation_id == conversation_id, M.c.user_turn_id == asked, M.c.kind == HELD)
        if self.conn.execute(held.limit(1)).first() is not None:
            return None
        # A consultant's reply written from the console meanwhile may sit between the two: it answers nothing.
        stmt = (
            select(T)
            .where(T.c.conversation_id == conversation_id, T.c.id > asked, T.c.role != "consultant")
            .order_by(T.c.id)
            .limit(1)
        )
        row = self.conn.execute(stmt).first()
        return None if row is None or row.role != "bot" else turn_of(row)

    def prune_turns(self, conversation_id: str, keep: int) -> int:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        # The id of the newest turn that no longer fits; it and everything older goes.
        boundary = (
            select(T.c.id)
            .where(T.c.conversation_id == conversation_id)
            .order_by(T.c.id.desc())
            .offset(keep)
            .limit(1)
            .scalar_subquery()
        )
        return self.conn.execute(delete(T).where(T.c.conversation_id == conversation_id, T.c.id <= boundary)).rowcount

    def delete_turn_by_channel_message_id(self, conversation_id: str, channel_message_id: str) -> bool:
        stmt = delete(T).where(T.c.conversation_id == conversation_id, T.c.channel_message_id == channel_message_id)
        return self.conn.execute(stmt).rowcount > 0

    # ----- state ---------------------------------------------------------------------------------------------------

    def get_state(self, conversation_id: str) -> ConversationState | None:
        data = self.conn.execute(select(S.c.state).where(S.c.conversation_id == conversation_id)).scalar()
        return None if data is None else ConversationState.model_validate(data)

    def save_state(self, conversation_id: str, state: ConversationState) -> None:
        # Callers append to the lists in place (no validation runs then): bound them on the way in too.
        state.done_steps[:] = bounded_steps(state.done_steps)
        values = {"conversation_id": conversation_id, "state": state.model_dump(mode="json"), "updated_at": utcnow()}
        upsert(self.conn, S, values, ["conversation_id"], ["state", "updated_at"])

    # ----- the conversation as a whole -------------------------------------------------------------------------------

    def delete(self, conversation_id: str) -> int:
        """Turns, state, feedback, the handoff and the message log (not the binding); returns the rows removed."""
        removed = 0
        for table in (T, S, F):
            removed += self.conn.execute(delete(table).where(table.c.conversation_id == conversation_id)).rowcount
        return removed + self.desk.forget(conversation_id)

    def exists(self, conversation_id: str) -> bool:
        stmt = select(
            or_(
                exists().where(T.c.conversation_id == conversation_id),
                exists().where(S.c.conversation_id == conversation_id),
                exists().where(B.c.conversation_id == conversation_id),
            )
        )
        return bool(self.conn.execute(stmt).scalar())

    # ----- feedback and the web visitor binding ----------------------------------------------------------------------

    def add_feedback(self, conversation_id: str, turn_id: int, helpful: bool, comment: str | None) -> int:
        owned = select(T.c.id).where(T.c.id == turn_id, T.c.conversation_id == conversation_id)
        if self.conn.execute(owned).first() is None:
            raise NotFound(f"turn {turn_id} does not belong to this conversation")
        values = {
            "conversation_id": conversation_id,
            "turn_id": turn_id,
            "helpful": helpful,
            "comment": comment,
            "created_at": utcnow(),
        }
        return int(self.conn.execute(insert(F).values(values).returning(F.c.id)).scalar_one())

    def bind(self, conversation_id: str, owner_token_hash: str) -> str:
        """Bind to `owner_token_hash` unless bound already; returns the owner the conversation has now."""
        values = {"conversation_id": conversation_id, "owner_token_hash": owner_token_hash, "created_at": utcnow()}
        if insert_ignore(self.conn, B, values, ["conversation_id"]):
            return owner_token_hash
        return str(
            self.conn.execute(select(B.c.owner_token_hash).where(B.c.conversation_id == conversation_id)).scalar()
        )

    def owner_of(self, conversation_id: str) -> str | None:
        owner = self.conn.execute(select(B.c.owner_token_hash).where(B.c.conversation_id == conversation_id)).scalar()
        return None if owner is None else str(owner)

    def unbind(self, conversation_id: str) -> int:
        return self.conn.execute(delete(B).where(B.c.conversation_id == conversation_id)).rowcount


def turn_of(row: Row[Any]) -> Turn:
    return Turn(
        id=int(row.id),
        conversation_id=row.conversation_id,
        role=row.role,
        text=row.text,
        answer=row.answer,
        channel_message_id=row.channel_message_id,
        created_at=row.created_at,
    )
