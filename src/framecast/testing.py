"""Helpers to test processors: a source/sink harness and virtual time.

    out = await run_processors([MyProcessor()], [TextIn(text="hi", turn=1)])
    assert [f.text for f in out.of(LLMText)] == ["hello"]

Items in the input list are frames to push, numbers (seconds to wait on the
session clock, instant under :class:`~framecast.clock.VirtualTimeLoop`), or an
:class:`~framecast.frames.InterruptionFrame`, which performs a real interruption
(new turn, cancellation) before it is pushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from framecast.clock import Clock, VirtualTimeLoop
from framecast.frames import Frame, InterruptionFrame, SystemFrame
from framecast.processor import Processor
from framecast.session import Session

__all__ = ["Captured", "VirtualTimeLoop", "run_processors"]

F = TypeVar("F", bound=Frame)


@dataclass
class Captured:
    """What came out of both ends of the pipeline, in order."""

    down: list[Frame] = field(default_factory=list)
    up: list[Frame] = field(default_factory=list)

    def of(self, kind: type[F], *, up: bool = False) -> list[F]:
        """Frames of one type (or kind), from the downstream end unless ``up``."""
        return [f for f in (self.up if up else self.down) if isinstance(f, kind)]

    def data(self) -> list[Frame]:
        """Downstream frames that are not system frames."""
        return [f for f in self.down if not isinstance(f, SystemFrame)]


async def run_processors(
    processors: Sequence[Processor],
    inputs: Sequence[Frame | float],
    *,
    clock: Clock | None = None,
    flush_timeout: float = 5.0,
) -> Captured:
    """Run ``processors`` in a session, feed ``inputs``, stop (flushing), return the output."""
    captured = Captured()

    async def on_output(frame: Frame) -> None:
        captured.down.append(frame)

    async def on_upstream(frame: Frame) -> None:
        captured.up.append(frame)

    session = Session(list(processors), clock=clock, on_output=on_output, on_upstream=on_upstream)
    await session.start()
    try:
        for item in inputs:
            if isinstance(item, int | float):
                await session.clock.sleep(float(item))
            elif isinstance(item, InterruptionFrame):
                turn = await session.interrupt()
                await session.push(InterruptionFrame(turn=turn, ts=session.clock.now()))
            else:
                await session.push(item)
    finally:
        await session.stop(flush_timeout=flush_timeout)
    return captured
