"""A blocking iterator (an answer being written) consumed from async code, one step per
worker-thread call, so the event loop keeps serving others while the model writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import TypeVar, cast

import anyio
from anyio.to_thread import run_sync

T = TypeVar("T")
_END = object()


async def iterate_in_thread(events: Generator[T, None, None]) -> AsyncIterator[T]:
    """Yields each item of `events`. However the consumer stops (done, an error, or cancelled
    because its client has gone), `events` is closed, so an answer that nobody reads any more
    stops its generation, or leaves the generator's queue, at the next step rather than when
    the model would have finished. Use it under contextlib.aclosing, so that a cancelled
    consumer closes it at once."""
    try:
        while (item := await run_sync(next, events, _END)) is not _END:
            yield cast(T, item)  # anything but the _END sentinel is an item of `events`
    finally:
        with anyio.CancelScope(shield=True):
            await run_sync(events.close)
