"""Explicit async boundaries: a bounded channel and the processor that uses one.

A hop is normally a direct call, so a slow processor slows its producer — that
is backpressure, and usually what you want. Where a producer must not wait (a
reader that has to keep draining a socket), put a :class:`Boundary` in the
pipeline: a bounded buffer with its own consumer task. When the buffer is full,
``push`` into it waits — the bound is explicit, in the signature, and there is
no unbounded queue anywhere. On interruption, queued frames of older turns are
dropped on the spot.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from framecast.exceptions import PipelineError
from framecast.frames import Frame, SystemFrame
from framecast.processor import DOWN, Direction, Processor

__all__ = ["Boundary", "BoundedChannel"]

T = TypeVar("T")


class BoundedChannel(Generic[T]):
    """A FIFO of at most ``maxsize`` items: ``put`` waits while full, ``get`` while empty.

    Unlike ``asyncio.Queue`` it can drop items in place (``drop_if``), and it
    reports its high-water mark (``peak``).
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise PipelineError("a channel needs maxsize >= 1")
        self.maxsize = maxsize
        self.peak = 0
        self._items: deque[T] = deque()
        self._not_full = asyncio.Event()
        self._not_empty = asyncio.Event()
        self._not_full.set()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T) -> None:
        """Append ``item``, waiting for room."""
        while len(self._items) >= self.maxsize:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(item)
        self.peak = max(self.peak, len(self._items))
        self._not_empty.set()

    async def get(self) -> T:
        """Remove and return the oldest item, waiting for one."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        item = self._items.popleft()
        self._not_full.set()
        return item

    def drop_if(self, predicate: Callable[[T], bool]) -> int:
        """Remove every queued item for which ``predicate`` is true; return how many."""
        kept = [item for item in self._items if not predicate(item)]
        dropped = len(self._items) - len(kept)
        if dropped:
            self._items = deque(kept)
            self._not_full.set()
        return dropped


class Boundary(Processor):
    """Decouples upstream from downstream through a bounded buffer.

    Frames going down are queued (waiting when ``maxsize`` are queued) and pushed
    on by the boundary's own task, in order. Frames going up pass straight through.

    Args:
        maxsize: how many frames may wait. Start small.
    """

    def __init__(self, maxsize: int, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._channel: BoundedChannel[Frame] = BoundedChannel(maxsize)

    @property
    def channel(self) -> BoundedChannel[Frame]:
        """The buffer (for inspection: length, peak)."""
        return self._channel

    async def on_start(self) -> None:
        self._start_pump()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            await self._channel.put(frame)
        else:
            await self.push(frame, direction)

    def _start_pump(self) -> None:
        self._in_flight: Frame | None = None
        self._pump_task = self.create_task(self._pump(), turn=None)

    async def _pump(self) -> None:
        while True:
            frame = await self._channel.get()
            self._in_flight = frame
            await self.push(frame, DOWN)
            self._in_flight = None

    def _cancel_turns_before(self, turn: int) -> list[asyncio.Task[object]]:
        """Drop queued frames of older turns; abandon an older frame still being pushed.

        The pump lives as long as the session, but while it carries a stale frame
        its work belongs to that old turn: cancel it (the session joins it) and
        start a fresh pump, so the interruption is not stuck behind a slow stage.
        """
        self._channel.drop_if(lambda f: f.turn < turn and not isinstance(f, SystemFrame))
        doomed = super()._cancel_turns_before(turn)
        current = self._in_flight
        if current is not None and current.turn < turn and not isinstance(current, SystemFrame):
            self._pump_task.cancel()
            doomed.append(self._pump_task)
            self._start_pump()
        return doomed
