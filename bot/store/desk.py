"""The handoff queue, operators, console sessions, the audit log and the message log, on a connection the caller owns.

Like `Conversations`, these queries run inside the caller's transaction (`Store.desk()` for one of their own, or
`tx.desk` inside a turn), so a user's message and the queue's "something changed" stamp commit together. Nothing here
lives in process memory: every worker sees the same queue, sessions and lockouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from bot.store import schema
from bot.store.base import utcnow
from bot.store.statements import insert_ignore

H = schema.handoffs
O = schema.operators  # noqa: E741 - the operators table, read like its role
OS = schema.operator_sessions
A = schema.audit_log
M = schema.message_log
T = schema.turns
F = schema.feedback

HandoffStatus = Literal["waiting", "active", "closed"]
HandoffReason = Literal["user", "crisis", "feedback", "low_confidence"]
OperatorRole = Literal["consultant", "admin"]
QueueTab = Literal["waiting", "mine", "closed"]
FORGOTTEN = "forgotten"  # the conversation id left in the audit log after the user deleted their data
SUMMARY_MAX_CHARS = 1000
NOTE_MAX_CHARS = 2000
DETAIL_MAX_CHARS = 500
HELD = "held"  # the message log's kind for a user's message stored for a consultant, not answered by the bot


def channel_of(conversation_id: str) -> str:
    """`line:user:U…` -> line, `web:…` -> web; anything else (the CLI) -> other."""
    head = conversation_id.split(":", 1)[0]
    return head if head in ("line", "web") else "other"


@dataclass(frozen=True, slots=True)
class Handoff:
    conversation_id: str
    channel: str
    status: HandoffStatus
    reason: HandoffReason
    topic: str | None
    summary: str
    steps_done: int
    escalation: str | None
    assigned_to: str | None
    note: str | None
    outcome: str | None
    unread: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def open(self) -> bool:
        return self.status != "closed"

    @property
    def holds_bot(self) -> bool:
        """The bot stays silent: a consultant has it, or the user asked for a person and is waiting for one."""
        return self.status == "active" or (self.status == "waiting" and self.reason == "user")


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    username: str
    password_hash: str
    role: OperatorRole
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True, slots=True)
class MessageRow:
    conversation_id: str
    channel: str
    kind: str
    topic: str | None
    escalation: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    operator: str
    action: str
    conversation_id: str | None
    detail: str | None
    created_at: datetime


class Desk:
    """The console's queries, run on `conn` inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ----- handoffs ----------------------------------------------------------------------------------------------

    def handoff(self, conversation_id: str) -> Handoff | None:
        row = self.conn.execute(select(H).where(H.c.conversation_id == conversation_id)).first()
        return None if row is None else _handoff(row)

    def queue(
        self,
        conversation_id: str,
        *,
        reason: HandoffReason,
        topic: str | None,
        summary: str,
        steps_done: int,
        escalation: str | None,
    ) -> tuple[Handoff, bool]:
        """Put the conversation in the queue (waiting); returns it and whether it was newly queued.

        Already open: the newest escalation and summary are recorded, a user's own request wins over an automatic
        reason (so the bot then stays silent), and nothing else changes (a consultant keeps it)."""
        now = utcnow()
        summary = summary[-SUMMARY_MAX_CHARS:]
        current = self.handoff(conversation_id)
        if current is not None and current.open:
            values: dict[str, Any] = {"summary": summary, "steps_done": steps_done, "updated_at": now, "topic": topic}
            if escalation:
                values["escalation"] = escalation
            if reason == "user":
                values["reason"] = "user"
            self.conn.execute(update(H).where(H.c.conversation_id == conversation_id).values(values))
            found = self.handoff(conversation_id)
            assert found is not None
            return found, False
        values = {
            "channel": channel_of(conversation_id),
            "status": "waiting",
            "reason": reason,
            "topic": topic,
            "summary": summary,
            "steps_done": steps_done,
            "escalation": escalation,
            "assigned_to": None,
            "note": None,
            "outcome": None,
            "unread": 0,
            "updated_at": now,
            "closed_at": None,
        }
        if current is None:
            self.conn.execute(insert(H).values(conversation_id=conversation_id, created_at=now, **values))
        else:
            self.conn.execute(update(H).where(H.c.conversation_id == conversation_id).values(created_at=now, **values))
        found = self.handoff(conversation_id)
        assert found is not None
        return found, True

    def user_wrote(self, conversation_id: str, *, escalation: str | None = None) -> None:
        """A user's message arrived on an open handoff: the queue shows it as unread."""
        values: dict[str, Any] = {"unread": H.c.unread + 1, "updated_at": utcnow()}
        if escalation:
            values["escalation"] = escalation
        self.conn.execute(
            update(H).where(H.c.conversation_id == conversation_id, H.c.status != "closed").values(values)
        )

    def take(self, conversation_id: str, operator: str) -> Handoff | None:
        """The operator holds the conversation (the bot is silent from now on); None when it is not open or another
        operator holds it (read `handoff` to tell which). Only a waiting, unassigned or already-own conversation is
        taken: one consultant never takes over another's."""
        changed = self.conn.execute(
            update(H)
            .where(H.c.conversation_id == conversation_id, H.c.status != "closed", _claimable(operator))
            .values(status="active", assigned_to=operator, updated_at=utcnow())
        ).rowcount
        found = self.handoff(conversation_id)
        return found if changed and found is not None and found.open else None

    def consultant_wrote(self, conversation_id: str, operator: str, *, admin: bool = False) -> bool:
        """The operator wrote to the user: a waiting or unassigned conversation becomes theirs; their own stays theirs;
        an admin may write on another's without taking it. False (nothing changed) when it is closed or another
        consultant holds it. The conditional update is the check, so two operators cannot both pass it."""
        now = utcnow()
        open_ = (H.c.conversation_id == conversation_id, H.c.status != "closed")
        changed = self.conn.execute(
            update(H)
            .where(*open_, _claimable(operator))
            .values(status="active", assigned_to=operator, unread=0, updated_at=now)
        ).rowcount
        if not changed and admin:
            changed = self.conn.execute(update(H).where(*open_).values(unread=0, updated_at=now)).rowcount
        return bool(changed)

    def finish(
        self,
        conversation_id: str,
        *,
        outcome: str,
        note: str | None = None,
        operator: str | None = None,
        admin: bool = False,
    ) -> Handoff | None:
        """Close an open handoff (handed back, closed, the user went back to the bot); None when none was open, or
        when `operator` (a consultant, not an admin) neither holds it nor may claim it (waiting or unassigned).
        Without `operator` (the user went back to the bot) there is no check."""
        now = utcnow()
        values: dict[str, Any] = {"status": "closed", "outcome": outcome, "updated_at": now, "closed_at": now}
        if note is not None:
            values["note"] = note[:NOTE_MAX_CHARS]
        stmt = update(H).where(H.c.conversation_id == conversation_id, H.c.status != "closed")
        if operator is not None:
            values["assigned_to"] = func.coalesce(H.c.assigned_to, operator)
            if not admin:
                stmt = stmt.where(_claimable(operator))
        changed = self.conn.execute(stmt.values(values)).rowcount
        return self.handoff(conversation_id) if changed else None

    def listing(self, tab: QueueTab, operator: str, *, limit: int = 50, offset: int = 0) -> list[Handoff]:
        stmt = select(H)
        if tab == "waiting":
            stmt = stmt.where(H.c.status == "waiting").order_by(H.c.updated_at.asc())
        elif tab == "mine":
            stmt = stmt.where(H.c.status == "active", H.c.assigned_to == operator).order_by(H.c.updated_at.desc())
        else:
            stmt = stmt.where(H.c.status == "closed").order_by(H.c.updated_at.desc())
        rows = self.conn.execute(stmt.limit(limit).offset(offset)).all()
        return [_handoff(row) for row in rows]

    def counts(self, operator: str) -> dict[str, int]:
        rows = self.conn.execute(select(H.c.status, func.count()).group_by(H.c.status)).all()
        by_status = {str(status): int(n) for status, n in rows}
        mine = self.conn.execute(
            select(func.count()).where(H.c.status == "active", H.c.assigned_to == operator)
        ).scalar_one()
        return {
            "waiting": by_status.get("waiting", 0),
            "active": by_status.get("active", 0),
            "mine": int(mine),
            "closed": by_status.get("closed", 0),
        }

    def queue_version(self) -> str:
        """Changes whenever anything in the queue changes (a new handoff, a message, a close, a deletion)."""
        newest, count = self.conn.execute(select(func.max(H.c.updated_at), func.count())).one()
        return f"{newest.isoformat() if newest else '-'}/{int(count)}"

    def conversation_version(self, conversation_id: str) -> str:
        last = self.conn.execute(select(func.max(T.c.id)).where(T.c.conversation_id == conversation_id)).scalar()
        stamp = self.conn.execute(select(H.c.updated_at).where(H.c.conversation_id == conversation_id)).scalar()
        return f"{last or 0}/{stamp.isoformat() if stamp else '-'}"

    # ----- operators and sessions ----------------------------------------------------------------------------------

    def add_operator(self, username: str, password_hash: str, role: OperatorRole) -> bool:
        values = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "disabled": False,
            "failed_logins": 0,
            "locked_until": None,
            "created_at": utcnow(),
            "last_login_at": None,
        }
        return insert_ignore(self.conn, O, values, ["username"])

    def operator(self, username: str) -> Operator | None:
        row = self.conn.execute(select(O).where(O.c.username == username)).first()
        return None if row is None else _operator(row)

    def operators(self) -> list[Operator]:
        return [_operator(row) for row in self.conn.execute(select(O).order_by(O.c.username)).all()]

    def set_disabled(self, username: str, disabled: bool) -> bool:
        found = self.operator(username)
        if found is None:
            return False
        self.conn.execute(update(O).where(O.c.id == found.id).values(disabled=disabled))
        if disabled:
            self.conn.execute(delete(OS).where(OS.c.operator_id == found.id))
        return True

    def set_password(self, username: str, password_hash: str) -> bool:
        stmt = (
            update(O)
            .where(O.c.username == username)
            .values(password_hash=password_hash, failed_logins=0, locked_until=None)
        )
        return self.conn.execute(stmt).rowcount > 0

    def login_failed(self, operator_id: int, *, lock_after: int, lock_for: timedelta) -> datetime | None:
        """Count a failed password; at `lock_after` failures in a row the account locks for `lock_for` (new sign-ins
        only: sessions already open go on, so someone guessing cannot sign an operator out). Returns the lock's end
        when this failure locked it."""
        self.conn.execute(update(O).where(O.c.id == operator_id).values(failed_logins=O.c.failed_logins + 1))
        failures = self.conn.execute(select(O.c.failed_logins).where(O.c.id == operator_id)).scalar_one()
        if int(failures) < lock_after:
            return None
        until = utcnow() + lock_for
        self.conn.execute(update(O).where(O.c.id == operator_id).values(failed_logins=0, locked_until=until))
        return until

    def login_succeeded(self, operator_id: int, password_hash: str | None = None) -> None:
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": utcnow()}
        if password_hash is not None:  # argon2 parameters changed: the hash is upgraded on the way in
            values["password_hash"] = password_hash
        self.conn.execute(update(O).where(O.c.id == operator_id).values(values))

    def create_session(self, token_hash: str, operator_id: int, csrf_token: str, expires_at: datetime) -> None:
        now = utcnow()
        self.conn.execute(delete(OS).where(OS.c.expires_at < now))  # housekeeping, bounded by logins
        self.conn.execute(
            insert(OS).values(
                token_hash=token_hash,
                operator_id=operator_id,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def session(self, token_hash: str) -> tuple[Operator, str] | None:
        """The session's operator and CSRF token, when the session is live and the operator is not disabled (a lockout
        stops new sign-ins, not sessions already open)."""
        now = utcnow()
        row = self.conn.execute(
            select(O, OS.c.csrf_token)
            .join(OS, OS.c.operator_id == O.c.id)
            .where(OS.c.token_hash == token_hash, OS.c.expires_at > now)
        ).first()
        if row is None:
            return None
        operator = _operator(row)
        if operator.disabled:
            return None
        return operator, str(row.csrf_token)

    def end_session(self, token_hash: str) -> None:
        self.conn.execute(delete(OS).where(OS.c.token_hash == token_hash))

    # ----- audit log ---------------------------------------------------------------------------------------------

    def audit(self, operator: str, action: str, conversation_id: str | None = None, detail: str | None = None) -> None:
        self.conn.execute(
            insert(A).values(
                operator=operator[:64],
                action=action[:32],
                conversation_id=conversation_id,
                detail=None if detail is None else detail[:DETAIL_MAX_CHARS],
                created_at=utcnow(),
            )
        )

    def audit_entries(self, *, limit: int = 200, conversation_id: str | None = None) -> list[AuditEntry]:
        stmt = select(A).order_by(A.c.id.desc()).limit(limit)
        if conversation_id is not None:
            stmt = stmt.where(A.c.conversation_id == conversation_id)
        return [
            AuditEntry(int(r.id), r.operator, r.action, r.conversation_id, r.detail, r.created_at)
            for r in self.conn.execute(stmt).all()
        ]

    # ----- message log and insights ------------------------------------------------------------------------------

    def log_message(
        self,
        conversation_id: str,
        kind: str,
        *,
        topic: str | None = None,
        escalation: str | None = None,
        user_turn_id: int | None = None,
    ) -> None:
        self.conn.execute(
            insert(M).values(
                conversation_id=conversation_id,
                user_turn_id=user_turn_id,
                channel=channel_of(conversation_id),
                kind=kind[:16],
                topic=None if topic is None else topic[:64],
                escalation=None if escalation is None else escalation[:32],
                created_at=utcnow(),
            )
        )

    def message_stored(self, conversation_id: str, channel_message_id: str) -> bool:
        stmt = select(T.c.id).where(
            T.c.conversation_id == conversation_id, T.c.channel_message_id == channel_message_id
        )
        return self.conn.execute(stmt).first() is not None

    def message_rows(self, since: datetime) -> list[MessageRow]:
        stmt = (
            select(M.c.conversation_id, M.c.channel, M.c.kind, M.c.topic, M.c.escalation, M.c.created_at)
            .where(M.c.created_at >= since)
            .order_by(M.c.id)
        )
        return [MessageRow(*row) for row in self.conn.execute(stmt).all()]

    def feedback_rows(self, since: datetime) -> list[tuple[bool, datetime]]:
        stmt = select(F.c.helpful, F.c.created_at).where(F.c.created_at >= since)
        return [(bool(h), c) for h, c in self.conn.execute(stmt).all()]

    def unsure_messages(self, since: datetime, *, limit: int = 2000) -> list[str]:
        """The stored text of messages the bot could not place (it asked which topic was meant): what the library
        should cover next. Pruned or deleted history is gone from here too."""
        stmt = (
            select(T.c.text)
            .join(M, M.c.user_turn_id == T.c.id)
            .where(M.c.kind == "unsure", M.c.created_at >= since)
            .order_by(M.c.id.desc())
            .limit(limit)
        )
        return [str(t) for t in self.conn.execute(stmt).scalars().all()]

    # ----- privacy -----------------------------------------------------------------------------------------------

    def forget(self, conversation_id: str) -> int:
        """A user's deletion: off the queue, out of the message log, anonymised in the audit log."""
        removed = self.conn.execute(delete(H).where(H.c.conversation_id == conversation_id)).rowcount
        removed += self.conn.execute(delete(M).where(M.c.conversation_id == conversation_id)).rowcount
        self.conn.execute(
            update(A).where(A.c.conversation_id == conversation_id).values(conversation_id=FORGOTTEN, detail=None)
        )
        return int(removed)


def _claimable(operator: str) -> Any:
    """The operator may take or act on the handoff: it waits, nobody holds it, or they hold it already."""
    return or_(H.c.status == "waiting", H.c.assigned_to.is_(None), H.c.assigned_to == operator)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _handoff(row: Row[Any]) -> Handoff:
    return Handoff(
        conversation_id=row.conversation_id,
        channel=row.channel,
        status=row.status,
        reason=row.reason,
        topic=row.topic,
        summary=row.summary,
        steps_done=int(row.steps_done),
        escalation=row.escalation,
        assigned_to=row.assigned_to,
        note=row.note,
        outcome=row.outcome,
        unread=int(row.unread),
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )


def _operator(row: Row[Any]) -> Operator:
    return Operator(
        id=int(row.id),
        username=row.username,
        password_hash=row.password_hash,
        role=row.role,
        disabled=bool(row.disabled),
        failed_logins=int(row.failed_logins),
        locked_until=row.locked_until,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


__all__ = [
    "FORGOTTEN",
    "HELD",
    "AuditEntry",
    "Desk",
    "Handoff",
    "HandoffReason",
    "HandoffStatus",
    "Operator",
    "OperatorRole",
    "QueueTab",
    "channel_of",
]
