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

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeLoop, threshold: float):
        self._inner = inner
        self._loop = loop
        self._threshold = threshold

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        if timeout is None:  # no timer pending: only real I/O can make progress
            return self._inner.select(None)
        events = self._inner.select(min(timeout, self._threshold))
        if not events:
            self._loop.advance(timeout)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock advances only when every task is blocked.

    Args:
        autojump_threshold: real seconds to wait for real I/O (a worker thread,
            a socket) before jumping to the next timer. 0 suits pure logic tests
            with fake engines; raise it when a test also waits on threads.
    """

    def __init__(self, autojump_threshold: float = 0.0) -> None:
        super().__init__()
        self._virtual_now = 0.0
        inner: selectors.BaseSelector = getattr(self, "_selector")  # noqa: B009 - set by the base
        self._selector = _AutojumpSelector(inner, self, autojump_threshold)

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (the loop does this itself when idle)."""
        self._virtual_now += max(0.0, seconds)
