"""Accounts: passwords (argon2id), API tokens (random, stored as SHA-256), login throttling."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from app.db import Database
from app.models import ApiToken, User

TOKEN_PREFIX = "mmkb_"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class AuthError(Exception):
    """Bad credentials or token; the message is safe to show (it never says which part was wrong)."""


class TooManyAttempts(AuthError):
    pass


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class LoginThrottle:
    """At most `limit` failed logins per username within `window_s` seconds."""

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, username: str) -> None:
        with self._lock:
            recent = self._failures[username]
            while recent and time.monotonic() - recent[0] > self.window_s:
                recent.popleft()
            if len(recent) >= self.limit:
                raise TooManyAttempts("too many failed logins; try again in a few minutes")

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures[username].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


class Accounts:
    def __init__(self, database: Database, token_ttl_days: int | None = 90) -> None:
        self.database = database
        self.token_ttl_days = token_ttl_days
        self.throttle = LoginThrottle()

    def create_user(self, username: str, password: str | None, is_admin: bool = False) -> User:
        username = username.strip()
        if not username:
            raise ValueError("a user needs a name")
        if password is not None and len(password) < 8:
            raise ValueError("passwords need at least 8 characters")
        with self.database.session() as session:
            if session.scalar(select(User).where(User.username == username)) is not None:
                raise ValueError(f"user {username!r} exists already")
            user = User(username=username, is_admin=is_admin, password_hash=_hasher.hash(password) if password else None)
            session.add(user)
            session.flush()
            return user

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("passwords need at least 8 characters")
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            user.password_hash = _hasher.hash(password)

    def login(self, username: str, password: str) -> User:
        self.throttle.check(username)
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
        try:
            if user is None or not user.password_hash:
                raise VerificationError("no such user")
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            self.throttle.failed(username)
            raise AuthError("wrong user name or password") from None
        self.throttle.succeeded(username)
        return user

    def issue_token(self, user: User, name: str = "") -> str:
        """A new token for `user`; shown once, only its digest is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(timezone.utc) + timedelta(days=self.token_ttl_days) if self.token_ttl_days else None
        with self.database.session() as session:
            session.add(ApiToken(user_id=user.id, name=name, token_sha256=_token_digest(token), expires_at=expires))
        return token

    def authenticate(self, token: str | None) -> User:
        if not token:
            raise AuthError("missing API token")
        with self.database.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)))
            if row is None:
                raise AuthError("invalid API token")
            now = datetime.now(timezone.utc)
            if row.expires_at is not None and _aware(row.expires_at) < now:
                raise AuthError("the API token has expired")
            row.last_used_at = now
            user = session.get(User, row.user_id)
            session.expunge(user)
            return user

    def revoke_token(self, token: str) -> bool:
        with self.database.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)))
            if row is None:
                return False
            session.delete(row)
            return True
