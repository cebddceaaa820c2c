"""Bounded worker threads for blocking model calls.

The event loop never blocks: model calls (Whisper, Kokoro, Smart Turn) run in a
:class:`WorkerPool`, one per engine, shared by every session of the process. At
most ``size`` calls run at once and callers beyond that wait *in asyncio*, in
arrival order, so no queue grows inside the executor and a caller that is
cancelled while waiting simply leaves. A call already running in a thread cannot
be killed; its result is dropped by the turn check when it comes back.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["WorkerPool", "calls_in_flight"]

P = ParamSpec("P")
T = TypeVar("T")

_DONE: Any = object()
_in_flight = 0


def calls_in_flight() -> int:
    """Worker calls (of every pool) whose result the event loop is still waiting for.

    A :class:`~framecast.clock.VirtualTimeLoop` uses this to hold virtual time still
    while a model computes, so tests with real models stay deterministic.
    """
    return _in_flight


class WorkerPool:
    """A few threads for blocking calls, with the wait for a free one bounded in asyncio.

    Args:
        size: threads, i.e. calls that may run at once.
        name: thread name prefix (shows in profilers).
    """

    def __init__(self, size: int, *, name: str = "framecast-worker") -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self._slots: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # Created lazily: a pool may be built before the event loop exists.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        return self._slots

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread and return its result."""
        global _in_flight
        async with self._semaphore():
            loop = asyncio.get_running_loop()
            _in_flight += 1
            try:
                return await loop.run_in_executor(
                    self._executor, functools.partial(fn, *args, **kwargs)
                )
            finally:
                _in_flight -= 1

    async def iterate(self, make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
        """Pull a blocking iterator through the pool, one item per worker call.

        ``make`` is called in a worker thread, and so is every ``next()``: lazy
        generators (faster-whisper segments, TTS chunks) do their work there.
        Between items other callers get their turn. When the consumer stops early
        (or is cancelled), the iterator is closed in a worker thread, so a
        generator stops producing at the next item boundary. Use it under
        ``contextlib.aclosing`` when you may stop early, so the close happens at once.
        """
        iterator = await self.run(make)
        try:
            while True:
                item = await self.run(next, iterator, _DONE)
                if item is _DONE:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # Shielded: closing must happen even when we are being cancelled.
                loop = asyncio.get_running_loop()
                await asyncio.shield(loop.run_in_executor(self._executor, close))

    def close(self) -> None:
        """Stop the threads once running calls finish (idempotent)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
