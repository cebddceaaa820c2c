"""A session runs one pipeline for one conversation and owns its turns.

Turns
-----
``session.turn`` is the id of the current conversation turn. Frames are stamped
with the turn they belong to. A new user turn starts with :meth:`Session.interrupt`
(called by whatever hears the user start again: the input gate, or a typed
message); it

1. bumps ``turn`` — from this instant every older non-system frame is stale and
   is dropped at its next hop (see :mod:`framecast.processor`);
2. cancels every task that processors own for older turns, and calls each
   processor's synchronous ``on_interruption`` hook — all without yielding, so no
   frame moves while state is half reset;
3. joins the cancelled tasks (they are awaited, never orphaned).

The caller then pushes an :class:`~framecast.frames.InterruptionFrame` so
downstream processors see the cut in-band (``Processor.interrupt`` does both).

Lifecycle
---------
``start()`` attaches and starts every processor, then sends a StartFrame.
``stop()`` sends an EndFrame (processors flush), then cancels and joins every task
any processor still owns, then calls ``on_stop``. ``cancel()`` skips the flush.
After either, no task created by the pipeline is alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger

from framecast.clock import Clock, LoopClock
from framecast.exceptions import PipelineError
from framecast.frames import CancelFrame, EndFrame, ErrorFrame, Frame, StartFrame
from framecast.pipeline import Pipeline
from framecast.processor import DOWN, UP, Direction, Processor, link
from framecast.timeline import Timeline, TimelineBook

__all__ = ["Session"]

FrameCallback = Callable[[Frame], Awaitable[None]]

#: How long to wait for cancelled tasks to finish before logging them as stuck.
_JOIN_TIMEOUT_S = 5.0


class _Head(Processor):
    """Entry of the session: frames arriving from upstream end here."""

    def __init__(self, session: Session) -> None:
        super().__init__(name="session.head")
        self._owner = session

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UP:
            await self._owner._upstream(frame)
        else:
            await self.push(frame, direction)


class _Tail(Processor):
    """Exit of the session: frames leaving the pipeline end here."""

    def __init__(self, session: Session) -> None:
        super().__init__(name="session.tail")
        self._owner = session

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            await self._owner._downstream(frame)
        else:
            await self.push(frame, direction)


class Session:
    """Runs a pipeline for one conversation.

    Args:
        pipeline: a processor, a pipeline, or a list of processors.
        clock: time source; the event loop's clock by default.
        on_output: awaited with every frame that leaves the end of the pipeline.
        on_upstream: awaited with every frame that reaches the start going up
            (error frames are also logged).
        name: for logs.

    Use as ``async with Session(...) as s:`` or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        pipeline: Processor | Sequence[Processor],
        *,
        clock: Clock | None = None,
        on_output: FrameCallback | None = None,
        on_upstream: FrameCallback | None = None,
        name: str = "session",
    ) -> None:
        self.name = name
        self.clock: Clock = clock or LoopClock()
        self.turn = 0
        #: True when the user's last turn has ended: their next speech opens a new turn.
        self.user_turn_ended = True
        self.timelines = TimelineBook()
        self.pipeline = pipeline if isinstance(pipeline, Processor) else Pipeline(list(pipeline))
        self._on_output = on_output
        self._on_upstream = on_upstream
        self._head = _Head(self)
        self._tail = _Tail(self)
        link(self._head, self.pipeline)
        link(self.pipeline, self._tail)
        self._processors = [self._head, *self.pipeline._leaves(), self._tail]
        self._state = "new"
        self._ended: asyncio.Future[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def processors(self) -> list[Processor]:
        """Every processor frames visit, in order (including the session's ends)."""
        return list(self._processors)

    async def start(self) -> None:
        """Attach and start every processor, then send a StartFrame through."""
        if self._state != "new":
            raise PipelineError(f"{self.name}: start() called in state {self._state!r}")
        for processor in self._processors:
            if processor._session is not None:
                raise PipelineError(f"{processor.name} already belongs to a session")
            processor._session = self
        self._state = "running"
        for processor in self._processors:
            await processor.on_start()
        await self._head.push(StartFrame(turn=self.turn, ts=self.clock.now()))

    async def push(self, frame: Frame, direction: Direction = DOWN) -> None:
        """Feed a frame in at the start (DOWN) or at the end (UP)."""
        if self._state != "running":
            raise PipelineError(f"{self.name}: push() while {self._state}")
        if direction is DOWN:
            await self._head.push(frame, DOWN)
        else:
            await self._tail.push(frame, UP)

    async def stop(self, *, flush_timeout: float = 5.0) -> None:
        """Flush, then cancel and join all tasks, then call ``on_stop`` hooks.

        Flushing sends an EndFrame and waits (up to ``flush_timeout`` seconds of
        the session clock) until it has come out of the end of the pipeline, so
        frames held in boundaries are delivered first.
        """
        if self._state != "running":
            return
        self._state = "stopping"
        self._ended = asyncio.get_running_loop().create_future()
        try:
            await self._head.push(EndFrame(turn=self.turn, ts=self.clock.now()))
            await asyncio.wait({self._ended}, timeout=flush_timeout)
        finally:
            await self._shutdown()

    async def cancel(self) -> None:
        """Stop now: nothing is flushed."""
        if self._state != "running":
            return
        self._state = "stopping"
        try:
            self.turn += 1  # everything in flight is void
            await self._head.push(CancelFrame(turn=self.turn, ts=self.clock.now()))
        finally:
            await self._shutdown()

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await (self.cancel() if exc[0] is not None else self.stop())

    async def _shutdown(self) -> None:
        tasks = [t for p in self._processors for t in p._cancel_all()]
        await self._join(tasks)
        for processor in self._processors:
            try:
                await processor.on_stop()
            except Exception:  # noqa: BLE001 - one failing hook must not leak the others
                logger.opt(exception=True).error("{}: on_stop failed", processor.name)
        self._state = "stopped"

    # --- turns -----------------------------------------------------------------------

    async def interrupt(self) -> int:
        """Start a new turn: void older frames, cancel and join older tasks.

        Returns the new turn id. Safe to call from a task the interruption
        cancels: that task is not joined (it cannot wait for itself) and receives
        its ``CancelledError`` at its next await.
        """
        self.turn += 1
        turn = self.turn
        self.user_turn_ended = False
        doomed: list[asyncio.Task[Any]] = []
        for processor in self._processors:  # no await in this loop: atomic w.r.t. other tasks
            doomed.extend(processor._cancel_turns_before(turn))
            processor.on_interruption(turn)
        me = asyncio.current_task()
        await self._join([t for t in doomed if t is not me])
        return turn

    def end_user_turn(self) -> None:
        """The user's turn is over: their next speech starts a new turn (barge-in if replying)."""
        self.user_turn_ended = True

    def timeline(self, turn: int) -> Timeline:
        """The latency timeline of ``turn``."""
        return self.timelines.get(turn)

    def mark(self, turn: int, stage: str, ts: float | None = None) -> None:
        """Record that ``stage`` of ``turn`` happened now (or at ``ts``); first mark wins."""
        self.timelines.get(turn).mark(stage, self.clock.now() if ts is None else ts)

    # --- ends of the pipeline -------------------------------------------------------

    async def _downstream(self, frame: Frame) -> None:
        if self._on_output is not None:
            await self._on_output(frame)
        if isinstance(frame, EndFrame) and self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    async def _upstream(self, frame: Frame) -> None:
        if isinstance(frame, ErrorFrame):
            logger.warning("{}: error from {}: {}", self.name, frame.processor, frame.message)
        if self._on_upstream is not None:
            await self._on_upstream(frame)

    async def _join(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Wait for cancelled tasks to finish; a task that ignores cancellation is logged."""
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=_JOIN_TIMEOUT_S)
        for task in pending:
            logger.error("{}: task {} did not finish after cancel", self.name, task.get_name())
