"""Operators' sign-in: argon2id password hashes, sessions kept in the database (every worker knows them), a CSRF
token per session, and a lockout after repeated failures. No HTTP here: the router turns results into cookies."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.store.base import Store
from bot.store.desk import Operator, OperatorRole

ROLES: tuple[OperatorRole, ...] = ("consultant", "admin")
MIN_PASSWORD_CHARS = 12
USERNAME_MAX_CHARS = 64
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the username is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

Failure = Literal["invalid", "locked"]


class OperatorError(ValueError):
    """A bad username, password or role given to `bot operators add`."""


@dataclass(frozen=True)
class LoginResult:
    operator: Operator | None
    token: str | None = None  # the session cookie's value (only its hash is stored)
    failure: Failure | None = None
    locked_now: bool = False  # this failure locked the account


@dataclass(frozen=True)
class Session:
    operator: Operator
    csrf_token: str
    token_hash: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())


def check_new_operator(username: str, password: str, role: str) -> None:
    if (
        not username
        or len(username) > USERNAME_MAX_CHARS
        or not username.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum()
    ):
        raise OperatorError("username: 1-64 letters, digits, '-', '_', '.', '@'")
    if len(password) < MIN_PASSWORD_CHARS:
        raise OperatorError(f"password: at least {MIN_PASSWORD_CHARS} characters")
    if role not in ROLES:
        raise OperatorError(f"role: one of {', '.join(ROLES)}")


class Auth:
    def __init__(
        self, store: Store, *, session_hours: float = 12.0, lock_after: int = 5, lock_minutes: float = 15.0
    ) -> None:
        self.store = store
        self.session_lifetime = timedelta(hours=session_hours)
        self.lock_after = lock_after
        self.lock_for = timedelta(minutes=lock_minutes)

    # ----- operators (the CLI) ---------------------------------------------------------------------------------

    def add_operator(self, username: str, password: str, role: str) -> bool:
        """False when the username exists already."""
        check_new_operator(username, password, role)
        with self.store.desk() as desk:
            added = desk.add_operator(username, hash_password(password), role)  # type: ignore[arg-type]
            if added:
                desk.audit("cli", "operator_add", detail=f"{username} ({role})")
        return added

    def set_disabled(self, username: str, disabled: bool = True) -> bool:
        with self.store.desk() as desk:
            changed = desk.set_disabled(username, disabled)
            if changed:
                desk.audit("cli", "operator_disable" if disabled else "operator_enable", detail=username)
        return changed

    # ----- sign-in ---------------------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> LoginResult:
        now = datetime.now(UTC)
        with self.store.desk_read() as desk:
            operator = desk.operator(username[:USERNAME_MAX_CHARS])
        if operator is None or operator.disabled:
            _verify(_DUMMY_HASH, password)
            self._audit(username, "login_failed", "unknown or disabled")
            return LoginResult(None, failure="invalid")
        if operator.locked(now):
            _verify(_DUMMY_HASH, password)
            self._audit(operator.username, "login_locked")
            return LoginResult(None, failure="locked")
        if not _verify(operator.password_hash, password):
            with self.store.desk() as desk:
                until = desk.login_failed(operator.id, lock_after=self.lock_after, lock_for=self.lock_for)
                desk.audit(operator.username, "login_failed", detail="account locked" if until else None)
            return LoginResult(None, failure="invalid", locked_now=until is not None)
        token = secrets.token_urlsafe(32)
        rehash = hash_password(password) if _hasher.check_needs_rehash(operator.password_hash) else None
        with self.store.desk() as desk:
            desk.login_succeeded(operator.id, rehash)
            desk.create_session(token_hash(token), operator.id, secrets.token_urlsafe(32), now + self.session_lifetime)
            desk.audit(operator.username, "login")
        return LoginResult(operator, token=token)

    def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 200:
            return None
        hashed = token_hash(token)
        with self.store.desk_read() as desk:
            found = desk.session(hashed)
        return None if found is None else Session(found[0], found[1], hashed)

    def logout(self, session: Session) -> None:
        with self.store.desk() as desk:
            desk.end_session(session.token_hash)
            desk.audit(session.operator.username, "logout")

    def _audit(self, who: str, action: str, detail: str | None = None) -> None:
        with self.store.desk() as desk:
            desk.audit(who[:USERNAME_MAX_CHARS] or "-", action, detail=detail)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
