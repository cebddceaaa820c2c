"""Processors: the units a pipeline is made of.

A processor overrides :meth:`Processor.process` and calls :meth:`Processor.push`
to send frames on. A hop is a direct ``await`` of the next processor's
``process`` — no queue, no task — so a frame's trip through a pipeline costs a
few function calls.

Concurrency rule (who may enter ``process`` at the same time)
-------------------------------------------------------------
Frames enter a pipeline from one task (the transport's reader). Processors that
do slow work start background tasks with :meth:`Processor.create_task`, and those
tasks push results while the reader keeps pushing audio through the same
processor. So that nothing downstream is ever entered by two tasks at once, a
processor that owns background tasks *serializes its pushes*: per direction, one
push at a time through a lock. By induction, every processor's ``process`` sees
at most one writer per direction at a time, and a stateful processor needs no
locking of its own. Pass-through processors (no tasks) pay nothing for this.

Turns and stale frames
----------------------
Every non-system frame whose ``turn`` is older than the session's current turn
is dropped by ``push`` itself, before the next processor is entered. After an
interruption, a processor that keeps pushing output of the old turn — even in a
tight loop — cannot get one frame past its own next hop.

Errors
------
An exception escaping ``process`` (or a background task) is logged and turned
into an :class:`~framecast.frames.ErrorFrame` pushed *upstream* from the failing
processor, naming it. The pipeline goes on. ``CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from framecast.clock import Clock
from framecast.exceptions import FramecastError, PipelineError, ServiceError
from framecast.frames import ErrorFrame, Frame, InterruptionFrame, SystemFrame

if TYPE_CHECKING:
    from framecast.session import Session

__all__ = ["Direction", "Processor"]

T = TypeVar("T")


class Direction(IntEnum):
    """Which way a frame travels: towards the output (DOWN) or back to the input (UP)."""

    DOWN = 0
    UP = 1


DOWN = Direction.DOWN
UP = Direction.UP


class Processor:
    """Base class: pass every frame through unchanged.

    Subclasses override :meth:`process` and, where they hold state, the hooks
    :meth:`on_start`, :meth:`on_stop` and :meth:`on_interruption`.

    Args:
        name: shown in logs and error events; defaults to the class name.
    """

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self._next: Processor | None = None
        self._prev: Processor | None = None
        self._session: Session | None = None
        self._down_lock: asyncio.Lock | None = None
        self._up_lock: asyncio.Lock | None = None
        # Each owned task with its turn (None: session-long) and its coroutine.
        self._tasks: dict[asyncio.Task[Any], tuple[int | None, Coroutine[Any, Any, Any]]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # --- what subclasses override -----------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        """Handle one frame. The default passes it on in the same direction."""
        await self.push(frame, direction)

    async def on_start(self) -> None:
        """Called once when the session starts, before any frame flows."""

    async def on_stop(self) -> None:
        """Called once when the session stops, after this processor's tasks are joined."""

    def on_interruption(self, turn: int) -> None:
        """Reset per-reply state: ``turn`` is the new current turn.

        Synchronous on purpose: the session calls it on every processor without
        yielding in between, so no frame can slip through half-reset state. Owned
        tasks of older turns have already been cancelled when this runs.
        """

    # --- what subclasses call -------------------------------------------------------

    @property
    def session(self) -> Session:
        """The session this processor runs in (set when the session starts)."""
        if self._session is None:
            raise PipelineError(f"{self.name}: not attached to a session (start the session first)")
        return self._session

    @property
    def clock(self) -> Clock:
        """The session's clock."""
        return self.session.clock

    async def push(self, frame: Frame, direction: Direction = DOWN) -> None:
        """Send ``frame`` to the neighbour in ``direction`` and await its handling.

        Stale frames (older turn, not a system frame) are dropped here.
        """
        session = self._session
        if session is not None and frame.turn < session.turn and not isinstance(frame, SystemFrame):
            return
        if direction is DOWN:
            target, lock = self._next, self._down_lock
        else:
            target, lock = self._prev, self._up_lock
        if target is None:
            return
        if lock is None:
            try:
                await target.process(frame, direction)
            except Exception as exc:  # noqa: BLE001 - becomes an ErrorFrame, see module doc
                await target._report(exc, frame.turn)
            return
        async with lock:
            # Re-check after waiting: an interruption may have happened meanwhile.
            if (
                session is not None
                and frame.turn < session.turn
                and not isinstance(frame, SystemFrame)
            ):
                return
            try:
                await target.process(frame, direction)
            except Exception as exc:  # noqa: BLE001
                await target._report(exc, frame.turn)

    async def interrupt(self) -> int:
        """Start a new turn (barge-in): cancel everything older, then push the cut.

        Returns the new turn id. See :meth:`framecast.session.Session.interrupt`.
        """
        turn = await self.session.interrupt()
        await self.push(InterruptionFrame(turn=turn, ts=self.clock.now()))
        return turn

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, turn: int | None
    ) -> asyncio.Task[T | None]:
        """Run ``coro`` in a task owned by this processor.

        Args:
            coro: the work. Exceptions it raises become error frames (and the
                task's result is then ``None``).
            turn: the turn the work belongs to: interrupting that turn cancels the
                task. ``None`` for work that lives as long as the session.

        Owning a task makes this processor serialize its pushes (module doc).
        """
        if self._down_lock is None:
            self._down_lock = asyncio.Lock()
            self._up_lock = asyncio.Lock()
        task = asyncio.get_running_loop().create_task(
            self._guard(coro, turn), name=f"{self.name}:{'session' if turn is None else turn}"
        )
        self._tasks[task] = (turn, coro)
        task.add_done_callback(self._forget_task)
        return task

    # --- machinery ------------------------------------------------------------------------

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        # A task cancelled before it ever ran leaves its coroutine unstarted; close it
        # so Python does not warn "never awaited" (a no-op for a finished coroutine).
        _turn, coro = self._tasks.pop(task)
        coro.close()

    async def _guard(self, coro: Coroutine[Any, Any, T], turn: int | None) -> T | None:
        try:
            return await coro
        except Exception as exc:  # noqa: BLE001 - becomes an ErrorFrame
            await self._report(exc, self.session.turn if turn is None else turn)
            return None

    async def _report(self, exc: Exception, turn: int) -> None:
        """Log ``exc`` and push it upstream as an ErrorFrame naming this processor."""
        if isinstance(exc, FramecastError):
            logger.warning("{} failed: {}", self.name, exc)
            code = exc.code
        else:
            logger.opt(exception=exc).error("{} crashed: {!r}", self.name, exc)
            code = "internal"
        retryable = isinstance(exc, ServiceError) and exc.retryable
        error = ErrorFrame(
            message=str(exc) or type(exc).__name__,
            code=code,
            processor=self.name,
            retryable=retryable,
            turn=turn,
        )
        try:
            await self.push(error, UP)
        except Exception:  # noqa: BLE001 - the error path itself failed; the log has it
            logger.opt(exception=True).error("{}: could not report an error upstream", self.name)

    def _cancel_turns_before(self, turn: int) -> list[asyncio.Task[Any]]:
        """Cancel owned tasks of turns older than ``turn``; return them to be joined."""
        doomed = [t for t, (owner, _) in self._tasks.items() if owner is not None and owner < turn]
        for task in doomed:
            task.cancel()
        return doomed

    def _cancel_all(self) -> list[asyncio.Task[Any]]:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    def _leaves(self) -> list[Processor]:
        """The processors frames actually visit (a plain processor is its own leaf)."""
        return [self]

    def _head(self) -> Processor:
        """Where frames coming from upstream enter."""
        return self

    def _tail(self) -> Processor:
        """Where frames leave towards downstream."""
        return self


def link(upstream: Processor, downstream: Processor) -> None:
    """Connect two processors (or pipelines) so frames flow between them."""
    out, into = upstream._tail(), downstream._head()
    if out._next is not None or into._prev is not None:
        raise PipelineError(f"cannot link {out.name} -> {into.name}: already linked")
    out._next = into
    into._prev = out
