"""Composition: pipelines (in series, nestable) and parallel branches (fan-out/fan-in).

A :class:`Pipeline` links its processors in order and disappears from the hop
path: linking a pipeline to its neighbours connects them straight to its first
and last processors, so nesting costs nothing per frame.

A :class:`Parallel` sends each frame into every branch in turn (same task, in
order) and merges what the branches emit. A frame object that several branches
pass on is forwarded once, so side analyses (emotion tagging, logging) can sit in
a branch next to an empty pass-through branch without duplicating the stream.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from framecast.exceptions import PipelineError
from framecast.frames import Frame
from framecast.processor import DOWN, Direction, Processor, link

__all__ = ["Parallel", "Pipeline"]


class Pipeline(Processor):
    """Processors in series; itself usable wherever a processor is.

    Args:
        processors: at least one; processors and nested pipelines.
        name: for logs.
    """

    def __init__(self, processors: Sequence[Processor], *, name: str | None = None) -> None:
        super().__init__(name=name)
        if not processors:
            raise PipelineError("a Pipeline needs at least one processor")
        self.processors = list(processors)
        for upstream, downstream in zip(self.processors, self.processors[1:], strict=False):
            link(upstream, downstream)

    async def process(self, frame: Frame, direction: Direction) -> None:
        # Only reached if someone calls a pipeline directly rather than linking it.
        entry = self._head() if direction is DOWN else self._tail()
        await entry.process(frame, direction)

    def _leaves(self) -> list[Processor]:
        return [leaf for p in self.processors for leaf in p._leaves()]

    def _head(self) -> Processor:
        return self.processors[0]._head()

    def _tail(self) -> Processor:
        return self.processors[-1]._tail()


class _BranchEnd(Processor):
    """Last element of a branch: hands frames to the Parallel's merge point."""

    def __init__(self, owner: Parallel, index: int) -> None:
        super().__init__(name=f"{owner.name}.branch{index}.end")
        self._owner = owner

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            await self._owner._merge(frame)
        else:
            await self.push(frame, direction)


class _BranchStart(Processor):
    """First element of a branch: frames going up leave the Parallel from here."""

    def __init__(self, owner: Parallel, index: int) -> None:
        super().__init__(name=f"{owner.name}.branch{index}.start")
        self._owner = owner

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            await self.push(frame, direction)
        else:
            await self._owner._merge_up(frame)


class Parallel(Processor):
    """Fan-out to several branches, fan-in of their outputs.

    Each branch is a sequence of processors (empty = pass-through). Frames coming
    back up from downstream go straight on upstream, past the branches.

    Args:
        branches: the branches.
        dedupe_window: how many recently forwarded frames are remembered to forward
            a frame object only once. A branch that holds a frame back for longer
            than this many frames would forward it twice.
    """

    def __init__(
        self, *branches: Sequence[Processor], name: str | None = None, dedupe_window: int = 256
    ) -> None:
        super().__init__(name=name)
        if not branches:
            raise PipelineError("a Parallel needs at least one branch")
        self._branches: list[Pipeline] = []
        for i, branch in enumerate(branches):
            self._branches.append(
                Pipeline(
                    [_BranchStart(self, i), *branch, _BranchEnd(self, i)], name=f"{self.name}.{i}"
                )
            )
        self._seen: OrderedDict[int, Frame] = OrderedDict()
        self._seen_up: OrderedDict[int, Frame] = OrderedDict()
        self._window = dedupe_window
        # Several branches (and their background tasks) write to the merge point.
        self._down_lock = asyncio.Lock()
        self._up_lock = asyncio.Lock()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            for branch in self._branches:
                await branch._head().process(frame, DOWN)
        else:
            await self.push(frame, direction)

    async def _merge(self, frame: Frame) -> None:
        if self._remember(self._seen, frame):
            await self.push(frame, DOWN)

    async def _merge_up(self, frame: Frame) -> None:
        if self._remember(self._seen_up, frame):
            await self.push(frame, Direction.UP)

    def _remember(self, seen: OrderedDict[int, Frame], frame: Frame) -> bool:
        """True the first time this frame object is seen (keeps a ref so ids stay unique)."""
        key = id(frame)
        if key in seen and seen[key] is frame:
            return False
        seen[key] = frame
        if len(seen) > self._window:
            seen.popitem(last=False)
        return True

    def _leaves(self) -> list[Processor]:
        leaves: list[Processor] = [self]
        for branch in self._branches:
            leaves.extend(branch._leaves())
        return leaves

    def _cancel_all(self) -> list[asyncio.Task[Any]]:
        self._seen.clear()
        self._seen_up.clear()
        return super()._cancel_all()
