"""Time, injected.

Library code never calls ``time.monotonic()`` or ``asyncio.sleep()`` for timing
decisions; it asks its :class:`Clock`. In production that is :class:`LoopClock`,
which reads the event loop's clock. Tests run on a :class:`VirtualTimeLoop`, whose
clock stands still while anything is runnable and jumps to the next timer as soon
as every task is blocked, so turn-taking timeouts are tested exactly and instantly.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Clock", "LoopClock", "VirtualTimeLoop"]


class Clock(Protocol):
    """What processors use for time."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class LoopClock:
    """The running event loop's clock (real time, or virtual under VirtualTimeLoop).

    ``now()`` must be called from the loop's thread; worker threads receive the
    timestamps they need as arguments.
    """

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _AutojumpSelector:
    """Wraps the loop's selector: when nothing is ready, jump time instead of waiting.

    ``select(timeout)`` is what the loop calls when it has no ready callbacks;
    ``timeout`` is the delay until its next timer. Real I/O (sockets, worker threads
    waking the loop) is polled first, for up to ``threshold`` real seconds.
    """

    def __init__(
        self,
        inner: selectors.BaseSelector,
        loop: VirtualTimeLoop,
        threshold: float,
        busy: Callable[[], object] | None,
    ) -> None:
        self._inner = inner
        self._loop = loop
        self._threshold = threshold
        self._busy = busy

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        if timeout is None:  # no timer pending: only real I/O can make progress
            return self._inner.select(None)
        events = self._inner.select(min(timeout, self._threshold))
        while not events and self._busy is not None and self._busy():
            events = self._inner.select(0.05)  # real work in a thread: wait for it, really
        if not events:
            self._loop.advance(timeout)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock advances only when every task is blocked.

    Args:
        autojump_threshold: real seconds to wait for real I/O (a socket) before
            jumping to the next timer.
        busy: while this returns true, time does not jump: the loop waits for real
            I/O instead. By default, while worker-pool calls are in flight, so a
            model computing in a thread takes no virtual time.
    """

    def __init__(
        self, autojump_threshold: float = 0.0, *, busy: Callable[[], object] | None = None
    ) -> None:
        super().__init__()
        if busy is None:
            from framecast.workers import calls_in_flight

            busy = calls_in_flight
        self._virtual_now = 0.0
        inner: selectors.BaseSelector = getattr(self, "_selector")  # noqa: B009 - set by the base
        self._selector = _AutojumpSelector(inner, self, autojump_threshold, busy)

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (the loop does this itself when idle)."""
        self._virtual_now += max(0.0, seconds)
