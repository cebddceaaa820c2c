"""Bounded worker threads for blocking model calls, served by priority.

The event loop never blocks: model calls (Whisper, Kokoro, Smart Turn) run in a
:class:`WorkerPool`, one per engine, shared by every session of the process. At
most ``size`` calls run at once; callers beyond that wait *in asyncio*, so no queue
grows inside the executor and a caller that is cancelled while waiting simply
leaves. Waiters are served by priority, then in arrival order: under load, what a
person is waiting for right now (a final transcript, the first words of a reply)
goes before what can wait (partials, later sentences). A call already running in
a thread cannot be killed; its result is dropped by the turn check when it
comes back.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["BACKGROUND", "NORMAL", "URGENT", "WorkerPool", "calls_in_flight"]

P = ParamSpec("P")
T = TypeVar("T")

#: Someone is waiting on this now (a final transcript, a reply's first words).
URGENT = 0
#: The default.
NORMAL = 1
#: Nice to have (partial transcripts): never ahead of anything else.
BACKGROUND = 2

_DONE: Any = object()
_in_flight = 0


def calls_in_flight() -> int:
    """Worker calls (of every pool) whose result the event loop is still waiting for.

    A :class:`~framecast.clock.VirtualTimeLoop` uses this to hold virtual time still
    while a model computes, so tests with real models stay deterministic.
    """
    return _in_flight


class _PriorityGate:
    """A semaphore whose waiters are woken lowest priority number first, then FIFO."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def saturated(self) -> bool:
        return self._free == 0

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _priority, _order, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next waiter
                return
        self._free += 1


class WorkerPool:
    """A few threads for blocking calls, with the wait for a free one bounded in asyncio.

    Args:
        size: threads, i.e. calls that may run at once.
        name: thread name prefix (shows in profilers).
    """

    def __init__(self, size: int, *, name: str = "framecast-worker") -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self._gate: _PriorityGate | None = None

    def _slots(self) -> _PriorityGate:
        # Created lazily: a pool may be built before the event loop exists.
        if self._gate is None:
            self._gate = _PriorityGate(self.size)
        return self._gate

    @property
    def saturated(self) -> bool:
        """Every thread is busy (a new call would wait)."""
        return self._slots().saturated

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread at NORMAL priority."""
        return await self.call(NORMAL, fn, *args, **kwargs)

    async def call(self, priority: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread once a slot is free for ``priority``."""
        global _in_flight
        gate = self._slots()
        await gate.acquire(priority)
        try:
            loop = asyncio.get_running_loop()
            _in_flight += 1
            try:
                return await loop.run_in_executor(
                    self._executor, functools.partial(fn, *args, **kwargs)
                )
            finally:
                _in_flight -= 1
        finally:
            gate.release()

    async def iterate(
        self, make: Callable[[], Iterator[T]], *, priority: int = NORMAL
    ) -> AsyncGenerator[T, None]:
        """Pull a blocking iterator through the pool, one item per worker call.

        ``make`` is called in a worker thread, and so is every ``next()``: lazy
        generators (faster-whisper segments, TTS chunks) do their work there.
        Between items other callers get their turn, by priority. When the consumer
        stops early (or is cancelled), the iterator is closed in a worker thread, so
        a generator stops producing at the next item boundary. Use it under
        ``contextlib.aclosing`` when you may stop early, so the close happens at once.
        """
        iterator = await self.call(priority, make)
        # A cancelled consumer leaves its last next() running in a thread; closing from
        # another thread meanwhile would fail ("generator already executing"). The lock
        # makes the close wait for it.
        lock = threading.Lock()

        def step() -> T:
            with lock:
                item: T = next(iterator, _DONE)
                return item

        def close() -> None:
            with lock:
                closer = getattr(iterator, "close", None)
                if closer is not None:
                    closer()

        try:
            while True:
                item = await self.call(priority, step)
                if item is _DONE:
                    return
                yield item
        finally:
            # Shielded: closing must happen even when we are being cancelled.
            loop = asyncio.get_running_loop()
            await asyncio.shield(loop.run_in_executor(self._executor, close))

    def close(self) -> None:
        """Stop the threads once running calls finish (idempotent)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
