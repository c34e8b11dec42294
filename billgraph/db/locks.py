"""In-process coordination of writers: locks and group commit keyed by a value (a wallet),
created on demand and dropped when idle."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class KeyedLocks:
    """One asyncio.Lock per key. Holders of different keys never wait for each other."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class GroupCommit:
    """Runs work for one key in batches: callers that arrive while a batch of their key runs
    wait and go together in the next one, so many callers share one transaction and one
    commit. At most one batch per key runs at a time in this process."""

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._queues: dict[Hashable, list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(
        self, key: Hashable, item: T, run: Callable[[list[T]], Awaitable[list[R | Exception]]]
    ) -> R:
        """`run(batch)` returns one outcome per item, in order: a result, or an exception for
        that item's caller alone. An exception raised by `run` goes to every caller of the
        batch. A caller cancelled while its item still waits is left out of the batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            # A task of its own: a caller that goes away must not strand the others.
            drain = loop.create_task(self._drain(key, queue, run))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        queue.append((item, future))
        return await future

    async def _drain(
        self,
        key: Hashable,
        queue: list[tuple[Any, asyncio.Future[Any]]],
        run: Callable[[list[Any]], Awaitable[list[Any]]],
    ) -> None:
        batch: list[tuple[Any, asyncio.Future[Any]]] = []
        try:
            while queue:
                batch = [(item, f) for item, f in queue[: self.max_batch] if not f.done()]
                del queue[: self.max_batch]
                if not batch:
                    continue
                try:
                    outcomes = await run([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError("a batch returned the wrong number of outcomes")
                except Exception as exc:  # noqa: BLE001 - handed to the callers
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                batch = []
        finally:
            # Cancelled (shutdown) or worse: no caller may wait forever.
            del self._queues[key]
            for _, future in [*batch, *queue]:
                if not future.done():
                    future.set_exception(RuntimeError("the posting queue stopped"))
