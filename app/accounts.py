"""Accounts: passwords (argon2id), API tokens (random, stored as SHA-256), login throttling."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from app.db import Database
from app.directory import Directory, DirectoryUser
from app.directory_accounts import may_sign_in_from_directory, sync_directory_user
from app.models import ApiToken, User

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "mmkb_"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class AuthError(Exception):
    """Bad credentials or token; the message is safe to show (it never says which part was wrong)."""


class TooManyAttempts(AuthError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins counted per (user name, client address): `limit` failures within
    `window_s` seconds lock that pair out for `lockout_s`, doubled for each failure after
    the lockout, up to `max_lockout_s`.

    Keyed by address as well as name so that a stranger's guesses lock out only the
    stranger, never the real user logging in from elsewhere. At most `max_entries` pairs are
    remembered: past that the least recently failed pair that is not locked out is forgotten,
    so invented names cannot grow the table, nor push out a lockout in force.
    """

    def __init__(
        self,
        limit: int = 5,
        window_s: float = 300.0,
        lockout_s: float = 60.0,
        max_lockout_s: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.lockout_s, self.max_lockout_s = limit, window_s, lockout_s, max_lockout_s
        self.max_entries = max_entries
        self.clock = clock
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def check(self, username: str, client: str) -> None:
        with self._lock:
            now = self.clock()
            failures = self._current(username, client, now)
            if failures is not None and failures.locked_until > now:
                raise TooManyAttempts(
                    "too many failed logins; try again in a few minutes", retry_after_s=math.ceil(failures.locked_until - now)
                )

    def failed(self, username: str, client: str) -> None:
        with self._lock:
            now = self.clock()
            failures = self._current(username, client, now) or _Failures()
            failures.count += 1
            failures.last = now
            if failures.count >= self.limit:
                doublings = min(failures.count - self.limit, 32)
                failures.locked_until = now + min(self.lockout_s * 2**doublings, self.max_lockout_s)
            self._failures[(username, client)] = failures
            self._failures.move_to_end((username, client))
            self._make_room(now)

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username, client), None)

    def _current(self, username: str, client: str, now: float) -> _Failures | None:
        failures = self._failures.get((username, client))
        if failures is not None and failures.locked_until <= now and now - failures.last > self.window_s:
            del self._failures[(username, client)]  # quiet for a whole window: forgiven
            return None
        return failures

    def _make_room(self, now: float) -> None:
        while len(self._failures) > self.max_entries:
            # Oldest first; a pair locked out now goes only when every pair is.
            victim = next((key for key, f in self._failures.items() if f.locked_until <= now), None)
            del self._failures[victim if victim is not None else next(iter(self._failures))]


class Accounts:
    def __init__(
        self,
        database: Database,
        token_ttl_days: int | None = 90,
        directory: Directory | None = None,
        single_sign_on: bool = False,
    ) -> None:
        self.database = database
        self.token_ttl_days = token_ttl_days
        self.throttle = LoginThrottle()
        self.directory = directory  # LDAP sign-in (app.directory); None: local accounts only
        # An OpenID provider signs users in (app.oidc): like a directory, it makes login required.
        self.single_sign_on = single_sign_on

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

    def login(self, username: str, password: str, client: str | None = None) -> User:
        """The user, if the password is theirs. `client`: the caller's network address; failed
        logins are counted and logged per user name and address (never with the password)."""
        client = client or "unknown"
        try:
            self.throttle.check(username, client)
        except TooManyAttempts as exc:
            logger.warning(
                "login refused: user %r from %s has too many failed logins (retry in %d s)",
                username[:100],
                client,
                exc.retry_after_s,
            )
            raise
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
        try:
            if self.directory is not None and may_sign_in_from_directory(user):
                # Raises DirectoryUnavailable (not counted as a failure: the password was not judged).
                found = self.directory.authenticate(username, password)
                if found is None:
                    raise VerificationError("refused by the directory")
                user = sync_directory_user(self.database, found)
            else:
                if user is None or not user.password_hash:
                    raise VerificationError("no such user")
                _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            self.throttle.failed(username, client)
            logger.warning("failed login: user %r from %s", username[:100], client)
            raise AuthError("wrong user name or password") from None
        self.throttle.succeeded(username, client)
        return user

    def sign_in_verified(self, found: DirectoryUser) -> User:
        """The local user for someone a sign-in provider has already verified (OIDC), with the
        roles their groups map to, as a directory login makes it. Refused (AuthError) where the
        name is a local account's that the directory could not take over either."""
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == found.username))
        if not may_sign_in_from_directory(user):
            logger.warning("single sign-on refused: %r is a local account", found.username[:100])
            raise AuthError(f"{found.username!r} is a local account here: sign in with its password")
        return sync_directory_user(self.database, found)

    def issue_token(self, user: User, name: str = "") -> str:
        """A new token for `user`; shown once, only its digest is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=self.token_ttl_days) if self.token_ttl_days else None
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
            now = datetime.now(UTC)
            if row.expires_at is not None and _aware(row.expires_at) < now:
                raise AuthError("the API token has expired")
            row.last_used_at = now
            user = session.get(User, row.user_id)
            assert user is not None  # api_tokens.user_id references users (the token goes with its user)
            session.expunge(user)
            return user

    def revoke_token(self, token: str) -> bool:
        with self.database.session() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)))
            if row is None:
                return False
            session.delete(row)
            return True
