"""Admission of questions: a bounded number in the building, a few per asker, and the
generator's turns handed out first come, first served.

One small model on a few cores writes one answer at a time; everything else about a question
(retrieval, the verified quote) is cheap. So every admitted question gets its quote at once,
then waits its turn at the generator, and learns how many answers are ahead of it. Beyond the
bounds a question is turned away at once with how long to wait (HTTP 429 for an asker over
their share, 503 when the whole queue is full) rather than piling up until everyone times out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class Busy(Exception):
    """The question was not admitted; ``retry_after_s`` says when trying again makes sense."""

    def __init__(self, message: str, retry_after_s: int, per_asker: bool) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.per_asker = per_asker


class WaitedTooLong(Busy):
    """The question waited its whole allowance for the generator."""


@dataclass(frozen=True)
class QueueState:
    admitted: int  # questions in the building: waiting, being answered, or being searched
    waiting: int  # questions waiting for the generator
    writing: int  # questions the generator is writing right now (0 or 1)


class Admission:
    def __init__(self, max_admitted: int, per_asker: int, max_wait_s: float, typical_answer_s: float = 30.0) -> None:
        self.max_admitted = max_admitted
        self.per_asker = per_asker
        self.max_wait_s = max_wait_s
        # Only for Retry-After: roughly how long one answer holds the generator.
        self.typical_answer_s = typical_answer_s
        self._lock = threading.Condition()
        self._by_asker: dict[str, int] = {}
        self._turns: deque[object] = deque()  # waiting tickets, first in line first
        self._writing: object | None = None

    def state(self) -> QueueState:
        with self._lock:
            return QueueState(sum(self._by_asker.values()), len(self._turns), int(self._writing is not None))

    def _retry_after(self, ahead: int) -> int:
        return max(1, int(self.typical_answer_s * max(ahead, 1)))

    @contextmanager
    def admit(self, asker: str) -> Iterator[None]:
        """Holds one of the building's places (and one of ``asker``'s) for one question."""
        with self._lock:
            mine = self._by_asker.get(asker, 0)
            total = sum(self._by_asker.values())
            if mine >= self.per_asker:
                raise Busy(
                    f"you already have {mine} questions being answered; wait for one to finish",
                    self._retry_after(mine),
                    per_asker=True,
                )
            if total >= self.max_admitted:
                raise Busy(
                    f"the server is answering {total} questions; try again shortly", self._retry_after(total), per_asker=False
                )
            self._by_asker[asker] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._by_asker[asker] - 1
                if left:
                    self._by_asker[asker] = left
                else:
                    del self._by_asker[asker]

    def turn(self, poll_s: float = 0.5) -> Generator[int, None, None]:
        """Waits for the generator: yields the number of answers ahead (at once and then every
        ``poll_s`` while waiting, so that a caller who has gone can close this generator at a
        yield), and returns once it is this caller's turn, which lasts until ``done()``.
        Raises WaitedTooLong after ``max_wait_s``."""
        ticket = object()
        deadline = time.monotonic() + self.max_wait_s
        with self._lock:
            self._turns.append(ticket)
        try:
            while True:
                with self._lock:
                    if self._writing is None and self._turns[0] is ticket:
                        self._turns.popleft()
                        self._writing = ticket
                        return
                    ahead = self._turns.index(ticket) + (self._writing is not None)
                if time.monotonic() > deadline:
                    raise WaitedTooLong(
                        f"no answer could be started within {self.max_wait_s:.0f} s; try again shortly",
                        self._retry_after(ahead),
                        per_asker=False,
                    )
                yield ahead
                with self._lock:
                    self._lock.wait(poll_s)
        except BaseException:
            with self._lock:
                if ticket in self._turns:
                    self._turns.remove(ticket)
                    self._lock.notify_all()
            raise

    def done(self) -> None:
        """The generator is free for the next in line."""
        with self._lock:
            self._writing = None
            self._lock.notify_all()
